#include "supervisor/seccomp/engine_decider.h"

#include <errno.h>
#include <netinet/in.h>

#include <cstring>

namespace fault::seccomp {
namespace eng = ::fault::engine;

namespace {

bool HasFamily(uint64_t mask, Family f) { return (mask & FamilyBit(f)) != 0; }

uint16_t PortOf(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in&>(ss).sin_port);
  }
  if (ss.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6&>(ss).sin6_port);
  }
  return 0;
}

}  // namespace

EngineDecider::EngineDecider(fault_table* table, PartitionMap* partitions)
    : table_(table), partitions_(partitions) {}

bool EngineDecider::Refresh() {
  if (have_index_ && eng::LoadSeq(table_) == idx_.seq) return true;
  eng::Index idx;
  if (!eng::BuildIndex(table_, &idx)) {
    have_index_ = false;
    return false;
  }
  uint64_t detail = 0;
  for (uint32_t i = 0; i < idx.n_syscall_rules; ++i) {
    fault_syscall_rule sr;
    if (!eng::ReadSyscallRule(table_, idx.seq, static_cast<int>(i), &sr))
      return false;
    if (sr.path_glob[0] != '\0')
      detail |= FamilyBit(static_cast<Family>(sr.family));
  }
  uint64_t targeted = 0;
  for (uint32_t r = 0; r < idx.n_rules && r < 64; ++r) {
    uint32_t n = 0;
    if (!eng::ReadConfigBytes(
            table_, idx.seq, &table_->config.rules[r].n_targets, sizeof(n), &n))
      return false;
    if (n > 0) targeted |= uint64_t{1} << r;
  }
  for (Family f : {Family::kConnect, Family::kSend}) {
    if (idx.family_owner_rules[static_cast<int>(f)] & targeted)
      detail |= FamilyBit(f);
  }
  if (idx.features & eng::kFeatPartition) {
    detail |= FamilyBit(Family::kConnect) | FamilyBit(Family::kSend);
  }
  // Connections with stream effects are redirected by destination.
  if ((idx.net & idx.active) && (table_->engine_port4 || table_->engine_port6)) {
    detail |= FamilyBit(Family::kConnect);
  }
  idx_ = idx;
  detail_families_ = detail;
  targeted_rules_ = targeted;
  have_index_ = true;
  return true;
}

bool EngineDecider::NeedsDetail(Family family) {
  // When the table cannot be read, read everything: correctness first.
  if (!Refresh()) return true;
  return HasFamily(detail_families_, family);
}

Decision EngineDecider::DecidePartition(const SyscallContext& call) {
  if (partitions_ == nullptr || call.program.empty() || !call.addr.has_value())
    return {};
  uint32_t n = 0;
  if (!eng::ReadConfigBytes(table_, idx_.seq, &table_->config.n_partitions,
                            sizeof(n), &n)) {
    return {};
  }
  if (n > FAULT_MAX_PARTITIONS) n = FAULT_MAX_PARTITIONS;
  const uint16_t port = PortOf(*call.addr);
  if (port == 0) return {};
  for (uint32_t i = 0; i < n; ++i) {
    fault_partition p;
    if (!eng::ReadConfigBytes(table_, idx_.seq, &table_->config.partitions[i],
                              sizeof(p), &p)) {
      return {};
    }
    p.a[FAULT_NAME_MAX - 1] = p.b[FAULT_NAME_MAX - 1] = '\0';
    if (p.rule >= 64 || !(idx_.active & (uint64_t{1} << p.rule))) continue;
    const char* other = nullptr;
    if (call.program == p.a) other = p.b;
    if (call.program == p.b) other = p.a;
    if (other == nullptr) continue;
    // connect: TCP, refused. send with a destination: UDP datagrams only
    // (a TCP socket ignores the address), unreachable.
    const bool udp = call.family == Family::kSend;
    if (udp &&
        !PartitionMap::IsUdpSocket(call.tid, static_cast<int>(call.args[0]))) {
      return {};
    }
    if (!partitions_->ProgramListens(other, port,
                                     udp ? PartitionMap::Transport::kUdp
                                         : PartitionMap::Transport::kTcp)) {
      continue;
    }
    eng::CountMatched(table_, p.rule);
    eng::CountFired(table_, p.rule);
    Decision d;
    d.kind = Decision::Kind::kDeny;
    d.err = udp ? ENETUNREACH : ECONNREFUSED;
    d.rule = p.rule;
    d.effect = FAULT_EFFECT_PARTITION;
    return d;
  }
  return {};
}

Decision EngineDecider::Decide(const SyscallContext& call) {
  if (!Refresh()) return {};
  const int family = static_cast<int>(call.family);
  if (family <= 0 || family >= eng::kFamilyCount) return {};

  if ((call.family == Family::kConnect || call.family == Family::kSend) &&
      (idx_.features & eng::kFeatPartition)) {
    Decision d = DecidePartition(call);
    if (d.kind != Decision::Kind::kContinue) return d;
  }
  // The shim decided this call's syscall rules before making it.
  if (call.from_stub) return {};
  Decision d = DecideFamily(call, family);
  if (d.kind == Decision::Kind::kContinue && call.family == Family::kConnect)
    d = DecideStream(call);
  // An fsync rule covers fdatasync too (SQLite only calls fdatasync); the
  // shim decides the same way, so both layers agree.
  if (d.kind == Decision::Kind::kContinue && family == eng::kFamilyFdatasync) {
    d = DecideFamily(call, eng::kFamilyFsync);
  }
  return d;
}

Decision EngineDecider::DecideStream(const SyscallContext& call) {
  const uint64_t cand = idx_.net & idx_.active;
  if (cand == 0 || !call.addr.has_value()) return {};
  eng::Endpoint ep;
  if (!eng::SetEndpointAddress(&ep, &*call.addr, sizeof(*call.addr))) return {};
  if ((ep.family == AF_INET ? table_->engine_port4 : table_->engine_port6) == 0)
    return {};
  ep.protocol = FAULT_PROTO_TCP;  // the loop checks the socket's type
  int r = eng::PickRule(table_, idx_, cand, ep);
  fault_rule rule;
  if (r < 0 || !eng::ReadRule(table_, idx_.seq, r, &rule) ||
      !eng::HasStreamEffects(table_, rule)) {
    return {};
  }
  const int64_t now = eng::MonotonicClock().Now();
  const double factor = eng::ScheduleFactor(rule.schedule, now - table_->start_ns);
  eng::ConnState cs;
  eng::NetDecision nd;
  eng::DecideNet(table_, rule, r, eng::NetOp::kConnect, FAULT_PROTO_TCP, &cs, 0, now,
                 factor, &nd);
  Decision d;
  d.rule = r;
  d.effect = nd.effect;
  if (nd.stall_ns >= 0) {  // a black-holed SYN or a connect timeout
    d.kind = Decision::Kind::kDelay;
    d.delay_ns = nd.stall_ns;
    d.err = nd.err != 0 ? nd.err : ETIMEDOUT;
    return d;
  }
  if (nd.err != 0) {
    d.kind = Decision::Kind::kDeny;
    d.err = nd.err;
    return d;
  }
  d.kind = Decision::Kind::kRedirect;
  d.delay_ns = nd.rule >= 0 ? nd.delay_ns : 0;
  if (!nd.fired) d.effect = 0;
  return d;
}

Decision EngineDecider::DecideFamily(const SyscallContext& call, int family) {
  if (!(idx_.syscall_families & eng::FamilyBit(family))) return {};

  // Seccomp sees whole processes: only process-wide (active) rules apply;
  // thread scopes exist in the shim only.
  uint64_t mask = idx_.active & idx_.family_owner_rules[family];
  // Rules with targets apply only to calls whose destination they match.
  // Only connect and sendto name one here; a receive, a read or an accept
  // names none, so such rules leave it alone (on a TCP/UDP socket the shim
  // matches them against its peer) rather than apply to every descriptor:
  // Unix sockets, pipes, files.
  if (uint64_t targeted = mask & targeted_rules_; targeted != 0) {
    mask &= ~targeted;
    eng::Endpoint ep;
    if (call.addr.has_value() &&
        eng::SetEndpointAddress(&ep, &*call.addr, sizeof(*call.addr))) {
      for (uint64_t bits = targeted; bits; bits &= bits - 1) {
        int r = __builtin_ctzll(bits);
        int32_t priority;
        eng::TargetMatch m =
            eng::RuleTargetsMatch(table_, idx_.seq, r, ep, &priority);
        if (m == eng::TargetMatch::kTorn) return {};
        if (m == eng::TargetMatch::kYes) mask |= uint64_t{1} << r;
      }
    }
  }
  if (mask == 0) return {};

  eng::SyscallDecision sd;
  const char* path = call.path.empty() ? nullptr : call.path.c_str();
  if (!eng::DecideSyscall(table_, idx_, family, path, mask,
                          eng::MonotonicClock().Now(), &sd)) {
    return {};
  }
  Decision d;
  d.rule = sd.rule;
  d.syscall_rule = sd.index;
  if (sd.action == eng::kActionDeny) {
    d.kind = Decision::Kind::kDeny;
    d.err = sd.err;
    d.effect = FAULT_EFFECT_DENY;
  } else if (sd.action == eng::kActionDelay) {
    d.kind = Decision::Kind::kDelay;
    d.delay_ns = sd.delay_ns;
    d.effect = FAULT_EFFECT_DELAY;
  }
  return d;
}

}  // namespace fault::seccomp
