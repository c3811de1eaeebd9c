// Scenario files: YAML (yaml-cpp, which keeps each node's line) into the
// types of scenario.h, every problem collected with its file and line.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "supervisor/cli/input_file.h"
#include "supervisor/run/proxy_syntax.h"
#include "supervisor/scenario/item_faults.h"
#include "supervisor/scenario/scenario.h"

namespace fault::scenario {

std::string Where::ToString() const { return absl::StrCat(file, ":", line); }

std::string ErrorClasses::ToString() const {
  std::vector<std::string> v;
  if (transport) v.push_back("transport");
  if (timeout) v.push_back("timeout");
  if (watchdog) v.push_back("watchdog");
  if (status_5xx) v.push_back("5xx");
  if (status_4xx) v.push_back("4xx");
  return v.empty() ? "nothing" : absl::StrJoin(v, ", ");
}

namespace {

nlohmann::json ToJson(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json j = nlohmann::json::object();
      for (const auto& kv : n) j[kv.first.as<std::string>()] = ToJson(kv.second);
      return j;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json j = nlohmann::json::array();
      for (const auto& e : n) j.push_back(ToJson(e));
      return j;
    }
    case YAML::NodeType::Scalar: {
      const std::string s = n.Scalar();
      if (n.Tag() == "!") return s;  // quoted
      if (s == "true") return true;
      if (s == "false") return false;
      int64_t i;
      if (absl::SimpleAtoi(s, &i)) return i;
      double d;
      if (!s.empty() &&
          (std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-' || s[0] == '.') &&
          absl::SimpleAtod(s, &d) && std::isfinite(d))
        return d;
      return s;
    }
    default:
      return nullptr;
  }
}

// Collects problems, each "FILE:LINE: PATH: why".
class Parser {
 public:
  explicit Parser(std::string file) : file_(std::move(file)) {}

  std::vector<std::string>& problems() { return problems_; }

  Where At(const YAML::Node& n) const {
    return Where{file_, n.Mark().line >= 0 ? n.Mark().line + 1 : 0};
  }
  void Add(const YAML::Node& n, const std::string& path, const std::string& why) {
    problems_.push_back(absl::StrCat(At(n).ToString(), ": ", path, ": ", why));
  }

  // A mapping with only `allowed` keys; false (and a problem) otherwise.
  bool Map(const YAML::Node& n, const std::string& path, const std::set<std::string>& allowed) {
    if (!n.IsMap()) {
      Add(n, path, "must be a mapping");
      return false;
    }
    for (const auto& kv : n) {
      const std::string key = kv.first.Scalar();
      if (!allowed.count(key)) {
        Add(kv.first, Join(path, key),
            absl::StrCat("unknown key (expected one of ",
                         absl::StrJoin(allowed.begin(), allowed.end(), ", "), ")"));
      }
    }
    return true;
  }

  static std::string Join(const std::string& path, const std::string& key) {
    return path.empty() ? key : absl::StrCat(path, ".", key);
  }

  bool Str(const YAML::Node& n, const std::string& path, std::string* out) {
    if (!n.IsScalar()) {
      Add(n, path, "must be a string");
      return false;
    }
    *out = n.Scalar();
    return true;
  }
  bool Num(const YAML::Node& n, const std::string& path, double* out) {
    double d;
    if (!n.IsScalar() || !absl::SimpleAtod(n.Scalar(), &d) || !std::isfinite(d)) {
      Add(n, path, absl::StrCat(Quote(n), " is not a number"));
      return false;
    }
    *out = d;
    return true;
  }
  bool Int(const YAML::Node& n, const std::string& path, int64_t lo, int64_t hi, int64_t* out) {
    int64_t v;
    if (!n.IsScalar() || !absl::SimpleAtoi(n.Scalar(), &v)) {
      Add(n, path, absl::StrCat(Quote(n), " is not a whole number"));
      return false;
    }
    if (v < lo || v > hi) {
      Add(n, path, absl::StrCat(v, " is out of range (", lo, "..", hi, ")"));
      return false;
    }
    *out = v;
    return true;
  }
  bool Bool(const YAML::Node& n, const std::string& path, bool* out) {
    if (n.IsScalar() && (n.Scalar() == "true" || n.Scalar() == "false")) {
      *out = n.Scalar() == "true";
      return true;
    }
    Add(n, path, absl::StrCat(Quote(n), " is not true or false"));
    return false;
  }
  bool Duration(const YAML::Node& n, const std::string& path, int64_t* out) {
    if (!n.IsScalar()) {
      Add(n, path, "must be a duration such as 500ms or 2s");
      return false;
    }
    absl::StatusOr<int64_t> d = fault::run::ParseProxyDuration(n.Scalar());
    if (!d.ok()) {
      Add(n, path, std::string(d.status().message()));
      return false;
    }
    if (*d <= 0) {
      Add(n, path, "must be above 0");
      return false;
    }
    *out = *d;
    return true;
  }
  static std::string Quote(const YAML::Node& n) {
    return n.IsScalar() ? absl::StrCat("\"", n.Scalar(), "\"") : std::string("this value");
  }

  void Errors(const YAML::Node& n, const std::string& path, ErrorClasses* out) {
    if (!n.IsSequence()) {
      Add(n, path, "must be a list of transport, timeout, watchdog, 5xx, 4xx");
      return;
    }
    *out = ErrorClasses{.transport = false, .timeout = false, .watchdog = false};
    for (size_t i = 0; i < n.size(); ++i) {
      const std::string s = n[i].IsScalar() ? absl::AsciiStrToLower(n[i].Scalar()) : "";
      if (s == "transport")
        out->transport = true;
      else if (s == "timeout")
        out->timeout = true;
      else if (s == "watchdog")
        out->watchdog = true;
      else if (s == "5xx")
        out->status_5xx = true;
      else if (s == "4xx")
        out->status_4xx = true;
      else
        Add(n[i], absl::StrCat(path, "[", i, "]"),
            absl::StrCat(Quote(n[i]), " is not one of transport, timeout, watchdog, 5xx, 4xx"));
    }
  }

  Call ParseCall(const YAML::Node& n, const std::string& path, const YAML::Node& config);
  Fault ParseFault(const YAML::Node& n, const std::string& path);
  Strategy ParseStrategy(const YAML::Node& n, const std::string& path);
  Slo ParseSlo(const YAML::Node& n, const std::string& path);
  Item ParseItem(const YAML::Node& n, const std::string& path, const YAML::Node& config);
  std::optional<Scenario> ParseScenario(const YAML::Node& n);

 private:
  std::string file_;
  std::vector<std::string> problems_;
};

Call Parser::ParseCall(const YAML::Node& n, const std::string& path, const YAML::Node& config) {
  Call c;
  if (!Map(n, path, {"method", "url", "headers", "body", "timeout", "meta"})) return c;
  if (!n["method"])
    Add(n, path, "needs method");
  else if (Str(n["method"], path + ".method", &c.method)) {
    c.method = absl::AsciiStrToUpper(c.method);
    if (c.method.empty() || !std::all_of(c.method.begin(), c.method.end(),
                                         [](char ch) { return ch >= 'A' && ch <= 'Z'; }))
      Add(n["method"], path + ".method",
          absl::StrCat(Quote(n["method"]), " is not an HTTP method"));
  }
  if (!n["url"]) {
    Add(n, path, "needs url");
  } else if (Str(n["url"], path + ".url", &c.url)) {
    // {name} placeholders from config.http.paths.segments.
    if (config && config["http"] && config["http"]["paths"] &&
        config["http"]["paths"]["segments"] && config["http"]["paths"]["segments"].IsMap()) {
      for (const auto& kv : config["http"]["paths"]["segments"])
        absl::StrReplaceAll({{absl::StrCat("{", kv.first.Scalar(), "}"), kv.second.Scalar()}},
                            &c.url);
    }
    if (!absl::StartsWith(c.url, "http://") && !absl::StartsWith(c.url, "https://"))
      Add(n["url"], path + ".url",
          absl::StrCat(Quote(n["url"]), " is not an http:// or https:// URL"));
    else if (c.url.find('{') != std::string::npos)
      Add(n["url"], path + ".url",
          absl::StrCat(c.url, " has a placeholder that config.http.paths.segments does not set"));
  }
  if (config && config["http"] && config["http"]["headers"] && config["http"]["headers"].IsMap())
    for (const auto& kv : config["http"]["headers"])
      c.headers[kv.first.Scalar()] = kv.second.Scalar();
  if (const YAML::Node h = n["headers"]) {
    if (!h.IsMap())
      Add(h, path + ".headers", "must be a mapping of names to values");
    else
      for (const auto& kv : h) {
        if (!kv.second.IsScalar())
          Add(kv.second, path + ".headers." + kv.first.Scalar(), "must be a string");
        else
          c.headers[kv.first.Scalar()] = kv.second.Scalar();
      }
  }
  if (const YAML::Node b = n["body"]) {
    std::string s;
    if (Str(b, path + ".body", &s)) c.body = s;
  }
  if (const YAML::Node t = n["timeout"]) {
    int64_t v;
    if (Int(t, path + ".timeout", 1, 86'400'000, &v)) c.timeout_ms = v;
  }
  if (const YAML::Node m = n["meta"]) {
    if (Map(m, path + ".meta", {"operation_id"}) && m["operation_id"]) {
      std::string s;
      if (Str(m["operation_id"], path + ".meta.operation_id", &s)) c.operation_id = s;
    }
  }
  return c;
}

Fault Parser::ParseFault(const YAML::Node& n, const std::string& path) {
  Fault f;
  f.where = At(n);
  if (!n.IsMap()) {
    Add(n, path, "must be a mapping with a type");
    return f;
  }
  f.json = ToJson(n);
  static const std::map<std::string, std::set<std::string>> kFields = {
      {"latency",
       {"distribution", "global", "side", "mean", "stddev", "min", "max", "shape", "scale",
        "direction"}},
      {"packetloss", {"direction", "side"}},
      {"bandwidth", {"rate", "unit", "direction", "side"}},
      {"jitter", {"amplitude", "frequency", "direction", "side"}},
      {"dns", {"rate"}},
      {"httperror", {"status_code", "body", "probability"}},
      {"blackhole", {"direction", "side"}},
  };
  static const std::map<std::string, std::vector<std::string>> kRequired = {
      {"bandwidth", {"rate", "unit"}},
      {"jitter", {"amplitude", "frequency"}},
      {"dns", {"rate"}},
      {"httperror", {"status_code", "probability"}},
  };
  if (!n["type"] || !n["type"].IsScalar()) {
    Add(n, path,
        "needs a type (latency, packetloss, bandwidth, jitter, dns, httperror, blackhole)");
    return f;
  }
  f.type = absl::AsciiStrToLower(n["type"].Scalar());
  auto it = kFields.find(f.type);
  if (it == kFields.end()) {
    Add(n["type"], path + ".type",
        absl::StrCat(Quote(n["type"]),
                     " is not a fault type (latency, packetloss, bandwidth, jitter, dns, "
                     "httperror, blackhole)"));
    f.type.clear();
    return f;
  }
  std::set<std::string> allowed = it->second;
  allowed.insert("type");
  allowed.insert("period");
  if (!Map(n, path, allowed)) return f;
  for (const auto& kv : n) {
    const std::string key = kv.first.Scalar();
    if (key == "type" || !allowed.count(key)) continue;
    if (!kv.second.IsScalar()) {
      Add(kv.second, Join(path, key), "must be a single value");
      continue;
    }
    if (key == "period")
      f.period = kv.second.Scalar();
    else
      f.values[key] = kv.second.Scalar();
  }
  if (auto r = kRequired.find(f.type); r != kRequired.end())
    for (const std::string& k : r->second)
      if (!n[k]) Add(n, path, absl::StrCat("a ", f.type, " fault needs ", k));
  return f;
}

Strategy Parser::ParseStrategy(const YAML::Node& n, const std::string& path) {
  Strategy s;
  s.where = At(n);
  if (!n.IsMap()) {
    Add(n, path, "must be a mapping with a mode");
    return s;
  }
  if (!n["mode"] || !n["mode"].IsScalar()) {
    Add(n, path, "needs a mode (single, repeat or load)");
    return s;
  }
  const std::string mode = absl::AsciiStrToLower(n["mode"].Scalar());
  std::set<std::string> allowed = {"mode", "retry", "failure_budget", "watchdog"};
  if (mode == "single") {
    s.mode = Strategy::Mode::kSingle;
  } else if (mode == "repeat") {
    s.mode = Strategy::Mode::kRepeat;
    allowed.insert({"step", "count", "failfast", "wait", "add_baseline_call"});
  } else if (mode == "load") {
    s.mode = Strategy::Mode::kLoad;
    allowed.insert({"duration", "clients", "rps", "connections"});
  } else {
    Add(n["mode"], path + ".mode",
        absl::StrCat(Quote(n["mode"]), " is not a mode (single, repeat or load)"));
    return s;
  }
  Map(n, path, allowed);
  if (s.mode == Strategy::Mode::kRepeat) {
    if (!n["step"])
      Add(n, path, "repeat needs step (ms added to the latency mean per call)");
    else if (Num(n["step"], path + ".step", &s.step_ms) && s.step_ms < 0)
      Add(n["step"], path + ".step", "must not be negative");
    if (!n["count"])
      Add(n, path, "repeat needs count");
    else
      Int(n["count"], path + ".count", 1, 100'000, &s.count);
    if (n["failfast"]) Bool(n["failfast"], path + ".failfast", &s.failfast);
    if (n["wait"] && Num(n["wait"], path + ".wait", &s.wait_ms) && s.wait_ms < 0)
      Add(n["wait"], path + ".wait", "must not be negative");
    if (n["add_baseline_call"])
      Bool(n["add_baseline_call"], path + ".add_baseline_call", &s.add_baseline_call);
  }
  if (s.mode == Strategy::Mode::kLoad) {
    if (!n["duration"])
      Add(n, path, "load needs duration (e.g. 10s)");
    else if (Str(n["duration"], path + ".duration", &s.duration_text))
      Duration(n["duration"], path + ".duration", &s.duration_ns);
    if (!n["clients"])
      Add(n, path, "load needs clients");
    else
      Int(n["clients"], path + ".clients", 1, 10'000, &s.clients);
    if (!n["rps"])
      Add(n, path, "load needs rps (requests per second per client)");
    else
      Int(n["rps"], path + ".rps", 1, 1'000'000, &s.rps);
    if (n["connections"]) Int(n["connections"], path + ".connections", 1, 100'000, &s.connections);
  }
  if (const YAML::Node r = n["retry"]) {
    const std::string p = path + ".retry";
    s.retry.enabled = true;
    if (Map(r, p, {"attempts", "backoff", "max_backoff", "jitter", "budget", "budget_min", "on"})) {
      if (r["attempts"]) {
        int64_t v;
        if (Int(r["attempts"], p + ".attempts", 2, 100, &v)) s.retry.attempts = static_cast<int>(v);
      }
      if (r["backoff"]) Duration(r["backoff"], p + ".backoff", &s.retry.backoff_ns);
      if (r["max_backoff"]) Duration(r["max_backoff"], p + ".max_backoff", &s.retry.max_backoff_ns);
      if (r["jitter"]) Bool(r["jitter"], p + ".jitter", &s.retry.jitter);
      if (r["budget"] && Num(r["budget"], p + ".budget", &s.retry.budget) &&
          (s.retry.budget < 0 || s.retry.budget > 100))
        Add(r["budget"], p + ".budget", "must be a ratio of retries to requests, 0..100");
      if (r["budget_min"])
        Int(r["budget_min"], p + ".budget_min", 0, 1'000'000, &s.retry.budget_min);
      if (r["on"]) Errors(r["on"], p + ".on", &s.retry.on);
    }
  }
  if (const YAML::Node b = n["failure_budget"]) {
    const std::string p = path + ".failure_budget";
    s.failure_budget.enabled = true;
    if (Map(b, p, {"max_failures", "max_rate", "min_requests", "errors"})) {
      if (b["max_failures"])
        Int(b["max_failures"], p + ".max_failures", 0, INT64_MAX, &s.failure_budget.max_failures);
      if (b["max_rate"] && Num(b["max_rate"], p + ".max_rate", &s.failure_budget.max_rate) &&
          (s.failure_budget.max_rate < 0 || s.failure_budget.max_rate >= 1))
        Add(b["max_rate"], p + ".max_rate", "must be a fraction of requests, 0 to below 1");
      if (b["min_requests"])
        Int(b["min_requests"], p + ".min_requests", 1, INT64_MAX, &s.failure_budget.min_requests);
      if (b["errors"]) Errors(b["errors"], p + ".errors", &s.failure_budget.errors);
      if (!b["max_failures"] && !b["max_rate"]) Add(b, p, "needs max_failures or max_rate");
    }
  }
  if (const YAML::Node w = n["watchdog"]) {
    const std::string p = path + ".watchdog";
    s.watchdog.enabled = true;
    if (Map(w, p, {"max_stall"})) {
      if (!w["max_stall"])
        Add(w, p, "needs max_stall (e.g. 2s)");
      else
        Duration(w["max_stall"], p + ".max_stall", &s.watchdog.max_stall_ns);
    }
  }
  return s;
}

Slo Parser::ParseSlo(const YAML::Node& n, const std::string& path) {
  Slo s;
  s.where = At(n);
  if (!Map(n, path, {"slo_type", "type", "title", "objective", "threshold", "errors"})) return s;
  const YAML::Node t = n["slo_type"] ? n["slo_type"] : n["type"];
  if (!t)
    Add(n, path, "needs slo_type (latency or error)");
  else if (t.IsScalar() && absl::AsciiStrToLower(t.Scalar()) == "latency")
    s.type = Slo::Type::kLatency;
  else if (t.IsScalar() && absl::AsciiStrToLower(t.Scalar()) == "error")
    s.type = Slo::Type::kError;
  else
    Add(t, path + ".slo_type", absl::StrCat(Quote(t), " is not latency or error"));
  if (!n["title"])
    Add(n, path, "needs title");
  else
    Str(n["title"], path + ".title", &s.title);
  if (!n["objective"])
    Add(n, path, "needs objective");
  else if (Num(n["objective"], path + ".objective", &s.objective) &&
           (s.objective < 0 || s.objective > 100))
    Add(n["objective"], path + ".objective", "must be a percentile, 0..100");
  if (!n["threshold"])
    Add(n, path, "needs threshold");
  else if (Num(n["threshold"], path + ".threshold", &s.threshold) && s.threshold < 0)
    Add(n["threshold"], path + ".threshold", "must not be negative");
  if (n["errors"]) {
    if (s.type != Slo::Type::kError)
      Add(n["errors"], path + ".errors", "only error SLOs count errors");
    Errors(n["errors"], path + ".errors", &s.errors);
  }
  return s;
}

Item Parser::ParseItem(const YAML::Node& n, const std::string& path, const YAML::Node& config) {
  Item item;
  item.where = At(n);
  if (!Map(n, path, {"call", "context", "expect"})) return item;
  item.json = ToJson(n);
  if (!n["call"])
    Add(n, path, "needs call");
  else
    item.call = ParseCall(n["call"], path + ".call", config);
  const YAML::Node ctx = n["context"];
  const std::string cp = path + ".context";
  if (!ctx) {
    Add(n, path, "needs context (with upstreams and faults, which may be [])");
  } else if (Map(ctx, cp, {"upstreams", "faults", "strategy", "slo", "proxy", "runs_on"})) {
    if (!ctx["upstreams"])
      Add(ctx, cp, "needs upstreams (may be [])");
    else if (!ctx["upstreams"].IsSequence())
      Add(ctx["upstreams"], cp + ".upstreams", "must be a list");
    else
      for (size_t i = 0; i < ctx["upstreams"].size(); ++i) {
        const YAML::Node u = ctx["upstreams"][i];
        const std::string up = absl::StrCat(cp, ".upstreams[", i, "]");
        std::string s;
        if (!Str(u, up, &s)) continue;
        absl::StatusOr<std::string> norm = fault::run::NormalizeUpstream(s);
        if (!norm.ok())
          Add(u, up, std::string(norm.status().message()));
        else {
          item.upstreams.push_back(*norm);
          item.upstreams_as_written.push_back(s);
        }
      }
    if (!ctx["faults"])
      Add(ctx, cp, "needs faults (may be [])");
    else if (!ctx["faults"].IsSequence())
      Add(ctx["faults"], cp + ".faults", "must be a list");
    else
      for (size_t i = 0; i < ctx["faults"].size(); ++i)
        item.faults.push_back(ParseFault(ctx["faults"][i], absl::StrCat(cp, ".faults[", i, "]")));
    if (ctx["strategy"] && !ctx["strategy"].IsNull()) {
      item.has_strategy = true;
      item.strategy = ParseStrategy(ctx["strategy"], cp + ".strategy");
    }
    if (const YAML::Node slo = ctx["slo"]) {
      if (!slo.IsSequence())
        Add(slo, cp + ".slo", "must be a list");
      else
        for (size_t i = 0; i < slo.size(); ++i)
          item.slos.push_back(ParseSlo(slo[i], absl::StrCat(cp, ".slo[", i, "]")));
    }
    if (const YAML::Node p = ctx["proxy"]) {
      if (Map(p, cp + ".proxy", {"disable_http_proxies", "proxies"})) {
        if (p["disable_http_proxies"])
          Bool(p["disable_http_proxies"], cp + ".proxy.disable_http_proxies",
               &item.disable_http_proxy);
        if (const YAML::Node l = p["proxies"]) {
          if (!l.IsSequence())
            Add(l, cp + ".proxy.proxies", "must be a list of mappings");
          else
            for (size_t i = 0; i < l.size(); ++i) {
              std::string s;
              const std::string mp = absl::StrCat(cp, ".proxy.proxies[", i, "]");
              if (!Str(l[i], mp, &s)) continue;
              absl::StatusOr<fault::run::Mapping> m = fault::run::ParseMapping(s);
              if (!m.ok())
                Add(l[i], mp, std::string(m.status().message()));
              else if (m->listen.port == 0)
                Add(l[i], mp, "give the mapping's port");
              else
                item.mappings.push_back(s);
            }
        }
      }
    }
    if (ctx["runs_on"])
      Add(ctx["runs_on"], cp + ".runs_on",
          "not supported: run the scenario where the service runs, and point the call at it");
  }
  if (const YAML::Node e = n["expect"]) {
    item.has_expect = true;
    const std::string ep = path + ".expect";
    if (Map(e, ep, {"status", "response_time_under", "all_slo_are_valid"})) {
      int64_t v;
      if (e["status"] && Int(e["status"], ep + ".status", 100, 599, &v)) item.expect.status = v;
      double d;
      if (e["response_time_under"] &&
          Num(e["response_time_under"], ep + ".response_time_under", &d))
        item.expect.response_time_under_ms = d;
      bool b;
      if (e["all_slo_are_valid"] && Bool(e["all_slo_are_valid"], ep + ".all_slo_are_valid", &b))
        item.expect.all_slo_are_valid = b;
    }
  }
  if (item.disable_http_proxy && item.mappings.empty())
    Add(n, cp + ".proxy", "disable_http_proxies leaves nothing to fault: add proxies mappings");
  // The faults' values, as `fault run` would check them.
  if (std::all_of(item.faults.begin(), item.faults.end(),
                  [](const Fault& f) { return !f.type.empty(); })) {
    const int64_t duration =
        item.strategy.mode == Strategy::Mode::kLoad && item.strategy.duration_ns > 0
            ? item.strategy.duration_ns
            : 0;
    std::vector<std::string> fault_problems = CheckItemFaults(item, duration);
    for (std::string& p : fault_problems) problems_.push_back(std::move(p));
    // Without a load a period is ignored, but it must still be one.
    if (duration == 0) {
      for (size_t i = 0; i < item.faults.size(); ++i) {
        const Fault& f = item.faults[i];
        if (f.period.empty()) continue;
        absl::StatusOr<fault::v1::Schedule> s =
            fault::run::ParseProxySchedule(f.period, 86'400'000'000'000);
        if (!s.ok())
          problems_.push_back(
              absl::StrCat(f.where.ToString(), ": faults[", i, "].period: ", s.status().message()));
      }
    }
  }
  return item;
}

std::optional<Scenario> Parser::ParseScenario(const YAML::Node& n) {
  Scenario s;
  s.where = At(n);
  if (!Map(n, "", {"title", "description", "items", "config"})) return std::nullopt;
  s.json = ToJson(n);
  if (!n["title"])
    Add(n, "title", "a scenario needs a title");
  else
    Str(n["title"], "title", &s.title);
  if (n["description"] && !n["description"].IsNull()) {
    std::string d;
    if (Str(n["description"], "description", &d)) s.description = d;
  }
  const YAML::Node config = n["config"];
  if (config) {
    if (Map(config, "config", {"http"}) && config["http"]) {
      const YAML::Node h = config["http"];
      if (Map(h, "config.http", {"headers", "paths"}) && h["paths"])
        Map(h["paths"], "config.http.paths", {"segments"});
    }
  }
  if (!n["items"]) {
    Add(n, "items",
        n["scenarios"] ? "a scenario lists its calls under items (scenarios: is the old schema)"
                       : "a scenario needs items");
  } else if (!n["items"].IsSequence()) {
    Add(n["items"], "items", "must be a list");
  } else {
    for (size_t i = 0; i < n["items"].size(); ++i)
      s.items.push_back(ParseItem(n["items"][i], absl::StrCat("items[", i, "]"), config));
    if (s.items.empty()) Add(n["items"], "items", "is empty");
  }
  return s;
}

}  // namespace

absl::StatusOr<std::vector<Scenario>> ParseScenarios(const std::string& text,
                                                     const std::string& file) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(file, ":", e.mark.line + 1, ": ", e.msg));
  }
  Parser parser(file);
  std::vector<Scenario> out;
  for (const YAML::Node& d : docs) {
    if (d.IsNull()) continue;
    try {
      std::optional<Scenario> s = parser.ParseScenario(d);
      if (s.has_value()) out.push_back(std::move(*s));
    } catch (const YAML::Exception& e) {
      parser.problems().push_back(absl::StrCat(file, ":", e.mark.line + 1, ": ", e.msg));
    }
  }
  if (out.empty() && parser.problems().empty())
    parser.problems().push_back(absl::StrCat(file, ": holds no scenario"));
  if (!parser.problems().empty())
    return absl::InvalidArgumentError(absl::StrJoin(parser.problems(), "\n"));
  return out;
}

absl::StatusOr<std::vector<Scenario>> LoadScenarios(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<std::string> files;
  if (fs::is_directory(path, ec)) {
    for (fs::recursive_directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string ext = it->path().extension().string();
      if (it->is_regular_file() && (ext == ".yaml" || ext == ".yml"))
        files.push_back(it->path().string());
    }
    if (ec) return absl::InvalidArgumentError(absl::StrCat(path, ": ", ec.message()));
    std::sort(files.begin(), files.end());
    if (files.empty())
      return absl::InvalidArgumentError(absl::StrCat(path, ": no *.yaml or *.yml file in it"));
  } else {
    files.push_back(path);
  }
  std::vector<Scenario> all;
  std::vector<std::string> problems;
  for (const std::string& f : files) {
    absl::StatusOr<std::string> text =
        fault::cli::ReadInputFile(f, fault::cli::kMaxScriptBytes, "scenario files");
    if (!text.ok()) {
      problems.push_back(std::string(text.status().message()));
      continue;
    }
    absl::StatusOr<std::vector<Scenario>> s = ParseScenarios(*text, f);
    if (!s.ok()) {
      problems.push_back(std::string(s.status().message()));
      continue;
    }
    for (Scenario& x : *s) all.push_back(std::move(x));
  }
  if (!problems.empty()) return absl::InvalidArgumentError(absl::StrJoin(problems, "\n"));
  return all;
}

}  // namespace fault::scenario
