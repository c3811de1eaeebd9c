// The policy engine: pure decision logic over the shared policy table.
//
// Everything a reader of `struct fault_table` (shim/include/fault/table.h)
// needs to decide whether and how a fault fires: seqlock reads, target
// matching, a counter-based deterministic RNG, latency distributions, loss
// models, token buckets, `when` counters, path globs, schedules, syscall-rule
// lookup, counters and the event ring.
//
// The engine is shared by the preload shim (inside arbitrary programs,
// -fno-exceptions -fno-rtti, no libstdc++ runtime) and the supervisor
// (seccomp notifications). So it is libc-only: it never allocates, never
// locks, never throws and never calls into libm (the few functions it needs
// are in `fault::engine::math`). Every function is thread-safe on its
// arguments; the table functions tolerate concurrent readers and one writer
// in any process. Time is always passed in (or read through `Clock`), so
// tests run on simulated time.
//
// Usage (reader):
//   fault::engine::Index idx;
//   if (fault::engine::BuildIndex(table, &idx) && (idx.net & mask)) {
//     fault::engine::Endpoint ep = ...;
//     int r = fault::engine::PickRule(table, idx, idx.net & mask, ep);
//     fault_rule rule;
//     if (r >= 0 && fault::engine::ReadRule(table, idx.seq, r, &rule)) ...
//   }
//
// Usage (writer, e.g. the supervisor):
//   fault::engine::InitTable(table, now_ns);
//   fault::engine::Publish(table, &config);   // any time; readers see it next
//   call
#ifndef FAULT_SHIM_ENGINE_ENGINE_H_
#define FAULT_SHIM_ENGINE_ENGINE_H_

#include <stddef.h>
#include <stdint.h>

#include "fault/table.h"
#include "shim/engine/families.h"

namespace fault::engine {

// ---------------------------------------------------------------- clock ---

// A monotonic clock in nanoseconds behind a function pointer, so that tests
// substitute simulated time. `ctx` is passed back to `now_ns`.
struct Clock {
  int64_t (*now_ns)(void* ctx);
  void* ctx;
  int64_t Now() const { return now_ns(ctx); }
};

// CLOCK_MONOTONIC.
Clock MonotonicClock();
// CLOCK_REALTIME (event time stamps).
int64_t RealtimeNs();

// A clock that only moves when told to. Not thread-safe.
struct FakeClock {
  int64_t now = 0;
  static int64_t Read(void* self) { return static_cast<FakeClock*>(self)->now; }
  Clock clock() { return Clock{&FakeClock::Read, this}; }
  void Advance(int64_t ns) { now += ns; }
};

// -------------------------------------------------------------- seqlock ---

// Readers: how many times a torn read is retried before giving up. A writer
// that died mid-publish leaves `seq` odd forever; readers then behave as if
// there were no (new) policy instead of hanging.
inline constexpr int kSeqRetries = 4096;

// The current sequence number (acquire). Odd: a publish is under way.
uint64_t LoadSeq(const fault_table* t);

// Copies `n` bytes with relaxed atomic word loads (safe against a concurrent
// writer; the result is only meaningful if `SeqUnchanged` holds afterwards).
void CopyRelaxed(void* dst, const void* src, size_t n);

// True if the table still has sequence `seq` (acquire fence + reload).
bool SeqUnchanged(const fault_table* t, uint64_t seq);

// Copies `n` bytes at `field` (an address inside `t->config`) into `out` if
// the table is still at sequence `seq` afterwards. False: torn or republished;
// rebuild the index and retry.
bool ReadConfigBytes(const fault_table* t, uint64_t seq, const void* field,
                     size_t n, void* out);

// Copies rules[i] / syscall_rules[i] consistently with sequence `seq`.
bool ReadRule(const fault_table* t, uint64_t seq, int i, fault_rule* out);
bool ReadSyscallRule(const fault_table* t, uint64_t seq, int i,
                     fault_syscall_rule* out);

// Writer side. InitTable zeroes the table and writes magic, version, size,
// start time and an empty configuration at generation 1. Publish copies
// `cfg` in under the seqlock and sets generation = previous + 1 (the
// `generation` field of `cfg` is ignored). Writers must serialise among
// themselves.
void InitTable(fault_table* t, int64_t start_ns);
void Publish(fault_table* t, const fault_config* cfg);

// True if the header (magic, version, size) is one this engine understands.
bool TableValid(const fault_table* t);

// ------------------------------------------------------------ families ---

// Syscall families (Family, kFamilyCount, FamilyName): shim/engine/families.h.

// fault_config.families_mask has bit (1 << family) set for every family the
// seccomp filter was built with.
constexpr uint64_t FamilyBit(int family) { return uint64_t{1} << family; }

// fault_syscall_rule.action
enum SyscallAction : uint8_t { kActionDeny = 1, kActionDelay = 2 };

// fault.v1.SessionBudget.Action
enum BudgetAction : uint32_t {
  kBudgetUnspecified = 0,
  kBudgetDrop = 1,
  kBudgetTimeout = 2,
  kBudgetConnectionError = 3,
};

// fault_rule.blackhole_direction and mutation_direction (fault.v1.Direction;
// unspecified means both).
enum Direction : uint32_t {
  kDirectionUnspecified = 0,
  kDirectionBoth = 1,
  kDirectionUplink = 2,    // program -> peer
  kDirectionDownlink = 3,  // peer -> program
};

// fault_schedule.kind (fault.v1.Schedule.Kind)
enum ScheduleKind : uint32_t {
  kScheduleUnspecified = 0,
  kScheduleAlways = 1,
  kScheduleRamp = 2,
  kScheduleSpike = 3,
  kScheduleFlapping = 4,
  kScheduleIntervals = 5,
};

// ---------------------------------------------------------------- index ---

// Features a rule uses (Index::features, RuleFeatures()).
enum Feature : uint32_t {
  kFeatLatency = 1u << 0,
  kFeatJitter = 1u << 1,
  kFeatLoss = 1u << 2,
  kFeatBurstLoss = 1u << 3,
  kFeatCorrelatedLoss = 1u << 4,
  kFeatRate = 1u << 5,
  kFeatTimeoutConnect = 1u << 6,
  kFeatTimeoutRecv = 1u << 7,
  kFeatConnectionError = 1u << 8,
  kFeatHalfOpen = 1u << 9,
  kFeatBlackhole = 1u << 10,
  kFeatBudget = 1u << 11,
  kFeatDns = 1u << 12,
  kFeatReorder = 1u << 13,
  kFeatDuplicate = 1u << 14,
  kFeatMutation = 1u << 15,
  kFeatSniTarget = 1u << 16,
  kFeatHostnameTarget = 1u << 17,
  kFeatPartition = 1u << 18,
  kFeatSyscall = 1u << 19,
  kFeatHttpError = 1u << 20,  // only the HTTP proxy applies it
  kFeatProtocol = 1u << 21,   // protocol faults: the stream engine applies them
};

// Which features of a rule touch the network path (connect/send/recv).
inline constexpr uint32_t kNetFeatures =
    kFeatLatency | kFeatJitter | kFeatLoss | kFeatBurstLoss |
    kFeatCorrelatedLoss | kFeatRate | kFeatTimeoutConnect | kFeatTimeoutRecv |
    kFeatConnectionError | kFeatHalfOpen | kFeatBlackhole | kFeatBudget |
    kFeatReorder | kFeatDuplicate | kFeatMutation | kFeatProtocol;

// The features `r` uses, except those of its targets (kFeatSniTarget,
// kFeatHostnameTarget), which live in fault_config.targets[] and are added
// by BuildIndex.
uint32_t RuleFeatures(const fault_rule& r);

// Effects the stream engine (supervisor/stream) applies to a connection's
// bytes; connect-time effects (errors, connect timeouts, the SYN's fate)
// are decided where the connect is made. HTTP errors are not among them
// (nor in kNetFeatures): the proxy answers requests itself, and a rule with
// nothing else never sends a connection through the stream engine.
// FAULT_RULE_PER_OP is no feature: it only changes how often a rule with
// one decides.
inline constexpr uint32_t kStreamFeatures =
    kFeatLatency | kFeatJitter | kFeatLoss | kFeatBurstLoss |
    kFeatCorrelatedLoss | kFeatRate | kFeatHalfOpen | kFeatBudget |
    kFeatTimeoutRecv | kFeatBlackhole | kFeatProtocol;

// Whether a TCP connection that `r` selects goes through the stream engine:
// `r` has a stream effect (a mid-stream reset included) and no sni target
// (matched on the first bytes the program sends, so decided in place).
bool HasStreamEffects(const fault_table* t, const fault_rule& r);

// Rule `r`'s span of fault_config.targets[], clamped to the pool (a torn or
// hostile table must not make a reader index outside it): sets *first and
// returns the count.
uint32_t RuleTargetSpan(const fault_rule& r, uint32_t* first);

// A small summary of one published configuration: bit i of a rule mask is
// rules[i] (FAULT_MAX_RULES == 64); bit i of word i/64 of a syscall mask is
// syscall_rules[i]. Readers keep one per process, keyed by `seq`.
struct Index {
  uint64_t seq = 0;  // table sequence it was built from (even)
  uint64_t generation = 0;
  uint64_t families_mask = 0;
  uint32_t n_rules = 0;
  uint32_t n_syscall_rules = 0;
  uint64_t active = 0;    // rules with FAULT_RULE_ACTIVE
  uint64_t net = 0;       // rules with a network effect
  uint64_t dns = 0;       // rules with a DNS effect
  uint64_t hostname = 0;  // rules with a hostname target
  uint32_t features = 0;  // union of RuleFeatures over all rules
  uint32_t pad = 0;
  uint64_t syscall_families =
      0;  // FamilyBit(f) if any syscall rule has family f
  uint64_t family_rules[kFamilyCount][2] = {};     // syscall rules per family
  uint64_t family_owner_rules[kFamilyCount] = {};  // owning rules per family
};

// Builds the index of the current configuration. False if the table is
// invalid or a consistent snapshot could not be read within kSeqRetries.
bool BuildIndex(const fault_table* t, Index* out);

// Rule index of the rule named `name`, or -1.
int FindRuleByName(const fault_table* t, const Index& idx, const char* name);

// ------------------------------------------------------------- matching ---

// What an operation talks to. `addr` holds IPv4 in the first 4 bytes
// (IPv4-mapped IPv6 addresses are normalised to IPv4 by SetEndpointAddress).
struct Endpoint {
  uint8_t family = 0;    // AF_INET, AF_INET6 or 0 (unknown)
  uint8_t protocol = 0;  // FAULT_PROTO_TCP / FAULT_PROTO_UDP
  uint16_t port = 0;     // host byte order
  uint8_t addr[16] = {};
  const char* hostname = nullptr;  // from the resolved-address cache, or null
  const char* sni = nullptr;
};

// Fills family/port/addr from a sockaddr (AF_INET / AF_INET6). False for
// other families.
bool SetEndpointAddress(Endpoint* ep, const void* sockaddr, size_t len);

// The inverse: writes `ep` as a sockaddr_in / sockaddr_in6 into `out`
// (capacity `cap`, e.g. a sockaddr_storage) and returns its length, 0 when
// the family is neither or `cap` is too small.
size_t EndpointSockaddr(const Endpoint& ep, void* out, size_t cap);

// 127.0.0.1 (AF_INET) or ::1 (AF_INET6) at `port`.
Endpoint LoopbackEndpoint(int family, uint16_t port);

// 127.0.0.0/8 or ::1.
bool IsLoopback(const Endpoint& ep);

// "127.0.0.1:8080" / "[::1]:8080" into `out` (capacity n, always
// NUL-terminated).
void FormatEndpoint(const Endpoint& ep, char* out, size_t n);

// "example.com" matches exactly (ASCII case-insensitive); "*.example.com"
// matches any name ending in ".example.com"; "*" matches everything.
bool NameMatches(const char* pattern, const char* name);

bool CidrMatches(const fault_target& t, const Endpoint& ep);
bool TargetMatches(const fault_target& t, const Endpoint& ep);

// The best priority among the targets that match (rules without targets
// match everything with priority 0). False: no target matches.
bool TargetsMatch(const fault_target* targets, uint32_t n, const Endpoint& ep,
                  int32_t* priority);

// Whether rule `i`'s targets (read from the table's pool under the seqlock)
// match `ep`, with the best priority in *priority. kTorn: the table changed
// since `seq` (rebuild the index and retry).
enum class TargetMatch { kNo, kYes, kTorn };
TargetMatch RuleTargetsMatch(const fault_table* t, uint64_t seq, int i,
                             const Endpoint& ep, int32_t* priority);

// Among rules in `candidates` (a rule mask), the one whose targets match
// `ep` with the highest priority; ties go to the lowest index. -1: none, or
// the table changed since idx was built (rebuild and retry).
int PickRule(const fault_table* t, const Index& idx, uint64_t candidates,
             const Endpoint& ep);

// -------------------------------------------------------------- hosts ---

// Resolved-address cache: remembers which hostname an address came from,
// as getaddrinfo answered it. Fixed size, overwrites the oldest entry;
// lock-free (per-entry seqlock), never allocates.
struct HostCache {
  static constexpr int kEntries = 256;
  struct Entry {
    uint64_t seq;
    uint8_t family;
    uint8_t pad[7];
    uint8_t addr[16];
    char name[FAULT_NAME_MAX];
  };
  uint64_t next;
  Entry entries[kEntries];
};

void HostCacheAdd(HostCache* c, const char* name, int family, const void* addr);
// Copies the newest name for (family, addr) into `name` (FAULT_NAME_MAX).
bool HostCacheLookup(const HostCache* c, int family, const void* addr,
                     char* name);

// ------------------------------------------------------------------ rng ---

// SplitMix64's finaliser.
uint64_t Mix64(uint64_t x);

// A counter-based stream of random numbers for one decision: the values
// depend only on (seed, rule, counter), never on time or thread, so the
// same seed, program and inputs give the same decisions in every run.
struct DecisionRng {
  uint64_t key;
  uint64_t i = 0;
  DecisionRng(uint64_t seed, uint32_t rule, uint64_t counter);
  uint64_t Next();
  double Unit();           // [0, 1)
  double OpenUnit();       // (0, 1)
  bool Ppm(uint32_t ppm);  // true with probability ppm / 1e6
  bool Chance(double p);   // true with probability p
};

// The seed of rule `r`: its own if FAULT_RULE_HAS_SEED, else derived from
// the table's start time (a different sequence every run).
uint64_t RuleSeed(const fault_table* t, const fault_rule& r);

// Claims the next decision number of rule `rule` (atomic fetch_add on
// counters.rule_decisions) and returns its RNG stream.
DecisionRng ClaimDecision(fault_table* t, int rule, uint64_t seed);

// ----------------------------------------------------------------- math ---

// libm-free versions of what the distributions need (the shim must not
// pull libm into the target).
namespace math {
double Log(double x);  // natural log, x > 0
double Exp(double x);
double Sqrt(double x);
double Pow(double x, double y);  // x > 0
}  // namespace math

// ---------------------------------------------------------------- delays ---

// Samples the link's latency distribution plus jitter (uniform in
// [-jitter, +jitter]), never negative, scaled by `factor` (a schedule
// ramp, 1: full). 0 when the link has no latency.
int64_t SampleLatency(const fault_link& l, DecisionRng& rng, double factor);

// ------------------------------------------------------------------ loss ---

// Per connection and direction.
struct LossState {
  uint32_t burst_left = 0;  // further packets to lose in the current burst
  uint32_t burst_pos = 0;   // losses so far in the current burst
  uint8_t ge_bad = 0;       // Gilbert-Elliott state
  uint8_t pad[7] = {};
};

// Decides whether the next packet is lost: burst continuation first, then
// Gilbert-Elliott (transition, then loss by state) when configured, else
// Bernoulli(loss_ppm * factor). A new loss starts a burst of
// max(1, burst_loss) packets. *burst_pos is set to the 0-based position of
// this loss in its burst.
bool DecideLoss(const fault_link& l, LossState* s, DecisionRng& rng,
                double factor, uint32_t* burst_pos);

// Default TCP retransmission timeout used for lost TCP "packets".
inline constexpr int64_t kDefaultRtoNs = 200'000'000;
// The stall of the n-th (0-based) loss in a burst: rto * 2^n (capped at 60 s).
int64_t TcpLossStallNs(int64_t rto_ns, uint32_t burst_pos);

// ----------------------------------------------------------- token bucket ---

// Token bucket for one connection and direction, on caller-supplied time.
// Tokens are kept in nano-bits (bits * 1e9) so refills are exact integers.
struct TokenBucket {
  int64_t tokens = 0;  // nano-bits
  int64_t last_ns = 0;
  uint8_t started = 0;
  uint8_t pad[7] = {};
};

// Bucket size in bytes: burst_bytes, or one 10 ms quantum of the rate
// (rate / 8 / 100), at least 1500 bytes.
uint64_t BucketBytes(uint64_t rate_bps, uint64_t burst_bytes);

// Takes up to `want` bytes at time `now`. Returns how many may pass now
// (consumed): nothing until at least min(want, bucket / 2) bytes are
// available, then up to all available. When 0, *wait_ns is how long until
// min(want, bucket / 2) bytes will be available. A new bucket starts full.
uint64_t TokenBucketTake(TokenBucket* b, uint64_t rate_bps,
                         uint64_t burst_bytes, int64_t now, uint64_t want,
                         int64_t* wait_ns);

// --------------------------------------------------------------- when/glob ---

// strace's when= over 1-based call numbers: fires on first, first+step, ...
// up to last (0: no end). first == 0: always. step == 0: every call.
bool WhenFires(uint64_t first, uint64_t last, uint64_t step, uint64_t n);

// fnmatch(3)-style glob without FNM_PATHNAME: *, ?, [set], [!set], [a-z],
// backslash escapes; '*' also matches '/'.
bool GlobMatch(const char* pattern, const char* s);

// Path rule: empty glob matches every path (and no path); a glob without
// '/' is matched against the basename, one with '/' against the full path.
bool PathMatches(const char* glob, const char* path);

// -------------------------------------------------------------- schedule ---

// How strongly a rule with schedule `s` applies `elapsed_ns` after the run
// started: 0 off, 1 full, in between during a ramp.
double ScheduleFactor(const fault_schedule& s, int64_t elapsed_ns);

// ------------------------------------------------------------ syscall rules
// ---

struct SyscallDecision {
  int index = -1;      // syscall_rules[] index that fired
  int rule = -1;       // owning rules[] index
  uint8_t action = 0;  // kActionDeny / kActionDelay
  int32_t err = 0;
  int64_t delay_ns = 0;
};

// Evaluates the syscall rules of `family` for one call on `path` (null or
// "" when not a file) by a thread whose applicable rules are `rule_mask`,
// at `now_ns` (monotonic). Rules are tried in index order; each matching
// rule counts as matched (its count is the `when` call number); the first
// that fires wins (counted as fired, also on its owning rule). Returns true
// and fills *out when one fires.
bool DecideSyscall(fault_table* t, const Index& idx, int family,
                   const char* path, uint64_t rule_mask, int64_t now_ns,
                   SyscallDecision* out);

// --------------------------------------------------------------- network ---

enum class NetOp : uint8_t { kConnect, kAccept, kSend, kRecv };

// Direction indices into ConnState arrays.
inline constexpr int kUplink = 0;
inline constexpr int kDownlink = 1;

// Per-connection state the caller keeps (e.g. in the shim's fd table).
// Zero-initialise; `opened_ns` is set by the first decision.
struct ConnState {
  LossState loss[2];
  TokenBucket bucket[2];
  uint64_t tx_bytes = 0, rx_bytes = 0, ops = 0;
  int64_t opened_ns = 0;
  uint8_t opened = 0;
  uint8_t reset = 0;       // connection_error reset happened: ops fail
  uint8_t half_open = 0;   // peer went silent
  uint8_t budget_hit = 0;  // session budget exhausted
  uint8_t pad[4] = {};
};

// Whether the black hole of `r` (FAULT_RULE_BLACKHOLE) swallows direction
// `dir` (kUplink: what the program sends; kDownlink: what it receives).
// False without a black hole. Only a black hole of both directions takes
// the connect too: one of a single direction lets the connection open and
// then swallows that direction's bytes.
bool BlackholeTakes(const fault_rule& r, int dir);

// What to do with one network operation. Apply in this order: wait
// `delay_ns`; then if `stall_ns` >= 0 wait that long more and fail with
// `err` (0 after a stall: keep waiting / EAGAIN); else if `err` fail with
// it; else if `drop` pretend success without delivering (UDP send, TCP
// blackhole send) or discard the received datagram (UDP recv) / report EOF
// (budget drop on recv); else perform at most `max_bytes` bytes.
struct NetDecision {
  int rule = -1;          // rules[] index, -1: nothing applies
  int64_t delay_ns = 0;   // latency + loss stalls before the op
  int64_t stall_ns = -1;  // >= 0: the op blocks this long, then fails
  int32_t err = 0;
  bool drop = false;
  bool eof = false;        // recv reports end of stream
  bool duplicate = false;  // UDP: the datagram is delivered twice
  uint64_t max_bytes = UINT64_MAX;
  int64_t rate_wait_ns = 0;  // when max_bytes == 0: time until tokens
  uint16_t effect = 0;       // fault_effect for the event (the main one)
  int64_t value = 0;         // its sampled value
  bool fired = false;        // some effect fired
};

// Decides one network operation for the rule `rule` (already picked by
// PickRule and copied with ReadRule) on a connection with state `cs`.
// `bytes` is the size of the send or the buffer of the receive.
// `factor` is ScheduleFactor for the rule (0 means the rule is off: no
// decision is drawn). Draws use ClaimDecision on the rule.
void DecideNet(fault_table* t, const fault_rule& rule, int rule_index, NetOp op,
               int protocol, ConnState* cs, uint64_t bytes, int64_t now_ns,
               double factor, NetDecision* out);

// Accounts `n` bytes that actually moved in `dir` (budget, half-open).
void AccountBytes(ConnState* cs, int dir, uint64_t n);

// ----------------------------------------------------------------- http ---

struct HttpErrorDecision {
  int rule = -1;        // rules[] index, -1: nothing applies
  bool fire = false;    // answer with `status` instead of forwarding
  uint32_t status = 0;  // the rule's http_status when `fire`
};

// Decides whether one HTTP request that rule `rule` (picked and read by the
// caller) selects is answered with the rule's error response. One draw of
// the rule's decision stream (ClaimDecision with RuleSeed) with probability
// http_error_ppm * `factor` (ScheduleFactor; 0: the rule is off, nothing is
// drawn), so the same seed gives the same sequence of answers. Counts the
// rule as matched and, when it fires, as fired. A rule without an HTTP
// error (http_status 0) is not counted and has out->rule == -1.
//
// It does not emit an event: the caller does, with the target it knows
// (the request's host, say) and FAULT_EFFECT_HTTP_ERROR with the status as
// the value. `now_ns` does not enter the draw (a decision depends on the
// seed and its number only, never on timing).
void DecideHttpError(fault_table* t, const fault_rule& rule, int rule_index,
                     int64_t now_ns, double factor, HttpErrorDecision* out);

// ------------------------------------------------------------------ dns ---

struct DnsDecision {
  int64_t delay_ns = 0;
  int eai = 0;  // 0, EAI_AGAIN (timeout) or EAI_NONAME (nxdomain)
  uint16_t effect = 0;
  bool fired = false;
};

// Decides one lookup of `rule` (its DNS fields), scaled by `factor`.
void DecideDns(fault_table* t, const fault_rule& rule, int rule_index,
               double factor, DnsDecision* out);

// ------------------------------------------------------- counters/events ---

void CountMatched(fault_table* t, int rule);
void CountFired(fault_table* t, int rule);

// Appends one event (its `seq` is filled in). Never blocks: a full ring
// counts a drop and returns false.
bool EmitEvent(fault_table* t, const fault_event& ev);

// Consumer side (one consumer): copies the oldest complete event out.
// False if the ring is empty or the next slot is still being written.
bool PopEvent(fault_table* t, fault_event* out);

// --------------------------------------------------------------- redirect ---

// Fills redirects[family_index][port] (see fault_redirect in table.h) for
// a connection about to be connected to the stream engine from loopback
// port `port`, and marks it ARMED (release). `far` is where the engine
// connects (kind FAULT_REDIRECT_CONNECT) or what the events name.
fault_redirect* AnnounceRedirect(fault_table* t, int family_index,
                                 uint16_t port, uint8_t kind, int rule,
                                 const Endpoint& far, int64_t handshake_ns,
                                 int32_t pid);

// Extracts the server name (SNI) from a TLS ClientHello at the start of
// `data` (one record; a truncated hello yields nothing). `name` receives at
// most FAULT_NAME_MAX - 1 characters. False: not a ClientHello with SNI.
bool ParseTlsSni(const uint8_t* data, size_t len, char* name);

// Bounded, always NUL-terminated copy (strlcpy semantics); returns strlen(src).
size_t CopyString(char* dst, const char* src, size_t dst_size);

}  // namespace fault::engine

#endif  // FAULT_SHIM_ENGINE_ENGINE_H_
