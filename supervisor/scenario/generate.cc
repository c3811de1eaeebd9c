#include "supervisor/scenario/generate.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace fault::scenario {
namespace {

// The eight templates, as the Rust tool writes them; @CALL@ is the call
// block, @UP@ the upstream.
constexpr char kTemplates[] = R"(title: Single high-latency spike (client ingress)
description: A single 800ms spike simulates jitter buffer underrun / GC pause on client network stack.
@CONFIG@items:
- call:
@CALL@  context:
    upstreams:
    - @UP@
    faults:
    - type: latency
      side: client
      mean: 800.0
      stddev: 100.0
      direction: ingress
  expect:
    status: 200
---
title: Stair-step latency growth (5 x 100 ms)
description: Latency increases 100 ms per call; emulate slow congestion build-up or head-of-line blocking.
@CONFIG@items:
- call:
@CALL@  context:
    upstreams:
    - @UP@
    faults:
    - type: latency
      side: client
      mean: 100.0
      stddev: 30.0
      direction: ingress
    strategy:
      mode: repeat
      step: 100.0
      count: 5
      add_baseline_call: true
  expect:
    status: 200
---
title: Periodic 150-250 ms latency pulses during load
description: Three latency bursts at 10-40-70% of a 10s window; good for P95 drift tracking.
@CONFIG@items:
- call:
@CALL@  context:
    upstreams:
    - @UP@
    faults:
    - type: latency
      mean: 150.0
      period: start:10%,duration:15%
    - type: latency
      mean: 250.0
      period: start:40%,duration:15%
    - type: latency
      mean: 150.0
      period: start:70%,duration:15%
    strategy:
      mode: load
      duration: 10s
      clients: 3
      rps: 2
    slo:
    - slo_type: latency
      title: P95 < 300ms
      objective: 95.0
      threshold: 300.0
    - slo_type: error
      title: P99 < 1% errors
      objective: 99.0
      threshold: 1.0
  expect:
    all_slo_are_valid: true
---
title: 5% packet loss for 4s
description: Simulates flaky Wi-Fi or cellular interference.
@CONFIG@items:
- call:
@CALLT@  context:
    upstreams:
    - @UP@
    faults:
    - type: packetloss
      direction: egress
      period: start:30%,duration:40%
  expect:
    status: 200
    response_time_under: 100.0
---
title: High jitter (±80ms @ 8Hz)
description: Emulates bursty uplink, measuring buffering robustness.
@CONFIG@items:
- call:
@CALL@  context:
    upstreams:
    - @UP@
    faults:
    - type: jitter
      amplitude: 80.0
      frequency: 8.0
      direction: ingress
      side: server
  expect:
    status: 200
---
title: 512 KBps bandwidth cap
description: Models throttled 3G link; validates handling of large payloads.
@CONFIG@items:
- call:
@CALL@  context:
    upstreams:
    - @UP@
    faults:
    - type: bandwidth
      rate: 512
      unit: KBps
      direction: ingress
    strategy:
      mode: load
      duration: 15s
      clients: 2
      rps: 1
    slo:
    - slo_type: latency
      title: P95 < 300ms
      objective: 95.0
      threshold: 300.0
    - slo_type: error
      title: P99 < 1% errors
      objective: 99.0
      threshold: 1.0
  expect:
    status: 200
---
title: Random 500 errors (5% of calls)
description: Backend flakiness under load; ensures retry / circuit-breaker logic.
@CONFIG@items:
- call:
@CALL@  context:
    upstreams:
    - @UP@
    faults:
    - type: httperror
      status_code: 500
      probability: 0.05
    strategy:
      mode: load
      duration: 8s
      clients: 5
      rps: 4
    slo:
    - slo_type: latency
      title: P95 < 300ms
      objective: 95.0
      threshold: 300.0
    - slo_type: error
      title: P99 < 1% errors
      objective: 99.0
      threshold: 1.0
  expect:
    response_time_under: 100.0
---
title: Full black-hole for 1s
description: Simulates router drop / Pod eviction causing 100% packet loss for a second.
@CONFIG@items:
- call:
@CALLT@  context:
    upstreams:
    - @UP@
    faults:
    - type: blackhole
      direction: egress
      period: start:45%,duration:10%
    strategy:
      mode: load
      duration: 10s
      clients: 2
      rps: 3
    slo:
    - slo_type: latency
      title: P95 < 300ms
      objective: 95.0
      threshold: 300.0
    - slo_type: error
      title: P99 < 1% errors
      objective: 99.0
      threshold: 1.0
)";

std::string Quoted(const std::string& s) {
  YAML::Emitter e;
  e << YAML::DoubleQuoted << s;
  return e.c_str();
}

std::string OperationId(const std::string& method, const std::string& path) {
  std::string id = absl::StrCat(absl::AsciiStrToLower(method), "_");
  for (char c : path) id += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return id;
}

}  // namespace

absl::StatusOr<std::vector<GeneratedFile>> GenerateScenarios(const std::string& spec_text,
                                                             const std::string& spec_name) {
  YAML::Node spec;
  try {
    spec = YAML::Load(spec_text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(spec_name, ":", e.mark.line + 1, ": ", e.msg));
  }
  if (!spec.IsMap() || !spec["openapi"] || !spec["openapi"].IsScalar())
    return absl::InvalidArgumentError(
        absl::StrCat(spec_name, ": not an OpenAPI document (no openapi: version)"));
  const std::string version = spec["openapi"].Scalar();
  if (!absl::StartsWith(version, "3.0") && !absl::StartsWith(version, "3.1"))
    return absl::InvalidArgumentError(absl::StrCat(spec_name, ":", spec["openapi"].Mark().line + 1,
                                                   ": openapi ", version, " is not 3.0 or 3.1"));
  std::string base = "http://localhost";
  if (spec["servers"] && spec["servers"].IsSequence() && spec["servers"].size() > 0 &&
      spec["servers"][0]["url"] && spec["servers"][0]["url"].IsScalar())
    base = spec["servers"][0]["url"].Scalar();
  if (!absl::StartsWith(base, "http://") && !absl::StartsWith(base, "https://"))
    return absl::InvalidArgumentError(absl::StrCat(spec_name, ": servers[0].url ", base,
                                                   " is not an absolute http:// or https:// URL"));
  while (absl::EndsWith(base, "/")) base.pop_back();
  // The upstream: scheme://authority of the server.
  const size_t authority_end = base.find('/', base.find("://") + 3);
  const std::string upstream = base.substr(0, authority_end);
  if (!spec["paths"] || !spec["paths"].IsMap() || spec["paths"].size() == 0)
    return absl::InvalidArgumentError(absl::StrCat(spec_name, ": has no paths"));
  std::vector<GeneratedFile> out;
  std::set<std::string> names;
  static const char* kMethods[] = {"get", "put", "post", "delete", "patch", "head", "options"};
  for (const auto& p : spec["paths"]) {
    const std::string path = p.first.Scalar();
    if (!p.second.IsMap()) continue;
    for (const char* m : kMethods) {
      const YAML::Node op = p.second[m];
      if (!op || !op.IsMap()) continue;
      std::string id = op["operationId"] && op["operationId"].IsScalar()
                           ? op["operationId"].Scalar()
                           : OperationId(m, path);
      std::string call = absl::StrCat("    method: ", absl::AsciiStrToUpper(m),
                                      "\n    url: ", Quoted(base + path), "\n");
      std::string meta = absl::StrCat("    meta:\n      operation_id: ", Quoted(id), "\n");
      // Path parameters: an example when the spec gives one, else 1.
      std::string segments;
      size_t at = 0;
      while ((at = path.find('{', at)) != std::string::npos) {
        const size_t end = path.find('}', at);
        if (end == std::string::npos) break;
        const std::string name = path.substr(at + 1, end - at - 1);
        std::string value = "1";
        for (const YAML::Node& params : {op["parameters"], p.second["parameters"]}) {
          if (!params || !params.IsSequence()) continue;
          for (const YAML::Node& prm : params)
            if (prm["name"] && prm["name"].Scalar() == name) {
              if (prm["example"] && prm["example"].IsScalar())
                value = prm["example"].Scalar();
              else if (prm["schema"] && prm["schema"]["example"] &&
                       prm["schema"]["example"].IsScalar())
                value = prm["schema"]["example"].Scalar();
            }
        }
        absl::StrAppend(&segments, "        ", name, ": ", Quoted(value), "\n");
        at = end + 1;
      }
      const std::string config =
          segments.empty()
              ? ""
              : absl::StrCat("config:\n  http:\n    paths:\n      segments:\n", segments);
      std::string text =
          absl::StrReplaceAll(kTemplates, {{"@CONFIG@", config},
                                           {"@CALL@", call + meta},
                                           {"@CALLT@", call + "    timeout: 500\n" + meta},
                                           {"@UP@", Quoted(upstream)}});
      std::string file = id;
      for (char& c : file)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '_';
      while (names.count(file)) file += "_";
      names.insert(file);
      out.push_back({file + ".yaml", text});
    }
  }
  if (out.empty())
    return absl::InvalidArgumentError(absl::StrCat(spec_name, ": no operation under paths"));
  return out;
}

}  // namespace fault::scenario
