// libFuzzer target: arbitrary bytes as a --proxy mapping, a --*-sched
// schedule, an --upstream value, a --duration and the other value grammars
// of `fault run`. Besides not crashing (ASan, UBSan), what parses must be
// well formed: mappings and upstreams survive a second parse unchanged,
// durations are not negative, schedules fit the table and pass through the
// policy validator. The input is also split at its first newline into a
// --duration and a schedule, so that percentages meet a run duration.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "fault/table.h"
#include "supervisor/policy/loader.h"
#include "supervisor/run/proxy_syntax.h"

namespace {

void Fail(const char* what, std::string_view input) {
  std::fprintf(stderr, "%s: \"%.*s\"\n", what, static_cast<int>(input.size()),
               input.data());
  std::abort();
}

template <typename T>
bool Ok(const absl::StatusOr<T>& s, std::string_view input) {
  if (!s.ok() && s.status().message().empty()) {
    Fail("error without a message", input);
  }
  return s.ok();
}

void CheckSchedule(std::string_view text, int64_t run_ns) {
  absl::StatusOr<fault::v1::Schedule> s =
      fault::run::ParseProxySchedule(text, run_ns);
  if (!Ok(s, text)) return;
  if (s->intervals_size() < 1 || s->intervals_size() > FAULT_MAX_INTERVALS) {
    Fail("schedule interval count", text);
  }
  for (const fault::v1::Interval& iv : s->intervals()) {
    if (iv.start_ns() < 0 || iv.duration_ns() < 0 ||
        iv.start_ppm() > 1'000'000 || iv.duration_ppm() > 1'000'000) {
      Fail("schedule interval out of range", text);
    }
  }
  fault::v1::Policy p;
  p.set_name("blackhole");
  p.set_blackhole(true);
  *p.mutable_schedule() = *s;
  for (const auto& problem : fault::policy::PolicyProblems(p)) {
    if (problem.message.empty()) Fail("validator problem without text", text);
  }
}

void Check(std::string_view text) {
  if (absl::StatusOr<fault::run::Mapping> m = fault::run::ParseMapping(text);
      Ok(m, text)) {
    if (m->listen.port == 0 || m->upstream.port == 0 ||
        m->upstream.host.empty()) {
      Fail("mapping without a port or host", text);
    }
    absl::StatusOr<fault::run::ListenAddress> again =
        fault::run::ParseListenAddress(m->listen.ToString(), false);
    if (!again.ok() || again->host != m->listen.host ||
        again->port != m->listen.port) {
      Fail("listen address does not parse back", text);
    }
  }
  if (absl::StatusOr<std::string> u = fault::run::NormalizeUpstream(text);
      Ok(u, text)) {
    absl::StatusOr<std::string> again = fault::run::NormalizeUpstream(*u);
    if (!again.ok() || *again != *u) Fail("upstream not idempotent", text);
    const std::vector<std::string> list = {*u};
    (void)fault::run::UpstreamMatches(list, text, 80);
  }
  if (absl::StatusOr<int64_t> d = fault::run::ParseProxyDuration(text);
      Ok(d, text) && *d < 0) {
    Fail("negative duration", text);
  }
  if (absl::StatusOr<int64_t> ms = fault::run::ParseMilliseconds(text);
      Ok(ms, text) && *ms < 0) {
    Fail("negative milliseconds", text);
  }
  if (absl::StatusOr<double> x = fault::run::ParseProxyNumber(text);
      Ok(x, text) && !(std::isfinite(*x) && *x >= 0)) {
    Fail("number out of range", text);
  }
  (void)Ok(fault::run::ParseListenAddress(text, true), text);
  CheckSchedule(text, 0);
  CheckSchedule(text, 60'000'000'000);
  // "DURATION\nSCHEDULE".
  if (const size_t nl = text.find('\n'); nl != std::string_view::npos) {
    absl::StatusOr<int64_t> run =
        fault::run::ParseProxyDuration(text.substr(0, nl));
    if (run.ok()) CheckSchedule(text.substr(nl + 1), *run);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Check(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
