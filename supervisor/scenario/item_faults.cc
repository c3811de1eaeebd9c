#include "supervisor/scenario/item_faults.h"

#include <cstdio>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "supervisor/run/run_config.h"

namespace fault::scenario {
namespace {

using fault::run::RunFlags;

// The flags of one fault type, with the scenario field each stands for.
struct FieldFlag {
  const char* field;
  std::string RunFlags::*flag;
  const char* flag_name;
};

const std::vector<FieldFlag>& FlagsOf(const std::string& type) {
  static const std::map<std::string, std::vector<FieldFlag>> kFlags = {
      {"latency",
       {{"distribution", &RunFlags::latency_distribution, "--latency-distribution"},
        {"side", &RunFlags::latency_side, "--latency-side"},
        {"direction", &RunFlags::latency_direction, "--latency-direction"},
        {"mean", &RunFlags::latency_mean, "--latency-mean"},
        {"stddev", &RunFlags::latency_stddev, "--latency-stddev"},
        {"min", &RunFlags::latency_min, "--latency-min"},
        {"max", &RunFlags::latency_max, "--latency-max"},
        {"shape", &RunFlags::latency_shape, "--latency-shape"},
        {"scale", &RunFlags::latency_scale, "--latency-scale"},
        {"period", &RunFlags::latency_sched, "--latency-sched"}}},
      {"packetloss",
       {{"side", &RunFlags::packet_loss_side, "--packet-loss-side"},
        {"direction", &RunFlags::packet_loss_direction, "--packet-loss-direction"},
        {"period", &RunFlags::packet_loss_sched, "--packet-loss-sched"}}},
      {"bandwidth",
       {{"rate", &RunFlags::bandwidth_rate, "--bandwidth-rate"},
        {"unit", &RunFlags::bandwidth_unit, "--bandwidth-unit"},
        {"side", &RunFlags::bandwidth_side, "--bandwidth-side"},
        {"direction", &RunFlags::bandwidth_direction, "--bandwidth-direction"},
        {"period", &RunFlags::bandwidth_sched, "--bandwidth-sched"}}},
      {"jitter",
       {{"amplitude", &RunFlags::jitter_amplitude, "--jitter-amplitude"},
        {"frequency", &RunFlags::jitter_frequency, "--jitter-frequency"},
        {"side", &RunFlags::jitter_side, "--jitter-side"},
        {"direction", &RunFlags::jitter_direction, "--jitter-direction"},
        {"period", &RunFlags::jitter_sched, "--jitter-sched"}}},
      {"dns",
       {{"rate", &RunFlags::dns_rate, "--dns-rate"},
        {"period", &RunFlags::dns_sched, "--dns-sched"}}},
      {"httperror",
       {{"status_code", &RunFlags::http_response_status, "--http-response-status"},
        {"body", &RunFlags::http_response_body, "--http-response-body"},
        {"probability", &RunFlags::http_response_trigger_probability,
         "--http-response-trigger-probability"},
        {"period", &RunFlags::http_response_sched, "--http-response-sched"}}},
      {"blackhole",
       {{"side", &RunFlags::blackhole_side, "--blackhole-side"},
        {"direction", &RunFlags::blackhole_direction, "--blackhole-direction"},
        {"period", &RunFlags::blackhole_sched, "--blackhole-sched"}}},
  };
  static const std::vector<FieldFlag> kNone;
  auto it = kFlags.find(type);
  return it == kFlags.end() ? kNone : it->second;
}

bool RunFlags::*SwitchOf(const std::string& type) {
  if (type == "latency") return &RunFlags::with_latency;
  if (type == "packetloss") return &RunFlags::with_packet_loss;
  if (type == "bandwidth") return &RunFlags::with_bandwidth;
  if (type == "jitter") return &RunFlags::with_jitter;
  if (type == "dns") return &RunFlags::with_dns;
  if (type == "httperror") return &RunFlags::with_http_response;
  return &RunFlags::with_blackhole;
}

std::string Number(double v) {
  std::string s = absl::StrFormat("%.6f", v);
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

// One fault as the policy `fault run` would make of it.
absl::StatusOr<fault::run::RunConfig> OneFault(const Fault& f, int64_t run_duration_ns,
                                               double latency_add_ms) {
  RunFlags flags;
  flags.*SwitchOf(f.type) = true;
  std::map<std::string, std::string> values = f.values;
  if (f.type == "latency") {
    // The Rust structs' defaults, for the chosen distribution's parameters.
    std::string dist = values.count("distribution") ? values["distribution"] : "normal";
    const bool normal = dist == "normal" || dist.find("normal") != std::string::npos;
    const bool uniform = dist == "uniform";
    const bool pareto = dist.find("pareto") != std::string::npos;
    if (normal && !values.count("mean")) values["mean"] = "100";
    if (normal && !values.count("stddev")) values["stddev"] = "20";
    if (uniform && !values.count("min")) values["min"] = "20";
    if (uniform && !values.count("max")) values["max"] = "20";
    if (pareto && !values.count("shape")) values["shape"] = "20";
    if (pareto && !values.count("scale")) values["scale"] = "20";
    if (latency_add_ms != 0 && values.count("mean")) {
      double m = 0;
      if (absl::SimpleAtod(values["mean"], &m)) values["mean"] = Number(m + latency_add_ms);
    }
    if (values.count("global")) {
      const std::string& g = values["global"];
      if (g != "true" && g != "false")
        return absl::InvalidArgumentError(absl::StrCat("global: \"", g, "\" is not true or false"));
      flags.latency_per_read_write = g == "false";
      values.erase("global");
    }
  }
  if (!f.period.empty() && run_duration_ns > 0) values["period"] = f.period;
  for (const auto& [field, value] : values) {
    bool known = false;
    for (const FieldFlag& ff : FlagsOf(f.type)) {
      if (field == ff.field) {
        flags.*(ff.flag) = value;
        known = true;
      }
    }
    if (!known) return absl::InvalidArgumentError(absl::StrCat(field, ": not a field of ", f.type));
  }
  if (run_duration_ns > 0) flags.duration = absl::StrCat(run_duration_ns / 1e9, "s");
  absl::StatusOr<fault::run::RunConfig> config =
      fault::run::BuildRunConfig(flags, [](const char*) -> const char* { return nullptr; });
  if (!config.ok()) {
    // The problems name flags; the file names fields.
    std::vector<std::pair<std::string, std::string>> rename;
    for (const FieldFlag& ff : FlagsOf(f.type)) rename.emplace_back(ff.flag_name, ff.field);
    rename.emplace_back("--latency-per-read-write", "global");
    rename.emplace_back("--duration", "strategy.duration");
    std::string msg(config.status().message());
    for (const auto& [from, to] : rename) absl::StrReplaceAll({{from, to}}, &msg);
    absl::StrReplaceAll({{"--with-", "type "}}, &msg);
    return absl::InvalidArgumentError(msg);
  }
  return config;
}

}  // namespace

absl::StatusOr<ItemFaults> BuildItemFaults(const Item& item, int64_t run_duration_ns,
                                           double latency_add_ms) {
  ItemFaults out;
  std::map<std::string, int> seen;
  std::vector<std::string> problems;
  for (size_t i = 0; i < item.faults.size(); ++i) {
    const Fault& f = item.faults[i];
    absl::StatusOr<fault::run::RunConfig> c = OneFault(f, run_duration_ns, latency_add_ms);
    if (!c.ok()) {
      for (absl::string_view line : absl::StrSplit(c.status().message(), '\n'))
        problems.push_back(absl::StrCat(f.where.ToString(), ": faults[", i, "].", line));
      continue;
    }
    for (fault::v1::Policy p : c->policies.policies()) {
      const std::string base = p.name();
      const int n = ++seen[f.type];
      const std::string name = n == 1 ? f.type : absl::StrCat(f.type, "-", n);
      p.set_name(name);
      if (auto b = c->http_bodies.find(base); b != c->http_bodies.end())
        out.http_bodies[name] = b->second;
      ItemFaults::Window w{name, f.type, 0, run_duration_ns};
      if (p.has_schedule() && run_duration_ns > 0) {
        for (const fault::v1::Interval& iv : p.schedule().intervals()) {
          w.start_ns = iv.start_ns() != 0
                           ? iv.start_ns()
                           : static_cast<int64_t>(static_cast<__int128>(iv.start_ppm()) *
                                                  run_duration_ns / 1'000'000);
          int64_t d = iv.duration_ns() != 0
                          ? iv.duration_ns()
                          : static_cast<int64_t>(static_cast<__int128>(iv.duration_ppm()) *
                                                 run_duration_ns / 1'000'000);
          w.end_ns = d > 0 ? std::min(run_duration_ns, w.start_ns + d) : run_duration_ns;
          out.windows.push_back(w);
        }
      } else {
        out.windows.push_back(w);
      }
      out.names.push_back(name);
      *out.policies.add_policies() = std::move(p);
    }
  }
  if (!problems.empty()) return absl::InvalidArgumentError(absl::StrJoin(problems, "\n"));
  return out;
}

std::vector<std::string> CheckItemFaults(const Item& item, int64_t run_duration_ns) {
  absl::StatusOr<ItemFaults> f = BuildItemFaults(item, run_duration_ns, 0);
  if (f.ok()) return {};
  return absl::StrSplit(f.status().message(), '\n');
}

}  // namespace fault::scenario
