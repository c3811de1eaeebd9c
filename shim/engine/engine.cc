// The policy engine. See engine.h. libc-only: no allocation, no locks, no
// exceptions, no libm, no libstdc++ runtime.
#include "shim/engine/engine.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

namespace fault::engine {
namespace {

// ThreadSanitizer does not model fences; under it the seqlock reads use
// acquire loads instead (slower, same results).
#if defined(__SANITIZE_THREAD__)
constexpr int kDataLoad = __ATOMIC_ACQUIRE;
constexpr int kDataStore = __ATOMIC_RELEASE;
inline void AcquireFence() {}
inline void ReleaseFence() {}
#else
constexpr int kDataLoad = __ATOMIC_RELAXED;
constexpr int kDataStore = __ATOMIC_RELAXED;
inline void AcquireFence() { __atomic_thread_fence(__ATOMIC_ACQUIRE); }
inline void ReleaseFence() { __atomic_thread_fence(__ATOMIC_RELEASE); }
#endif

template <typename T>
T LoadRelaxed(const T* p) {
  return __atomic_load_n(p, kDataLoad);
}

inline char Lower(char c) { return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c; }

int64_t MonotonicRead(void*) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

constexpr int64_t kMaxStallNs = 60'000'000'000;

}  // namespace

// ---------------------------------------------------------------- clock ---

Clock MonotonicClock() { return Clock{&MonotonicRead, nullptr}; }

int64_t RealtimeNs() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// -------------------------------------------------------------- seqlock ---

uint64_t LoadSeq(const fault_table* t) {
  return __atomic_load_n(&t->seq, __ATOMIC_ACQUIRE);
}

void CopyRelaxed(void* dst, const void* src, size_t n) {
  uintptr_t d = reinterpret_cast<uintptr_t>(dst);
  uintptr_t s = reinterpret_cast<uintptr_t>(src);
  if (((d | s | n) & 7) == 0) {
    auto* out = static_cast<uint64_t*>(dst);
    const auto* in = static_cast<const uint64_t*>(src);
    for (size_t i = 0; i < n / 8; ++i) out[i] = LoadRelaxed(&in[i]);
  } else if (((d | s | n) & 3) == 0) {
    auto* out = static_cast<uint32_t*>(dst);
    const auto* in = static_cast<const uint32_t*>(src);
    for (size_t i = 0; i < n / 4; ++i) out[i] = LoadRelaxed(&in[i]);
  } else {
    auto* out = static_cast<uint8_t*>(dst);
    const auto* in = static_cast<const uint8_t*>(src);
    for (size_t i = 0; i < n; ++i) out[i] = LoadRelaxed(&in[i]);
  }
}

static void StoreRelaxed(void* dst, const void* src, size_t n) {
  uintptr_t d = reinterpret_cast<uintptr_t>(dst);
  uintptr_t s = reinterpret_cast<uintptr_t>(src);
  if (((d | s | n) & 7) == 0) {
    auto* out = static_cast<uint64_t*>(dst);
    const auto* in = static_cast<const uint64_t*>(src);
    for (size_t i = 0; i < n / 8; ++i)
      __atomic_store_n(&out[i], in[i], kDataStore);
  } else {
    auto* out = static_cast<uint8_t*>(dst);
    const auto* in = static_cast<const uint8_t*>(src);
    for (size_t i = 0; i < n; ++i) __atomic_store_n(&out[i], in[i], kDataStore);
  }
}

bool SeqUnchanged(const fault_table* t, uint64_t seq) {
  AcquireFence();
  return __atomic_load_n(&t->seq, __ATOMIC_ACQUIRE) == seq;
}

bool ReadConfigBytes(const fault_table* t, uint64_t seq, const void* field,
                     size_t n, void* out) {
  CopyRelaxed(out, field, n);
  return SeqUnchanged(t, seq);
}

bool ReadRule(const fault_table* t, uint64_t seq, int i, fault_rule* out) {
  if (i < 0 || i >= FAULT_MAX_RULES) return false;
  return ReadConfigBytes(t, seq, &t->config.rules[i], sizeof(fault_rule), out);
}

bool ReadSyscallRule(const fault_table* t, uint64_t seq, int i,
                     fault_syscall_rule* out) {
  if (i < 0 || i >= FAULT_MAX_SYSCALL_RULES) return false;
  return ReadConfigBytes(t, seq, &t->config.syscall_rules[i],
                         sizeof(fault_syscall_rule), out);
}

void InitTable(fault_table* t, int64_t start_ns) {
  memset(t, 0, sizeof(*t));
  t->magic = FAULT_TABLE_MAGIC;
  t->version = FAULT_TABLE_VERSION;
  t->size = sizeof(fault_table);
  t->start_ns = start_ns;
  t->config.generation = 1;
  __atomic_store_n(&t->seq, 2, __ATOMIC_RELEASE);
}

void Publish(fault_table* t, const fault_config* cfg) {
  uint64_t s = LoadRelaxed(&t->seq);
  uint64_t gen = LoadRelaxed(&t->config.generation);
  __atomic_store_n(&t->seq, s + 1, __ATOMIC_RELAXED);
  ReleaseFence();
  StoreRelaxed(&t->config, cfg, sizeof(fault_config));
  __atomic_store_n(&t->config.generation, gen + 1, __ATOMIC_RELAXED);
  __atomic_store_n(&t->seq, s + 2, __ATOMIC_RELEASE);
}

bool TableValid(const fault_table* t) {
  return t != nullptr && t->magic == FAULT_TABLE_MAGIC &&
         t->version == FAULT_TABLE_VERSION && t->size == sizeof(fault_table);
}

// ---------------------------------------------------------------- index ---

static bool LinkHasLatency(const fault_link& l) {
  switch (l.distribution) {
    case FAULT_DIST_NONE:
      return l.fixed_ns > 0;
    case FAULT_DIST_FIXED:
      return l.fixed_ns > 0;
    case FAULT_DIST_UNIFORM:
      return l.max_ns > 0;
    case FAULT_DIST_NORMAL:
      return l.mean_ns > 0 || l.stddev_ns > 0;
    case FAULT_DIST_PARETO:
      return l.scale_ns > 0;
    case FAULT_DIST_PARETO_NORMAL:
      return l.scale_ns > 0 || l.mean_ns > 0 || l.stddev_ns > 0;
  }
  return false;
}

static uint32_t LinkFeatures(const fault_link& l) {
  uint32_t f = 0;
  if (LinkHasLatency(l)) f |= kFeatLatency;
  if (l.jitter_ns > 0) f |= kFeatJitter;
  if (l.loss_ppm > 0) f |= kFeatLoss;
  if (l.burst_loss > 1) f |= kFeatBurstLoss;
  if (l.ge_p_good_to_bad_ppm || l.ge_p_bad_to_good_ppm || l.ge_loss_good_ppm ||
      l.ge_loss_bad_ppm)
    f |= kFeatCorrelatedLoss;
  if (l.rate_bps > 0) f |= kFeatRate;
  if (l.reorder_ppm > 0) f |= kFeatReorder;
  if (l.duplicate_ppm > 0) f |= kFeatDuplicate;
  return f;
}

uint32_t RuleFeatures(const fault_rule& r) {
  uint32_t f = LinkFeatures(r.uplink) | LinkFeatures(r.downlink);
  if (r.timeout_connect_ns > 0) f |= kFeatTimeoutConnect;
  if (r.timeout_recv_ns > 0) f |= kFeatTimeoutRecv;
  if (r.conn_error_errno != 0 && r.conn_error_ppm > 0)
    f |= kFeatConnectionError;
  if (r.half_open_after_bytes > 0 || r.half_open_after_ns > 0)
    f |= kFeatHalfOpen;
  if (r.flags & FAULT_RULE_BLACKHOLE) f |= kFeatBlackhole;
  if (r.budget_max_tx || r.budget_max_rx || r.budget_max_ops ||
      r.budget_max_duration_ns > 0)
    f |= kFeatBudget;
  if (r.dns_delay_ns > 0 || r.dns_timeout_ppm > 0 || r.dns_nxdomain_ppm > 0)
    f |= kFeatDns;
  if (r.mutation_kind != 0) f |= kFeatMutation;
  if (r.http_status != 0) f |= kFeatHttpError;
  if (r.flags & FAULT_RULE_PROTOCOL) f |= kFeatProtocol;
  return f;
}

uint32_t RuleTargetSpan(const fault_rule& r, uint32_t* first) {
  uint32_t f = r.first_target, n = r.n_targets;
  if (f >= FAULT_MAX_TARGETS_TOTAL) n = 0;
  if (n > FAULT_MAX_TARGETS_TOTAL - f) n = FAULT_MAX_TARGETS_TOTAL - f;
  *first = f;
  return n;
}

// Target-kind features of rule `r`, read from the pool one kind byte at a
// time (the caller checks the sequence afterwards).
static uint32_t TargetFeatures(const fault_table* t, const fault_rule& r) {
  uint32_t first;
  uint32_t n = RuleTargetSpan(r, &first);
  uint32_t f = 0;
  for (uint32_t i = 0; i < n; ++i) {
    uint8_t kind = LoadRelaxed(&t->config.targets[first + i].kind);
    if (kind == FAULT_TARGET_SNI) f |= kFeatSniTarget;
    if (kind == FAULT_TARGET_HOSTNAME) f |= kFeatHostnameTarget;
  }
  return f;
}

fault_redirect* AnnounceRedirect(fault_table* t, int family_index,
                                 uint16_t port, uint8_t kind, int rule,
                                 const Endpoint& far, int64_t handshake_ns,
                                 int32_t pid) {
  fault_redirect* r = &t->redirects[family_index != 0][port];
  // FREE while it is rewritten: an engine that sees the old ARMED state
  // meanwhile would take half of each.
  __atomic_store_n(&r->state, FAULT_REDIRECT_FREE, __ATOMIC_RELAXED);
  r->err = 0;
  r->rule = static_cast<uint16_t>(rule);
  r->kind = kind;
  r->family = far.family;
  r->port = far.port;
  r->pid = pid;
  r->handshake_ns = handshake_ns;
  memcpy(r->addr, far.addr, sizeof(r->addr));
  __atomic_store_n(&r->state, FAULT_REDIRECT_ARMED, __ATOMIC_RELEASE);
  return r;
}

bool HasStreamEffects(const fault_table* t, const fault_rule& r) {
  uint32_t f = RuleFeatures(r) | TargetFeatures(t, r);
  if (f & kFeatSniTarget) return false;
  if (r.conn_error_errno == ECONNRESET && r.conn_error_ppm != 0) return true;
  return (f & kStreamFeatures) != 0;
}

bool BuildIndex(const fault_table* t, Index* out) {
  if (!TableValid(t)) return false;
  for (int attempt = 0; attempt < kSeqRetries; ++attempt) {
    uint64_t seq = LoadSeq(t);
    if (seq & 1) continue;
    Index idx;
    idx.seq = seq;
    idx.generation = LoadRelaxed(&t->config.generation);
    idx.families_mask = LoadRelaxed(&t->config.families_mask);
    uint32_t nr = LoadRelaxed(&t->config.n_rules);
    uint32_t ns = LoadRelaxed(&t->config.n_syscall_rules);
    uint32_t np = LoadRelaxed(&t->config.n_partitions);
    if (nr > FAULT_MAX_RULES) nr = FAULT_MAX_RULES;
    if (ns > FAULT_MAX_SYSCALL_RULES) ns = FAULT_MAX_SYSCALL_RULES;
    idx.n_rules = nr;
    idx.n_syscall_rules = ns;
    if (np > 0) idx.features |= kFeatPartition;
    bool torn = false;
    for (uint32_t i = 0; i < nr && !torn; ++i) {
      fault_rule r;
      CopyRelaxed(&r, &t->config.rules[i], sizeof(r));
      if (!SeqUnchanged(t, seq)) {
        torn = true;
        break;
      }
      uint64_t bit = uint64_t{1} << i;
      uint32_t f = RuleFeatures(r) | TargetFeatures(t, r);
      idx.features |= f;
      if (r.flags & FAULT_RULE_ACTIVE) idx.active |= bit;
      if (f & kNetFeatures) idx.net |= bit;
      if (f & kFeatDns) idx.dns |= bit;
      if (f & kFeatHostnameTarget) idx.hostname |= bit;
    }
    for (uint32_t i = 0; i < ns && !torn; ++i) {
      uint8_t family = LoadRelaxed(&t->config.syscall_rules[i].family);
      uint16_t rule = LoadRelaxed(&t->config.syscall_rules[i].rule);
      if (family == kFamilyNone || family >= kFamilyCount || rule >= nr)
        continue;
      idx.family_rules[family][i / 64] |= uint64_t{1} << (i % 64);
      idx.family_owner_rules[family] |= uint64_t{1} << rule;
      idx.syscall_families |= FamilyBit(family);
      idx.features |= kFeatSyscall;
    }
    if (torn || !SeqUnchanged(t, seq)) continue;
    *out = idx;
    return true;
  }
  return false;
}

int FindRuleByName(const fault_table* t, const Index& idx, const char* name) {
  for (uint32_t i = 0; i < idx.n_rules; ++i) {
    char buf[FAULT_NAME_MAX];
    if (!ReadConfigBytes(t, idx.seq, t->config.rules[i].name, sizeof(buf), buf))
      return -1;
    buf[FAULT_NAME_MAX - 1] = 0;
    if (strcmp(buf, name) == 0) return static_cast<int>(i);
  }
  return -1;
}

// ------------------------------------------------------------- matching ---

bool SetEndpointAddress(Endpoint* ep, const void* sa, size_t len) {
  if (sa == nullptr || len < sizeof(sa_family_t)) return false;
  sa_family_t fam;
  memcpy(&fam, sa, sizeof(fam));
  if (fam == AF_INET && len >= sizeof(sockaddr_in)) {
    sockaddr_in in;
    memcpy(&in, sa, sizeof(in));
    ep->family = AF_INET;
    ep->port = ntohs(in.sin_port);
    memset(ep->addr, 0, sizeof(ep->addr));
    memcpy(ep->addr, &in.sin_addr, 4);
    return true;
  }
  if (fam == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    sockaddr_in6 in6;
    memcpy(&in6, sa, sizeof(in6));
    ep->port = ntohs(in6.sin6_port);
    const uint8_t* a = in6.sin6_addr.s6_addr;
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0,    0,
                                        0, 0, 0, 0, 0xff, 0xff};
    memset(ep->addr, 0, sizeof(ep->addr));
    if (memcmp(a, kMapped, 12) == 0) {
      ep->family = AF_INET;
      memcpy(ep->addr, a + 12, 4);
    } else {
      ep->family = AF_INET6;
      memcpy(ep->addr, a, 16);
    }
    return true;
  }
  return false;
}

size_t EndpointSockaddr(const Endpoint& ep, void* out, size_t cap) {
  if (ep.family == AF_INET && cap >= sizeof(sockaddr_in)) {
    sockaddr_in in;
    memset(&in, 0, sizeof(in));
    in.sin_family = AF_INET;
    in.sin_port = htons(ep.port);
    memcpy(&in.sin_addr, ep.addr, 4);
    memcpy(out, &in, sizeof(in));
    return sizeof(in);
  }
  if (ep.family == AF_INET6 && cap >= sizeof(sockaddr_in6)) {
    sockaddr_in6 in6;
    memset(&in6, 0, sizeof(in6));
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(ep.port);
    memcpy(&in6.sin6_addr, ep.addr, 16);
    memcpy(out, &in6, sizeof(in6));
    return sizeof(in6);
  }
  return 0;
}

Endpoint LoopbackEndpoint(int family, uint16_t port) {
  Endpoint ep;
  ep.family = static_cast<uint8_t>(family);
  ep.port = port;
  if (family == AF_INET) ep.addr[0] = 127, ep.addr[3] = 1;
  if (family == AF_INET6) ep.addr[15] = 1;
  return ep;
}

bool IsLoopback(const Endpoint& ep) {
  if (ep.family == AF_INET) return ep.addr[0] == 127;
  if (ep.family == AF_INET6) {
    static const uint8_t kOne[16] = {0, 0, 0, 0, 0, 0, 0, 0,
                                     0, 0, 0, 0, 0, 0, 0, 1};
    return memcmp(ep.addr, kOne, 16) == 0;
  }
  return false;
}

void FormatEndpoint(const Endpoint& ep, char* out, size_t n) {
  char a[INET6_ADDRSTRLEN] = "";
  if (ep.family == AF_INET || ep.family == AF_INET6)
    inet_ntop(ep.family, ep.addr, a, sizeof(a));
  char port[8];
  int pn = 0;
  unsigned v = ep.port;
  char rev[8];
  do {
    rev[pn++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v);
  int j = 0;
  while (pn) port[j++] = rev[--pn];
  port[j] = 0;
  size_t l = 0;
  if (ep.family == AF_INET6) l = CopyString(out, "[", n);
  if (l < n) l += CopyString(out + l, a, n - l);
  if (ep.family == AF_INET6 && l < n) l += CopyString(out + l, "]", n - l);
  if (l < n) l += CopyString(out + l, ":", n - l);
  if (l < n) CopyString(out + l, port, n - l);
}

bool NameMatches(const char* pattern, const char* name) {
  if (pattern == nullptr || name == nullptr || pattern[0] == 0) return false;
  if (pattern[0] == '*' && pattern[1] == 0) return true;
  if (pattern[0] == '*' && pattern[1] == '.') {
    const char* suffix = pattern + 1;  // ".example.com"
    size_t ls = strlen(suffix), ln = strlen(name);
    if (ln <= ls) return false;
    const char* tail = name + (ln - ls);
    for (size_t i = 0; i < ls; ++i)
      if (Lower(tail[i]) != Lower(suffix[i])) return false;
    return true;
  }
  size_t i = 0;
  for (; pattern[i] && name[i]; ++i)
    if (Lower(pattern[i]) != Lower(name[i])) return false;
  // Ignore one trailing dot (fully qualified form) on either side.
  if (pattern[i] == 0 && (name[i] == 0 || (name[i] == '.' && name[i + 1] == 0)))
    return true;
  return name[i] == 0 && pattern[i] == '.' && pattern[i + 1] == 0;
}

bool CidrMatches(const fault_target& t, const Endpoint& ep) {
  if (ep.family == 0 || t.family != ep.family) return false;
  int max = t.family == AF_INET ? 32 : 128;
  int bits = t.prefix_len > max ? max : t.prefix_len;
  int full = bits / 8, rem = bits % 8;
  if (memcmp(t.addr, ep.addr, full) != 0) return false;
  if (rem == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rem));
  return (t.addr[full] & mask) == (ep.addr[full] & mask);
}

bool TargetMatches(const fault_target& t, const Endpoint& ep) {
  // Protocol: 0 and 3 (fault.v1 PROTOCOL_ANY) mean any; an unknown endpoint
  // protocol (0, e.g. a DNS lookup) passes.
  if (t.protocol == FAULT_PROTO_TCP || t.protocol == FAULT_PROTO_UDP) {
    if (ep.protocol != 0 && ep.protocol != t.protocol) return false;
  }
  if (!(t.port_min == 0 && t.port_max == 0) && ep.port != 0) {
    uint16_t hi = t.port_max < t.port_min ? t.port_min : t.port_max;
    if (ep.port < t.port_min || ep.port > hi) return false;
  }
  switch (t.kind) {
    case FAULT_TARGET_ANY:
      return true;
    case FAULT_TARGET_CIDR:
      return CidrMatches(t, ep);
    case FAULT_TARGET_HOSTNAME: {
      char name[FAULT_NAME_MAX];
      memcpy(name, t.name, sizeof(name));
      name[FAULT_NAME_MAX - 1] = 0;
      return ep.hostname != nullptr && NameMatches(name, ep.hostname);
    }
    case FAULT_TARGET_SNI: {
      char name[FAULT_NAME_MAX];
      memcpy(name, t.name, sizeof(name));
      name[FAULT_NAME_MAX - 1] = 0;
      return ep.sni != nullptr && NameMatches(name, ep.sni);
    }
  }
  return false;
}

bool TargetsMatch(const fault_target* targets, uint32_t n, const Endpoint& ep,
                  int32_t* priority) {
  if (n == 0) {
    *priority = 0;
    return true;
  }
  bool any = false;
  int32_t best = 0;
  for (uint32_t i = 0; i < n; ++i) {
    if (!TargetMatches(targets[i], ep)) continue;
    if (!any || targets[i].priority > best) best = targets[i].priority;
    any = true;
  }
  *priority = best;
  return any;
}

// Like TargetsMatch over rule `i`'s span of the pool, copying one target at
// a time so that a rule with hundreds of targets needs no stack for them.
// The caller checks the sequence afterwards.
static bool PoolTargetsMatch(const fault_table* t, int i, const Endpoint& ep,
                             int32_t* priority) {
  fault_rule head;  // only the span fields are read
  head.first_target = LoadRelaxed(&t->config.rules[i].first_target);
  head.n_targets = LoadRelaxed(&t->config.rules[i].n_targets);
  uint32_t first;
  uint32_t n = RuleTargetSpan(head, &first);
  *priority = 0;
  if (head.n_targets == 0) return true;
  bool any = false;
  int32_t best = 0;
  for (uint32_t k = 0; k < n; ++k) {
    fault_target target;
    CopyRelaxed(&target, &t->config.targets[first + k], sizeof(target));
    if (!TargetMatches(target, ep)) continue;
    if (!any || target.priority > best) best = target.priority;
    any = true;
  }
  *priority = best;
  return any;
}

TargetMatch RuleTargetsMatch(const fault_table* t, uint64_t seq, int i,
                             const Endpoint& ep, int32_t* priority) {
  if (i < 0 || i >= FAULT_MAX_RULES) return TargetMatch::kNo;
  bool match = PoolTargetsMatch(t, i, ep, priority);
  if (!SeqUnchanged(t, seq)) return TargetMatch::kTorn;
  return match ? TargetMatch::kYes : TargetMatch::kNo;
}

int PickRule(const fault_table* t, const Index& idx, uint64_t candidates,
             const Endpoint& ep) {
  int winner = -1;
  int32_t best = 0;
  while (candidates) {
    int i = __builtin_ctzll(candidates);
    candidates &= candidates - 1;
    if (static_cast<uint32_t>(i) >= idx.n_rules) break;
    int32_t prio;
    if (!PoolTargetsMatch(t, i, ep, &prio)) continue;
    if (winner < 0 || prio > best) {
      winner = i;
      best = prio;
    }
  }
  if (!SeqUnchanged(t, idx.seq)) return -1;
  return winner;
}

// -------------------------------------------------------------- hosts ---

void HostCacheAdd(HostCache* c, const char* name, int family,
                  const void* addr) {
  if (family != AF_INET && family != AF_INET6) return;
  uint64_t n = __atomic_fetch_add(&c->next, 1, __ATOMIC_RELAXED);
  HostCache::Entry* e = &c->entries[n % HostCache::kEntries];
  uint64_t s = __atomic_load_n(&e->seq, __ATOMIC_RELAXED);
  if (s & 1) return;  // another writer is on this slot; skip, it is a cache
  if (!__atomic_compare_exchange_n(&e->seq, &s, s + 1, false, __ATOMIC_ACQUIRE,
                                   __ATOMIC_RELAXED))
    return;
  ReleaseFence();
  uint8_t a[16] = {};
  memcpy(a, addr, family == AF_INET ? 4 : 16);
  char nm[FAULT_NAME_MAX] = {};
  CopyString(nm, name, sizeof(nm));
  __atomic_store_n(&e->family, static_cast<uint8_t>(family), __ATOMIC_RELAXED);
  StoreRelaxed(e->addr, a, sizeof(a));
  StoreRelaxed(e->name, nm, sizeof(nm));
  __atomic_store_n(&e->seq, s + 2, __ATOMIC_RELEASE);
}

bool HostCacheLookup(const HostCache* c, int family, const void* addr,
                     char* name) {
  uint8_t want[16] = {};
  memcpy(want, addr, family == AF_INET ? 4 : 16);
  uint64_t next = __atomic_load_n(&c->next, __ATOMIC_ACQUIRE);
  uint64_t count = next < HostCache::kEntries ? next : HostCache::kEntries;
  // Newest first.
  for (uint64_t k = 0; k < count; ++k) {
    const HostCache::Entry* e =
        &c->entries[(next - 1 - k) % HostCache::kEntries];
    uint64_t s = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);
    if (s & 1 || s == 0) continue;
    uint8_t a[16];
    uint8_t fam = LoadRelaxed(&e->family);
    CopyRelaxed(a, e->addr, sizeof(a));
    if (fam != family || memcmp(a, want, 16) != 0) continue;
    char nm[FAULT_NAME_MAX];
    CopyRelaxed(nm, e->name, sizeof(nm));
    AcquireFence();
    if (__atomic_load_n(&e->seq, __ATOMIC_ACQUIRE) != s) continue;
    nm[FAULT_NAME_MAX - 1] = 0;
    memcpy(name, nm, FAULT_NAME_MAX);
    return true;
  }
  return false;
}

// ------------------------------------------------------------------ rng ---

uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

DecisionRng::DecisionRng(uint64_t seed, uint32_t rule, uint64_t counter)
    : key(Mix64(Mix64(seed + 0x9e3779b97f4a7c15ULL * (rule + 1)) ^
                (counter * 0xd1b54a32d192ed03ULL + 0x632be59bd9b4e019ULL))) {}

uint64_t DecisionRng::Next() {
  ++i;
  return Mix64(key + i * 0x9e3779b97f4a7c15ULL);
}

double DecisionRng::Unit() {
  return static_cast<double>(Next() >> 11) * (1.0 / 9007199254740992.0);
}

double DecisionRng::OpenUnit() {
  return (static_cast<double>(Next() >> 12) + 0.5) * (1.0 / 4503599627370496.0);
}

bool DecisionRng::Ppm(uint32_t ppm) {
  if (ppm == 0) return false;
  if (ppm >= 1000000) {
    Next();  // keep the stream position independent of the value
    return true;
  }
  return Next() % 1000000 < ppm;
}

bool DecisionRng::Chance(double p) {
  double u = Unit();
  return p > 0 && u < p;
}

uint64_t RuleSeed(const fault_table* t, const fault_rule& r) {
  if (r.flags & FAULT_RULE_HAS_SEED) return r.seed;
  return Mix64(static_cast<uint64_t>(t->start_ns) ^ 0x5eedULL);
}

DecisionRng ClaimDecision(fault_table* t, int rule, uint64_t seed) {
  uint64_t n = __atomic_fetch_add(&t->counters.rule_decisions[rule], 1,
                                  __ATOMIC_RELAXED);
  return DecisionRng(seed, static_cast<uint32_t>(rule), n);
}

// ----------------------------------------------------------------- math ---

namespace math {

double Sqrt(double x) {
  if (!(x > 0)) return 0;
  return __builtin_sqrt(x);  // one instruction with -fno-math-errno
}

double Log(double x) {
  if (!(x > 0)) return -1e308;
  // x = m * 2^e with m in [sqrt(1/2), sqrt(2)); log(m) = 2 atanh(z).
  uint64_t bits;
  memcpy(&bits, &x, 8);
  int e = static_cast<int>((bits >> 52) & 0x7ff);
  if (e == 0) {                // subnormal: scale up
    x *= 18014398509481984.0;  // 2^54
    memcpy(&bits, &x, 8);
    e = static_cast<int>((bits >> 52) & 0x7ff) - 54;
  }
  e -= 1023;
  bits = (bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;
  double m;
  memcpy(&m, &bits, 8);
  if (m > 1.4142135623730951) {
    m *= 0.5;
    ++e;
  }
  double z = (m - 1) / (m + 1), z2 = z * z, term = z, sum = 0;
  for (int k = 1; k < 40; k += 2) {
    sum += term / k;
    term *= z2;
  }
  return 2 * sum + e * 0.6931471805599453;
}

double Exp(double x) {
  if (x > 709) return 1.7976931348623157e308;
  if (x < -745) return 0;
  double kf = x * 1.4426950408889634;
  int k = static_cast<int>(kf < 0 ? kf - 0.5 : kf + 0.5);
  double r = x - k * 0.6931471805599453;
  double term = 1, sum = 1;
  for (int n = 1; n < 24; ++n) {
    term *= r / n;
    sum += term;
  }
  // Scale by 2^k in two steps so that subnormal results stay right.
  int k1 = k / 2, k2 = k - k1;
  uint64_t b1 = static_cast<uint64_t>(k1 + 1023) << 52;
  uint64_t b2 = static_cast<uint64_t>(k2 + 1023) << 52;
  double s1, s2;
  memcpy(&s1, &b1, 8);
  memcpy(&s2, &b2, 8);
  return sum * s1 * s2;
}

double Pow(double x, double y) { return Exp(y * Log(x)); }

}  // namespace math

// ---------------------------------------------------------------- delays ---

static double SampleNormal(DecisionRng& rng) {
  // Box-Muller, polar form: no trigonometry needed. Bounded attempts.
  for (int i = 0; i < 64; ++i) {
    double u = 2 * rng.Unit() - 1, v = 2 * rng.Unit() - 1;
    double s = u * u + v * v;
    if (s > 0 && s < 1) return u * math::Sqrt(-2 * math::Log(s) / s);
  }
  return 0;
}

static double SamplePareto(DecisionRng& rng, double scale, double shape) {
  if (shape <= 0 || scale <= 0) return 0;
  double u = rng.OpenUnit();
  return scale * math::Pow(u, -1.0 / shape);
}

int64_t SampleLatency(const fault_link& l, DecisionRng& rng, double factor) {
  double v = 0;
  switch (l.distribution) {
    case FAULT_DIST_NONE:
    case FAULT_DIST_FIXED:
      v = static_cast<double>(l.fixed_ns);
      break;
    case FAULT_DIST_UNIFORM: {
      double lo = static_cast<double>(l.min_ns),
             hi = static_cast<double>(l.max_ns);
      v = lo + (hi - lo) * rng.Unit();
      break;
    }
    case FAULT_DIST_NORMAL:
      v = static_cast<double>(l.mean_ns) +
          static_cast<double>(l.stddev_ns) * SampleNormal(rng);
      break;
    case FAULT_DIST_PARETO:
      v = SamplePareto(rng, static_cast<double>(l.scale_ns), l.shape);
      break;
    case FAULT_DIST_PARETO_NORMAL: {
      // A normal body with a Pareto tail: N(mean, stddev) plus the excess of
      // a Pareto(scale, shape) draw over its minimum.
      double n = static_cast<double>(l.mean_ns) +
                 static_cast<double>(l.stddev_ns) * SampleNormal(rng);
      double p = SamplePareto(rng, static_cast<double>(l.scale_ns), l.shape);
      v = n + (p > 0 ? p - static_cast<double>(l.scale_ns) : 0);
      break;
    }
  }
  if (l.jitter_ns > 0) {
    double j = static_cast<double>(l.jitter_ns);
    v += (2 * rng.Unit() - 1) * j;
  }
  v *= factor;
  if (!(v > 0)) return 0;
  if (v > 9.0e18) return INT64_MAX / 2;
  return static_cast<int64_t>(v + 0.5);
}

// ------------------------------------------------------------------ loss ---

bool DecideLoss(const fault_link& l, LossState* s, DecisionRng& rng,
                double factor, uint32_t* burst_pos) {
  if (s->burst_left > 0) {
    --s->burst_left;
    *burst_pos = ++s->burst_pos;
    return true;
  }
  s->burst_pos = 0;
  bool ge = l.ge_p_good_to_bad_ppm || l.ge_p_bad_to_good_ppm ||
            l.ge_loss_good_ppm || l.ge_loss_bad_ppm;
  bool lost;
  if (ge) {
    if (s->ge_bad) {
      if (rng.Ppm(l.ge_p_bad_to_good_ppm)) s->ge_bad = 0;
    } else {
      if (rng.Ppm(static_cast<uint32_t>(l.ge_p_good_to_bad_ppm * factor)))
        s->ge_bad = 1;
    }
    uint32_t p = s->ge_bad ? l.ge_loss_bad_ppm : l.ge_loss_good_ppm;
    lost = rng.Ppm(static_cast<uint32_t>(p * factor));
  } else {
    lost = rng.Ppm(static_cast<uint32_t>(l.loss_ppm * factor));
  }
  if (!lost) return false;
  s->burst_left = l.burst_loss > 1 ? l.burst_loss - 1 : 0;
  *burst_pos = 0;
  return true;
}

int64_t TcpLossStallNs(int64_t rto_ns, uint32_t burst_pos) {
  int64_t v = rto_ns;
  for (uint32_t i = 0; i < burst_pos && v < kMaxStallNs; ++i) v *= 2;
  return v > kMaxStallNs ? kMaxStallNs : v;
}

// ----------------------------------------------------------- token bucket ---

uint64_t BucketBytes(uint64_t rate_bps, uint64_t burst_bytes) {
  uint64_t b = burst_bytes ? burst_bytes : rate_bps / 8 / 100;
  if (b < 1500) b = 1500;
  if (b > 500'000'000) b = 500'000'000;  // keeps nano-bit counts in int64
  return b;
}

uint64_t TokenBucketTake(TokenBucket* b, uint64_t rate_bps,
                         uint64_t burst_bytes, int64_t now, uint64_t want,
                         int64_t* wait_ns) {
  *wait_ns = 0;
  if (rate_bps == 0) return want;
  if (want == 0) return 0;
  uint64_t bucket = BucketBytes(rate_bps, burst_bytes);
  const __int128 cap = static_cast<__int128>(bucket) * 8 * 1000000000;
  if (!b->started) {
    b->started = 1;
    b->tokens = static_cast<int64_t>(cap);
    b->last_ns = now;
  }
  if (now > b->last_ns) {
    __int128 t = static_cast<__int128>(b->tokens) +
                 static_cast<__int128>(rate_bps) * (now - b->last_ns);
    b->tokens = static_cast<int64_t>(t > cap ? cap : t);
    b->last_ns = now;
  }
  const int64_t per_byte = 8 * 1000000000LL;
  uint64_t avail =
      b->tokens > 0 ? static_cast<uint64_t>(b->tokens / per_byte) : 0;
  // Hand out whole quanta (or all that is wanted): trickling out the few
  // bytes that refilled since the last call would turn one send into
  // thousands of tiny ones.
  // Half a bucket, so that a caller sleeping a little longer than told
  // keeps the tokens that accrued meanwhile (the bucket caps them).
  uint64_t half = bucket / 2;
  uint64_t need = want < half ? want : half;
  if (avail >= need) {
    uint64_t n = want < avail ? want : avail;
    b->tokens -= static_cast<int64_t>(n) * per_byte;
    return n;
  }
  __int128 missing = static_cast<__int128>(need) * per_byte - b->tokens;
  __int128 w = (missing + rate_bps - 1) / rate_bps;
  *wait_ns = static_cast<int64_t>(w);
  return 0;
}

// --------------------------------------------------------------- when/glob ---

bool WhenFires(uint64_t first, uint64_t last, uint64_t step, uint64_t n) {
  if (first == 0) return true;
  if (n < first) return false;
  if (last != 0 && n > last) return false;
  if (step == 0) step = 1;
  return (n - first) % step == 0;
}

// Matches a bracket expression at p (after '['); sets *end past ']'.
static bool MatchClass(const char* p, char c, const char** end) {
  bool negate = false;
  if (*p == '!' || *p == '^') {
    negate = true;
    ++p;
  }
  bool found = false;
  bool first = true;
  while (*p && (first || *p != ']')) {
    first = false;
    char lo = *p;
    if (lo == '\\' && p[1]) lo = *++p;
    char hi = lo;
    if (p[1] == '-' && p[2] && p[2] != ']') {
      hi = p[2];
      if (hi == '\\' && p[3]) {
        hi = p[3];
        ++p;
      }
      p += 2;
    }
    if (c >= lo && c <= hi) found = true;
    ++p;
  }
  if (*p != ']') {  // unterminated: '[' is literal
    *end = nullptr;
    return false;
  }
  *end = p + 1;
  return found != negate;
}

bool GlobMatch(const char* p, const char* s) {
  const char* star_p = nullptr;
  const char* star_s = nullptr;
  while (*s) {
    if (*p == '*') {
      while (*p == '*') ++p;
      if (*p == 0) return true;
      star_p = p;
      star_s = s;
      continue;
    }
    bool ok = false;
    const char* next = p + 1;
    if (*p == '?') {
      ok = true;
    } else if (*p == '[') {
      const char* end;
      bool m = MatchClass(p + 1, *s, &end);
      if (end == nullptr) {
        ok = (*s == '[');
      } else {
        ok = m;
        next = end;
      }
    } else if (*p == '\\' && p[1]) {
      ok = (p[1] == *s);
      next = p + 2;
    } else if (*p) {
      ok = (*p == *s);
    }
    if (ok) {
      p = next;
      ++s;
      continue;
    }
    if (star_p == nullptr) return false;
    p = star_p;
    s = ++star_s;
  }
  while (*p == '*') ++p;
  return *p == 0;
}

bool PathMatches(const char* glob, const char* path) {
  if (glob == nullptr || glob[0] == 0) return true;
  if (path == nullptr || path[0] == 0) return false;
  if (strchr(glob, '/') != nullptr) return GlobMatch(glob, path);
  const char* base = strrchr(path, '/');
  return GlobMatch(glob, base ? base + 1 : path);
}

// -------------------------------------------------------------- schedule ---

double ScheduleFactor(const fault_schedule& s, int64_t elapsed) {
  if (elapsed < 0) elapsed = 0;
  switch (s.kind) {
    case kScheduleUnspecified:
    case kScheduleAlways:
      return 1;
    case kScheduleRamp:
      if (s.ramp_ns <= 0 || elapsed >= s.ramp_ns) return 1;
      return static_cast<double>(elapsed) / static_cast<double>(s.ramp_ns);
    case kScheduleSpike:
      if (s.every_ns <= 0) return elapsed < s.duration_ns ? 1 : 0;
      return (elapsed % s.every_ns) < s.duration_ns ? 1 : 0;
    case kScheduleFlapping: {
      int64_t period = s.on_ns + s.off_ns;
      if (period <= 0) return 1;
      return (elapsed % period) < s.on_ns ? 1 : 0;
    }
    case kScheduleIntervals: {
      uint32_t n = s.n_intervals > FAULT_MAX_INTERVALS ? FAULT_MAX_INTERVALS
                                                       : s.n_intervals;
      for (uint32_t i = 0; i < n; ++i) {
        int64_t a = s.interval_start_ns[i];
        if (elapsed >= a && elapsed - a < s.interval_duration_ns[i]) return 1;
      }
      return 0;
    }
  }
  return 1;
}

// ------------------------------------------------------------ syscall rules
// ---

bool DecideSyscall(fault_table* t, const Index& idx, int family,
                   const char* path, uint64_t rule_mask, int64_t now_ns,
                   SyscallDecision* out) {
  if (family <= kFamilyNone || family >= kFamilyCount) return false;
  if ((idx.family_owner_rules[family] & rule_mask) == 0) return false;
  for (int w = 0; w < 2; ++w) {
    uint64_t bits = idx.family_rules[family][w];
    while (bits) {
      int i = w * 64 + __builtin_ctzll(bits);
      bits &= bits - 1;
      fault_syscall_rule sr;
      if (!ReadSyscallRule(t, idx.seq, i, &sr)) return false;
      if (sr.rule >= idx.n_rules || !(rule_mask & (uint64_t{1} << sr.rule)))
        continue;
      sr.path_glob[FAULT_GLOB_MAX - 1] = 0;
      if (!PathMatches(sr.path_glob, path)) continue;
      fault_schedule sched;
      uint64_t seed_flags[2];
      if (!ReadConfigBytes(t, idx.seq, &t->config.rules[sr.rule].schedule,
                           sizeof(sched), &sched))
        return false;
      CopyRelaxed(&seed_flags[0], &t->config.rules[sr.rule].seed, 8);
      uint32_t flags = LoadRelaxed(&t->config.rules[sr.rule].flags);
      if (!SeqUnchanged(t, idx.seq)) return false;
      double factor = ScheduleFactor(sched, now_ns - t->start_ns);
      if (factor <= 0) continue;
      uint64_t n = __atomic_add_fetch(&t->counters.syscall_matched[i], 1,
                                      __ATOMIC_RELAXED);
      CountMatched(t, sr.rule);
      if (!WhenFires(sr.when_first, sr.when_last, sr.when_step, n)) continue;
      uint32_t ppm = sr.probability_ppm == 0 ? 1000000 : sr.probability_ppm;
      if (ppm < 1000000 || factor < 1) {
        fault_rule seed_view;
        seed_view.flags = flags;
        seed_view.seed = seed_flags[0];
        DecisionRng rng = ClaimDecision(t, sr.rule, RuleSeed(t, seed_view));
        if (!rng.Ppm(static_cast<uint32_t>(ppm * factor))) continue;
      }
      __atomic_fetch_add(&t->counters.syscall_fired[i], 1, __ATOMIC_RELAXED);
      CountFired(t, sr.rule);
      out->index = i;
      out->rule = sr.rule;
      out->action = sr.action;
      out->err = sr.err;
      out->delay_ns =
          static_cast<int64_t>(static_cast<double>(sr.delay_ns) * factor);
      return true;
    }
  }
  return false;
}

// --------------------------------------------------------------- network ---

void AccountBytes(ConnState* cs, int dir, uint64_t n) {
  if (dir == kUplink)
    cs->tx_bytes += n;
  else
    cs->rx_bytes += n;
}

static void Fire(NetDecision* out, uint16_t effect, int64_t value) {
  if (!out->fired || out->effect == FAULT_EFFECT_LATENCY) {
    out->effect = effect;
    out->value = value;
  }
  out->fired = true;
}

// Applies the session budget action once the budget is exhausted.
static void BudgetAction(const fault_rule& r, NetOp op, NetDecision* out) {
  switch (r.budget_action) {
    case kBudgetDrop:
      if (op == NetOp::kRecv)
        out->eof = true;
      else
        out->err = EPIPE;
      break;
    case kBudgetTimeout:
      out->stall_ns = r.budget_timeout_ns > 0 ? r.budget_timeout_ns : 0;
      out->err = ETIMEDOUT;
      break;
    default:
      out->err = r.budget_errno ? r.budget_errno : ECONNRESET;
      break;
  }
  Fire(out, FAULT_EFFECT_BUDGET, out->err);
}

bool BlackholeTakes(const fault_rule& r, int dir) {
  if (!(r.flags & FAULT_RULE_BLACKHOLE)) return false;
  switch (r.blackhole_direction) {
    case kDirectionUplink:
      return dir == kUplink;
    case kDirectionDownlink:
      return dir == kDownlink;
    default:
      return true;
  }
}

void DecideNet(fault_table* t, const fault_rule& r, int ri, NetOp op,
               int protocol, ConnState* cs, uint64_t bytes, int64_t now,
               double factor, NetDecision* out) {
  *out = NetDecision();
  out->rule = ri;
  CountMatched(t, ri);
  if (factor <= 0) {
    out->rule = -1;
    return;
  }
  if (!cs->opened) {
    cs->opened = 1;
    cs->opened_ns = now;
  }
  const bool tcp = protocol != FAULT_PROTO_UDP;
  const int dir =
      (op == NetOp::kSend || op == NetOp::kConnect) ? kUplink : kDownlink;
  const fault_link& l = dir == kUplink ? r.uplink : r.downlink;
  const int64_t forever = INT64_MAX;

  if (op == NetOp::kAccept) {  // accepted connections only start state
    if (out->fired) CountFired(t, ri);
    return;
  }
  if (cs->reset) {
    out->err = ECONNRESET;
    Fire(out, FAULT_EFFECT_CONNECTION_ERROR, ECONNRESET);
    CountFired(t, ri);
    return;
  }
  if (cs->budget_hit) {
    BudgetAction(r, op, out);
    CountFired(t, ri);
    return;
  }
  DecisionRng rng = ClaimDecision(t, ri, RuleSeed(t, r));

  if (op == NetOp::kConnect) {
    if (BlackholeTakes(r, kUplink) && BlackholeTakes(r, kDownlink)) {
      // A black-holed SYN: the kernel gives up after ~127 s by default.
      out->stall_ns =
          r.timeout_connect_ns > 0 ? r.timeout_connect_ns : 127'000'000'000LL;
      out->err = ETIMEDOUT;
      Fire(out, FAULT_EFFECT_BLACKHOLE, out->stall_ns);
    } else if (r.timeout_connect_ns > 0) {
      out->stall_ns = r.timeout_connect_ns;
      out->err = ETIMEDOUT;
      Fire(out, FAULT_EFFECT_TIMEOUT, out->stall_ns);
    } else if (r.conn_error_errno != 0 && r.conn_error_errno != ECONNRESET &&
               rng.Ppm(static_cast<uint32_t>(r.conn_error_ppm * factor))) {
      out->err = r.conn_error_errno;
      Fire(out, FAULT_EFFECT_CONNECTION_ERROR, out->err);
    } else {
      if (tcp) {
        uint32_t pos;
        if (DecideLoss(r.uplink, &cs->loss[kUplink], rng, factor, &pos)) {
          int64_t stall = TcpLossStallNs(kDefaultRtoNs, pos);
          out->delay_ns += stall;
          Fire(out, FAULT_EFFECT_LOSS, stall);
        }
      }
      // A handshake is one round trip.
      int64_t rtt = SampleLatency(r.uplink, rng, factor) +
                    SampleLatency(r.downlink, rng, factor);
      if (rtt > 0) {
        out->delay_ns += rtt;
        Fire(out, FAULT_EFFECT_LATENCY, rtt);
      }
    }
    if (out->fired) CountFired(t, ri);
    return;
  }

  // Send / receive.
  if (BlackholeTakes(r, dir)) {
    if (op == NetOp::kSend) {
      out->drop = true;
    } else {
      out->stall_ns = r.timeout_recv_ns > 0 ? r.timeout_recv_ns : forever;
      out->err = ETIMEDOUT;
    }
    Fire(out, FAULT_EFFECT_BLACKHOLE, static_cast<int64_t>(bytes));
    CountFired(t, ri);
    return;
  }
  if (op == NetOp::kRecv && r.timeout_recv_ns > 0) {
    out->stall_ns = r.timeout_recv_ns;
    out->err = ETIMEDOUT;
    Fire(out, FAULT_EFFECT_TIMEOUT, r.timeout_recv_ns);
    CountFired(t, ri);
    return;
  }
  // Session budget.
  bool budget = r.budget_max_tx || r.budget_max_rx || r.budget_max_ops ||
                r.budget_max_duration_ns > 0;
  if (budget) {
    bool hit = (r.budget_max_ops && cs->ops >= r.budget_max_ops) ||
               (r.budget_max_duration_ns > 0 &&
                now - cs->opened_ns >= r.budget_max_duration_ns) ||
               (op == NetOp::kSend && r.budget_max_tx &&
                cs->tx_bytes >= r.budget_max_tx) ||
               (op == NetOp::kRecv && r.budget_max_rx &&
                cs->rx_bytes >= r.budget_max_rx);
    if (hit) {
      cs->budget_hit = 1;
      BudgetAction(r, op, out);
      CountFired(t, ri);
      return;
    }
    ++cs->ops;
    if (op == NetOp::kSend && r.budget_max_tx &&
        cs->tx_bytes + bytes > r.budget_max_tx)
      out->max_bytes = r.budget_max_tx - cs->tx_bytes;
    if (op == NetOp::kRecv && r.budget_max_rx &&
        cs->rx_bytes + bytes > r.budget_max_rx)
      out->max_bytes = r.budget_max_rx - cs->rx_bytes;
  }
  // Half-open.
  if (r.half_open_after_bytes > 0 || r.half_open_after_ns > 0) {
    uint64_t moved = cs->tx_bytes + cs->rx_bytes;
    if (!cs->half_open &&
        ((r.half_open_after_bytes > 0 && moved >= r.half_open_after_bytes) ||
         (r.half_open_after_ns > 0 &&
          now - cs->opened_ns >= r.half_open_after_ns)))
      cs->half_open = 1;
    if (cs->half_open) {
      if (r.half_open_errno) {
        out->err = r.half_open_errno;
      } else if (op == NetOp::kSend) {
        out->drop = true;
      } else {
        out->stall_ns = r.timeout_recv_ns > 0 ? r.timeout_recv_ns : forever;
        out->err = ETIMEDOUT;
      }
      Fire(out, FAULT_EFFECT_HALF_OPEN, static_cast<int64_t>(moved));
      CountFired(t, ri);
      return;
    }
    if (r.half_open_after_bytes > 0 &&
        moved + bytes > r.half_open_after_bytes) {
      uint64_t left = r.half_open_after_bytes - moved;
      if (left < out->max_bytes) out->max_bytes = left;
    }
  }
  // Connection reset mid-stream.
  if (r.conn_error_errno == ECONNRESET &&
      rng.Ppm(static_cast<uint32_t>(r.conn_error_ppm * factor))) {
    cs->reset = 1;
    out->err = ECONNRESET;
    Fire(out, FAULT_EFFECT_CONNECTION_ERROR, ECONNRESET);
    CountFired(t, ri);
    return;
  }
  // Loss.
  uint32_t pos;
  if (DecideLoss(l, &cs->loss[dir], rng, factor, &pos)) {
    if (tcp) {
      int64_t stall = TcpLossStallNs(kDefaultRtoNs, pos);
      out->delay_ns += stall;
      Fire(out, FAULT_EFFECT_LOSS, stall);
    } else {
      out->drop = true;
      Fire(out, FAULT_EFFECT_LOSS, static_cast<int64_t>(bytes));
    }
  }
  // Latency, one way.
  int64_t lat = SampleLatency(l, rng, factor);
  if (lat > 0) {
    out->delay_ns += lat;
    Fire(out, FAULT_EFFECT_LATENCY, lat);
  }
  // Duplication: datagrams only. TCP discards duplicate segments, so a
  // duplicated stream has no observable effect.
  if (!tcp && !out->drop && l.duplicate_ppm > 0 &&
      rng.Ppm(static_cast<uint32_t>(l.duplicate_ppm * factor))) {
    out->duplicate = true;
    Fire(out, FAULT_EFFECT_DUPLICATE, static_cast<int64_t>(bytes));
  }
  if (out->fired) CountFired(t, ri);
}

// ----------------------------------------------------------------- http ---

void DecideHttpError(fault_table* t, const fault_rule& r, int ri,
                     int64_t now_ns, double factor, HttpErrorDecision* out) {
  (void)now_ns;  // decisions depend on the seed and their number only
  *out = HttpErrorDecision();
  if (r.http_status == 0) return;
  CountMatched(t, ri);
  if (factor <= 0) return;
  out->rule = ri;
  DecisionRng rng = ClaimDecision(t, ri, RuleSeed(t, r));
  if (rng.Ppm(static_cast<uint32_t>(r.http_error_ppm * factor))) {
    out->fire = true;
    out->status = r.http_status;
    CountFired(t, ri);
  }
}

// ------------------------------------------------------------------ dns ---

void DecideDns(fault_table* t, const fault_rule& r, int ri, double factor,
               DnsDecision* out) {
  *out = DnsDecision();
  CountMatched(t, ri);
  if (factor <= 0) return;
  DecisionRng rng = ClaimDecision(t, ri, RuleSeed(t, r));
  if (r.dns_delay_ns > 0) {
    out->delay_ns =
        static_cast<int64_t>(static_cast<double>(r.dns_delay_ns) * factor);
    out->effect = FAULT_EFFECT_DNS_DELAY;
    out->fired = true;
  }
  if (rng.Ppm(static_cast<uint32_t>(r.dns_timeout_ppm * factor))) {
    out->eai = EAI_AGAIN;
    out->effect = FAULT_EFFECT_DNS_TIMEOUT;
    out->fired = true;
  } else if (rng.Ppm(static_cast<uint32_t>(r.dns_nxdomain_ppm * factor))) {
    out->eai = EAI_NONAME;
    out->effect = FAULT_EFFECT_DNS_NXDOMAIN;
    out->fired = true;
  }
  if (out->fired) CountFired(t, ri);
}

// ------------------------------------------------------- counters/events ---

void CountMatched(fault_table* t, int rule) {
  if (rule >= 0 && rule < FAULT_MAX_RULES)
    __atomic_fetch_add(&t->counters.rule_matched[rule], 1, __ATOMIC_RELAXED);
}

void CountFired(fault_table* t, int rule) {
  if (rule >= 0 && rule < FAULT_MAX_RULES)
    __atomic_fetch_add(&t->counters.rule_fired[rule], 1, __ATOMIC_RELAXED);
}

bool EmitEvent(fault_table* t, const fault_event& ev) {
  fault_event_ring* ring = &t->ring;
  uint64_t h = __atomic_load_n(&ring->head, __ATOMIC_RELAXED);
  for (;;) {
    uint64_t tail = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
    if (h - tail >= FAULT_EVENT_RING_SIZE) {
      __atomic_fetch_add(&ring->drops, 1, __ATOMIC_RELAXED);
      return false;
    }
    if (__atomic_compare_exchange_n(&ring->head, &h, h + 1, true,
                                    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
      break;
  }
  fault_event* slot = &ring->events[h % FAULT_EVENT_RING_SIZE];
  fault_event copy = ev;
  copy.seq = 0;
  // Everything but seq, then seq with release.
  StoreRelaxed(reinterpret_cast<char*>(slot) + 8,
               reinterpret_cast<const char*>(&copy) + 8, sizeof(copy) - 8);
  __atomic_store_n(&slot->seq, h + 1, __ATOMIC_RELEASE);
  return true;
}

bool PopEvent(fault_table* t, fault_event* out) {
  fault_event_ring* ring = &t->ring;
  uint64_t tail = __atomic_load_n(&ring->tail, __ATOMIC_RELAXED);
  uint64_t head = __atomic_load_n(&ring->head, __ATOMIC_ACQUIRE);
  if (tail == head) return false;
  fault_event* slot = &ring->events[tail % FAULT_EVENT_RING_SIZE];
  if (__atomic_load_n(&slot->seq, __ATOMIC_ACQUIRE) != tail + 1) return false;
  CopyRelaxed(out, slot, sizeof(*out));
  __atomic_store_n(&ring->tail, tail + 1, __ATOMIC_RELEASE);
  return true;
}

bool ParseTlsSni(const uint8_t* d, size_t len, char* name) {
  // TLS record header: type 22 (handshake), version 3.x, length.
  if (len < 5 || d[0] != 0x16 || d[1] != 0x03) return false;
  size_t rec = (size_t{d[3]} << 8) | d[4];
  size_t end = 5 + rec < len ? 5 + rec : len;
  size_t p = 5;
  auto need = [&](size_t n) { return p + n <= end; };
  // Handshake header: type 1 (ClientHello), 24-bit length.
  if (!need(4) || d[p] != 0x01) return false;
  p += 4;
  if (!need(2 + 32)) return false;  // client_version, random
  p += 2 + 32;
  if (!need(1)) return false;  // session_id
  p += 1 + d[p];
  if (!need(2)) return false;  // cipher_suites
  p += 2 + ((size_t{d[p]} << 8) | d[p + 1]);
  if (!need(1)) return false;  // compression_methods
  p += 1 + d[p];
  if (!need(2)) return false;  // extensions
  size_t ext_end = p + 2 + ((size_t{d[p]} << 8) | d[p + 1]);
  p += 2;
  if (ext_end < end) end = ext_end;
  while (need(4)) {
    unsigned type = (unsigned{d[p]} << 8) | d[p + 1];
    size_t elen = (size_t{d[p + 2]} << 8) | d[p + 3];
    p += 4;
    if (!need(elen)) return false;
    if (type == 0) {  // server_name: list length, then (type, length, name)
      size_t q = p, qend = p + elen;
      if (q + 2 > qend) return false;
      q += 2;
      while (q + 3 <= qend) {
        uint8_t nt = d[q];
        size_t nlen = (size_t{d[q + 1]} << 8) | d[q + 2];
        q += 3;
        if (q + nlen > qend) return false;
        if (nt == 0 && nlen > 0) {  // host_name
          size_t c = nlen < FAULT_NAME_MAX - 1 ? nlen : FAULT_NAME_MAX - 1;
          memcpy(name, d + q, c);
          name[c] = 0;
          return true;
        }
        q += nlen;
      }
      return false;
    }
    p += elen;
  }
  return false;
}

size_t CopyString(char* dst, const char* src, size_t dst_size) {
  size_t n = src ? strlen(src) : 0;
  if (dst_size == 0) return n;
  size_t c = n < dst_size - 1 ? n : dst_size - 1;
  if (c) memcpy(dst, src, c);
  dst[c] = 0;
  return n;
}

}  // namespace fault::engine
