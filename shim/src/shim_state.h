// The shim's per-process state: the mapped table, the hot word, the fd
// table and the per-thread state, with the inline checks every wrapper makes
// first (the hot path). Internal to libfault_shim.so; shared by its files.
#ifndef FAULT_SHIM_SRC_SHIM_STATE_H_
#define FAULT_SHIM_SRC_SHIM_STATE_H_

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "fault/shim.h"
#include "shim/src/shim_internal.h"

namespace fault::shim {

namespace eng = ::fault::engine;

// ------------------------------------------------------------------ state ---


// The fd table covers fds 0..kMaxFds-1 (the kernel's default fs.nr_open);
// larger fds are left alone (kOther). It is kept in chunks of kFdChunk fds,
// mapped on first use: a program that uses fds 0..40 touches a few pages.
constexpr int kMaxFds = 1 << 20;
constexpr int kFdChunkShift = 10;
constexpr int kFdChunk = 1 << kFdChunkShift;
constexpr int kMaxGates = 64;
constexpr int64_t kForever = INT64_MAX;

// kOpened: returned by open*/creat*, not classified yet. It is a file or
// "other" (a pipe, a tty, a device), never a TCP/UDP socket (opening a
// socket's path fails with ENXIO), so network rules cannot apply to it.
enum Kind : uint8_t {
  kUnknown = 0,
  kOther = 1,
  kTcp = 2,
  kUdp = 3,
  kFile = 4,
  kOpened = 5
};

// Hot word bits (low 32 bits; the high 32 bits hold the table seq they
// describe).
enum HotBit : uint32_t {
  kHotNet = 1u << 0,        // an active rule has network effects
  kHotNetScoped = 1u << 1,  // a scoped-only rule has network effects
  kHotDns = 1u << 2,        // active DNS effects, or hostname targets
  kHotDnsScoped = 1u << 3,
  kHotSysScoped = 1u << 4,  // a scoped-only rule has syscall rules
  kHotFamilyShift = 8,      // bit 8 + family: an active syscall rule
};

struct Pending {
  uint8_t valid;
  uint8_t fail_after;  // after the wait, fail with d.err
  int64_t ready_ns;
  eng::NetDecision d;
};

struct FdState {
  uint8_t valid;
  uint8_t has_peer;
  uint8_t host_looked;
  uint8_t path_known;
  uint8_t fake_connect;  // a black-holed non-blocking connect is pending
  uint8_t in_gate_list;
  int32_t fake_err;
  int64_t fake_err_ns;
  eng::Endpoint peer;
  char host[FAULT_NAME_MAX];
  int rule;
  uint64_t rule_seq;
  uint64_t rule_mask;
  eng::ConnState cs;
  Pending pend[2];
  int64_t gate_ns[2];  // hide readiness of this direction until then
  uint32_t synth[2];   // events reported once the gate has passed
  int epfd;
  uint64_t epdata;
  uint32_t epevents;
  uint8_t ep_removed;   // taken out of epfd while hidden (level-triggered spin)
  uint8_t dup_next;     // the next receive takes the duplicated datagram
  uint8_t sni_checked;  // the first send was looked at for a ClientHello
  char sni[FAULT_NAME_MAX];  // server name from the ClientHello, "" none
  uint8_t lb_marked;         // our local port is set in table->loopback_ports
  uint16_t lb_port;
  // Handed to the stream engine (see "redirect"): the kernel socket is
  // connected to the engine, which applies the rule's stream effects.
  uint8_t redirected;
  uint8_t redirect_fi;       // redirects[fi][redirect_port] in the table
  uint16_t redirect_port;
  uint8_t has_local;         // `local` holds the address getsockname reports
  eng::Endpoint local;
  char path[256];
};

// Per-fd verdict: "no rule can apply to this call on this connected
// socket (or file)" for the calls of an unscoped thread, valid for one table
// generation. One word, so that the hot path reads it with one load:
//   bits 63..32  low 32 bits of the table seq it was decided under
//   bits 31..8   generation of the fd number (bumped whenever the entry is
//                reset: close, dup2/dup3 over it, socket/accept/open reusing
//                it, connect), so that a verdict decided concurrently with a
//                reset is never stored (compare-and-swap from the word read
//                at the start of the slow path)
//   bit 1        receives (recv, recvfrom, recvmsg, read, readv, pread) go
//                straight to the real call
//   bit 0        sends without a destination (send, sendto(NULL),
//                sendmsg without msg_name, write, writev, pwrite) likewise
constexpr uint64_t kVerdictSend = 1;
constexpr uint64_t kVerdictRecv = 2;
constexpr uint64_t kVerdictGenMask = 0xffffff00u;
constexpr uint64_t kVerdictGenOne = 0x100u;

inline fault_table* g_table = nullptr;
inline int64_t g_start_ns = 0;
inline uint64_t g_hot = 0;          // (seq32 << 32) | HotBit
inline bool g_stub_failed = false;  // FAULT_STUB_PAGE given but not mappable
inline uint32_t g_warned = 0;       // features already warned about
inline int g_warned_scope = 0;

// kFdChunk consecutive fds. Zero-filled pages mean kUnknown, verdict 0 and
// !valid: a chunk needs no initialisation.
struct FdChunk {
  uint64_t verdict[kFdChunk];  // see kVerdictSend
  uint8_t kind[kFdChunk];
  FdState fds[kFdChunk];
};

// Published once each with a compare-and-swap, never unmapped: readers take
// no lock. 8 KiB of zeroed .bss, of which a program touches one page.
inline FdChunk* g_fd_chunks[kMaxFds / kFdChunk];
// Stands in for a chunk that could not be mapped (out of memory), shared by
// the fds of every such chunk. Raw bytes, so that no initialiser touches it:
// zero pages until something writes to it.
alignas(FdChunk) inline unsigned char g_fd_chunk_fallback[sizeof(FdChunk)];

__attribute__((noinline, cold)) inline FdChunk* MapFdChunk(FdChunk** slot) {
  void* p = mmap(nullptr, sizeof(FdChunk), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    static bool warned = false;
    if (!__atomic_exchange_n(&warned, true, __ATOMIC_RELAXED))
      Warn(
          "fault: warning: cannot map the shim's fd table (out of memory); "
          "faults on fds that need it may apply to the wrong fd\n");
    return reinterpret_cast<FdChunk*>(g_fd_chunk_fallback);
  }
  FdChunk* expected = nullptr;
  auto* mine = static_cast<FdChunk*>(p);
  if (__atomic_compare_exchange_n(slot, &expected, mine, false,
                                  __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
    return mine;
  munmap(p, sizeof(FdChunk));  // another thread published one first
  return expected;
}

// The chunk holding `fd` (0 <= fd < kMaxFds), mapped if needed.
inline FdChunk* FdChunkOf(long fd) {
  FdChunk** slot = &g_fd_chunks[fd >> kFdChunkShift];
  FdChunk* c = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
  return __builtin_expect(c != nullptr, 1) ? c : MapFdChunk(slot);
}

// Whether any fd of the chunk holding `fd` was ever looked at; false means
// every fd in it is kUnknown and !valid.
inline bool FdChunkMapped(long fd) {
  return __atomic_load_n(&g_fd_chunks[fd >> kFdChunkShift], __ATOMIC_ACQUIRE) !=
         nullptr;
}

// g_kind[fd], g_verdict[fd], g_fds[fd]: the per-fd state, as arrays indexed
// by fd (callers check 0 <= fd < kMaxFds).
constexpr struct FdKinds {
  uint8_t& operator[](long fd) const {
    return FdChunkOf(fd)->kind[fd & (kFdChunk - 1)];
  }
} g_kind{};
constexpr struct FdVerdicts {
  uint64_t& operator[](long fd) const {
    return FdChunkOf(fd)->verdict[fd & (kFdChunk - 1)];
  }
} g_verdict{};
constexpr struct FdStates {
  FdState& operator[](long fd) const {
    return FdChunkOf(fd)->fds[fd & (kFdChunk - 1)];
  }
} g_fds{};
inline int g_gate_list[kMaxGates];  // fd + 1, 0: free
inline int g_ngates = 0;            // entries in use (approximate upper bound)
inline eng::HostCache g_hosts;      // addresses getaddrinfo answered, by name

struct ThreadState {
  int in_shim = 0;
  int depth = 0;
  char names[FAULT_SCOPE_MAX][FAULT_NAME_MAX] = {};
  uint64_t scope_mask = 0;
  uint64_t scope_seq = 0;
  eng::Index idx;
};
inline constinit thread_local ThreadState t_state
    __attribute__((tls_model("initial-exec")));

inline uint32_t HotBits(const eng::Index& idx) {
  uint32_t h = 0;
  uint64_t act = idx.active, scoped = ~idx.active;
  if (idx.net & act) h |= kHotNet;
  if (idx.net & scoped) h |= kHotNetScoped;
  if ((idx.dns & act) || idx.hostname) h |= kHotDns;
  if (idx.dns & scoped) h |= kHotDnsScoped;
  for (int f = 1; f < eng::kFamilyCount; ++f) {
    if (idx.family_owner_rules[f] & act) h |= 1u << (kHotFamilyShift + f);
    if (idx.family_owner_rules[f] & scoped) h |= kHotSysScoped;
  }
  return h;
}

// The hot check: may any rule apply to a call that needs `active` bits
// (or `scoped` bits when the thread has a scope)?
inline bool MaybeFault(uint32_t active, uint32_t scoped) {
  fault_table* t = g_table;
  if (__builtin_expect(t == nullptr, 1)) return false;
  uint64_t s = __atomic_load_n(&t->seq, __ATOMIC_ACQUIRE);
  uint64_t h = __atomic_load_n(&g_hot, __ATOMIC_RELAXED);
  if (__builtin_expect(
          static_cast<uint32_t>(h >> 32) != static_cast<uint32_t>(s), 0))
    return true;  // republished: the slow path refreshes
  uint32_t need = t_state.depth ? (active | scoped) : active;
  return (static_cast<uint32_t>(h) & need) != 0;
}

// True when fd's verdict says that a call in direction `dir` (kVerdictSend or
// kVerdictRecv, 0: none) goes straight to the real call under table seq
// `seq`. `fd` must be in range.
inline bool VerdictSkips(int fd, uint64_t dir, uint64_t seq) {
  uint64_t v = __atomic_load_n(&g_verdict[fd], __ATOMIC_RELAXED);
  return static_cast<uint32_t>(v >> 32) == static_cast<uint32_t>(seq) &&
         (v & dir) != 0;
}

// VerdictReset of entry `i` of chunk `c` (the caller has looked it up).
inline void VerdictResetIn(FdChunk* c, int i) {
  uint64_t* v = &c->verdict[i];
  uint64_t o = __atomic_load_n(v, __ATOMIC_RELAXED);
  for (int k = 0; k < 1000; ++k) {
    uint64_t n = (o + kVerdictGenOne) & kVerdictGenMask;
    if (__atomic_compare_exchange_n(v, &o, n, true, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED))
      return;
  }
  __atomic_store_n(v, 0, __ATOMIC_RELAXED);
}

// Forgets fd's verdict and starts a new generation of the number. Without a
// table no verdict is ever stored: nothing to do.
inline void VerdictReset(int fd) {
  if (fd < 0 || fd >= kMaxFds || g_table == nullptr) return;
  VerdictResetIn(FdChunkOf(fd), fd & (kFdChunk - 1));
}

// Like MaybeFault for a call on fd in direction `dir`: also false when the
// fd's verdict skips the call.
inline bool MaybeFaultFd(int fd, uint64_t dir, uint32_t active,
                         uint32_t scoped) {
  fault_table* t = g_table;
  if (__builtin_expect(t == nullptr, 1)) return false;
  uint64_t s = __atomic_load_n(&t->seq, __ATOMIC_ACQUIRE);
  uint64_t h = __atomic_load_n(&g_hot, __ATOMIC_RELAXED);
  if (__builtin_expect(
          static_cast<uint32_t>(h >> 32) != static_cast<uint32_t>(s), 0))
    return true;  // republished: the slow path refreshes
  int depth = t_state.depth;
  uint32_t need = depth ? (active | scoped) : active;
  if ((static_cast<uint32_t>(h) & need) == 0) return false;
  return depth != 0 || !VerdictSkips(fd, dir, s);
}

inline uint32_t FamilyHot(int family) {
  return 1u << (kHotFamilyShift + family);
}

inline Kind KindOf(int fd) {
  return (fd >= 0 && fd < kMaxFds) ? static_cast<Kind>(g_kind[fd]) : kOther;
}

inline void SetKind(int fd, Kind k) {
  if (fd < 0 || fd >= kMaxFds) return;
  // One look-up of the chunk for the three arrays (each g_*[fd] would load
  // and test the chunk pointer again).
  FdChunk* c = FdChunkOf(fd);
  const int i = fd & (kFdChunk - 1);
  if (g_table != nullptr) VerdictResetIn(c, i);
  c->kind[i] = k;
  c->fds[i].valid = 0;
}


// -------------------------------------------- shared by the shim's files ---

// ---- shim.cc ----
bool RefreshIndex(ThreadState* ts);
uint64_t ScopeMask(ThreadState* ts);
void WarnFeatures(uint32_t features);
fault_table* MapTable();
int64_t NowNs();
void SleepUntilNs(int64_t until);
// Sleeps `ns` (kForever: until the process ends), resuming after signals.
void SleepNs(int64_t ns);
bool IsNonblock(int fd, int flags);
// SO_RCVTIMEO / SO_SNDTIMEO in ns, 0 if none.
int64_t SockTimeoutNs(int fd, int opt);
FdState& State(int fd);
void LearnPeer(int fd, FdState& st);
// Classifies an fd the shim has not seen. Only on slow paths.
Kind Classify(int fd);
void ResolvePath(int dirfd, const char* path, char* out, size_t n);
// The path of a file descriptor (cached per fd), "" when unknown.
const char* FilePath(int fd);
void Emit(int rule, int syscall_rule, uint16_t op, uint16_t effect,
          int64_t value, const char* target);
void GateListAdd(int fd, FdState& st);
void GateListRemove(int fd, FdState& st);
// Hides readiness of `dir` on `fd` until `until`; afterwards `synth`
// events (0: whatever the kernel reports) are reported.
void GateSet(int fd, FdState& st, int dir, int64_t until, uint32_t synth);
void GateClear(int fd, FdState& st, int dir);
void ResetFd(int fd);
struct Slow;
bool ApplySyscallRulesMasked(const Slow& s, int family, uint16_t op,
                             const char* path, uint64_t mask,
                             const char* target);
bool ApplySyscallRules(const Slow& s, int family, uint16_t op,
                       const char* path);
bool ApplySocketRules(const Slow& s, int fd, Kind kind, int family,
                      uint16_t op, const void* addr, size_t addrlen);

// ---- shim_net.cc ----
bool FromShimmedLoopback(const eng::Endpoint& peer, Kind kind);
bool FromEngine(const eng::Endpoint& peer);
void VerdictStore(const Slow& s, int fd, uint64_t dir);
int PickFor(const Slow& s, FdState* st, const eng::Endpoint& ep, bool cache);
ssize_t NetSend(const Slow& s, int fd, Kind kind, const msghdr* m, int flags,
                uint16_t op);
ssize_t NetRecv(const Slow& s, int fd, Kind kind, msghdr* m, int flags,
                uint16_t op);
int NetConnect(const Slow& s, int fd, Kind kind, const sockaddr* addr,
               socklen_t len);
bool Redirectable(const fault_rule& r);
int RedirectError(const FdState& st);
void AwaitFarConnect(const FdState& st);
bool RedirectAccepted(const eng::Index& idx, int nfd, int flags, int rule,
                      const eng::Endpoint& peer);

// ---- shim_dns.cc ----
int DnsFault(const Slow& s, const char* name);
void RememberAnswers(const char* name, const addrinfo* res);
void RememberHostent(const char* name, const hostent* h);

// One slow-path entry: guards recursion, refreshes the index.
struct Slow {
  ThreadState* ts;
  bool ok = false;        // index current: effects may be applied
  bool entered = false;   // this object set the recursion guard
  uint64_t mask = 0;      // rules that apply to this thread
  uint64_t verdict0 = 0;  // the fd's verdict word when the call began
  Slow() : ts(&t_state) {
    if (ts->in_shim || g_table == nullptr) return;  // nested or no table
    ts->in_shim = 1;
    entered = true;
    if (!RefreshIndex(ts)) return;
    mask = ts->idx.active | ScopeMask(ts);
    ok = true;
  }
  ~Slow() {
    if (entered) ts->in_shim = 0;
  }
  Slow(const Slow&) = delete;
  Slow& operator=(const Slow&) = delete;
  const eng::Index& idx() const { return ts->idx; }
};

// Families the seccomp filter covers but the stub is not there for: the
// shim leaves them to the seccomp layer entirely.
inline bool LeftToSeccomp(const eng::Index& idx, int family) {
  return (idx.families_mask & eng::FamilyBit(family)) && g_stub == nullptr;
}

// True when real syscalls of `family` must go through the stub.
inline bool ViaStub(const eng::Index& idx, int family) {
  return g_stub != nullptr && (idx.families_mask & eng::FamilyBit(family));
}

inline long StubResult(long r) {
  if (r < 0 && r > -4096) {
    errno = static_cast<int>(-r);
    return -1;
  }
  return r;
}

inline long Raw(long nr, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0,
                long a5 = 0, long a6 = 0) {
  return StubResult(g_stub(nr, a1, a2, a3, a4, a5, a6));
}

inline bool IsRedirected(int fd) {
  return fd >= 0 && fd < kMaxFds && g_fds[fd].valid && g_fds[fd].redirected;
}

inline uint32_t SysHot(int family) {
  uint32_t h = FamilyHot(family);
  if (family == eng::kFamilyFdatasync) h |= FamilyHot(eng::kFamilyFsync);
  return h;
}

inline bool GatesPossible() {
  return __atomic_load_n(&g_ngates, __ATOMIC_ACQUIRE) > 0;
}

}  // namespace fault::shim

#endif  // FAULT_SHIM_SRC_SHIM_STATE_H_
