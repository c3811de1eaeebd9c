// The canonical text form of policies for `fault policy show`: a policy file
// in canonical units that parses back to the same messages.
#include <yaml-cpp/yaml.h>

#include <string>

#include "supervisor/policy/loader.h"
#include "supervisor/policy/parser.h"
#include "supervisor/policy/strings.h"
#include "supervisor/policy/units.h"

namespace fault::policy {
namespace {

using fault::v1::LinkProfile;

void Key(YAML::Emitter& out, std::string_view key, const std::string& value) {
  out << YAML::Key << std::string(key) << YAML::Value << value;
}

// "both" for DIRECTION_UNSPECIFIED too: that is what it means.
const char* DirectionName(fault::v1::Direction d) {
  switch (d) {
    case fault::v1::DIRECTION_UPLINK:
      return "uplink";
    case fault::v1::DIRECTION_DOWNLINK:
      return "downlink";
    default:
      return "both";
  }
}

void EmitLatency(YAML::Emitter& out, const fault::v1::Latency& l) {
  using L = fault::v1::Latency;
  if (l.distribution() == L::DISTRIBUTION_FIXED ||
      l.distribution() == L::DISTRIBUTION_UNSPECIFIED) {
    out << YAML::Key << "latency" << YAML::Value
        << FormatDuration(l.fixed_ns());
    return;
  }
  out << YAML::Key << "latency" << YAML::Value << YAML::BeginMap;
  switch (l.distribution()) {
    case L::DISTRIBUTION_UNIFORM:
      Key(out, "distribution", "uniform");
      Key(out, "min", FormatDuration(l.min_ns()));
      Key(out, "max", FormatDuration(l.max_ns()));
      break;
    case L::DISTRIBUTION_NORMAL:
      Key(out, "distribution", "normal");
      Key(out, "mean", FormatDuration(l.mean_ns()));
      Key(out, "stddev", FormatDuration(l.stddev_ns()));
      break;
    case L::DISTRIBUTION_PARETO:
      Key(out, "distribution", "pareto");
      Key(out, "shape", Cat(l.shape()));
      Key(out, "scale", FormatDuration(l.scale_ns()));
      break;
    default:
      Key(out, "distribution", "pareto_normal");
      Key(out, "mean", FormatDuration(l.mean_ns()));
      Key(out, "stddev", FormatDuration(l.stddev_ns()));
      Key(out, "shape", Cat(l.shape()));
      Key(out, "scale", FormatDuration(l.scale_ns()));
  }
  out << YAML::EndMap;
}

void EmitLink(YAML::Emitter& out, const LinkProfile& p) {
  if (p.has_latency()) EmitLatency(out, p.latency());
  if (p.jitter_ns() != 0) Key(out, "jitter", FormatDuration(p.jitter_ns()));
  if (p.packet_loss_ppm() != 0) {
    Key(out, "packet_loss", FormatProbability(p.packet_loss_ppm()));
  }
  if (p.burst_loss() != 0) Key(out, "burst_loss", Cat(p.burst_loss()));
  if (p.has_correlated_loss()) {
    const auto& c = p.correlated_loss();
    out << YAML::Key << "correlated_loss" << YAML::Value << YAML::BeginMap;
    Key(out, "p_good_to_bad", FormatProbability(c.p_good_to_bad_ppm()));
    Key(out, "p_bad_to_good", FormatProbability(c.p_bad_to_good_ppm()));
    Key(out, "loss_good", FormatProbability(c.loss_good_ppm()));
    Key(out, "loss_bad", FormatProbability(c.loss_bad_ppm()));
    out << YAML::EndMap;
  }
  if (p.has_rate()) {
    if (p.rate().burst_bytes() == 0) {
      Key(out, "rate", FormatRate(p.rate().rate_bps()));
    } else {
      out << YAML::Key << "rate" << YAML::Value << YAML::BeginMap;
      Key(out, "rate", FormatRate(p.rate().rate_bps()));
      Key(out, "burst", FormatSize(p.rate().burst_bytes()));
      out << YAML::EndMap;
    }
  }
  if (p.has_packet_reorder()) {
    const auto& r = p.packet_reorder();
    out << YAML::Key << "packet_reorder" << YAML::Value << YAML::BeginMap;
    Key(out, "prob", FormatProbability(r.probability_ppm()));
    Key(out, "window", Cat(r.window()));
    if (r.max_delay_ns() != 0)
      Key(out, "max_delay", FormatDuration(r.max_delay_ns()));
    out << YAML::EndMap;
  }
  if (p.has_packet_duplicate()) {
    Key(out, "packet_duplicate",
        FormatProbability(p.packet_duplicate().probability_ppm()));
  }
}

void EmitTarget(YAML::Emitter& out, const fault::v1::Target& t) {
  out << YAML::BeginMap;
  const fault::v1::Protocol name_default =
      t.sni().empty() ? fault::v1::PROTOCOL_ANY : fault::v1::PROTOCOL_TCP;
  const bool by_name = !t.hostname().empty() || !t.sni().empty();
  if (!by_name || !t.cidr().empty() || t.port_min() != 0 ||
      t.protocol() != name_default) {
    Key(out, "target", internal::FormatTargetUrl(t));
  }
  if (!t.hostname().empty()) Key(out, "hostname", t.hostname());
  if (!t.sni().empty()) Key(out, "sni", t.sni());
  if (t.priority() != 0) Key(out, "priority", Cat(t.priority()));
  out << YAML::EndMap;
}

std::string IntervalText(const fault::v1::Schedule& s) {
  std::string text;
  for (const auto& iv : s.intervals()) {
    const bool pct = iv.start_ppm() != 0 || iv.duration_ppm() != 0;
    Append(
        &text, text.empty() ? "" : ";", "start:",
        pct ? FormatProbability(iv.start_ppm()) : FormatDuration(iv.start_ns()),
        ",duration:",
        pct ? FormatProbability(iv.duration_ppm())
            : FormatDuration(iv.duration_ns()));
  }
  return text;
}

void EmitSchedule(YAML::Emitter& out, const fault::v1::Schedule& s) {
  using S = fault::v1::Schedule;
  out << YAML::Key << "schedule" << YAML::Value << YAML::BeginMap;
  switch (s.kind()) {
    case S::KIND_RAMP:
      Key(out, "kind", "ramp");
      Key(out, "duration", FormatDuration(s.ramp_ns()));
      break;
    case S::KIND_SPIKE:
      Key(out, "kind", "spike");
      Key(out, "every", FormatDuration(s.every_ns()));
      Key(out, "duration", FormatDuration(s.duration_ns()));
      break;
    case S::KIND_FLAPPING:
      Key(out, "kind", "flapping");
      Key(out, "on", FormatDuration(s.on_ns()));
      Key(out, "off", FormatDuration(s.off_ns()));
      break;
    case S::KIND_INTERVALS:
      Key(out, "kind", "intervals");
      Key(out, "intervals", IntervalText(s));
      if (s.run_duration_ns() != 0) {
        Key(out, "run_duration", FormatDuration(s.run_duration_ns()));
      }
      break;
    default:
      Key(out, "kind", "always");
  }
  out << YAML::EndMap;
}

void EmitPolicy(YAML::Emitter& out, const fault::v1::Policy& p) {
  out << YAML::Key << p.name() << YAML::Value << YAML::BeginMap;
  EmitLink(out, p.link());
  for (auto [name, prof] :
       {std::pair<const char*, const LinkProfile*>{"uplink", &p.uplink()},
        {"downlink", &p.downlink()}}) {
    if (prof->ByteSizeLong() == 0) continue;
    out << YAML::Key << name << YAML::Value << YAML::BeginMap;
    EmitLink(out, *prof);
    out << YAML::EndMap;
  }
  if (p.has_timeout()) {
    out << YAML::Key << "timeout" << YAML::Value << YAML::BeginMap;
    if (p.timeout().connect_ns() != 0) {
      Key(out, "connect", FormatDuration(p.timeout().connect_ns()));
    }
    if (p.timeout().recv_ns() != 0)
      Key(out, "recv", FormatDuration(p.timeout().recv_ns()));
    out << YAML::EndMap;
  }
  if (p.has_connection_error()) {
    static constexpr const char* kKinds[] = {"", "reset", "refused",
                                             "unreachable"};
    const int k = p.connection_error().kind();
    out << YAML::Key << "connection_error" << YAML::Value << YAML::BeginMap;
    Key(out, "kind", k >= 0 && k <= 3 ? kKinds[k] : "");
    Key(out, "prob", FormatProbability(p.connection_error().probability_ppm()));
    out << YAML::EndMap;
  }
  if (p.has_half_open()) {
    const auto& h = p.half_open();
    out << YAML::Key << "half_open" << YAML::Value << YAML::BeginMap;
    Key(out, "after",
        h.after_bytes() != 0 ? FormatSize(h.after_bytes())
                             : FormatDuration(h.after_ns()));
    if (!h.error().empty()) Key(out, "error", h.error());
    out << YAML::EndMap;
  }
  if (p.blackhole()) Key(out, "blackhole", "true");
  if (p.blackhole_direction() != fault::v1::DIRECTION_UNSPECIFIED) {
    Key(out, "blackhole_direction", DirectionName(p.blackhole_direction()));
  }
  if (p.per_operation()) Key(out, "per_operation", "true");
  if (p.has_session_budget()) {
    const auto& b = p.session_budget();
    static constexpr const char* kActions[] = {"", "drop", "timeout",
                                               "connection_error"};
    out << YAML::Key << "session_budget" << YAML::Value << YAML::BeginMap;
    if (b.max_tx_bytes() != 0) Key(out, "max_tx", FormatSize(b.max_tx_bytes()));
    if (b.max_rx_bytes() != 0) Key(out, "max_rx", FormatSize(b.max_rx_bytes()));
    if (b.max_ops() != 0) Key(out, "max_ops", Cat(b.max_ops()));
    if (b.max_duration_ns() != 0)
      Key(out, "max_duration", FormatDuration(b.max_duration_ns()));
    const int a = b.action();
    Key(out, "action", a >= 0 && a <= 3 ? kActions[a] : "");
    if (b.budget_timeout_ns() != 0) {
      Key(out, "budget_timeout", FormatDuration(b.budget_timeout_ns()));
    }
    if (!b.error().empty()) Key(out, "error", b.error());
    out << YAML::EndMap;
  }
  if (p.has_payload_mutation()) {
    const auto& m = p.payload_mutation();
    static constexpr const char* kKinds[] = {"",
                                             "truncate",
                                             "corrupt_bytes",
                                             "inject_bytes",
                                             "replace_pattern",
                                             "swap_bytes"};
    out << YAML::Key << "payload_mutation" << YAML::Value << YAML::BeginMap;
    const int k = m.kind();
    Key(out, "kind", k >= 0 && k <= 5 ? kKinds[k] : "");
    if (m.every_n() != 0) {
      Key(out, "every_n", Cat(m.every_n()));
    } else {
      Key(out, "prob", FormatProbability(m.probability_ppm()));
    }
    if (m.min_size_bytes() != 0)
      Key(out, "min_size", FormatSize(m.min_size_bytes()));
    if (m.max_size_bytes() != 0)
      Key(out, "max_size", FormatSize(m.max_size_bytes()));
    Key(out, "direction", DirectionName(m.direction()));
    if (m.dry_run()) Key(out, "dry_run", "true");
    if (m.kind() == fault::v1::PayloadMutation::KIND_TRUNCATE) {
      Key(out, "truncate_to", FormatSize(m.truncate_to_bytes()));
    }
    if (m.kind() == fault::v1::PayloadMutation::KIND_CORRUPT_BYTES ||
        m.kind() == fault::v1::PayloadMutation::KIND_SWAP_BYTES) {
      Key(out, "count", Cat(m.count()));
    }
    if (m.kind() == fault::v1::PayloadMutation::KIND_INJECT_BYTES &&
        m.offset() != 0) {
      Key(out, "offset", FormatSize(m.offset()));
    }
    if (m.kind() == fault::v1::PayloadMutation::KIND_REPLACE_PATTERN) {
      Key(out, "pattern", m.pattern());
    }
    if (m.kind() == fault::v1::PayloadMutation::KIND_REPLACE_PATTERN ||
        m.kind() == fault::v1::PayloadMutation::KIND_INJECT_BYTES) {
      Key(out, "data", m.data());
    }
    out << YAML::EndMap;
  }
  if (p.has_http_error()) {
    const auto& h = p.http_error();
    out << YAML::Key << "http_error" << YAML::Value << YAML::BeginMap;
    Key(out, "status", Cat(h.status()));
    if (!h.body().empty()) Key(out, "body", h.body());
    if (h.probability_ppm() != 1'000'000) {
      Key(out, "probability", FormatProbability(h.probability_ppm()));
    }
    out << YAML::EndMap;
  }
  auto probability = [&out](uint32_t ppm) {
    if (ppm != 1'000'000) Key(out, "probability", FormatProbability(ppm));
  };
  if (p.http_faults_size() > 0) {
    out << YAML::Key << "http_faults" << YAML::Value << YAML::BeginSeq;
    for (const auto& h : p.http_faults()) {
      out << YAML::BeginMap;
      Key(out, "route", h.method().empty() ? h.path() : Cat(h.method(), " ", h.path()));
      if (h.drop()) Key(out, "drop", "true");
      if (h.status() != 0) Key(out, "status", Cat(h.status()));
      if (h.delay_ns() != 0) Key(out, "delay", FormatDuration(h.delay_ns()));
      if (!h.body().empty()) Key(out, "body", h.body());
      probability(h.probability_ppm());
      out << YAML::EndMap;
    }
    out << YAML::EndSeq;
  }
  if (p.redis_faults_size() > 0) {
    out << YAML::Key << "redis_faults" << YAML::Value << YAML::BeginSeq;
    for (const auto& r : p.redis_faults()) {
      out << YAML::BeginMap;
      if (r.commands_size() == 1) Key(out, "command", r.commands(0));
      if (r.commands_size() > 1) {
        out << YAML::Key << "command" << YAML::Value << YAML::Flow << YAML::BeginSeq;
        for (const auto& c : r.commands()) out << c;
        out << YAML::EndSeq;
      }
      if (!r.key().empty()) Key(out, "key", r.key());
      if (r.drop()) Key(out, "drop", "true");
      if (r.delay_ns() != 0) Key(out, "delay", FormatDuration(r.delay_ns()));
      if (!r.error().empty()) Key(out, "error", r.error());
      probability(r.probability_ppm());
      out << YAML::EndMap;
    }
    out << YAML::EndSeq;
  }
  if (p.postgres_faults_size() > 0) {
    out << YAML::Key << "postgres_faults" << YAML::Value << YAML::BeginSeq;
    for (const auto& g : p.postgres_faults()) {
      out << YAML::BeginMap;
      Key(out, "query", g.query());
      if (g.drop()) Key(out, "drop", "true");
      if (g.delay_ns() != 0) Key(out, "delay", FormatDuration(g.delay_ns()));
      if (!g.sqlstate().empty()) Key(out, "sqlstate", g.sqlstate());
      if (!g.message().empty()) Key(out, "message", g.message());
      probability(g.probability_ppm());
      out << YAML::EndMap;
    }
    out << YAML::EndSeq;
  }
  if (p.has_dns()) {
    out << YAML::Key << "dns" << YAML::Value << YAML::BeginMap;
    if (p.dns().delay_ns() != 0)
      Key(out, "delay", FormatDuration(p.dns().delay_ns()));
    if (p.dns().timeout_ppm() != 0)
      Key(out, "timeout", FormatProbability(p.dns().timeout_ppm()));
    if (p.dns().nxdomain_ppm() != 0) {
      Key(out, "nxdomain", FormatProbability(p.dns().nxdomain_ppm()));
    }
    out << YAML::EndMap;
  }
  if (p.syscalls_size() > 0) {
    out << YAML::Key << "syscalls" << YAML::Value << YAML::BeginSeq;
    for (const auto& r : p.syscalls()) {
      out << YAML::BeginMap << YAML::Key
          << std::string(internal::FamilyName(r.family())) << YAML::Value
          << YAML::BeginMap;
      if (r.action() == fault::v1::SyscallFault::ACTION_DELAY) {
        Key(out, "delay", FormatDuration(r.delay_ns()));
      } else {
        Key(out, "deny", r.errno_name());
      }
      if (!r.path_glob().empty()) Key(out, "path", r.path_glob());
      if (r.probability_ppm() != 1'000'000) {
        Key(out, "probability", FormatProbability(r.probability_ppm()));
      }
      if (r.has_when()) Key(out, "when", internal::FormatWhen(r.when()));
      out << YAML::EndMap << YAML::EndMap;
    }
    out << YAML::EndSeq;
  }
  if (p.partitions_size() > 0) {
    out << YAML::Key << "partition" << YAML::Value << YAML::BeginSeq;
    for (const auto& part : p.partitions()) {
      out << YAML::Flow << YAML::BeginSeq << part.a() << part.b()
          << YAML::EndSeq;
    }
    out << YAML::EndSeq;
  }
  if (p.targets_size() > 0) {
    out << YAML::Key << "targets" << YAML::Value << YAML::BeginSeq;
    for (const auto& t : p.targets()) EmitTarget(out, t);
    out << YAML::EndSeq;
  }
  if (p.has_schedule()) EmitSchedule(out, p.schedule());
  if (p.has_seed()) Key(out, "seed", Cat(p.seed()));
  out << YAML::EndMap;
}

}  // namespace

std::string FormatPolicySet(const fault::v1::PolicySet& set) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  for (const auto& p : set.policies()) EmitPolicy(out, p);
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace fault::policy
