#include "supervisor/exec/table_compiler.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "supervisor/policy/units.h"

namespace fault::exec {
namespace {

using fault::v1::Policy;

// Prefix of every message about one policy.
std::string Where(const Policy& p) { return absl::StrCat("policy \"", p.name(), "\": "); }

absl::Status Invalid(const Policy& p, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(Where(p), what));
}

// Copies `s` into a fixed char array, refusing what would not fit with its
// terminating NUL.
template <size_t N>
absl::Status CopyBounded(const Policy& p, absl::string_view field,
                         absl::string_view s, char (&out)[N]) {
  if (s.size() >= N) {
    return Invalid(p, absl::StrCat(field, " \"", s, "\" is ", s.size(),
                                   " bytes long; the table holds at most ",
                                   N - 1));
  }
  std::memset(out, 0, N);
  std::memcpy(out, s.data(), s.size());
  return absl::OkStatus();
}

uint8_t TableProtocol(fault::v1::Protocol p) {
  switch (p) {
    case fault::v1::PROTOCOL_TCP:
      return FAULT_PROTO_TCP;
    case fault::v1::PROTOCOL_UDP:
      return FAULT_PROTO_UDP;
    default:
      return FAULT_PROTO_ANY;
  }
}

absl::Status ParseCidr(const Policy& p, absl::string_view field,
                       absl::string_view text, fault_target& t) {
  absl::string_view addr = text;
  std::optional<int> prefix;
  if (size_t slash = text.find('/'); slash != absl::string_view::npos) {
    addr = text.substr(0, slash);
    int n = 0;
    if (!absl::SimpleAtoi(text.substr(slash + 1), &n)) {
      return Invalid(p, absl::StrCat(field, ": \"", text,
                                     "\" has no numeric prefix length"));
    }
    prefix = n;
  }
  std::string host(addr);
  if (!host.empty() && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  std::memset(t.addr, 0, sizeof(t.addr));
  int max_prefix;
  if (inet_pton(AF_INET, host.c_str(), t.addr) == 1) {
    t.family = AF_INET;
    max_prefix = 32;
  } else if (inet_pton(AF_INET6, host.c_str(), t.addr) == 1) {
    t.family = AF_INET6;
    max_prefix = 128;
  } else {
    return Invalid(p, absl::StrCat(field, ": \"", text,
                                   "\" is not an IPv4 or IPv6 address"));
  }
  int len = prefix.value_or(max_prefix);
  if (len < 0 || len > max_prefix) {
    return Invalid(p, absl::StrCat(field, ": prefix length ", len, " in \"",
                                   text, "\" is out of range 0..", max_prefix));
  }
  t.prefix_len = static_cast<uint8_t>(len);
  // Clear the host bits so readers can compare masked addresses directly.
  for (int bit = len; bit < max_prefix; ++bit) {
    t.addr[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
  }
  return absl::OkStatus();
}

absl::Status CompileTarget(const Policy& p, int index,
                           const fault::v1::Target& in, fault_target& t) {
  std::string field = absl::StrCat("targets[", index, "]");
  std::memset(&t, 0, sizeof(t));
  t.protocol = TableProtocol(in.protocol());
  t.priority = in.priority();
  int address_parts = !in.cidr().empty() + !in.hostname().empty() + !in.sni().empty();
  if (address_parts > 1) {
    return Invalid(p, absl::StrCat(field,
                                   ": cidr, hostname and sni are exclusive"));
  }
  if (!in.cidr().empty()) {
    t.kind = FAULT_TARGET_CIDR;
    if (absl::Status s = ParseCidr(p, field, in.cidr(), t); !s.ok()) return s;
  } else if (!in.hostname().empty()) {
    t.kind = FAULT_TARGET_HOSTNAME;
    if (absl::Status s = CopyBounded(p, field + ".hostname", in.hostname(), t.name);
        !s.ok()) {
      return s;
    }
  } else if (!in.sni().empty()) {
    t.kind = FAULT_TARGET_SNI;
    if (absl::Status s = CopyBounded(p, field + ".sni", in.sni(), t.name); !s.ok()) {
      return s;
    }
  } else {
    t.kind = FAULT_TARGET_ANY;
  }
  uint32_t lo = in.port_min(), hi = in.port_max();
  if (hi == 0) hi = lo;
  if (lo > 65535 || hi > 65535) {
    return Invalid(p, absl::StrCat(field, ": port ", lo > 65535 ? lo : hi,
                                   " is out of range 1..65535"));
  }
  if (lo > hi) {
    return Invalid(p, absl::StrCat(field, ": port range ", lo, "-", hi,
                                   " is empty (min > max)"));
  }
  t.port_min = static_cast<uint16_t>(lo);
  t.port_max = static_cast<uint16_t>(hi);
  return absl::OkStatus();
}

absl::StatusOr<int> ErrnoOrError(const Policy& p, absl::string_view field,
                                 absl::string_view name) {
  absl::StatusOr<int> err = fault::policy::ErrnoFromName(std::string_view(name.data(), name.size()));
  if (!err.ok()) {
    return Invalid(p, absl::StrCat(field, ": ", err.status().message()));
  }
  return *err;
}

void ApplyLatency(const fault::v1::Latency& l, fault_link& out) {
  out.distribution = static_cast<uint8_t>(l.distribution());
  if (out.distribution == FAULT_DIST_NONE && l.fixed_ns() != 0) {
    out.distribution = FAULT_DIST_FIXED;
  }
  out.fixed_ns = l.fixed_ns();
  out.min_ns = l.min_ns();
  out.max_ns = l.max_ns();
  out.mean_ns = l.mean_ns();
  out.stddev_ns = l.stddev_ns();
  out.shape = l.shape();
  out.scale_ns = l.scale_ns();
}

// Applies the fields `profile` sets on top of `out`: scalars when non-zero,
// sub-messages when present (a sub-message replaces the whole sub-record).
void ApplyProfile(const fault::v1::LinkProfile& profile, fault_link& out) {
  if (profile.has_latency()) ApplyLatency(profile.latency(), out);
  if (profile.jitter_ns() != 0) out.jitter_ns = profile.jitter_ns();
  if (profile.packet_loss_ppm() != 0) out.loss_ppm = profile.packet_loss_ppm();
  if (profile.burst_loss() != 0) out.burst_loss = profile.burst_loss();
  if (profile.has_correlated_loss()) {
    const auto& ge = profile.correlated_loss();
    out.ge_p_good_to_bad_ppm = ge.p_good_to_bad_ppm();
    out.ge_p_bad_to_good_ppm = ge.p_bad_to_good_ppm();
    out.ge_loss_good_ppm = ge.loss_good_ppm();
    out.ge_loss_bad_ppm = ge.loss_bad_ppm();
  }
  if (profile.has_rate()) {
    out.rate_bps = profile.rate().rate_bps();
    out.rate_burst_bytes = profile.rate().burst_bytes();
  }
  if (profile.has_packet_reorder()) {
    out.reorder_ppm = profile.packet_reorder().probability_ppm();
    out.reorder_window = profile.packet_reorder().window();
    out.reorder_max_delay_ns = profile.packet_reorder().max_delay_ns();
  }
  if (profile.has_packet_duplicate()) {
    out.duplicate_ppm = profile.packet_duplicate().probability_ppm();
  }
}

absl::Status CheckPpm(const Policy& p, absl::string_view field, uint32_t ppm) {
  if (ppm > 1000000) {
    return Invalid(p, absl::StrCat(field, ": ", ppm,
                                   "ppm is more than 100% (1000000ppm)"));
  }
  return absl::OkStatus();
}

absl::Status FinishLink(const Policy& p, absl::string_view dir, fault_link& l) {
  for (auto [name, ppm] : {std::pair<const char*, uint32_t>{"packet_loss", l.loss_ppm},
                           {"correlated_loss.p_good_to_bad", l.ge_p_good_to_bad_ppm},
                           {"correlated_loss.p_bad_to_good", l.ge_p_bad_to_good_ppm},
                           {"correlated_loss.loss_good", l.ge_loss_good_ppm},
                           {"correlated_loss.loss_bad", l.ge_loss_bad_ppm},
                           {"packet_reorder.probability", l.reorder_ppm},
                           {"packet_duplicate.probability", l.duplicate_ppm}}) {
    if (absl::Status s = CheckPpm(p, absl::StrCat(dir, ".", name), ppm); !s.ok()) {
      return s;
    }
  }
  // The proto's documented default burst: one 10 ms quantum, >= one MTU.
  if (l.rate_bps != 0 && l.rate_burst_bytes == 0) {
    l.rate_burst_bytes = l.rate_bps / 8 / 100;
    if (l.rate_burst_bytes < 1500) l.rate_burst_bytes = 1500;
  }
  return absl::OkStatus();
}

absl::Status CompileSchedule(const Policy& p, const CompileOptions& options,
                             fault_schedule& s) {
  const fault::v1::Schedule& in = p.schedule();
  std::memset(&s, 0, sizeof(s));
  s.kind = static_cast<uint32_t>(in.kind());
  s.every_ns = in.every_ns();
  s.duration_ns = in.duration_ns();
  s.ramp_ns = in.ramp_ns();
  s.on_ns = in.on_ns();
  s.off_ns = in.off_ns();
  if (in.intervals_size() > FAULT_MAX_INTERVALS) {
    return Invalid(p, absl::StrCat("schedule has ", in.intervals_size(),
                                   " intervals; the table holds at most ",
                                   FAULT_MAX_INTERVALS, " (FAULT_MAX_INTERVALS)"));
  }
  int64_t run = in.run_duration_ns() != 0 ? in.run_duration_ns()
                                          : options.run_duration_ns;
  bool any_ppm = false, any_abs = false;
  for (const auto& iv : in.intervals()) {
    if (iv.start_ppm() != 0 || iv.duration_ppm() != 0) any_ppm = true;
    if (iv.start_ns() != 0 || iv.duration_ns() != 0) any_abs = true;
  }
  if (any_ppm && any_abs) {
    return Invalid(p, "schedule mixes percent and absolute intervals");
  }
  if (any_ppm && run <= 0) {
    return Invalid(p,
                   "schedule intervals in percent need a run duration "
                   "(schedule.run_duration or --run-duration)");
  }
  s.n_intervals = static_cast<uint32_t>(in.intervals_size());
  for (int i = 0; i < in.intervals_size(); ++i) {
    const auto& iv = in.intervals(i);
    if (any_ppm) {
      // 128-bit intermediate: a long run times 1e6 overflows int64.
      s.interval_start_ns[i] = static_cast<int64_t>(
          static_cast<__int128>(run) * iv.start_ppm() / 1000000);
      s.interval_duration_ns[i] = static_cast<int64_t>(
          static_cast<__int128>(run) * iv.duration_ppm() / 1000000);
    } else {
      s.interval_start_ns[i] = iv.start_ns();
      s.interval_duration_ns[i] = iv.duration_ns();
    }
    if (s.interval_start_ns[i] < 0 || s.interval_duration_ns[i] < 0) {
      return Invalid(p, absl::StrCat("schedule interval ", i + 1, " is negative"));
    }
  }
  return absl::OkStatus();
}

// Compiles `p` into `r`, and its targets into the pool `c.targets` from
// c.n_targets on (CompileTable has checked that they fit).
absl::Status CompileRule(const Policy& p, const CompileOptions& options,
                         fault_config& c, fault_rule& r) {
  std::memset(&r, 0, sizeof(r));
  if (p.name().empty()) {
    return absl::InvalidArgumentError("a policy has no name");
  }
  if (absl::Status s = CopyBounded(p, "name", p.name(), r.name); !s.ok()) return s;
  r.first_target = c.n_targets;
  r.n_targets = static_cast<uint32_t>(p.targets_size());
  for (int i = 0; i < p.targets_size(); ++i) {
    if (absl::Status s = CompileTarget(p, i, p.targets(i), c.targets[c.n_targets]);
        !s.ok()) {
      return s;
    }
    ++c.n_targets;
  }
  if (absl::Status s = CompileSchedule(p, options, r.schedule); !s.ok()) return s;

  ApplyProfile(p.link(), r.uplink);
  ApplyProfile(p.link(), r.downlink);
  ApplyProfile(p.uplink(), r.uplink);
  ApplyProfile(p.downlink(), r.downlink);
  if (absl::Status s = FinishLink(p, "uplink", r.uplink); !s.ok()) return s;
  if (absl::Status s = FinishLink(p, "downlink", r.downlink); !s.ok()) return s;

  r.timeout_connect_ns = p.timeout().connect_ns();
  r.timeout_recv_ns = p.timeout().recv_ns();
  if (p.has_connection_error() &&
      p.connection_error().kind() != fault::v1::ConnectionError::KIND_UNSPECIFIED) {
    switch (p.connection_error().kind()) {
      case fault::v1::ConnectionError::KIND_RESET:
        r.conn_error_errno = ECONNRESET;
        break;
      case fault::v1::ConnectionError::KIND_REFUSED:
        r.conn_error_errno = ECONNREFUSED;
        break;
      case fault::v1::ConnectionError::KIND_UNREACHABLE:
        r.conn_error_errno = EHOSTUNREACH;
        break;
      default:
        return Invalid(p, absl::StrCat("connection_error: unknown kind ",
                                       p.connection_error().kind()));
    }
    r.conn_error_ppm = p.connection_error().probability_ppm();
    if (absl::Status s = CheckPpm(p, "connection_error.probability", r.conn_error_ppm);
        !s.ok()) {
      return s;
    }
  }
  if (p.has_half_open()) {
    r.half_open_after_bytes = p.half_open().after_bytes();
    r.half_open_after_ns = p.half_open().after_ns();
    if (!p.half_open().error().empty()) {
      absl::StatusOr<int> err = ErrnoOrError(p, "half_open.error", p.half_open().error());
      if (!err.ok()) return err.status();
      r.half_open_errno = *err;
    }
  }
  if (p.blackhole()) r.flags |= FAULT_RULE_BLACKHOLE;
  if (!fault::v1::Direction_IsValid(p.blackhole_direction())) {
    return Invalid(p, absl::StrCat("blackhole_direction: unknown direction ",
                                   p.blackhole_direction()));
  }
  r.blackhole_direction = static_cast<uint32_t>(p.blackhole_direction());
  if (p.per_operation()) r.flags |= FAULT_RULE_PER_OP;
  // The protocol faults stay out of the table: the stream engine, which
  // answers in the server's place, reads them from the policy.
  if (p.http_faults_size() > 0 || p.redis_faults_size() > 0 ||
      p.postgres_faults_size() > 0)
    r.flags |= FAULT_RULE_PROTOCOL;
  // The body stays out of the table: the proxy that answers with it reads
  // it from the policy (the shim has no use for it).
  if (p.has_http_error()) {
    const auto& h = p.http_error();
    if (h.status() < 100 || h.status() > 599) {
      return Invalid(p, absl::StrCat("http_error.status: ", h.status(),
                                     " is not an HTTP status (100..599)"));
    }
    if (absl::Status s = CheckPpm(p, "http_error.probability", h.probability_ppm());
        !s.ok()) {
      return s;
    }
    r.http_status = h.status();
    r.http_error_ppm = h.probability_ppm();
  }
  if (p.has_session_budget()) {
    const auto& b = p.session_budget();
    r.budget_action = static_cast<uint32_t>(b.action());
    r.budget_max_tx = b.max_tx_bytes();
    r.budget_max_rx = b.max_rx_bytes();
    r.budget_max_ops = b.max_ops();
    r.budget_max_duration_ns = b.max_duration_ns();
    r.budget_timeout_ns = b.budget_timeout_ns();
    if (!b.error().empty()) {
      absl::StatusOr<int> err = ErrnoOrError(p, "session_budget.error", b.error());
      if (!err.ok()) return err.status();
      r.budget_errno = *err;
    } else if (b.action() == fault::v1::SessionBudget::ACTION_CONNECTION_ERROR) {
      r.budget_errno = ECONNRESET;
    }
  }
  if (p.has_payload_mutation()) {
    const auto& m = p.payload_mutation();
    if (m.pattern().size() > FAULT_PATTERN_MAX || m.data().size() > FAULT_PATTERN_MAX) {
      return Invalid(p, absl::StrCat("payload_mutation: pattern and data hold at most ",
                                     FAULT_PATTERN_MAX,
                                     " bytes each (FAULT_PATTERN_MAX)"));
    }
    if (absl::Status s = CheckPpm(p, "payload_mutation.probability", m.probability_ppm());
        !s.ok()) {
      return s;
    }
    r.mutation_kind = static_cast<uint32_t>(m.kind());
    r.mutation_ppm = m.probability_ppm();
    r.mutation_every_n = m.every_n();
    r.mutation_direction = static_cast<uint32_t>(m.direction());
    r.mutation_dry_run = m.dry_run() ? 1 : 0;
    r.mutation_count = m.count();
    r.mutation_min_size = m.min_size_bytes();
    r.mutation_max_size = m.max_size_bytes();
    r.mutation_truncate_to = m.truncate_to_bytes();
    r.mutation_offset = m.offset();
    r.mutation_pattern_len = static_cast<uint32_t>(m.pattern().size());
    r.mutation_data_len = static_cast<uint32_t>(m.data().size());
    std::memcpy(r.mutation_pattern, m.pattern().data(), m.pattern().size());
    std::memcpy(r.mutation_data, m.data().data(), m.data().size());
  }
  r.dns_delay_ns = p.dns().delay_ns();
  r.dns_timeout_ppm = p.dns().timeout_ppm();
  r.dns_nxdomain_ppm = p.dns().nxdomain_ppm();
  if (absl::Status s = CheckPpm(p, "dns.timeout", r.dns_timeout_ppm); !s.ok()) return s;
  if (absl::Status s = CheckPpm(p, "dns.nxdomain", r.dns_nxdomain_ppm); !s.ok()) return s;
  if (options.activate) r.flags |= FAULT_RULE_ACTIVE;
  return absl::OkStatus();
}

absl::Status CompileSyscall(const Policy& p, int index, uint16_t rule,
                            const fault::v1::SyscallFault& in,
                            fault_syscall_rule& out) {
  std::string field = absl::StrCat("syscalls[", index, "]");
  std::memset(&out, 0, sizeof(out));
  out.rule = rule;
  if (in.family() == fault::v1::SyscallFault::FAMILY_UNSPECIFIED) {
    return Invalid(p, absl::StrCat(field, ": no syscall family"));
  }
  out.family = static_cast<uint8_t>(in.family());
  out.action = static_cast<uint8_t>(in.action());
  switch (in.action()) {
    case fault::v1::SyscallFault::ACTION_DENY: {
      if (in.errno_name().empty()) {
        return Invalid(p, absl::StrCat(field, ": deny needs an errno name"));
      }
      absl::StatusOr<int> err = ErrnoOrError(p, field, in.errno_name());
      if (!err.ok()) return err.status();
      out.err = *err;
      break;
    }
    case fault::v1::SyscallFault::ACTION_DELAY:
      if (in.delay_ns() <= 0) {
        return Invalid(p, absl::StrCat(field, ": delay needs a positive duration"));
      }
      out.delay_ns = in.delay_ns();
      break;
    default:
      return Invalid(p, absl::StrCat(field, ": action must be deny or delay"));
  }
  out.probability_ppm = in.probability_ppm() == 0 ? 1000000 : in.probability_ppm();
  if (absl::Status s = CheckPpm(p, field + ".probability", out.probability_ppm); !s.ok()) {
    return s;
  }
  if (absl::Status s = CopyBounded(p, field + ".path", in.path_glob(), out.path_glob);
      !s.ok()) {
    return s;
  }
  out.when_first = in.when().first();
  out.when_last = in.when().last();
  out.when_step = in.when().step();
  if (out.when_last != 0 && out.when_first > out.when_last) {
    return Invalid(p, absl::StrCat(field, ": when range ", out.when_first, "..",
                                   out.when_last, " is empty"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CompiledTable> CompileTable(const fault::v1::PolicySet& set,
                                           const CompileOptions& options) {
  CompiledTable table;
  table.config = std::make_unique<fault_config>();
  fault_config& c = *table.config;
  std::memset(&c, 0, sizeof(c));
  c.families_mask = options.families_mask;

  if (set.policies_size() > FAULT_MAX_RULES) {
    return absl::InvalidArgumentError(
        absl::StrCat(set.policies_size(), " policies; the table holds at most ",
                     FAULT_MAX_RULES, " (FAULT_MAX_RULES)"));
  }
  bool need_run_seed = false;
  for (const Policy& p : set.policies()) need_run_seed |= !p.has_seed();
  if (need_run_seed) {
    if (options.global_seed.has_value()) {
      table.run_seed = options.global_seed;
    } else {
      if (options.seeds == nullptr) {
        return absl::InternalError("no seed source to choose a run seed from");
      }
      table.run_seed = options.seeds->NewSeed();
      table.run_seed_random = true;
    }
  }

  int n_syscalls = 0;
  for (const Policy& p : set.policies()) n_syscalls += p.syscalls_size();
  if (n_syscalls > FAULT_MAX_SYSCALL_RULES) {
    return absl::InvalidArgumentError(absl::StrCat(
        n_syscalls, " syscall faults in all policies; the table holds at most ",
        FAULT_MAX_SYSCALL_RULES, " (FAULT_MAX_SYSCALL_RULES)"));
  }
  int n_targets = 0;
  for (const Policy& p : set.policies()) n_targets += p.targets_size();
  if (n_targets > FAULT_MAX_TARGETS_TOTAL) {
    return absl::InvalidArgumentError(absl::StrCat(
        n_targets, " targets in all policies; the table holds at most ",
        FAULT_MAX_TARGETS_TOTAL, " (FAULT_MAX_TARGETS_TOTAL)"));
  }
  int n_partitions = 0;
  for (const Policy& p : set.policies()) n_partitions += p.partitions_size();
  if (n_partitions > FAULT_MAX_PARTITIONS) {
    return absl::InvalidArgumentError(absl::StrCat(
        n_partitions, " partitions in all policies; the table holds at most ",
        FAULT_MAX_PARTITIONS, " (FAULT_MAX_PARTITIONS)"));
  }

  for (int i = 0; i < set.policies_size(); ++i) {
    const Policy& p = set.policies(i);
    for (int j = 0; j < i; ++j) {
      if (set.policies(j).name() == p.name()) {
        return absl::InvalidArgumentError(
            absl::StrCat(Where(p), "defined twice; policy names must be unique"));
      }
    }
    fault_rule& r = c.rules[i];
    if (absl::Status s = CompileRule(p, options, c, r); !s.ok()) return s;
    CompiledRule info;
    info.name = p.name();
    if (p.has_seed()) {
      info.seed = p.seed();
      info.seed_origin = "policy";
    } else {
      info.seed = *table.run_seed;
      info.seed_origin = table.run_seed_random ? "random" : "--seed";
    }
    r.seed = info.seed;
    r.flags |= FAULT_RULE_HAS_SEED;
    if (r.flags & FAULT_RULE_PROTOCOL) {
      auto protocol = std::make_shared<Policy>();
      *protocol->mutable_http_faults() = p.http_faults();
      *protocol->mutable_redis_faults() = p.redis_faults();
      *protocol->mutable_postgres_faults() = p.postgres_faults();
      info.protocol = std::move(protocol);
    }
    table.rules.push_back(std::move(info));

    for (int k = 0; k < p.syscalls_size(); ++k) {
      if (absl::Status s = CompileSyscall(p, k, static_cast<uint16_t>(i), p.syscalls(k),
                                          c.syscall_rules[c.n_syscall_rules]);
          !s.ok()) {
        return s;
      }
      ++c.n_syscall_rules;
    }
    for (int k = 0; k < p.partitions_size(); ++k) {
      fault_partition& part = c.partitions[c.n_partitions];
      std::string field = absl::StrCat("partitions[", k, "]");
      if (absl::Status s = CopyBounded(p, field + ".a", p.partitions(k).a(), part.a);
          !s.ok()) {
        return s;
      }
      if (absl::Status s = CopyBounded(p, field + ".b", p.partitions(k).b(), part.b);
          !s.ok()) {
        return s;
      }
      part.rule = static_cast<uint16_t>(i);
      ++c.n_partitions;
    }
  }
  c.n_rules = static_cast<uint32_t>(set.policies_size());
  return table;
}

absl::Status CheckCompiles(const fault::v1::PolicySet& set) {
  // Any seed will do: seeds never make a table fail to compile.
  FixedSeedSource seeds(0);
  CompileOptions options;
  options.seeds = &seeds;
  return CompileTable(set, options).status();
}

uint64_t SyscallFamiliesMask(const fault_config& config) {
  uint64_t mask = 0;
  for (uint32_t i = 0; i < config.n_syscall_rules && i < FAULT_MAX_SYSCALL_RULES; ++i) {
    mask |= uint64_t{1} << (config.syscall_rules[i].family & 63);
  }
  return mask;
}

}  // namespace fault::exec
