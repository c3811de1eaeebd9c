// libfault_shim.so: applies the policies of the shared-memory table to the
// libc calls of the program it is preloaded into.
//
// Layout of this file:
//   state      the mapped table, the per-process hot word, the fd table,
//              per-thread scope/index state
//   init       constructor: resolve the real functions, map table and stub
//   refresh    per-thread index keyed by the table's seqlock sequence
//   helpers    sleeping, classification of fds, events, real syscalls
//   effects    syscall rules, network send/recv/connect, DNS
//   readiness  poll/select/epoll so that delayed operations do not report
//              readiness early
//   wrappers   the exported libc symbols
//
// The hot path when nothing can match: an fd-kind byte (for fd calls), one
// acquire load of the table's `seq`, one relaxed load of the per-process
// hot word and a predictable branch. No locks, no allocation, no syscalls.
// When a network rule exists but matches none of a socket's traffic, one
// more relaxed load: the fd's cached verdict (g_verdict).
#include "fault/shim.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <linux/futex.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "shim/src/shim_internal.h"

namespace fault::shim {

namespace eng = ::fault::engine;

RealFns real;

// ------------------------------------------------------------------ state ---

namespace {

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

fault_table* g_table = nullptr;
int64_t g_start_ns = 0;
uint64_t g_hot = 0;          // (seq32 << 32) | HotBit
bool g_stub_failed = false;  // FAULT_STUB_PAGE given but not mappable
uint32_t g_warned = 0;       // features already warned about
int g_warned_scope = 0;

// kFdChunk consecutive fds. Zero-filled pages mean kUnknown, verdict 0 and
// !valid: a chunk needs no initialisation.
struct FdChunk {
  uint64_t verdict[kFdChunk];  // see kVerdictSend
  uint8_t kind[kFdChunk];
  FdState fds[kFdChunk];
};

// Published once each with a compare-and-swap, never unmapped: readers take
// no lock. 8 KiB of zeroed .bss, of which a program touches one page.
FdChunk* g_fd_chunks[kMaxFds / kFdChunk];
// Stands in for a chunk that could not be mapped (out of memory), shared by
// the fds of every such chunk. Raw bytes, so that no initialiser touches it:
// zero pages until something writes to it.
alignas(FdChunk) unsigned char g_fd_chunk_fallback[sizeof(FdChunk)];

__attribute__((noinline, cold)) FdChunk* MapFdChunk(FdChunk** slot) {
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
int g_gate_list[kMaxGates];  // fd + 1, 0: free
int g_ngates = 0;            // entries in use (approximate upper bound)
eng::HostCache g_hosts;      // addresses getaddrinfo answered, by name

struct ThreadState {
  int in_shim = 0;
  int depth = 0;
  char names[FAULT_SCOPE_MAX][FAULT_NAME_MAX] = {};
  uint64_t scope_mask = 0;
  uint64_t scope_seq = 0;
  eng::Index idx;
};
constinit thread_local ThreadState t_state
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

// Forgets fd's verdict and starts a new generation of the number. Without a
// table no verdict is ever stored: nothing to do.
inline void VerdictReset(int fd) {
  if (fd < 0 || fd >= kMaxFds || g_table == nullptr) return;
  uint64_t o = __atomic_load_n(&g_verdict[fd], __ATOMIC_RELAXED);
  for (int i = 0; i < 1000; ++i) {
    uint64_t n = (o + kVerdictGenOne) & kVerdictGenMask;
    if (__atomic_compare_exchange_n(&g_verdict[fd], &o, n, true,
                                    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
      return;
  }
  __atomic_store_n(&g_verdict[fd], 0, __ATOMIC_RELAXED);
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
  VerdictReset(fd);
  g_kind[fd] = k;
  g_fds[fd].valid = 0;
}

}  // namespace

// ------------------------------------------------------------------- init ---

void Warn(const char* a, const char* b, const char* c) {
  const char* parts[3] = {a, b, c};
  for (const char* p : parts) {
    if (p == nullptr) continue;
    size_t n = strlen(p);
    while (n > 0) {
      ssize_t w =
          real.write ? real.write(2, p, n) : syscall(SYS_write, 2, p, n);
      if (w <= 0) break;
      p += w;
      n -= static_cast<size_t>(w);
    }
  }
}

#define FAULT_RESOLVE(name) \
  real.name = reinterpret_cast<decltype(real.name)>(dlsym(RTLD_NEXT, #name))

void ResolveReal() {
  if (real.write != nullptr) return;
  FAULT_RESOLVE(connect);
  FAULT_RESOLVE(accept);
  FAULT_RESOLVE(accept4);
  FAULT_RESOLVE(send);
  FAULT_RESOLVE(sendto);
  FAULT_RESOLVE(sendmsg);
  FAULT_RESOLVE(writev);
  FAULT_RESOLVE(pwrite);
  FAULT_RESOLVE(pwrite64);
  FAULT_RESOLVE(recv);
  FAULT_RESOLVE(recvfrom);
  FAULT_RESOLVE(recvmsg);
  FAULT_RESOLVE(read);
  FAULT_RESOLVE(readv);
  FAULT_RESOLVE(pread);
  FAULT_RESOLVE(pread64);
  FAULT_RESOLVE(close);
  FAULT_RESOLVE(fsync);
  FAULT_RESOLVE(fdatasync);
  FAULT_RESOLVE(open);
  FAULT_RESOLVE(open64);
  FAULT_RESOLVE(openat);
  FAULT_RESOLVE(openat64);
  FAULT_RESOLVE(creat);
  FAULT_RESOLVE(creat64);
  FAULT_RESOLVE(socket);
  FAULT_RESOLVE(dup2);
  FAULT_RESOLVE(dup3);
  FAULT_RESOLVE(getsockopt);
  FAULT_RESOLVE(getsockname);
  FAULT_RESOLVE(getpeername);
  FAULT_RESOLVE(getaddrinfo);
  FAULT_RESOLVE(gethostbyname);
  FAULT_RESOLVE(gethostbyname_r);
  FAULT_RESOLVE(poll);
  FAULT_RESOLVE(ppoll);
  FAULT_RESOLVE(select);
  FAULT_RESOLVE(pselect);
  FAULT_RESOLVE(epoll_wait);
  FAULT_RESOLVE(epoll_pwait);
  FAULT_RESOLVE(epoll_ctl);
  // Last: write != null marks the table as complete.
  auto w = reinterpret_cast<decltype(real.write)>(dlsym(RTLD_NEXT, "write"));
  __atomic_store_n(&real.write, w, __ATOMIC_RELEASE);
}

namespace {

bool RefreshIndex(ThreadState* ts);

void WarnFeatures(uint32_t features) {
  static const struct {
    uint32_t bit;
    const char* what;
  } kUnimplemented[] = {
      {eng::kFeatReorder, "packet_reorder"},
      {eng::kFeatMutation, "payload_mutation"},
      // partition(a, b) is the seccomp layer's: fault exec runs a policy
      // with partitions only under it.
  };
  for (const auto& u : kUnimplemented) {
    if (!(features & u.bit)) continue;
    uint32_t old = __atomic_fetch_or(&g_warned, u.bit, __ATOMIC_RELAXED);
    if (old & u.bit) continue;
    // Once per run: the other processes of the run share the table.
    old = __atomic_fetch_or(&g_table->warned, u.bit, __ATOMIC_RELAXED);
    if (old & u.bit) continue;
    Warn("fault: warning: the loaded policy uses ", u.what,
         ", which the preload shim does not implement; it is not applied\n");
  }
}

// Maps the table the environment names: FAULT_TABLE, a path (the
// supervisor's /proc/PID/fd/N) opened and closed again at once, so that the
// program holds no descriptor of it and a child started with its fds closed
// finds it all the same; else FAULT_TABLE_FD, an inherited fd (tests, the
// seccomp test driver). Null, after one line on stderr when a variable is
// set but unusable, when there is none.
fault_table* MapTable() {
  const char* what = FAULT_ENV_TABLE "=";
  const char* value = getenv(FAULT_ENV_TABLE);
  int fd = -1;
  bool own = false;
  if (value != nullptr && value[0] != 0) {
    // Through the stub when there is one: the seccomp filter lets it pass,
    // so that an open=deny(...) policy does not hide the table itself.
    const long flags = O_RDWR | O_CLOEXEC | O_NOCTTY;
    long r = g_stub != nullptr
                 ? g_stub(SYS_openat, AT_FDCWD, reinterpret_cast<long>(value),
                          flags, 0, 0, 0)
                 : syscall(SYS_openat, AT_FDCWD, value, flags);
    fd = static_cast<int>(r);
    if (fd < 0) {
      Warn("fault: cannot open the policy table FAULT_TABLE=", value,
           " (has fault exited?); running without faults\n");
      return nullptr;
    }
    own = true;
  } else {
    value = getenv(FAULT_ENV_TABLE_FD);
    if (value == nullptr || value[0] == 0) return nullptr;
    what = FAULT_ENV_TABLE_FD "=";
    char* end = nullptr;
    long n = strtol(value, &end, 10);
    if (end == value || *end != 0 || n < 0 || n > INT32_MAX) {
      Warn("fault: FAULT_TABLE_FD=", value,
           " is not a file descriptor; running without faults\n");
      return nullptr;
    }
    fd = static_cast<int>(n);
  }
  struct stat st;
  void* p = MAP_FAILED;
  bool sized = fstat(fd, &st) == 0 &&
               static_cast<size_t>(st.st_size) >= sizeof(fault_table);
  if (sized)
    p = mmap(nullptr, sizeof(fault_table), PROT_READ | PROT_WRITE, MAP_SHARED,
             fd, 0);
  if (own) syscall(SYS_close, fd);
  if (!sized) {
    Warn("fault: ", what, value);
    Warn(
        " is not a policy table (closed or too small); running without "
        "faults\n");
    return nullptr;
  }
  if (p == MAP_FAILED) {
    Warn("fault: cannot map the policy table ", what, value);
    Warn("; running without faults\n");
    return nullptr;
  }
  auto* t = static_cast<fault_table*>(p);
  if (!eng::TableValid(t)) {
    munmap(p, sizeof(fault_table));
    Warn("fault: ", what, value);
    Warn(
        " has a wrong magic, layout version or size; running without "
        "faults\n");
    return nullptr;
  }
  return t;
}

__attribute__((constructor)) void ShimInit() {
  ResolveReal();
  if (getenv(FAULT_ENV_TABLE) == nullptr &&
      getenv(FAULT_ENV_TABLE_FD) == nullptr)
    return;
  // The stub first: MapTable opens the table through it.
  MapStubPage(getenv(FAULT_ENV_STUB_PAGE), &g_stub_failed);
  fault_table* t = MapTable();
  if (t == nullptr) return;
  g_start_ns = t->start_ns;
  g_table = t;
  __atomic_fetch_add(&t->attached, 1, __ATOMIC_RELAXED);
  t_state.in_shim = 1;
  RefreshIndex(&t_state);
  t_state.in_shim = 0;
}

// ---------------------------------------------------------------- refresh ---

// Makes ts->idx describe the current table. False: no consistent snapshot
// (the writer died mid-publish); the caller then applies nothing.
bool RefreshIndex(ThreadState* ts) {
  fault_table* t = g_table;
  uint64_t s = eng::LoadSeq(t);
  if (ts->idx.seq == s && s != 0) return true;
  eng::Index idx;
  if (!eng::BuildIndex(t, &idx)) return false;
  ts->idx = idx;
  uint64_t hot = (idx.seq << 32) | HotBits(idx);
  __atomic_store_n(&g_hot, hot, __ATOMIC_RELAXED);
  WarnFeatures(idx.features);
  return true;
}

uint64_t ScopeMask(ThreadState* ts) {
  if (ts->depth == 0) return 0;
  if (ts->scope_seq == ts->idx.seq) return ts->scope_mask;
  uint64_t m = 0;
  for (int i = 0; i < ts->depth; ++i) {
    int r = eng::FindRuleByName(g_table, ts->idx, ts->names[i]);
    if (r >= 0) m |= uint64_t{1} << r;
  }
  ts->scope_mask = m;
  ts->scope_seq = ts->idx.seq;
  return m;
}

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

// ---------------------------------------------------------------- helpers ---

int64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// Sleeps until monotonic time `until`, resuming after signals.
void SleepUntilNs(int64_t until) {
  for (int i = 0; i < 1000000; ++i) {
    struct timespec ts = {static_cast<time_t>(until / 1000000000),
                          static_cast<long>(until % 1000000000)};
    int rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
    if (rc != EINTR) return;
  }
}

// Sleeps `ns` (kForever: until the process ends), resuming after signals.
void SleepNs(int64_t ns) {
  if (ns <= 0) return;
  int64_t now = NowNs();
  int64_t until = ns >= kForever - now ? kForever : now + ns;
  for (;;) {
    int64_t target = until == kForever ? NowNs() + 3600LL * 1000000000 : until;
    struct timespec ts = {static_cast<time_t>(target / 1000000000),
                          static_cast<long>(target % 1000000000)};
    int rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
    if (rc == 0 && until != kForever) return;
    if (rc != 0 && rc != EINTR) return;
    if (until != kForever && NowNs() >= until) return;
  }
}

bool IsNonblock(int fd, int flags) {
  if (flags & MSG_DONTWAIT) return true;
  int fl = fcntl(fd, F_GETFL);
  return fl >= 0 && (fl & O_NONBLOCK);
}

// SO_RCVTIMEO / SO_SNDTIMEO in ns, 0 if none.
int64_t SockTimeoutNs(int fd, int opt) {
  struct timeval tv = {0, 0};
  socklen_t len = sizeof(tv);
  if (real.getsockopt(fd, SOL_SOCKET, opt, &tv, &len) != 0) return 0;
  return int64_t{tv.tv_sec} * 1000000000 + int64_t{tv.tv_usec} * 1000;
}

FdState& State(int fd) {
  FdState& st = g_fds[fd];
  if (!st.valid) {
    memset(static_cast<void*>(&st), 0, sizeof(st));
    st.rule = -1;
    st.epfd = -1;
    st.valid = 1;
  }
  return st;
}

inline bool IsRedirected(int fd) {
  return fd >= 0 && fd < kMaxFds && g_fds[fd].valid && g_fds[fd].redirected;
}

void LearnPeer(int fd, FdState& st) {
  if (st.has_peer) return;
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0 &&
      eng::SetEndpointAddress(&st.peer, &ss, len))
    st.has_peer = 1;
}

// Classifies an fd the shim has not seen (inherited, dup'ed, opened before
// the shim loaded). Only on slow paths.
Kind Classify(int fd) {
  if (fd < 0 || fd >= kMaxFds) return kOther;
  Kind k = static_cast<Kind>(g_kind[fd]);
  if (k != kUnknown && k != kOpened) return k;
  struct stat st;
  k = kOther;
  if (fstat(fd, &st) == 0) {
    if (S_ISSOCK(st.st_mode)) {
      int domain = 0, type = 0;
      socklen_t len = sizeof(int);
      real.getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
      len = sizeof(int);
      real.getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
      if (domain == AF_INET || domain == AF_INET6) {
        if (type == SOCK_STREAM)
          k = kTcp;
        else if (type == SOCK_DGRAM)
          k = kUdp;
      }
    } else if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) ||
               S_ISBLK(st.st_mode)) {
      k = kFile;
    }
  }
  g_kind[fd] = k;
  FdState& s = g_fds[fd];
  s.valid = 0;
  State(fd);
  return k;
}

const char* FilePath(int fd) {
  FdState& st = State(fd);
  if (!st.path_known) {
    char link[32] = "/proc/self/fd/";
    char num[12];
    int n = 0, v = fd;
    do {
      num[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v && n < 11);
    int p = 14;
    while (n) link[p++] = num[--n];
    link[p] = 0;
    ssize_t r = readlink(link, st.path, sizeof(st.path) - 1);
    st.path[r > 0 ? r : 0] = 0;
    st.path_known = 1;
  }
  return st.path;
}

// Absolute form of an open() path (relative to cwd or dirfd).
void ResolvePath(int dirfd, const char* path, char* out, size_t n) {
  out[0] = 0;
  if (path == nullptr) return;
  if (path[0] == '/') {
    eng::CopyString(out, path, n);
    return;
  }
  char base[256];
  base[0] = 0;
  if (dirfd == AT_FDCWD) {
    if (getcwd(base, sizeof(base)) == nullptr) base[0] = 0;
  } else if (dirfd >= 0 && dirfd < kMaxFds) {
    eng::CopyString(base, FilePath(dirfd), sizeof(base));
  }
  size_t l = eng::CopyString(out, base, n);
  if (l + 1 < n && l > 0 && out[l - 1] != '/') {
    out[l++] = '/';
    out[l] = 0;
  }
  if (l < n) eng::CopyString(out + l, path, n - l);
}

void FormatEndpoint(const eng::Endpoint& ep, char* out, size_t n) {
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
  if (ep.family == AF_INET6) l = eng::CopyString(out, "[", n);
  if (l < n) l += eng::CopyString(out + l, a, n - l);
  if (ep.family == AF_INET6 && l < n) l += eng::CopyString(out + l, "]", n - l);
  if (l < n) l += eng::CopyString(out + l, ":", n - l);
  if (l < n) eng::CopyString(out + l, port, n - l);
}

void Emit(int rule, int syscall_rule, uint16_t op, uint16_t effect,
          int64_t value, const char* target) {
  fault_event ev;
  memset(&ev, 0, sizeof(ev));
  ev.time_ns = eng::RealtimeNs();
  ev.pid = static_cast<int32_t>(getpid());
  ev.tid = static_cast<int32_t>(syscall(SYS_gettid));
  ev.rule = static_cast<uint16_t>(rule < 0 ? 0 : rule);
  ev.syscall_rule =
      static_cast<uint16_t>(syscall_rule < 0 ? 0 : syscall_rule + 1);
  ev.op = op;
  ev.effect = effect;
  ev.value = value;
  ev.layer = 1;
  ev.generation = static_cast<uint32_t>(t_state.idx.generation);
  if (target) {
    size_t l = strlen(target);
    // Keep the tail of long paths: the file name is the informative part.
    const char* t =
        l >= FAULT_NAME_MAX ? target + (l - (FAULT_NAME_MAX - 1)) : target;
    eng::CopyString(ev.target, t, sizeof(ev.target));
  }
  eng::EmitEvent(g_table, ev);
}

// ------------------------------------------------------------------ gates ---

void GateListAdd(int fd, FdState& st) {
  if (st.in_gate_list) return;
  for (int i = 0; i < kMaxGates; ++i) {
    int expect = 0;
    if (__atomic_compare_exchange_n(&g_gate_list[i], &expect, fd + 1, false,
                                    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
      st.in_gate_list = 1;
      __atomic_fetch_add(&g_ngates, 1, __ATOMIC_RELEASE);
      return;
    }
  }
}

void GateListRemove(int fd, FdState& st) {
  if (!st.in_gate_list) return;
  for (int i = 0; i < kMaxGates; ++i) {
    int expect = fd + 1;
    if (__atomic_compare_exchange_n(&g_gate_list[i], &expect, 0, false,
                                    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
      __atomic_fetch_sub(&g_ngates, 1, __ATOMIC_RELEASE);
      break;
    }
  }
  st.in_gate_list = 0;
}

// Hides readiness of `dir` on `fd` until `until`; afterwards `synth`
// events (0: whatever the kernel reports) are reported.
void GateSet(int fd, FdState& st, int dir, int64_t until, uint32_t synth) {
  st.gate_ns[dir] = until;
  st.synth[dir] = synth;
  GateListAdd(fd, st);
}

void GateClear(int fd, FdState& st, int dir) {
  st.gate_ns[dir] = 0;
  st.synth[dir] = 0;
  if (st.gate_ns[0] == 0 && st.gate_ns[1] == 0 && !st.fake_connect)
    GateListRemove(fd, st);
}

void ResetFd(int fd) {
  if (fd < 0 || fd >= kMaxFds) return;
  VerdictReset(fd);
  FdState& st = g_fds[fd];
  if (st.valid && st.in_gate_list) GateListRemove(fd, st);
  if (st.valid && st.lb_marked && g_table != nullptr) {
    int proto = g_kind[fd] == kUdp ? 1 : 0;
    __atomic_fetch_and(&g_table->loopback_ports[proto][st.lb_port / 64],
                       ~(uint64_t{1} << (st.lb_port % 64)), __ATOMIC_RELAXED);
    st.lb_marked = 0;
  }
  g_kind[fd] = kUnknown;
  st.valid = 0;
}

// ----------------------------------------------------------- syscall rules ---

// Evaluates syscall rules; returns true if the call must fail (errno set).
// Delays are slept here.
bool ApplySyscallRulesMasked(const Slow& s, int family, uint16_t op,
                             const char* path, uint64_t mask,
                             const char* target) {
  const eng::Index& idx = s.idx();
  eng::SyscallDecision d;
  int64_t now = NowNs();
  bool fired = eng::DecideSyscall(g_table, idx, family, path, mask, now, &d);
  // fsync rules also cover fdatasync: both are the durability call a user
  // means by "fsync".
  if (!fired && family == eng::kFamilyFdatasync)
    fired = eng::DecideSyscall(g_table, idx, eng::kFamilyFsync, path, mask, now,
                               &d);
  if (!fired) return false;
  if (d.action == eng::kActionDelay) {
    Emit(d.rule, d.index, op, FAULT_EFFECT_DELAY, d.delay_ns, target);
    SleepNs(d.delay_ns);
    return false;
  }
  Emit(d.rule, d.index, op, FAULT_EFFECT_DENY, d.err, target);
  errno = d.err ? d.err : EIO;
  return true;
}

bool ApplySyscallRules(const Slow& s, int family, uint16_t op,
                       const char* path) {
  return ApplySyscallRulesMasked(s, family, op, path, s.mask, path);
}

// Syscall rules on a TCP/UDP socket: a rule with targets applies only to
// calls whose peer (or destination) its targets match, as in the seccomp
// layer. `addr` overrides the connected peer (connect, sendto).
bool ApplySocketRules(const Slow& s, int fd, Kind kind, int family, uint16_t op,
                      const void* addr, size_t addrlen) {
  const eng::Index& idx = s.idx();
  uint64_t owners = idx.family_owner_rules[family];
  if (family == eng::kFamilyFdatasync)
    owners |= idx.family_owner_rules[eng::kFamilyFsync];
  owners &= s.mask;
  if (owners == 0) return false;
  eng::Endpoint ep;
  bool have_ep = false;
  if (addr != nullptr) {
    have_ep = eng::SetEndpointAddress(&ep, addr, addrlen);
  } else {
    FdState& st = State(fd);
    LearnPeer(fd, st);
    if (st.has_peer) {
      ep = st.peer;
      have_ep = true;
    }
  }
  ep.protocol = kind == kUdp ? FAULT_PROTO_UDP : FAULT_PROTO_TCP;
  char name[FAULT_NAME_MAX];
  if (have_ep && (idx.hostname & owners) &&
      eng::HostCacheLookup(&g_hosts, ep.family, ep.addr, name))
    ep.hostname = name;
  uint64_t mask = s.mask & ~owners;
  for (uint64_t bits = owners; bits; bits &= bits - 1) {
    int r = __builtin_ctzll(bits);
    uint32_t n;
    if (!eng::ReadConfigBytes(g_table, idx.seq,
                              &g_table->config.rules[r].n_targets, sizeof(n),
                              &n))
      return false;
    if (n == 0) {
      mask |= uint64_t{1} << r;
      continue;
    }
    if (!have_ep) continue;
    int32_t prio;
    switch (eng::RuleTargetsMatch(g_table, idx.seq, r, ep, &prio)) {
      case eng::TargetMatch::kTorn:
        return false;
      case eng::TargetMatch::kYes:
        mask |= uint64_t{1} << r;
        break;
      case eng::TargetMatch::kNo:
        break;
    }
  }
  char target[FAULT_NAME_MAX] = "";
  if (have_ep) FormatEndpoint(ep, target, sizeof(target));
  return ApplySyscallRulesMasked(s, family, op, nullptr, mask, target);
}

inline uint32_t SysHot(int family) {
  uint32_t h = FamilyHot(family);
  if (family == eng::kFamilyFdatasync) h |= FamilyHot(eng::kFamilyFsync);
  return h;
}

// ----------------------------------------------------------------- network ---

size_t IovLen(const iovec* iov, size_t n) {
  size_t t = 0;
  for (size_t i = 0; i < n; ++i) t += iov[i].iov_len;
  return t;
}

// Truncates a copy of `m`'s iov to `max` bytes into `iov_out` (capacity
// kIov). Returns the number of entries.
constexpr int kIov = 64;
size_t TruncIov(const iovec* in, size_t n, size_t max, iovec* out) {
  size_t k = 0, left = max;
  for (size_t i = 0; i < n && k < kIov && left > 0; ++i) {
    out[k] = in[i];
    if (out[k].iov_len > left) out[k].iov_len = left;
    left -= out[k].iov_len;
    ++k;
  }
  return k;
}

// Advances an iov copy by `done` bytes.
size_t AdvanceIov(iovec* iov, size_t n, size_t done) {
  size_t i = 0;
  while (i < n && done >= iov[i].iov_len) {
    done -= iov[i].iov_len;
    ++i;
  }
  if (i < n) {
    iov[i].iov_base = static_cast<char*>(iov[i].iov_base) + done;
    iov[i].iov_len -= done;
  }
  for (size_t j = 0; i + j < n; ++j) iov[j] = iov[i + j];
  return n - i;
}

ssize_t RealSendmsg(const eng::Index& idx, int fd, const msghdr* m, int flags) {
  if (ViaStub(idx, eng::kFamilySend))
    return Raw(SYS_sendmsg, fd, reinterpret_cast<long>(m), flags);
  return real.sendmsg(fd, m, flags);
}

ssize_t RealRecvmsg(const eng::Index& idx, int fd, msghdr* m, int flags) {
  if (ViaStub(idx, eng::kFamilyRecv))
    return Raw(SYS_recvmsg, fd, reinterpret_cast<long>(m), flags);
  return real.recvmsg(fd, m, flags);
}

bool IsLoopback(const eng::Endpoint& ep) {
  if (ep.family == AF_INET) return ep.addr[0] == 127;
  if (ep.family == AF_INET6) {
    static const uint8_t kOne[16] = {0, 0, 0, 0, 0, 0, 0, 0,
                                     0, 0, 0, 0, 0, 0, 0, 1};
    return memcmp(ep.addr, kOne, 16) == 0;
  }
  return false;
}

// Records the local port of a socket this process sends through in the
// run-wide loopback port set (see table.h). An unbound UDP socket is bound
// to the wildcard address and port 0 first, as the kernel's autobind would
// do during the send, so that the port is known before the datagram.
void MarkLoopbackSender(int fd, FdState& st, Kind kind) {
  if (st.lb_marked) return;
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return;
  eng::Endpoint local;
  if (!eng::SetEndpointAddress(&local, &ss, len)) return;
  if (local.port == 0 && kind == kUdp) {
    sockaddr_storage any;
    memset(&any, 0, sizeof(any));
    any.ss_family = ss.ss_family;
    socklen_t alen =
        ss.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    if (bind(fd, reinterpret_cast<sockaddr*>(&any), alen) != 0) return;
    len = sizeof(ss);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0 ||
        !eng::SetEndpointAddress(&local, &ss, len))
      return;
  }
  if (local.port == 0) return;
  bool wildcard = true;
  for (int i = 0; i < (local.family == AF_INET ? 4 : 16); ++i)
    wildcard &= local.addr[i] == 0;
  if (!wildcard && !IsLoopback(local)) {
    st.lb_marked = 0;
    return;
  }
  int proto = kind == kUdp ? 1 : 0;
  __atomic_fetch_or(&g_table->loopback_ports[proto][local.port / 64],
                    uint64_t{1} << (local.port % 64), __ATOMIC_RELAXED);
  st.lb_port = local.port;
  st.lb_marked = 1;
}

// True when traffic from `peer` was sent by a shimmed process of this run
// (its uplink effects already applied).
bool FromShimmedLoopback(const eng::Endpoint& peer, Kind kind) {
  if (!IsLoopback(peer) || peer.port == 0) return false;
  int proto = kind == kUdp ? 1 : 0;
  uint64_t w = __atomic_load_n(&g_table->loopback_ports[proto][peer.port / 64],
                               __ATOMIC_RELAXED);
  return (w >> (peer.port % 64)) & 1;
}

// Records that calls of direction `dir` (kVerdictSend or kVerdictRecv) on
// fd, a file or a socket whose connected peer no rule matches, need nothing
// from the shim in s's table generation: they then go straight to the real call
// (MaybeFaultFd). Only for unscoped threads (the rules that apply are then
// the table's active ones, a function of its seq) and only when no syscall
// rule of the direction's families applies and the seccomp layer covers none
// of them (their calls would have to go through the stub).
void VerdictStore(const Slow& s, int fd, uint64_t dir) {
  if (s.ts->depth != 0 || fd < 0 || fd >= kMaxFds) return;
  const eng::Index& idx = s.idx();
  int fa = dir == kVerdictSend ? eng::kFamilySend : eng::kFamilyRecv;
  int fb = dir == kVerdictSend ? eng::kFamilyWrite : eng::kFamilyRead;
  if ((idx.family_owner_rules[fa] | idx.family_owner_rules[fb]) & s.mask)
    return;
  if (idx.families_mask & (eng::FamilyBit(fa) | eng::FamilyBit(fb))) return;
  uint64_t o = s.verdict0;
  uint64_t keep =
      static_cast<uint32_t>(o >> 32) == static_cast<uint32_t>(idx.seq)
          ? (o & (kVerdictSend | kVerdictRecv))
          : 0;
  uint64_t n = (idx.seq << 32) | (o & kVerdictGenMask) | keep | dir;
  // Fails when the entry was reset meanwhile: then nothing is stored.
  __atomic_compare_exchange_n(&g_verdict[fd], &o, n, false, __ATOMIC_RELAXED,
                              __ATOMIC_RELAXED);
}

bool FromEngine(const eng::Endpoint& peer);

// Picks the rule for `ep` (cached per connection for the peer).
int PickFor(const Slow& s, FdState* st, const eng::Endpoint& ep, bool cache) {
  const eng::Index& idx = s.idx();
  uint64_t cand = idx.net & s.mask;
  if (!cand) return -1;
  if (cache && st->rule_seq == idx.seq && st->rule_mask == s.mask)
    return st->rule;
  if (FromEngine(ep)) {  // the engine applies both directions' effects
    if (cache) {
      st->rule = -1;
      st->rule_seq = idx.seq;
      st->rule_mask = s.mask;
    }
    return -1;
  }
  eng::Endpoint e = ep;
  if (st != nullptr && st->sni[0]) e.sni = st->sni;
  char name[FAULT_NAME_MAX];
  if ((idx.hostname & cand) && e.family != 0 &&
      eng::HostCacheLookup(&g_hosts, e.family, e.addr, name))
    e.hostname = name;
  int r = eng::PickRule(g_table, idx, cand, e);
  if (cache) {
    st->rule = r;
    st->rule_seq = idx.seq;
    st->rule_mask = s.mask;
  }
  return r;
}

// Decides one network op for `rule`. False: nothing applies.
bool Decide(const Slow& s, int rule, eng::NetOp op, Kind kind, FdState& st,
            uint64_t bytes, eng::NetDecision* d, fault_rule* r,
            bool skip_downlink_link = false) {
  if (!eng::ReadRule(g_table, s.idx().seq, rule, r)) return false;
  if (skip_downlink_link) memset(&r->downlink, 0, sizeof(r->downlink));
  int64_t now = NowNs();
  double factor = eng::ScheduleFactor(r->schedule, now - g_start_ns);
  eng::DecideNet(g_table, *r, rule, op,
                 kind == kUdp ? FAULT_PROTO_UDP : FAULT_PROTO_TCP, &st.cs,
                 bytes, now, factor, d);
  return d->rule >= 0;
}

// A token bucket made a call wait: the rate changed what the program sees,
// so it fired. `held` is the bytes that had to wait.
void EmitRate(int rule, uint16_t op, const eng::Endpoint& ep, uint64_t held) {
  eng::CountFired(g_table, rule);
  char target[FAULT_NAME_MAX];
  FormatEndpoint(ep, target, sizeof(target));
  Emit(rule, -1, op, FAULT_EFFECT_RATE, static_cast<int64_t>(held), target);
}

void EmitNet(const eng::NetDecision& d, uint16_t op, const eng::Endpoint& ep) {
  if (!d.fired) return;
  char target[FAULT_NAME_MAX];
  FormatEndpoint(ep, target, sizeof(target));
  Emit(d.rule, -1, op, d.effect, d.value, target);
}

// Send path for TCP/UDP sockets with a matching rule. `m` is the caller's
// message (iov, optional destination, control).
ssize_t NetSend(const Slow& s, int fd, Kind kind, const msghdr* m, int flags,
                uint16_t op) {
  const eng::Index& idx = s.idx();
  FdState& st = State(fd);
  eng::Endpoint ep;
  bool cache = true;
  if (m->msg_name != nullptr && m->msg_namelen > 0 &&
      eng::SetEndpointAddress(&ep, m->msg_name, m->msg_namelen)) {
    cache = false;
  } else {
    LearnPeer(fd, st);
    ep = st.peer;
  }
  ep.protocol = kind == kUdp ? FAULT_PROTO_UDP : FAULT_PROTO_TCP;
  if (IsLoopback(ep)) MarkLoopbackSender(fd, st, kind);
  if (kind == kTcp && !st.sni_checked) {
    // The first bytes a TLS client sends are its ClientHello: remember the
    // server name so that sni targets match this connection from now on.
    st.sni_checked = 1;
    if (m->msg_iovlen > 0 && m->msg_iov[0].iov_base != nullptr &&
        eng::ParseTlsSni(static_cast<const uint8_t*>(m->msg_iov[0].iov_base),
                         m->msg_iov[0].iov_len, st.sni)) {
      st.rule_seq = 0;   // pick again with the name
      VerdictReset(fd);  // a receive verdict was decided without it
    }
  }
  int rule = PickFor(s, &st, ep, cache);
  if (rule < 0) {
    // The sender's loopback port is marked (once) before sends may skip
    // the shim: a receiver's rule may still need to know it.
    if (cache && st.has_peer && (!IsLoopback(ep) || st.lb_marked))
      VerdictStore(s, fd, kVerdictSend);
    return RealSendmsg(idx, fd, m, flags);
  }
  size_t total = IovLen(m->msg_iov, m->msg_iovlen);
  bool nonblock = IsNonblock(fd, flags);
  eng::NetDecision d;
  fault_rule r;
  Pending& p = st.pend[eng::kUplink];
  if (p.valid) {
    if (NowNs() < p.ready_ns) {
      errno = EAGAIN;
      return -1;
    }
    d = p.d;
    p.valid = 0;
    GateClear(fd, st, eng::kUplink);
    if (!eng::ReadRule(g_table, idx.seq, rule, &r))
      return RealSendmsg(idx, fd, m, flags);
    if (p.fail_after) {
      errno = d.err ? d.err : ETIMEDOUT;
      return -1;
    }
  } else {
    if (!Decide(s, rule, eng::NetOp::kSend, kind, st, total, &d, &r))
      return RealSendmsg(idx, fd, m, flags);
    EmitNet(d, op, ep);
    int64_t wait = d.stall_ns == kForever
                       ? kForever
                       : d.delay_ns + (d.stall_ns > 0 ? d.stall_ns : 0);
    bool fail_after = d.stall_ns >= 0;
    if (wait > 0 && nonblock) {
      p.d = d;
      p.d.delay_ns = 0;
      p.d.stall_ns = -1;
      p.fail_after = fail_after;
      p.ready_ns = wait == kForever ? kForever : NowNs() + wait;
      p.valid = 1;
      GateSet(fd, st, eng::kUplink, p.ready_ns,
              fail_after ? (POLLOUT | POLLERR) : 0);
      errno = EAGAIN;
      return -1;
    }
    SleepNs(wait);
    if (fail_after) {
      errno = d.err ? d.err : ETIMEDOUT;
      return -1;
    }
  }
  if (d.err) {
    errno = d.err;
    return -1;
  }
  if (d.drop) {
    eng::AccountBytes(&st.cs, eng::kUplink, total);
    return static_cast<ssize_t>(total);
  }
  size_t limit = total;
  if (d.max_bytes < limit) limit = static_cast<size_t>(d.max_bytes);
  const fault_link& l = r.uplink;
  if (l.rate_bps == 0 && limit == total) {  // unchanged: the caller's message
    ssize_t n = RealSendmsg(idx, fd, m, flags);
    if (n > 0)
      eng::AccountBytes(&st.cs, eng::kUplink, static_cast<uint64_t>(n));
    if (n >= 0 && d.duplicate) {
      int saved = errno;
      RealSendmsg(idx, fd, m, flags);  // the copy; its fate is the network's
      errno = saved;
    }
    return n;
  }
  iovec iov[kIov];
  size_t niov = TruncIov(m->msg_iov, m->msg_iovlen, limit, iov);
  msghdr mm = *m;
  if (l.rate_bps == 0) {
    mm.msg_iov = iov;
    mm.msg_iovlen = niov;
    ssize_t n = RealSendmsg(idx, fd, &mm, flags);
    if (n > 0)
      eng::AccountBytes(&st.cs, eng::kUplink, static_cast<uint64_t>(n));
    return n;
  }
  // Token bucket: datagrams go whole; streams in bucket-sized pieces.
  // Paced on virtual time: the bucket is charged at the times the sender
  // was due, and sleeps are absolute, so a late wake-up (a busy machine)
  // does not lose the tokens that accrued meanwhile.
  size_t done = 0;
  size_t left = IovLen(iov, niov);
  int64_t vnow = NowNs();
  if (vnow < st.cs.bucket[eng::kUplink].last_ns)
    vnow = st.cs.bucket[eng::kUplink].last_ns;
  for (int rounds = 0; left > 0; ++rounds) {
    int64_t wait;
    uint64_t want = left;
    uint64_t got;
    if (kind == kUdp) {
      got = eng::TokenBucketTake(&st.cs.bucket[eng::kUplink], l.rate_bps,
                                 l.rate_burst_bytes, vnow, want, &wait);
      if (got > 0 &&
          got < want) {  // take the rest as debt: datagrams are whole
        st.cs.bucket[eng::kUplink].tokens -=
            static_cast<int64_t>(want - got) * 8 * 1000000000LL;
        got = want;
      }
    } else {
      got = eng::TokenBucketTake(&st.cs.bucket[eng::kUplink], l.rate_bps,
                                 l.rate_burst_bytes, vnow, want, &wait);
    }
    if (got == 0) {
      if (rounds == 0) EmitRate(rule, op, ep, left);
      if (done > 0 && nonblock) break;
      if (nonblock) {
        GateSet(fd, st, eng::kUplink, NowNs() + wait, 0);
        errno = EAGAIN;
        return -1;
      }
      vnow += wait;
      SleepUntilNs(vnow);
      continue;
    }
    iovec part[kIov];
    size_t np = TruncIov(iov, niov, got, part);
    mm.msg_iov = part;
    mm.msg_iovlen = np;
    ssize_t n = RealSendmsg(idx, fd, &mm, flags);
    if (n < 0) {
      if (done > 0) break;
      return -1;
    }
    eng::AccountBytes(&st.cs, eng::kUplink, static_cast<uint64_t>(n));
    done += static_cast<size_t>(n);
    left -= static_cast<size_t>(n);
    niov = AdvanceIov(iov, niov, static_cast<size_t>(n));
    mm.msg_control = nullptr;  // ancillary data goes with the first piece
    mm.msg_controllen = 0;
    if (static_cast<uint64_t>(n) < got || nonblock) break;
  }
  if (done > 0 && d.duplicate) {
    int saved = errno;
    RealSendmsg(idx, fd, m, flags);
    errno = saved;
  }
  return static_cast<ssize_t>(done);
}

// Receive path for TCP/UDP sockets. `m` is the caller's message; its
// msg_name (if any) is filled.
ssize_t NetRecv(const Slow& s, int fd, Kind kind, msghdr* m, int flags,
                uint16_t op) {
  const eng::Index& idx = s.idx();
  FdState& st = State(fd);
  LearnPeer(fd, st);
  // O_NONBLOCK costs a syscall: only asked when a rule may apply.
  int nb_known = -1;
  auto nonblock_now = [&]() {
    if (nb_known < 0) nb_known = IsNonblock(fd, flags) ? 1 : 0;
    return nb_known == 1;
  };
  size_t total = IovLen(m->msg_iov, m->msg_iovlen);
  for (int attempt = 0; attempt < 1 << 20; ++attempt) {
    if (st.dup_next) {  // the copy of a duplicated datagram, as it is
      ssize_t n = RealRecvmsg(idx, fd, m, flags);
      if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) st.dup_next = 0;
      return n;
    }
    eng::Endpoint ep = st.peer;
    bool cache = true;
    bool peeked = false;
    if (kind == kUdp && !st.has_peer) {
      // The rule depends on the sender: look at the next datagram first.
      sockaddr_storage from;
      char byte;
      iovec one = {&byte, 1};
      msghdr pm;
      memset(&pm, 0, sizeof(pm));
      pm.msg_name = &from;
      pm.msg_namelen = sizeof(from);
      pm.msg_iov = &one;
      pm.msg_iovlen = 1;
      ssize_t n = RealRecvmsg(idx, fd, &pm,
                              MSG_PEEK | (nonblock_now() ? MSG_DONTWAIT : 0));
      if (n < 0) return -1;
      if (!eng::SetEndpointAddress(&ep, &from, pm.msg_namelen))
        return RealRecvmsg(idx, fd, m, flags);
      cache = false;
      peeked = true;
    }
    ep.protocol = kind == kUdp ? FAULT_PROTO_UDP : FAULT_PROTO_TCP;
    int rule = PickFor(s, &st, ep, cache);
    if (rule < 0) {
      if (cache && st.has_peer) VerdictStore(s, fd, kVerdictRecv);
      return RealRecvmsg(idx, fd, m, flags);
    }
    const bool nonblock = nonblock_now();
    fault_rule r;
    eng::NetDecision d;
    Pending& p = st.pend[eng::kDownlink];
    bool delay_after = false;
    if (p.valid) {
      if (NowNs() < p.ready_ns) {
        errno = EAGAIN;
        return -1;
      }
      d = p.d;
      p.valid = 0;
      GateClear(fd, st, eng::kDownlink);
      if (!eng::ReadRule(g_table, idx.seq, rule, &r))
        return RealRecvmsg(idx, fd, m, flags);
      if (FromShimmedLoopback(ep, kind))
        memset(&r.downlink, 0, sizeof(r.downlink));
      if (p.fail_after) {
        errno = d.err ? d.err : ETIMEDOUT;
        return -1;
      }
    } else {
      if (nonblock && !peeked) {
        // Decide only when there is something to receive, unless the rule
        // stalls receives regardless (timeout, black hole, half-open).
        char byte;
        ssize_t n = real.recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          fault_rule probe;
          if (!eng::ReadRule(g_table, idx.seq, rule, &probe)) return -1;
          if (!(probe.timeout_recv_ns > 0 ||
                (probe.flags & FAULT_RULE_BLACKHOLE) || st.cs.half_open ||
                st.cs.budget_hit || st.cs.reset)) {
            errno = EAGAIN;
            return -1;
          }
        }
      }
      if (!Decide(s, rule, eng::NetOp::kRecv, kind, st, total, &d, &r,
                  FromShimmedLoopback(ep, kind)))
        return RealRecvmsg(idx, fd, m, flags);
      EmitNet(d, op, ep);
      if (d.stall_ns >= 0) {
        int64_t stall = d.stall_ns;
        int err = d.err ? d.err : ETIMEDOUT;
        if (nonblock) {
          p.d = d;
          p.fail_after = 1;
          p.ready_ns = stall == kForever ? kForever : NowNs() + stall;
          p.valid = 1;
          GateSet(fd, st, eng::kDownlink, p.ready_ns,
                  stall == kForever ? 0 : (POLLIN | POLLERR));
          errno = EAGAIN;
          return -1;
        }
        int64_t rcvtimeo = SockTimeoutNs(fd, SO_RCVTIMEO);
        if (rcvtimeo > 0 && rcvtimeo < stall) {
          SleepNs(rcvtimeo);
          errno = EAGAIN;
          return -1;
        }
        SleepNs(stall);
        errno = err;
        return -1;
      }
      if (d.delay_ns > 0) {
        if (nonblock) {
          p.d = d;
          p.d.delay_ns = 0;
          p.fail_after = 0;
          p.ready_ns = NowNs() + d.delay_ns;
          p.valid = 1;
          GateSet(fd, st, eng::kDownlink, p.ready_ns, 0);
          errno = EAGAIN;
          return -1;
        }
        delay_after = true;  // blocking: the data arrives, then is held
      }
    }
    if (d.err) {
      errno = d.err;
      return -1;
    }
    if (d.eof) return 0;
    size_t limit = total;
    if (d.max_bytes < limit) limit = static_cast<size_t>(d.max_bytes);
    const fault_link& l = r.downlink;
    if (l.rate_bps != 0 && kind == kTcp) {
      int64_t vnow = NowNs();
      if (vnow < st.cs.bucket[eng::kDownlink].last_ns)
        vnow = st.cs.bucket[eng::kDownlink].last_ns;
      for (int rounds = 0; rounds < 1 << 20; ++rounds) {
        int64_t wait;
        uint64_t got =
            eng::TokenBucketTake(&st.cs.bucket[eng::kDownlink], l.rate_bps,
                                 l.rate_burst_bytes, vnow, limit, &wait);
        if (got > 0) {
          limit = static_cast<size_t>(got);
          break;
        }
        if (rounds == 0) EmitRate(rule, op, ep, limit);
        if (nonblock) {
          GateSet(fd, st, eng::kDownlink, NowNs() + wait, 0);
          errno = EAGAIN;
          return -1;
        }
        vnow += wait;
        SleepUntilNs(vnow);
      }
    }
    ssize_t n;
    // A duplicated datagram is delivered by peeking: it stays queued and
    // the next receive takes it again.
    int rflags = (d.duplicate && kind == kUdp) ? (flags | MSG_PEEK) : flags;
    if (limit == total) {  // unchanged: the caller's message
      n = RealRecvmsg(idx, fd, m, rflags);
    } else {
      iovec iov[kIov];
      msghdr mm = *m;
      mm.msg_iov = iov;
      mm.msg_iovlen = TruncIov(m->msg_iov, m->msg_iovlen, limit, iov);
      n = RealRecvmsg(idx, fd, &mm, rflags);
      m->msg_namelen = mm.msg_namelen;
      m->msg_controllen = mm.msg_controllen;
      m->msg_flags = mm.msg_flags;
    }
    if (n < 0) return -1;
    if (d.drop) {  // a lost datagram: received and discarded
      if (delay_after) delay_after = false;
      continue;
    }
    if ((rflags & MSG_PEEK) && !(flags & MSG_PEEK)) st.dup_next = 1;
    eng::AccountBytes(&st.cs, eng::kDownlink, static_cast<uint64_t>(n));
    if (l.rate_bps != 0 && kind == kUdp && n > 0) {
      // Datagrams are whole: pay for the received size before returning.
      int64_t wait;
      for (int rounds = 0; rounds < 1 << 20; ++rounds) {
        uint64_t got = eng::TokenBucketTake(
            &st.cs.bucket[eng::kDownlink], l.rate_bps, l.rate_burst_bytes,
            NowNs(), static_cast<uint64_t>(n), &wait);
        if (got > 0) {
          if (got < static_cast<uint64_t>(n))
            st.cs.bucket[eng::kDownlink].tokens -=
                static_cast<int64_t>(static_cast<uint64_t>(n) - got) * 8 *
                1000000000LL;
          break;
        }
        if (rounds == 0) EmitRate(rule, op, ep, static_cast<uint64_t>(n));
        SleepNs(wait);
      }
    }
    if (delay_after) SleepNs(d.delay_ns);
    return n;
  }
  errno = EAGAIN;
  return -1;
}

// ---------------------------------------------------------------- redirect ---
//
// TCP connections that a rule with stream effects selects are handed to the
// stream engine in the supervisor (supervisor/stream): the program's socket
// is connected to the engine, which connects to the real peer and holds the
// bytes back as the rule says. The program then waits on a real kernel
// socket, so edge-triggered epoll, io_uring and every other way of waiting
// see the delay as the network's own.

bool Redirectable(const fault_rule& r) {
  return eng::HasStreamEffects(g_table, r);
}

// The engine's listener for sockets of `family` (0: none).
uint16_t EnginePort(int family) {
  if (family == AF_INET)
    return __atomic_load_n(&g_table->engine_port4, __ATOMIC_ACQUIRE);
  if (family == AF_INET6)
    return __atomic_load_n(&g_table->engine_port6, __ATOMIC_ACQUIRE);
  return 0;
}

socklen_t LoopbackAddress(int family, uint16_t port, sockaddr_storage* ss) {
  memset(ss, 0, sizeof(*ss));
  if (family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(ss);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a->sin_port = htons(port);
    return sizeof(*a);
  }
  auto* a = reinterpret_cast<sockaddr_in6*>(ss);
  a->sin6_family = AF_INET6;
  a->sin6_addr = in6addr_loopback;
  a->sin6_port = htons(port);
  return sizeof(*a);
}

// True when `peer` is one of the engine's own connections to a far end:
// the engine applies both directions' effects to it.
bool FromEngine(const eng::Endpoint& peer) {
  if (!IsLoopback(peer) || peer.port == 0) return false;
  uint64_t w = __atomic_load_n(&g_table->engine_ports[peer.port / 64],
                               __ATOMIC_RELAXED);
  return (w >> (peer.port % 64)) & 1;
}

// Binds `fd` to a loopback port (unless it is bound to one already) and
// returns that port, or 0 when the socket is bound elsewhere or cannot be.
uint16_t LoopbackPortOf(int fd, int* family) {
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (real.getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    return 0;
  eng::Endpoint local;
  if (!eng::SetEndpointAddress(&local, &ss, len)) return 0;
  *family = ss.ss_family;
  if (local.port != 0) return IsLoopback(local) ? local.port : 0;
  sockaddr_storage lo;
  socklen_t lolen = LoopbackAddress(ss.ss_family, 0, &lo);
  if (bind(fd, reinterpret_cast<sockaddr*>(&lo), lolen) != 0) return 0;
  len = sizeof(ss);
  if (real.getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0 ||
      !eng::SetEndpointAddress(&local, &ss, len))
    return 0;
  return local.port;
}

fault_redirect* Announce(int family, uint16_t port, uint8_t kind, int rule,
                         const eng::Endpoint& far, int64_t handshake_ns) {
  return eng::AnnounceRedirect(g_table, family == AF_INET6, port, kind, rule,
                               far, handshake_ns, getpid());
}

void MarkRedirected(FdState& st, int family, uint16_t port,
                    const eng::Endpoint& peer) {
  st.redirected = 1;
  st.redirect_fi = family == AF_INET6 ? 1 : 0;
  st.redirect_port = port;
  st.peer = peer;
  st.has_peer = 1;
}

// The error the engine ended a redirected connection with, when the kernel
// only says that it was reset (0: nothing better to say).
int RedirectError(const FdState& st) {
  if (!st.valid || !st.redirected) return 0;
  const fault_redirect& r = g_table->redirects[st.redirect_fi][st.redirect_port];
  if (__atomic_load_n(&r.state, __ATOMIC_ACQUIRE) != FAULT_REDIRECT_FAILED)
    return 0;
  return __atomic_load_n(&r.err, __ATOMIC_RELAXED);
}

// Waits (a blocking connect) until the engine has reached the far end or
// failed to. Returns 0 or an errno.
int AwaitFarEnd(int fd, fault_redirect* r) {
  int64_t sndtimeo = SockTimeoutNs(fd, SO_SNDTIMEO);
  int64_t until = sndtimeo > 0 ? NowNs() + sndtimeo : kForever;
  for (int i = 0; i < 1 << 20; ++i) {
    uint32_t st = __atomic_load_n(&r->state, __ATOMIC_ACQUIRE);
    if (st == FAULT_REDIRECT_OPEN) return 0;
    if (st == FAULT_REDIRECT_FAILED) {
      int e = __atomic_load_n(&r->err, __ATOMIC_RELAXED);
      return e != 0 ? e : ECONNREFUSED;
    }
    if (st != FAULT_REDIRECT_ARMED && st != FAULT_REDIRECT_CLAIMED &&
        st != FAULT_REDIRECT_CONNECTED)
      return ECONNRESET;  // the port was announced anew: not ours any more
    int64_t now = NowNs();
    if (now >= until) return EINPROGRESS;  // as Linux after SO_SNDTIMEO
    // A bounded wait: a supervisor that died never wakes us.
    int64_t step = until - now < 100000000 ? until - now : 100000000;
    struct timespec ts = {0, static_cast<long>(step)};
    syscall(SYS_futex, &r->state, FUTEX_WAIT, st, &ts, nullptr, 0);
    if (i > 0 && kill(static_cast<pid_t>(g_table->supervisor_pid), 0) != 0 &&
        errno == ESRCH)
      return ECONNREFUSED;
  }
  return ETIMEDOUT;
}

// A program asks SO_ERROR once its non-blocking connect to the engine is
// writable (at once, on loopback). Without the engine in between it would
// have become writable only when the far end answered: wait for that answer
// here (bounded), so that a refusal is reported where the program looks for
// it. The emulated handshake time is not waited for: the engine holds the
// first bytes back instead.
void AwaitFarConnect(const FdState& st) {
  const fault_redirect& r = g_table->redirects[st.redirect_fi][st.redirect_port];
  int64_t until = NowNs() + 10'000'000'000LL;
  for (int i = 0; i < 1000; ++i) {
    uint32_t s = __atomic_load_n(&r.state, __ATOMIC_ACQUIRE);
    if (s != FAULT_REDIRECT_ARMED && s != FAULT_REDIRECT_CLAIMED) return;
    int64_t now = NowNs();
    if (now >= until) return;
    struct timespec ts = {0, 10'000'000};
    syscall(SYS_futex, &r.state, FUTEX_WAIT, s, &ts, nullptr, 0);
  }
}

// connect() of a TCP socket whose rule has stream effects: through the
// engine. `connect_to` performs the real connect to another address.
// False: the socket cannot be redirected (no engine for its family, bound
// to a non-loopback address); the caller applies the effects in place.
template <typename ConnectTo>
bool RedirectConnect(int fd, FdState& st, const eng::Endpoint& ep, int rule,
                     int64_t handshake_ns, bool nonblock, ConnectTo connect_to,
                     int* result) {
  int family = 0;
  uint16_t port = LoopbackPortOf(fd, &family);
  uint16_t eport = port != 0 ? EnginePort(family) : 0;
  if (eport == 0) return false;
  fault_redirect* r =
      Announce(family, port, FAULT_REDIRECT_CONNECT, rule, ep, handshake_ns);
  sockaddr_storage engine;
  socklen_t elen = LoopbackAddress(family, eport, &engine);
  int rc = connect_to(reinterpret_cast<sockaddr*>(&engine), elen);
  if (rc != 0 && errno != EINPROGRESS) {
    int e = errno;
    __atomic_store_n(&r->state, FAULT_REDIRECT_FREE, __ATOMIC_RELEASE);
    errno = e;
    *result = -1;
    return true;
  }
  MarkRedirected(st, family, port, ep);
  if (nonblock) {
    *result = rc;
    return true;
  }
  int e = AwaitFarEnd(fd, r);
  *result = e == 0 ? 0 : -1;
  if (e != 0) errno = e;
  return true;
}

// accept() returned `nfd`, a connection that a rule with stream effects
// selects: the engine takes it over, and `nfd` becomes a socket connected
// to the engine. False: left as it is (effects in place).
bool RedirectAccepted(int nfd, int flags, int rule, const eng::Endpoint& peer) {
  sockaddr_storage orig;
  socklen_t olen = sizeof(orig);
  if (real.getsockname(nfd, reinterpret_cast<sockaddr*>(&orig), &olen) != 0)
    return false;
  int family = orig.ss_family;
  uint16_t eport = EnginePort(family);
  const char* name = g_table->engine_control;
  size_t nlen = strnlen(name, FAULT_ENGINE_NAME_MAX);
  if (eport == 0 || nlen == 0 || nlen >= FAULT_ENGINE_NAME_MAX) return false;
  int s = real.socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return false;
  int fam = 0;
  uint16_t port = LoopbackPortOf(s, &fam);
  bool ok = port != 0;
  fault_redirect* r = nullptr;
  // Events name the service that was reached (this listener's address),
  // so that a run's summary adds up per service, not per client port.
  eng::Endpoint service;
  if (ok && !eng::SetEndpointAddress(&service, &orig, olen)) ok = false;
  if (ok) r = Announce(family, port, FAULT_REDIRECT_ACCEPTED, rule, service, 0);
  if (ok) {
    fault_handoff msg = {port, static_cast<uint8_t>(family == AF_INET6), 0,
                         static_cast<int32_t>(getpid())};
    iovec iov = {&msg, sizeof(msg)};
    alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof(cbuf));
    sockaddr_un un;
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    memcpy(un.sun_path + 1, name, nlen);
    msghdr m;
    memset(&m, 0, sizeof(m));
    m.msg_name = &un;
    m.msg_namelen =
        static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + nlen);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = cbuf;
    m.msg_controllen = sizeof(cbuf);
    cmsghdr* cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &nfd, sizeof(int));
    int ctl = real.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ok = ctl >= 0 && real.sendmsg(ctl, &m, MSG_DONTWAIT) ==
                         static_cast<ssize_t>(sizeof(msg));
    if (ctl >= 0) real.close(ctl);
  }
  if (ok) {
    sockaddr_storage engine;
    socklen_t elen = LoopbackAddress(family, eport, &engine);
    ok = real.connect(s, reinterpret_cast<sockaddr*>(&engine), elen) == 0;
  }
  // The engine holds the accepted socket now; `s` takes its number.
  if (ok && (flags & SOCK_NONBLOCK))
    ok = fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK) == 0;
  if (ok)
    ok = real.dup3(s, nfd, (flags & SOCK_CLOEXEC) ? O_CLOEXEC : 0) == nfd;
  if (!ok && r != nullptr)
    __atomic_store_n(&r->state, FAULT_REDIRECT_FREE, __ATOMIC_RELEASE);
  real.close(s);
  if (!ok) return false;
  FdState& st = State(nfd);
  MarkRedirected(st, family, port, peer);
  st.has_local = eng::SetEndpointAddress(&st.local, &orig, olen) ? 1 : 0;
  return true;
}

int NetConnect(const Slow& s, int fd, Kind kind, const sockaddr* addr,
               socklen_t len) {
  const eng::Index& idx = s.idx();
  auto real_connect = [&]() -> int {
    if (ViaStub(idx, eng::kFamilyConnect))
      return static_cast<int>(
          Raw(SYS_connect, fd, reinterpret_cast<long>(addr), len));
    return real.connect(fd, addr, len);
  };
  FdState& st = State(fd);
  if (st.fake_connect) {  // connect() again on a black-holed attempt
    if (NowNs() < st.fake_err_ns) {
      errno = EALREADY;
      return -1;
    }
    st.fake_connect = 0;
    GateClear(fd, st, eng::kUplink);
    GateClear(fd, st, eng::kDownlink);
    errno = st.fake_err;
    return -1;
  }
  eng::Endpoint ep;
  if (!eng::SetEndpointAddress(&ep, addr, len)) return real_connect();
  ep.protocol = kind == kUdp ? FAULT_PROTO_UDP : FAULT_PROTO_TCP;
  st.peer = ep;
  st.has_peer = 1;
  st.rule_seq = 0;
  st.host_looked = 0;
  int rule = PickFor(s, &st, ep, true);
  if (rule < 0) return real_connect();
  eng::NetDecision d;
  fault_rule r;
  if (kind == kUdp) {
    // A UDP connect sends nothing: only set the peer; effects apply per
    // datagram.
    return real_connect();
  }
  auto connect_to = [&](const sockaddr* a, socklen_t l) -> int {
    if (ViaStub(idx, eng::kFamilyConnect))
      return static_cast<int>(
          Raw(SYS_connect, fd, reinterpret_cast<long>(a), l));
    return real.connect(fd, a, l);
  };
  memset(&r, 0, sizeof(r));
  if (!Decide(s, rule, eng::NetOp::kConnect, kind, st, 0, &d, &r)) {
    // Off by its schedule now, maybe not later: the engine decides per
    // chunk.
    int rc;
    if (r.name[0] != 0 && Redirectable(r) &&
        RedirectConnect(fd, st, ep, rule, 0, IsNonblock(fd, 0), connect_to,
                        &rc))
      return rc;
    return real_connect();
  }
  EmitNet(d, FAULT_OP_CONNECT, ep);
  bool nonblock = IsNonblock(fd, 0);
  if (d.stall_ns >= 0) {  // black-holed SYN: never reaches the kernel
    int err = d.err ? d.err : ETIMEDOUT;
    if (nonblock) {
      st.fake_connect = 1;
      st.fake_err = err;
      st.fake_err_ns = NowNs() + d.stall_ns;
      uint32_t ev = POLLIN | POLLOUT | POLLERR | POLLHUP;
      GateSet(fd, st, eng::kUplink, st.fake_err_ns, ev);
      GateSet(fd, st, eng::kDownlink, st.fake_err_ns, ev);
      errno = EINPROGRESS;
      return -1;
    }
    int64_t sndtimeo = SockTimeoutNs(fd, SO_SNDTIMEO);
    if (sndtimeo > 0 && sndtimeo < d.stall_ns) {
      SleepNs(sndtimeo);
      errno =
          EINPROGRESS;  // what Linux reports when SO_SNDTIMEO cuts a connect
      return -1;
    }
    SleepNs(d.stall_ns);
    errno = err;
    return -1;
  }
  if (d.err) {
    errno = d.err;
    return -1;
  }
  if (Redirectable(r)) {
    int rc;
    if (RedirectConnect(fd, st, ep, rule, d.delay_ns, nonblock, connect_to,
                        &rc))
      return rc;
  }
  if (d.delay_ns > 0) {
    if (nonblock) {
      int rc = real_connect();
      if (rc == 0 || errno == EINPROGRESS) {
        GateSet(fd, st, eng::kUplink, NowNs() + d.delay_ns, 0);
        errno = EINPROGRESS;
      }
      return -1;
    }
    SleepNs(d.delay_ns);
  }
  return real_connect();
}

// ---------------------------------------------------------------- readiness
// ---

inline bool GatesPossible() {
  return __atomic_load_n(&g_ngates, __ATOMIC_ACQUIRE) > 0;
}

// For fd: events to hide now, events to add now, and the next time this
// changes (0: never).
void GateView(int fd, int64_t now, uint32_t* hide, uint32_t* add,
              int64_t* next) {
  *hide = 0;
  *add = 0;
  if (fd < 0 || fd >= kMaxFds) return;
  FdState& st = g_fds[fd];
  if (!st.valid || !st.in_gate_list) return;
  // The normal-data variants are the same readiness (curl polls for
  // POLLWRNORM, for instance).
  static const uint32_t kDirEvents[2] = {POLLOUT | POLLWRNORM | POLLWRBAND,
                                         POLLIN | POLLRDNORM | POLLRDBAND};
  for (int dir = 0; dir < 2; ++dir) {
    int64_t g = st.gate_ns[dir];
    if (g == 0) continue;
    if (now < g) {
      *hide |= kDirEvents[dir];
      if (st.fake_connect)
        *hide |= POLLIN | POLLOUT | POLLERR | POLLHUP | POLLRDHUP;
      if (*next == 0 || g < *next) *next = g;
    } else if (st.synth[dir]) {
      uint32_t e = st.synth[dir];
      if (e & POLLOUT) e |= POLLWRNORM;
      if (e & POLLIN) e |= POLLRDNORM;
      *add |= e;
    } else {
      GateClear(fd, st, dir);  // a plain gate that passed
    }
  }
}

int64_t TimeoutToDeadline(int timeout_ms, int64_t now) {
  if (timeout_ms < 0) return kForever;
  return now + int64_t{timeout_ms} * 1000000;
}

int MsUntil(int64_t deadline, int64_t now) {
  if (deadline == kForever) return -1;
  int64_t d = deadline - now;
  if (d <= 0) return 0;
  int64_t ms = (d + 999999) / 1000000;
  return ms > INT32_MAX ? INT32_MAX : static_cast<int>(ms);
}

// poll with gates. `call(ms)` performs the real poll with a timeout.
template <typename Call>
int GatedPoll(pollfd* fds, nfds_t nfds, int64_t deadline, Call call) {
  constexpr int kSaved = 128;
  for (int round = 0; round < 100000; ++round) {
    int64_t now = NowNs();
    int64_t next = 0;
    struct {
      nfds_t i;
      int fd;
      short events;
      uint32_t add;
    } saved[kSaved];
    int ns = 0;
    int synth_ready = 0;
    for (nfds_t i = 0; i < nfds && ns < kSaved; ++i) {
      uint32_t hide, add;
      GateView(fds[i].fd, now, &hide, &add, &next);
      if (!hide && !add) continue;
      saved[ns] = {i, fds[i].fd, fds[i].events,
                   add & (fds[i].events | POLLERR | POLLHUP)};
      if (saved[ns].add) ++synth_ready;
      if (hide & POLLHUP)
        fds[i].fd = ~fds[i].fd;  // hide the fd entirely
      else
        fds[i].events = static_cast<short>(fds[i].events & ~hide);
      ++ns;
    }
    int64_t until = deadline;
    if (next != 0 && next < until) until = next;
    int ms = synth_ready ? 0 : MsUntil(until, now);
    int n = call(ms);
    int err = errno;
    for (int k = 0; k < ns; ++k) {
      pollfd& p = fds[saved[k].i];
      p.fd = saved[k].fd;
      p.events = saved[k].events;
      if (saved[k].add) {
        if (p.revents == 0 && n >= 0) ++n;
        p.revents = static_cast<short>(p.revents | saved[k].add);
      }
    }
    if (n != 0) {
      errno = err;
      return n;
    }
    now = NowNs();
    if (now >= deadline) return 0;
  }
  return 0;
}

template <typename Call>
int GatedSelect(int nfds, fd_set* r, fd_set* w, fd_set* e, int64_t deadline,
                Call call) {
  for (int round = 0; round < 100000; ++round) {
    int64_t now = NowNs();
    int64_t next = 0;
    fd_set rs, ws, es;
    if (r) rs = *r;
    if (w) ws = *w;
    if (e) es = *e;
    fd_set add_r, add_w;
    FD_ZERO(&add_r);
    FD_ZERO(&add_w);
    int synth = 0;
    int lim = nfds < kMaxFds ? nfds : kMaxFds;
    for (int fd = 0; fd < lim && fd < FD_SETSIZE; ++fd) {
      bool in_r = r && FD_ISSET(fd, r), in_w = w && FD_ISSET(fd, w);
      if (!in_r && !in_w) continue;
      uint32_t hide, add;
      GateView(fd, now, &hide, &add, &next);
      if (in_r && (hide & POLLIN)) FD_CLR(fd, &rs);
      if (in_w && (hide & POLLOUT)) FD_CLR(fd, &ws);
      if (in_r && (add & (POLLIN | POLLERR | POLLHUP))) {
        FD_SET(fd, &add_r);
        ++synth;
      }
      if (in_w && (add & (POLLOUT | POLLERR | POLLHUP))) {
        FD_SET(fd, &add_w);
        ++synth;
      }
    }
    int64_t until = deadline;
    if (next != 0 && next < until) until = next;
    int64_t wait_ns = synth ? 0 : (until == kForever ? -1 : until - now);
    if (wait_ns < -1) wait_ns = 0;
    int n = call(nfds, r ? &rs : nullptr, w ? &ws : nullptr, e ? &es : nullptr,
                 wait_ns);
    if (n < 0) return n;
    int total = 0;
    fd_set outr, outw, oute;
    FD_ZERO(&outr);
    FD_ZERO(&outw);
    FD_ZERO(&oute);
    for (int fd = 0; fd < nfds && fd < FD_SETSIZE; ++fd) {
      if (r && (FD_ISSET(fd, &rs) || FD_ISSET(fd, &add_r))) {
        FD_SET(fd, &outr);
        ++total;
      }
      if (w && (FD_ISSET(fd, &ws) || FD_ISSET(fd, &add_w))) {
        FD_SET(fd, &outw);
        ++total;
      }
      if (e && FD_ISSET(fd, &es)) {
        FD_SET(fd, &oute);
        ++total;
      }
    }
    if (total > 0 || NowNs() >= deadline) {
      if (r) *r = outr;
      if (w) *w = outw;
      if (e) *e = oute;
      return total;
    }
  }
  return 0;
}

template <typename Call>
int GatedEpoll(int epfd, epoll_event* events, int maxevents, int64_t deadline,
               Call call) {
  for (int round = 0; round < 100000; ++round) {
    int64_t now = NowNs();
    int64_t next = 0;
    // Gated fds registered with this epoll instance.
    int gated[kMaxGates];
    uint32_t hide[kMaxGates], add[kMaxGates];
    int ng = 0, synth = 0;
    for (int i = 0; i < kMaxGates; ++i) {
      int v = __atomic_load_n(&g_gate_list[i], __ATOMIC_ACQUIRE);
      if (v == 0) continue;
      int fd = v - 1;
      FdState& st = g_fds[fd];
      if (st.epfd != epfd) continue;
      GateView(fd, now, &hide[ng], &add[ng], &next);
      if (st.ep_removed && hide[ng] == 0) {
        epoll_event back;
        back.events = st.epevents;
        back.data.u64 = st.epdata;
        if (real.epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &back) == 0 ||
            errno == EEXIST)
          st.ep_removed = 0;
      }
      add[ng] &= st.epevents | EPOLLERR | EPOLLHUP;
      if (add[ng]) ++synth;
      gated[ng++] = fd;
    }
    if (ng == 0) return call(events, maxevents, MsUntil(deadline, now));
    int64_t until = deadline;
    if (next != 0 && next < until) until = next;
    int n = call(events, maxevents, synth ? 0 : MsUntil(until, now));
    if (n < 0) return n;
    bool reported[kMaxGates] = {};
    bool dropped[kMaxGates] = {};
    int out = 0;
    for (int i = 0; i < n; ++i) {
      epoll_event ev = events[i];
      bool keep = true;
      for (int k = 0; k < ng; ++k) {
        if (g_fds[gated[k]].epdata != ev.data.u64) continue;
        reported[k] = true;
        if (hide[k] & POLLHUP) keep = false;
        ev.events &= ~hide[k];
        ev.events |= add[k];
        if ((ev.events & ~(EPOLLET | EPOLLONESHOT)) == 0) keep = false;
        if (!keep && hide[k]) dropped[k] = true;
      }
      if (keep) events[out++] = ev;
    }
    for (int k = 0; k < ng; ++k) {
      FdState& st = g_fds[gated[k]];
      if (dropped[k] && !st.ep_removed) {
        // The kernel keeps reporting it (level-triggered): take it out of
        // the set until its gate passes, so that waiting does not spin.
        if (real.epoll_ctl(epfd, EPOLL_CTL_DEL, gated[k], nullptr) == 0)
          st.ep_removed = 1;
      }
    }
    for (int k = 0; k < ng && out < maxevents; ++k) {
      if (reported[k] || add[k] == 0) continue;
      events[out].events = add[k];
      events[out].data.u64 = g_fds[gated[k]].epdata;
      ++out;
    }
    if (out > 0) return out;
    if (NowNs() >= deadline) return 0;
  }
  return 0;
}

// --------------------------------------------------------------------- dns ---

// Decides a lookup of `name`. Returns 0 or an EAI_* code to fail with.
int DnsFault(const Slow& s, const char* name) {
  const eng::Index& idx = s.idx();
  uint64_t cand = idx.dns & s.mask;
  if (!cand || name == nullptr) return 0;
  eng::Endpoint ep;
  ep.hostname = name;
  int rule = eng::PickRule(g_table, idx, cand, ep);
  if (rule < 0) return 0;
  fault_rule r;
  if (!eng::ReadRule(g_table, idx.seq, rule, &r)) return 0;
  double factor = eng::ScheduleFactor(r.schedule, NowNs() - g_start_ns);
  eng::DnsDecision d;
  eng::DecideDns(g_table, r, rule, factor, &d);
  if (d.delay_ns > 0)
    Emit(rule, -1, FAULT_OP_DNS, FAULT_EFFECT_DNS_DELAY, d.delay_ns, name);
  if (d.eai) Emit(rule, -1, FAULT_OP_DNS, d.effect, d.eai, name);
  SleepNs(d.delay_ns);
  return d.eai;
}

void RememberAnswers(const char* name, const addrinfo* res) {
  for (const addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family == AF_INET && ai->ai_addrlen >= sizeof(sockaddr_in)) {
      eng::HostCacheAdd(
          &g_hosts, name, AF_INET,
          &reinterpret_cast<const sockaddr_in*>(ai->ai_addr)->sin_addr);
    } else if (ai->ai_family == AF_INET6 &&
               ai->ai_addrlen >= sizeof(sockaddr_in6)) {
      eng::HostCacheAdd(
          &g_hosts, name, AF_INET6,
          &reinterpret_cast<const sockaddr_in6*>(ai->ai_addr)->sin6_addr);
    }
  }
}

void RememberHostent(const char* name, const hostent* h) {
  if (h == nullptr || h->h_addr_list == nullptr) return;
  for (char** a = h->h_addr_list; *a != nullptr; ++a)
    eng::HostCacheAdd(&g_hosts, name, h->h_addrtype, *a);
}

}  // namespace
}  // namespace fault::shim

// ================================================================ wrappers ===

using namespace fault::shim;  // NOLINT: the wrappers are the C ABI
namespace eng = ::fault::engine;

#define FAULT_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

constexpr uint32_t kNetBits = kHotNet;
constexpr uint32_t kNetScoped = kHotNetScoped | kHotSysScoped;

inline void EnsureReal() {
  if (__builtin_expect(
          __atomic_load_n(&real.write, __ATOMIC_ACQUIRE) == nullptr, 0))
    ResolveReal();
}

// Generic fd operation dispatch: may a rule apply to a call of syscall
// `family` on fd? `dir` (kVerdictSend or kVerdictRecv, 0: none) names the
// fd's cached verdict that lets the call skip the shim.
inline bool FdMaybe(int fd, int family, uint64_t dir = 0) {
  Kind k = KindOf(fd);
  if (k == kOther) return false;
  // Network rules never apply to a file: only the family's syscall rules.
  if (k == kFile || k == kOpened)
    return MaybeFaultFd(fd, dir, SysHot(family), kHotSysScoped);
  return MaybeFaultFd(fd, dir, kNetBits | SysHot(family), kNetScoped);
}

// FdMaybe for the calls whose slow path is SlowPlain (close, fsync,
// fdatasync, pread, pwrite): only syscall rules of `family` apply to them,
// whatever the fd is, so network rules alone never send them there.
inline bool FdMaybeSys(int fd, int family, uint64_t dir = 0) {
  if (KindOf(fd) == kOther) return false;
  return MaybeFaultFd(fd, dir, SysHot(family), kHotSysScoped);
}

// Builds a msghdr for a single buffer.
inline msghdr OneBuf(iovec* iov, void* buf, size_t n, const sockaddr* to,
                     socklen_t tolen) {
  iov->iov_base = buf;
  iov->iov_len = n;
  msghdr m;
  memset(&m, 0, sizeof(m));
  m.msg_iov = iov;
  m.msg_iovlen = 1;
  m.msg_name = const_cast<sockaddr*>(to);
  m.msg_namelen = to ? tolen : 0;
  return m;
}

// The shared slow path of send-like calls. `passthrough` performs the
// original call unchanged (when nothing applies); `stub_call` performs it
// through the stub (when the family is seccomp-covered and the shim
// evaluated it).
template <typename Pass, typename Stub>
ssize_t SlowSend(int fd, int family, uint16_t op, msghdr* m, int flags,
                 Pass pass, Stub stub) {
  Slow s;
  if (!s.ok || LeftToSeccomp(s.idx(), family)) return pass();
  if (fd >= 0 && fd < kMaxFds)
    s.verdict0 = __atomic_load_n(&g_verdict[fd], __ATOMIC_RELAXED);
  Kind k = Classify(fd);
  if (k == kOther) return pass();
  if (k == kFile
          ? ApplySyscallRules(s, family, op, FilePath(fd))
          : ApplySocketRules(s, fd, k, family, op, m->msg_name, m->msg_namelen))
    return -1;
  if (k == kFile) VerdictStore(s, fd, kVerdictSend);  // only syscall rules
  if (k == kTcp && IsRedirected(fd)) {
    VerdictStore(s, fd, kVerdictSend);
    if (ViaStub(s.idx(), family)) return stub();
    return pass();
  }
  if ((k == kTcp || k == kUdp) && (s.idx().net & s.mask)) {
    ssize_t r = NetSend(s, fd, k, m, flags, op);
    // A stale entry (the number was closed behind the shim's back, e.g.
    // by close_range or a raw syscall, and reused): forget it, pass through.
    if (r < 0 && errno == ENOTSOCK) {
      ResetFd(fd);
      return pass();
    }
    return r;
  }
  if (ViaStub(s.idx(), family)) return stub();
  return pass();
}

template <typename Pass, typename Stub>
ssize_t SlowRecv(int fd, int family, uint16_t op, msghdr* m, int flags,
                 Pass pass, Stub stub) {
  Slow s;
  if (!s.ok || LeftToSeccomp(s.idx(), family)) return pass();
  if (fd >= 0 && fd < kMaxFds)
    s.verdict0 = __atomic_load_n(&g_verdict[fd], __ATOMIC_RELAXED);
  Kind k = Classify(fd);
  if (k == kOther) return pass();
  if (k == kFile ? ApplySyscallRules(s, family, op, FilePath(fd))
                 : ApplySocketRules(s, fd, k, family, op, nullptr, 0))
    return -1;
  if (k == kFile) VerdictStore(s, fd, kVerdictRecv);  // only syscall rules
  if (k == kTcp && IsRedirected(fd)) {
    // No verdict: a reset is worth a look (RedirectError).
    ssize_t r = ViaStub(s.idx(), family) ? stub() : pass();
    if (r < 0 && errno == ECONNRESET) {
      int e = RedirectError(g_fds[fd]);
      errno = e != 0 ? e : ECONNRESET;
    }
    return r;
  }
  if ((k == kTcp || k == kUdp) && (s.idx().net & s.mask)) {
    ssize_t r = NetRecv(s, fd, k, m, flags, op);
    if (r < 0 && errno == ENOTSOCK) {  // stale entry, see SlowSend
      ResetFd(fd);
      return pass();
    }
    return r;
  }
  if (ViaStub(s.idx(), family)) return stub();
  return pass();
}

// Calls with syscall rules only (pread, pwrite, fsync, fdatasync, close).
// `dir`: the verdict a file's call may leave (0: none).
template <typename Pass, typename Stub>
long SlowPlain(int fd, int family, uint16_t op, Pass pass, Stub stub,
               uint64_t dir = 0) {
  Slow s;
  if (!s.ok || LeftToSeccomp(s.idx(), family)) return pass();
  if (fd >= 0 && fd < kMaxFds)
    s.verdict0 = __atomic_load_n(&g_verdict[fd], __ATOMIC_RELAXED);
  Kind k = Classify(fd);
  if (k == kOther) return pass();
  if (k == kFile ? ApplySyscallRules(s, family, op, FilePath(fd))
                 : ApplySocketRules(s, fd, k, family, op, nullptr, 0))
    return -1;
  // Not for sockets: a socket's verdict also says no network rule matches.
  if (k == kFile && dir) VerdictStore(s, fd, dir);
  if (ViaStub(s.idx(), family)) return stub();
  return pass();
}

int OpenCommon(int dirfd, const char* path, int flags, mode_t mode, bool at,
               int (*pass_fn)(int, const char*, int, mode_t, bool)) {
  EnsureReal();
  int fd;
  if (MaybeFault(SysHot(eng::kFamilyOpen), kHotSysScoped)) {
    Slow s;
    if (s.ok && !LeftToSeccomp(s.idx(), eng::kFamilyOpen)) {
      char abs[256];
      ResolvePath(dirfd, path, abs, sizeof(abs));
      if (ApplySyscallRules(s, eng::kFamilyOpen, FAULT_OP_OPEN, abs)) return -1;
      if (ViaStub(s.idx(), eng::kFamilyOpen)) {
        fd = static_cast<int>(
            Raw(SYS_openat, dirfd, reinterpret_cast<long>(path), flags, mode));
        if (fd >= 0 && fd < 4096) {
          SetKind(fd, kOpened);
        }
        return fd;
      }
    }
  }
  fd = pass_fn(dirfd, path, flags, mode, at);
  if (fd >= 0) SetKind(fd, kOpened);
  return fd;
}

int PassOpen(int dirfd, const char* path, int flags, mode_t mode, bool at) {
  if (at) return real.openat(dirfd, path, flags, mode);
  return real.open(path, flags, mode);
}
int PassOpen64(int dirfd, const char* path, int flags, mode_t mode, bool at) {
  if (at) return real.openat64(dirfd, path, flags, mode);
  return real.open64(path, flags, mode);
}

inline bool NeedsMode(int flags) {
  return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

}  // namespace

// ---- C API ----

FAULT_EXPORT int fault_scope_push(const char* name) {
  ThreadState* ts = &t_state;
  if (name == nullptr) {
    errno = EINVAL;
    return -1;
  }
  if (ts->depth >= FAULT_SCOPE_MAX) {
    errno = E2BIG;
    return -1;
  }
  eng::CopyString(ts->names[ts->depth], name, FAULT_NAME_MAX);
  ++ts->depth;
  ts->scope_seq = 0;
  if (g_table == nullptr) return 1;
  int saved = ts->in_shim;
  ts->in_shim = 1;
  int found = -1;
  if (RefreshIndex(ts)) found = eng::FindRuleByName(g_table, ts->idx, name);
  ts->in_shim = saved;
  if (found < 0) {
    if (__atomic_exchange_n(&g_warned_scope, 1, __ATOMIC_RELAXED) == 0)
      Warn("fault: warning: fault_scope_push(\"", name,
           "\"): no policy with that name is loaded; the scope applies no "
           "faults\n");
    return 1;
  }
  return 0;
}

FAULT_EXPORT void fault_scope_pop(void) {
  ThreadState* ts = &t_state;
  if (ts->depth > 0) --ts->depth;
  ts->scope_seq = 0;
}

FAULT_EXPORT int fault_shim_active(void) { return g_table != nullptr ? 1 : 0; }

// ---- sockets ----

FAULT_EXPORT int socket(int domain, int type, int protocol) {
  EnsureReal();
  int fd = real.socket(domain, type, protocol);
  if (fd >= 0) {
    int t = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    Kind k = kOther;
    if (domain == AF_INET || domain == AF_INET6)
      k = t == SOCK_STREAM ? kTcp : (t == SOCK_DGRAM ? kUdp : kOther);
    SetKind(fd, k);
  }
  return fd;
}

// connect() again on a socket handed to the stream engine (hiredis asks
// whether its non-blocking connect is done this way): what the kernel
// would answer for the far end, not for the engine.
static int ConnectAgain(int fd) {
  // The socket is writable already (the engine accepted it at once): the
  // program takes the connect as done and asks how it went. Answer for the
  // far end, waiting for it if need be (see AwaitFarConnect).
  FdState& st = g_fds[fd];
  AwaitFarConnect(st);
  int e = RedirectError(st);
  errno = e != 0 ? e : EISCONN;
  return -1;
}

FAULT_EXPORT int connect(int fd, const sockaddr* addr, socklen_t len) {
  EnsureReal();
  if (IsRedirected(fd) && g_table != nullptr) return ConnectAgain(fd);
  VerdictReset(fd);  // the peer the verdict was decided for changes
  if (!FdMaybe(fd, eng::kFamilyConnect) &&
      !(GatesPossible() && fd < kMaxFds && fd >= 0 && g_fds[fd].valid &&
        g_fds[fd].fake_connect))
    return real.connect(fd, addr, len);
  Slow s;
  if (!s.ok || LeftToSeccomp(s.idx(), eng::kFamilyConnect))
    return real.connect(fd, addr, len);
  Kind k = Classify(fd);
  if (k != kTcp && k != kUdp) return real.connect(fd, addr, len);
  if (ApplySocketRules(s, fd, k, eng::kFamilyConnect, FAULT_OP_CONNECT, addr,
                       len))
    return -1;
  if (s.idx().net & s.mask) return NetConnect(s, fd, k, addr, len);
  if (ViaStub(s.idx(), eng::kFamilyConnect))
    return static_cast<int>(
        Raw(SYS_connect, fd, reinterpret_cast<long>(addr), len));
  return real.connect(fd, addr, len);
}

// A connection accepted on a TCP listener: handed to the stream engine when
// a rule with stream effects selects its peer. `addr`/`len`: the peer as
// accept reported it to the caller (null when the caller did not ask, or
// truncated): getpeername is asked only then. The peer is kept in the fd's
// state, so that the first send or receive need not ask again.
static void MaybeRedirectAccepted(int nfd, int flags, const sockaddr* addr,
                                  socklen_t len) {
  Slow s;
  if (!s.ok || !(s.idx().net & s.mask)) return;
  eng::Endpoint peer;
  if (addr == nullptr || !eng::SetEndpointAddress(&peer, addr, len)) {
    sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (real.getpeername(nfd, reinterpret_cast<sockaddr*>(&ss), &sl) != 0 ||
        !eng::SetEndpointAddress(&peer, &ss, sl))
      return;
  }
  FdState& st = State(nfd);
  st.peer = peer;
  st.has_peer = 1;
  peer.protocol = FAULT_PROTO_TCP;
  // From a shimmed sender of this run or from the engine itself: the
  // effects are applied on the other side already.
  if (FromShimmedLoopback(peer, kTcp) || FromEngine(peer)) return;
  int rule = PickFor(s, &st, peer, false);
  if (rule < 0) return;
  fault_rule r;
  if (!eng::ReadRule(g_table, s.idx().seq, rule, &r) || !Redirectable(r))
    return;
  RedirectAccepted(nfd, flags, rule, peer);
}

static int AcceptCommon(int fd, sockaddr* addr, socklen_t* len, int flags,
                        bool four) {
  EnsureReal();
  // The caller's buffer size: accept reports the peer's full length.
  const socklen_t cap = addr != nullptr && len != nullptr ? *len : 0;
  auto pass = [&]() {
    return four ? real.accept4(fd, addr, len, flags)
                : real.accept(fd, addr, len);
  };
  int nfd;
  // Only accept's syscall rules apply to the listener's call itself.
  if (!FdMaybeSys(fd, eng::kFamilyAccept)) {
    nfd = pass();
  } else {
    Slow s;
    if (!s.ok || LeftToSeccomp(s.idx(), eng::kFamilyAccept)) {
      nfd = pass();
    } else {
      Kind lk = Classify(fd);
      if ((lk == kTcp || lk == kUdp) &&
          ApplySocketRules(s, fd, lk, eng::kFamilyAccept, FAULT_OP_ACCEPT,
                           nullptr, 0))
        return -1;
      if (ViaStub(s.idx(), eng::kFamilyAccept))
        nfd = static_cast<int>(
            Raw(SYS_accept4, fd, reinterpret_cast<long>(addr),
                reinterpret_cast<long>(len), four ? flags : 0));
      else
        nfd = pass();
    }
  }
  if (nfd >= 0) {
    Kind lk = KindOf(fd);
    SetKind(nfd, lk == kTcp ? kTcp : kUnknown);
    if (lk == kTcp && MaybeFault(kNetBits, kNetScoped)) {
      // Only what accept wrote in full describes the peer.
      bool whole = cap != 0 && *len <= cap;
      MaybeRedirectAccepted(nfd, four ? flags : 0, whole ? addr : nullptr,
                            whole ? *len : 0);
    }
  }
  return nfd;
}

FAULT_EXPORT int accept(int fd, sockaddr* addr, socklen_t* len) {
  return AcceptCommon(fd, addr, len, 0, false);
}

FAULT_EXPORT int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  return AcceptCommon(fd, addr, len, flags, true);
}

// The part of send that runs only when a rule may apply.
__attribute__((noinline)) static ssize_t SendSlowPath(int fd, const void* buf,
                                                      size_t n, int flags) {
  iovec iov;
  msghdr m = OneBuf(&iov, const_cast<void*>(buf), n, nullptr, 0);
  return SlowSend(
      fd, eng::kFamilySend, FAULT_OP_SEND, &m, flags,
      [&]() { return real.send(fd, buf, n, flags); },
      [&]() {
        return Raw(SYS_sendto, fd, reinterpret_cast<long>(buf), n, flags, 0, 0);
      });
}

FAULT_EXPORT ssize_t send(int fd, const void* buf, size_t n, int flags) {
  EnsureReal();
  if (!FdMaybe(fd, eng::kFamilySend, kVerdictSend))
    return real.send(fd, buf, n, flags);
  return SendSlowPath(fd, buf, n, flags);
}

// The part of sendto that runs only when a rule may apply.
__attribute__((noinline)) static ssize_t SendtoSlowPath(int fd, const void* buf,
                                                        size_t n, int flags,
                                                        const sockaddr* to,
                                                        socklen_t tolen) {
  iovec iov;
  msghdr m = OneBuf(&iov, const_cast<void*>(buf), n, to, tolen);
  return SlowSend(
      fd, eng::kFamilySend, FAULT_OP_SEND, &m, flags,
      [&]() { return real.sendto(fd, buf, n, flags, to, tolen); },
      [&]() {
        return Raw(SYS_sendto, fd, reinterpret_cast<long>(buf), n, flags,
                   reinterpret_cast<long>(to), tolen);
      });
}

FAULT_EXPORT ssize_t sendto(int fd, const void* buf, size_t n, int flags,
                            const sockaddr* to, socklen_t tolen) {
  EnsureReal();
  if (!FdMaybe(fd, eng::kFamilySend, to == nullptr ? kVerdictSend : 0))
    return real.sendto(fd, buf, n, flags, to, tolen);
  return SendtoSlowPath(fd, buf, n, flags, to, tolen);
}

// The part of sendmsg that runs only when a rule may apply.
__attribute__((noinline)) static ssize_t SendmsgSlowPath(int fd,
                                                         const msghdr* msg,
                                                         int flags) {
  msghdr m = *msg;
  return SlowSend(
      fd, eng::kFamilySend, FAULT_OP_SEND, &m, flags,
      [&]() { return real.sendmsg(fd, msg, flags); },
      [&]() {
        return Raw(SYS_sendmsg, fd, reinterpret_cast<long>(msg), flags);
      });
}

FAULT_EXPORT ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  EnsureReal();
  if (!FdMaybe(fd, eng::kFamilySend,
               msg != nullptr && msg->msg_name == nullptr ? kVerdictSend : 0))
    return real.sendmsg(fd, msg, flags);
  return SendmsgSlowPath(fd, msg, flags);
}

// The part of write that runs only when a rule may apply.
__attribute__((noinline)) static ssize_t WriteSlowPath(int fd, const void* buf,
                                                       size_t n) {
  iovec iov;
  msghdr m = OneBuf(&iov, const_cast<void*>(buf), n, nullptr, 0);
  return SlowSend(
      fd, eng::kFamilyWrite, FAULT_OP_WRITE, &m, 0,
      [&]() { return real.write(fd, buf, n); },
      [&]() { return Raw(SYS_write, fd, reinterpret_cast<long>(buf), n); });
}

FAULT_EXPORT ssize_t write(int fd, const void* buf, size_t n) {
  EnsureReal();
  if (!FdMaybe(fd, eng::kFamilyWrite, kVerdictSend))
    return real.write(fd, buf, n);
  return WriteSlowPath(fd, buf, n);
}

// The part of writev that runs only when a rule may apply.
__attribute__((noinline)) static ssize_t WritevSlowPath(int fd,
                                                        const iovec* iov,
                                                        int cnt) {
  msghdr m;
  memset(&m, 0, sizeof(m));
  m.msg_iov = const_cast<iovec*>(iov);
  m.msg_iovlen = static_cast<size_t>(cnt);
  return SlowSend(
      fd, eng::kFamilyWrite, FAULT_OP_WRITE, &m, 0,
      [&]() { return real.writev(fd, iov, cnt); },
      [&]() { return Raw(SYS_writev, fd, reinterpret_cast<long>(iov), cnt); });
}

FAULT_EXPORT ssize_t writev(int fd, const iovec* iov, int cnt) {
  EnsureReal();
  if (!FdMaybe(fd, eng::kFamilyWrite, kVerdictSend) || cnt < 0)
    return real.writev(fd, iov, cnt);
  return WritevSlowPath(fd, iov, cnt);
}

// The part of pwrite that runs only when a rule may apply.
__attribute__((noinline)) static ssize_t PwriteSlowPath(int fd, const void* buf,
                                                        size_t n, off_t off) {
  return SlowPlain(
      fd, eng::kFamilyWrite, FAULT_OP_WRITE,
      [&]() { return real.pwrite(fd, buf, n, off); },
      [&]() {
        return Raw(SYS_pwrite64, fd, reinterpret_cast<long>(buf), n, off);
      },
      kVerdictSend);
}

FAULT_EXPORT ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  EnsureReal();
  if (!FdMaybeSys(fd, eng::kFamilyWrite, kVerdictSend))
    return real.pwrite(fd, buf, n, off);
  return PwriteSlowPath(fd, buf, n, off);
}

// The part of pwrite64 that runs only when a rule may apply.
__attribute__((noinline)) static ssize_t Pwrite64SlowPath(int fd,
                                                          const void* buf,
                                                          size_t n,
                                                          off64_t off) {
  return SlowPlain(
      fd, eng::kFamilyWrite, FAULT_OP_WRITE,
      [&]() { return real.pwrite64(fd, buf, n, off); },
      [&]() {
        return Raw(SYS_pwrite64, fd, reinterpret_cast<long>(buf), n, off);
      },
      kVerdictSend);
}

FAULT_EXPORT ssize_t pwrite64(int fd, const void* buf, size_t n, off64_t off) {
  EnsureReal();
  if (!FdMaybeSys(fd, eng::kFamilyWrite, kVerdictSend))
    return real.pwrite64(fd, buf, n, off);
  return Pwrite64SlowPath(fd, buf, n, off);
}

// The part of recv that runs only when a rule may apply.
__attribute__((noinline)) static ssize_t RecvSlowPath(int fd, void* buf,
                                                      size_t n, int flags) {
  iovec iov;
  msghdr m = OneBuf(&iov, buf, n, nullptr, 0);
  return SlowRecv(
      fd, eng::kFamilyRecv, FAULT_OP_RECV, &m, flags,
      [&]() { return real.recv(fd, buf, n, flags); },
      [&]() {
        return Raw(SYS_recvfrom, fd, reinterpret_cast<long>(buf), n, flags, 0,
                   0);
      });
}

FAULT_EXPORT ssize_t recv(int fd, void* buf, size_t n, int flags) {
  EnsureReal();
  if (!FdMaybe(fd, eng::kFamilyRecv, kVerdictRecv))
    return real.recv(fd, buf, n, flags);
  return RecvSlowPath(fd, buf, n, flags);
}

// The part of recvfrom that runs only when a rule may apply.
__attribute__((noinline)) static ssize_t RecvfromSlowPath(int fd, void* buf,
                                                          size_t n, int flags,
                                                          sockaddr* from,
                                                          socklen_t* fromlen) {
  iovec iov;
  msghdr m = OneBuf(&iov, buf, n, nullptr, 0);
  if (from != nullptr && fromlen != nullptr) {
    m.msg_name = from;
    m.msg_namelen = *fromlen;
  }
  ssize_t r = SlowRecv(
      fd, eng::kFamilyRecv, FAULT_OP_RECV, &m, flags,
      [&]() { return real.recvfrom(fd, buf, n, flags, from, fromlen); },
      [&]() {
        return Raw(SYS_recvfrom, fd, reinterpret_cast<long>(buf), n, flags,
                   reinterpret_cast<long>(from),
                   reinterpret_cast<long>(fromlen));
      });
  if (r >= 0 && from != nullptr && fromlen != nullptr && m.msg_name == from)
    *fromlen = m.msg_namelen;
  return r;
}

FAULT_EXPORT ssize_t recvfrom(int fd, void* buf, size_t n, int flags,
                              sockaddr* from, socklen_t* fromlen) {
  EnsureReal();
  if (!FdMaybe(fd, eng::kFamilyRecv, kVerdictRecv))
    return real.recvfrom(fd, buf, n, flags, from, fromlen);
  return RecvfromSlowPath(fd, buf, n, flags, from, fromlen);
}

// The part of recvmsg that runs only when a rule may apply.
__attribute__((noinline)) static ssize_t RecvmsgSlowPath(int fd, msghdr* msg,
                                                         int flags) {
  return SlowRecv(
      fd, eng::kFamilyRecv, FAULT_OP_RECV, msg, flags,
      [&]() { return real.recvmsg(fd, msg, flags); },
      [&]() {
        return Raw(SYS_recvmsg, fd, reinterpret_cast<long>(msg), flags);
      });
}

FAULT_EXPORT ssize_t recvmsg(int fd, msghdr* msg, int flags) {
  EnsureReal();
  if (!FdMaybe(fd, eng::kFamilyRecv, kVerdictRecv))
    return real.recvmsg(fd, msg, flags);
  return RecvmsgSlowPath(fd, msg, flags);
}

// The part of read that runs only when a rule may apply.
__attribute__((noinline)) static ssize_t ReadSlowPath(int fd, void* buf,
                                                      size_t n) {
  iovec iov;
  msghdr m = OneBuf(&iov, buf, n, nullptr, 0);
  return SlowRecv(
      fd, eng::kFamilyRead, FAULT_OP_READ, &m, 0,
      [&]() { return real.read(fd, buf, n); },
      [&]() { return Raw(SYS_read, fd, reinterpret_cast<long>(buf), n); });
}

FAULT_EXPORT ssize_t read(int fd, void* buf, size_t n) {
  EnsureReal();
  if (!FdMaybe(fd, eng::kFamilyRead, kVerdictRecv))
    return real.read(fd, buf, n);
  return ReadSlowPath(fd, buf, n);
}

// The part of readv that runs only when a rule may apply.
__attribute__((noinline)) static ssize_t ReadvSlowPath(int fd, const iovec* iov,
                                                       int cnt) {
  msghdr m;
  memset(&m, 0, sizeof(m));
  m.msg_iov = const_cast<iovec*>(iov);
  m.msg_iovlen = static_cast<size_t>(cnt);
  return SlowRecv(
      fd, eng::kFamilyRead, FAULT_OP_READ, &m, 0,
      [&]() { return real.readv(fd, iov, cnt); },
      [&]() { return Raw(SYS_readv, fd, reinterpret_cast<long>(iov), cnt); });
}

FAULT_EXPORT ssize_t readv(int fd, const iovec* iov, int cnt) {
  EnsureReal();
  if (!FdMaybe(fd, eng::kFamilyRead, kVerdictRecv) || cnt < 0)
    return real.readv(fd, iov, cnt);
  return ReadvSlowPath(fd, iov, cnt);
}

// The part of pread that runs only when a rule may apply.
__attribute__((noinline)) static ssize_t PreadSlowPath(int fd, void* buf,
                                                       size_t n, off_t off) {
  return SlowPlain(
      fd, eng::kFamilyRead, FAULT_OP_READ,
      [&]() { return real.pread(fd, buf, n, off); },
      [&]() {
        return Raw(SYS_pread64, fd, reinterpret_cast<long>(buf), n, off);
      },
      kVerdictRecv);
}

FAULT_EXPORT ssize_t pread(int fd, void* buf, size_t n, off_t off) {
  EnsureReal();
  if (!FdMaybeSys(fd, eng::kFamilyRead, kVerdictRecv))
    return real.pread(fd, buf, n, off);
  return PreadSlowPath(fd, buf, n, off);
}

// The part of pread64 that runs only when a rule may apply.
__attribute__((noinline)) static ssize_t Pread64SlowPath(int fd, void* buf,
                                                         size_t n,
                                                         off64_t off) {
  return SlowPlain(
      fd, eng::kFamilyRead, FAULT_OP_READ,
      [&]() { return real.pread64(fd, buf, n, off); },
      [&]() {
        return Raw(SYS_pread64, fd, reinterpret_cast<long>(buf), n, off);
      },
      kVerdictRecv);
}

FAULT_EXPORT ssize_t pread64(int fd, void* buf, size_t n, off64_t off) {
  EnsureReal();
  if (!FdMaybeSys(fd, eng::kFamilyRead, kVerdictRecv))
    return real.pread64(fd, buf, n, off);
  return Pread64SlowPath(fd, buf, n, off);
}

// The part of fsync that runs only when a rule may apply.
__attribute__((noinline)) static int FsyncSlowPath(int fd) {
  return static_cast<int>(SlowPlain(
      fd, eng::kFamilyFsync, FAULT_OP_FSYNC, [&]() { return real.fsync(fd); },
      [&]() { return Raw(SYS_fsync, fd); }));
}

FAULT_EXPORT int fsync(int fd) {
  EnsureReal();
  if (!FdMaybeSys(fd, eng::kFamilyFsync)) return real.fsync(fd);
  return FsyncSlowPath(fd);
}

// The part of fdatasync that runs only when a rule may apply.
__attribute__((noinline)) static int FdatasyncSlowPath(int fd) {
  return static_cast<int>(SlowPlain(
      fd, eng::kFamilyFdatasync, FAULT_OP_FDATASYNC,
      [&]() { return real.fdatasync(fd); },
      [&]() { return Raw(SYS_fdatasync, fd); }));
}

FAULT_EXPORT int fdatasync(int fd) {
  EnsureReal();
  if (!FdMaybeSys(fd, eng::kFamilyFdatasync)) return real.fdatasync(fd);
  return FdatasyncSlowPath(fd);
}

FAULT_EXPORT int close(int fd) {
  EnsureReal();
  if (FdMaybeSys(fd, eng::kFamilyClose)) {
    long r = SlowPlain(
        fd, eng::kFamilyClose, FAULT_OP_CLOSE, [&]() { return 1L; },
        [&]() { return 2L; });
    if (r < 0) return -1;  // denied: the fd stays open, as a failed close may
    ResetFd(fd);
    if (r == 2) return static_cast<int>(Raw(SYS_close, fd));
    return real.close(fd);
  }
  ResetFd(fd);
  return real.close(fd);
}

FAULT_EXPORT int close_range(unsigned first, unsigned last, int flags) {
  EnsureReal();
  static auto fn = reinterpret_cast<int (*)(unsigned, unsigned, int)>(
      dlsym(RTLD_NEXT, "close_range"));
  int r = fn ? fn(first, last, flags)
             : static_cast<int>(syscall(SYS_close_range, first, last, flags));
  if (r == 0 && !(flags & 4 /* CLOSE_RANGE_CLOEXEC */)) {
    for (unsigned fd = first; fd <= last && fd < static_cast<unsigned>(kMaxFds);
         ++fd) {
      if (!FdChunkMapped(fd)) {
        fd |= kFdChunk - 1;  // nothing known in this chunk
        continue;
      }
      if (g_kind[fd] != kUnknown || g_fds[fd].valid)
        ResetFd(static_cast<int>(fd));
    }
  }
  return r;
}

FAULT_EXPORT void closefrom(int lowfd) {
  EnsureReal();
  static auto fn =
      reinterpret_cast<void (*)(int)>(dlsym(RTLD_NEXT, "closefrom"));
  if (fn) fn(lowfd);
  for (int fd = lowfd < 0 ? 0 : lowfd; fd < kMaxFds; ++fd) {
    if (!FdChunkMapped(fd)) {
      fd |= kFdChunk - 1;  // nothing known in this chunk
      continue;
    }
    if (g_kind[fd] != kUnknown || g_fds[fd].valid) ResetFd(fd);
  }
}

// stdio opens and closes its descriptors inside libc, where the shim does
// not see them: keep the fd table in step.
FAULT_EXPORT FILE* fopen(const char* path, const char* mode) {
  EnsureReal();
  static auto fn = reinterpret_cast<FILE* (*)(const char*, const char*)>(
      dlsym(RTLD_NEXT, "fopen"));
  FILE* f = fn(path, mode);
  if (f != nullptr) ResetFd(fileno(f));
  return f;
}

FAULT_EXPORT FILE* fopen64(const char* path, const char* mode) {
  EnsureReal();
  static auto fn = reinterpret_cast<FILE* (*)(const char*, const char*)>(
      dlsym(RTLD_NEXT, "fopen64"));
  FILE* f = fn(path, mode);
  if (f != nullptr) ResetFd(fileno(f));
  return f;
}

FAULT_EXPORT int fclose(FILE* f) {
  EnsureReal();
  static auto fn = reinterpret_cast<int (*)(FILE*)>(dlsym(RTLD_NEXT, "fclose"));
  if (f != nullptr) ResetFd(fileno(f));
  return fn(f);
}

FAULT_EXPORT int dup2(int oldfd, int newfd) {
  EnsureReal();
  int r = real.dup2(oldfd, newfd);
  if (r >= 0 && r != oldfd) ResetFd(r);
  return r;
}

FAULT_EXPORT int dup3(int oldfd, int newfd, int flags) {
  EnsureReal();
  int r = real.dup3(oldfd, newfd, flags);
  if (r >= 0) ResetFd(r);
  return r;
}

// ---- files ----

FAULT_EXPORT int open(const char* path, int flags, ...) {
  mode_t mode = 0;
  if (NeedsMode(flags)) {
    va_list ap;
    va_start(ap, flags);
    mode = static_cast<mode_t>(va_arg(ap, int));
    va_end(ap);
  }
  return OpenCommon(AT_FDCWD, path, flags, mode, false, &PassOpen);
}

FAULT_EXPORT int open64(const char* path, int flags, ...) {
  mode_t mode = 0;
  if (NeedsMode(flags)) {
    va_list ap;
    va_start(ap, flags);
    mode = static_cast<mode_t>(va_arg(ap, int));
    va_end(ap);
  }
  return OpenCommon(AT_FDCWD, path, flags, mode, false, &PassOpen64);
}

FAULT_EXPORT int openat(int dirfd, const char* path, int flags, ...) {
  mode_t mode = 0;
  if (NeedsMode(flags)) {
    va_list ap;
    va_start(ap, flags);
    mode = static_cast<mode_t>(va_arg(ap, int));
    va_end(ap);
  }
  return OpenCommon(dirfd, path, flags, mode, true, &PassOpen);
}

FAULT_EXPORT int openat64(int dirfd, const char* path, int flags, ...) {
  mode_t mode = 0;
  if (NeedsMode(flags)) {
    va_list ap;
    va_start(ap, flags);
    mode = static_cast<mode_t>(va_arg(ap, int));
    va_end(ap);
  }
  return OpenCommon(dirfd, path, flags, mode, true, &PassOpen64);
}

FAULT_EXPORT int creat(const char* path, mode_t mode) {
  return OpenCommon(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode, false,
                    &PassOpen);
}

FAULT_EXPORT int creat64(const char* path, mode_t mode) {
  return OpenCommon(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode, false,
                    &PassOpen64);
}

// Fortified variants (_FORTIFY_SOURCE builds call these).
FAULT_EXPORT int __open_2(const char* path, int flags) {
  return OpenCommon(AT_FDCWD, path, flags, 0, false, &PassOpen);
}
FAULT_EXPORT int __open64_2(const char* path, int flags) {
  return OpenCommon(AT_FDCWD, path, flags, 0, false, &PassOpen64);
}
FAULT_EXPORT int __openat_2(int dirfd, const char* path, int flags) {
  return OpenCommon(dirfd, path, flags, 0, true, &PassOpen);
}
FAULT_EXPORT int __openat64_2(int dirfd, const char* path, int flags) {
  return OpenCommon(dirfd, path, flags, 0, true, &PassOpen64);
}
FAULT_EXPORT ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen) {
  if (n > buflen) {
    auto chk = reinterpret_cast<ssize_t (*)(int, void*, size_t, size_t)>(
        dlsym(RTLD_NEXT, "__read_chk"));
    return chk(fd, buf, n, buflen);
  }
  return read(fd, buf, n);
}
FAULT_EXPORT ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen,
                                int flags) {
  if (n > buflen) {
    auto chk = reinterpret_cast<ssize_t (*)(int, void*, size_t, size_t, int)>(
        dlsym(RTLD_NEXT, "__recv_chk"));
    return chk(fd, buf, n, buflen, flags);
  }
  return recv(fd, buf, n, flags);
}
FAULT_EXPORT ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen,
                                    int flags, sockaddr* from,
                                    socklen_t* fromlen) {
  if (n > buflen) {
    auto chk = reinterpret_cast<ssize_t (*)(int, void*, size_t, size_t, int,
                                            sockaddr*, socklen_t*)>(
        dlsym(RTLD_NEXT, "__recvfrom_chk"));
    return chk(fd, buf, n, buflen, flags, from, fromlen);
  }
  return recvfrom(fd, buf, n, flags, from, fromlen);
}
FAULT_EXPORT ssize_t __pread64_chk(int fd, void* buf, size_t n, off64_t off,
                                   size_t buflen) {
  if (n > buflen) {
    auto chk =
        reinterpret_cast<ssize_t (*)(int, void*, size_t, off64_t, size_t)>(
            dlsym(RTLD_NEXT, "__pread64_chk"));
    return chk(fd, buf, n, off, buflen);
  }
  return pread64(fd, buf, n, off);
}

// ---- socket state ----

FAULT_EXPORT int getsockopt(int fd, int level, int opt, void* val,
                            socklen_t* len) {
  EnsureReal();
  if (level == SOL_SOCKET && opt == SO_ERROR && fd >= 0 && fd < kMaxFds &&
      GatesPossible() && g_fds[fd].valid && g_fds[fd].fake_connect &&
      val != nullptr && len != nullptr && *len >= sizeof(int)) {
    FdState& st = g_fds[fd];
    int v = 0;
    if (NowNs() >= st.fake_err_ns) {
      v = st.fake_err;
      st.fake_connect = 0;
      GateClear(fd, st, fault::engine::kUplink);
      GateClear(fd, st, fault::engine::kDownlink);
    }
    memcpy(val, &v, sizeof(int));
    *len = sizeof(int);
    return 0;
  }
  if (level == SOL_SOCKET && opt == SO_ERROR && IsRedirected(fd) &&
      g_table != nullptr)
    AwaitFarConnect(g_fds[fd]);
  int rc = real.getsockopt(fd, level, opt, val, len);
  if (rc == 0 && level == SOL_SOCKET && opt == SO_ERROR && val != nullptr &&
      IsRedirected(fd) && g_table != nullptr) {
    // A non-blocking connect through the engine: the far end's refusal
    // arrives as a reset; say what it was.
    int v;
    memcpy(&v, val, sizeof(int));
    int e = RedirectError(g_fds[fd]);
    if (e != 0 && (v == 0 || v == ECONNRESET)) memcpy(val, &e, sizeof(int));
  }
  return rc;
}

// A redirected socket reports the addresses the program would see without
// the engine in between.
static int ReportEndpoint(const eng::Endpoint& ep, sockaddr* addr,
                          socklen_t* len) {
  if (addr == nullptr || len == nullptr) {
    errno = EFAULT;
    return -1;
  }
  sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  socklen_t n;
  if (ep.family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(ep.port);
    memcpy(&a->sin6_addr, ep.addr, 16);
    n = sizeof(*a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(ep.port);
    memcpy(&a->sin_addr, ep.addr, 4);
    n = sizeof(*a);
  }
  memcpy(addr, &ss, *len < n ? *len : n);
  *len = n;
  return 0;
}

FAULT_EXPORT int getpeername(int fd, sockaddr* addr, socklen_t* len) {
  EnsureReal();
  if (IsRedirected(fd) && g_fds[fd].has_peer) {
    // The program's own socket family: an IPv4 peer of an IPv6 socket is
    // reported as the kernel would, IPv4-mapped.
    sockaddr_storage mine;
    socklen_t mlen = sizeof(mine);
    eng::Endpoint ep = g_fds[fd].peer;
    if (real.getsockname(fd, reinterpret_cast<sockaddr*>(&mine), &mlen) == 0 &&
        mine.ss_family == AF_INET6 && ep.family == AF_INET) {
      uint8_t v4[4];
      memcpy(v4, ep.addr, 4);
      memset(ep.addr, 0, 16);
      ep.addr[10] = ep.addr[11] = 0xff;
      memcpy(ep.addr + 12, v4, 4);
      ep.family = AF_INET6;
    }
    return ReportEndpoint(ep, addr, len);
  }
  return real.getpeername(fd, addr, len);
}

FAULT_EXPORT int getsockname(int fd, sockaddr* addr, socklen_t* len) {
  EnsureReal();
  if (IsRedirected(fd) && g_fds[fd].has_local)
    return ReportEndpoint(g_fds[fd].local, addr, len);
  return real.getsockname(fd, addr, len);
}

// ---- readiness ----

FAULT_EXPORT int poll(pollfd* fds, nfds_t nfds, int timeout) {
  EnsureReal();
  if (!GatesPossible() || t_state.in_shim) return real.poll(fds, nfds, timeout);
  int64_t deadline = TimeoutToDeadline(timeout, NowNs());
  return GatedPoll(fds, nfds, deadline,
                   [&](int ms) { return real.poll(fds, nfds, ms); });
}

FAULT_EXPORT int __poll_chk(pollfd* fds, nfds_t nfds, int timeout, size_t) {
  return poll(fds, nfds, timeout);
}

FAULT_EXPORT int ppoll(pollfd* fds, nfds_t nfds, const timespec* ts,
                       const sigset_t* mask) {
  EnsureReal();
  if (!GatesPossible() || t_state.in_shim)
    return real.ppoll(fds, nfds, ts, mask);
  int64_t now = NowNs();
  int64_t deadline = ts == nullptr
                         ? INT64_MAX
                         : now + int64_t{ts->tv_sec} * 1000000000 + ts->tv_nsec;
  return GatedPoll(fds, nfds, deadline, [&](int ms) {
    if (ms < 0) return real.ppoll(fds, nfds, nullptr, mask);
    timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    return real.ppoll(fds, nfds, &t, mask);
  });
}

FAULT_EXPORT int select(int nfds, fd_set* r, fd_set* w, fd_set* e,
                        timeval* tv) {
  EnsureReal();
  if (!GatesPossible() || t_state.in_shim)
    return real.select(nfds, r, w, e, tv);
  int64_t now = NowNs();
  int64_t deadline = tv == nullptr ? INT64_MAX
                                   : now + int64_t{tv->tv_sec} * 1000000000 +
                                         tv->tv_usec * 1000;
  return GatedSelect(
      nfds, r, w, e, deadline,
      [&](int n, fd_set* rs, fd_set* ws, fd_set* es, int64_t wait_ns) {
        if (wait_ns < 0) return real.select(n, rs, ws, es, nullptr);
        timeval t = {
            static_cast<time_t>(wait_ns / 1000000000),
            static_cast<suseconds_t>((wait_ns % 1000000000 + 999) / 1000)};
        return real.select(n, rs, ws, es, &t);
      });
}

FAULT_EXPORT int pselect(int nfds, fd_set* r, fd_set* w, fd_set* e,
                         const timespec* ts, const sigset_t* mask) {
  EnsureReal();
  if (!GatesPossible() || t_state.in_shim)
    return real.pselect(nfds, r, w, e, ts, mask);
  int64_t now = NowNs();
  int64_t deadline = ts == nullptr
                         ? INT64_MAX
                         : now + int64_t{ts->tv_sec} * 1000000000 + ts->tv_nsec;
  return GatedSelect(
      nfds, r, w, e, deadline,
      [&](int n, fd_set* rs, fd_set* ws, fd_set* es, int64_t wait_ns) {
        if (wait_ns < 0) return real.pselect(n, rs, ws, es, nullptr, mask);
        timespec t = {static_cast<time_t>(wait_ns / 1000000000),
                      static_cast<long>(wait_ns % 1000000000)};
        return real.pselect(n, rs, ws, es, &t, mask);
      });
}

FAULT_EXPORT int epoll_ctl(int epfd, int op, int fd, epoll_event* ev) {
  EnsureReal();
  if (fd >= 0 && fd < kMaxFds && g_fds[fd].valid && g_fds[fd].ep_removed &&
      g_fds[fd].epfd == epfd && op != EPOLL_CTL_ADD) {
    // The shim holds it out of the set while hidden: apply the change to
    // what it will put back.
    FdState& st = g_fds[fd];
    if (op == EPOLL_CTL_DEL) {
      st.ep_removed = 0;
      st.epfd = -1;
    } else if (ev != nullptr) {
      st.epevents = ev->events;
      st.epdata = ev->data.u64;
    }
    return 0;
  }
  int r = real.epoll_ctl(epfd, op, fd, ev);
  if (r == 0 && fd >= 0 && fd < kMaxFds) {
    FdState& st = State(fd);
    if (op == EPOLL_CTL_DEL) {
      if (st.epfd == epfd) st.epfd = -1;
    } else if (ev != nullptr) {
      st.epfd = epfd;
      st.epdata = ev->data.u64;
      st.epevents = ev->events;
    }
  }
  return r;
}

FAULT_EXPORT int epoll_wait(int epfd, epoll_event* events, int maxevents,
                            int timeout) {
  EnsureReal();
  if (!GatesPossible() || t_state.in_shim)
    return real.epoll_wait(epfd, events, maxevents, timeout);
  int64_t deadline = TimeoutToDeadline(timeout, NowNs());
  return GatedEpoll(epfd, events, maxevents, deadline,
                    [&](epoll_event* ev, int max, int ms) {
                      return real.epoll_wait(epfd, ev, max, ms);
                    });
}

FAULT_EXPORT int epoll_pwait(int epfd, epoll_event* events, int maxevents,
                             int timeout, const sigset_t* mask) {
  EnsureReal();
  if (!GatesPossible() || t_state.in_shim)
    return real.epoll_pwait(epfd, events, maxevents, timeout, mask);
  int64_t deadline = TimeoutToDeadline(timeout, NowNs());
  return GatedEpoll(epfd, events, maxevents, deadline,
                    [&](epoll_event* ev, int max, int ms) {
                      return real.epoll_pwait(epfd, ev, max, ms, mask);
                    });
}

// ---- dns ----

FAULT_EXPORT int getaddrinfo(const char* node, const char* service,
                             const addrinfo* hints, addrinfo** res) {
  EnsureReal();
  if (node == nullptr || !MaybeFault(kHotDns, kHotDnsScoped))
    return real.getaddrinfo(node, service, hints, res);
  {
    Slow s;
    if (s.ok) {
      int eai = DnsFault(s, node);
      if (eai != 0) return eai;
    }
  }
  int rc = real.getaddrinfo(node, service, hints, res);
  if (rc == 0 && res != nullptr && g_table != nullptr)
    RememberAnswers(node, *res);
  return rc;
}

FAULT_EXPORT hostent* gethostbyname(const char* name) {
  EnsureReal();
  if (name == nullptr || !MaybeFault(kHotDns, kHotDnsScoped))
    return real.gethostbyname(name);
  {
    Slow s;
    if (s.ok) {
      int eai = DnsFault(s, name);
      if (eai != 0) {
        h_errno = eai == EAI_AGAIN ? TRY_AGAIN : HOST_NOT_FOUND;
        return nullptr;
      }
    }
  }
  hostent* h = real.gethostbyname(name);
  if (h != nullptr) RememberHostent(name, h);
  return h;
}

FAULT_EXPORT int gethostbyname_r(const char* name, hostent* ret, char* buf,
                                 size_t buflen, hostent** result,
                                 int* h_errnop) {
  EnsureReal();
  if (name == nullptr || !MaybeFault(kHotDns, kHotDnsScoped))
    return real.gethostbyname_r(name, ret, buf, buflen, result, h_errnop);
  {
    Slow s;
    if (s.ok) {
      int eai = DnsFault(s, name);
      if (eai != 0) {
        if (result) *result = nullptr;
        if (h_errnop) *h_errnop = eai == EAI_AGAIN ? TRY_AGAIN : HOST_NOT_FOUND;
        return eai == EAI_AGAIN ? EAGAIN : 0;
      }
    }
  }
  int rc = real.gethostbyname_r(name, ret, buf, buflen, result, h_errnop);
  if (rc == 0 && result != nullptr && *result != nullptr)
    RememberHostent(name, *result);
  return rc;
}
