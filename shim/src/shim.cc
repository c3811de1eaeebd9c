// libfault_shim.so: applies the policies of the shared-memory table to the
// libc calls of the program it is preloaded into.
//
// Where things are:
//   shim_state.h       the mapped table, the per-process hot word, the fd
//                      table, per-thread scope/index state, and the inline
//                      checks every wrapper makes first (the hot path)
//   shim_wrappers.h    dispatch and the slow paths shared by the wrappers
//   shim.cc            (this file) start-up: resolve the real functions, map
//                      the table and the stub; the per-thread index; helpers
//                      (sleeping, fd classification, events); gates; syscall
//                      rules; the scope C API; socket-state wrappers
//   shim_net.cc        network effects applied in place, the redirect of TCP
//                      connections to the stream engine, socket wrappers
//   shim_files.cc      file wrappers
//   shim_readiness.cc  poll/select/epoll, so that delayed operations do not
//                      report readiness early
//   shim_dns.cc        getaddrinfo/gethostbyname faults, resolved names
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

#include "shim/src/shim_state.h"
#include "shim/src/shim_wrappers.h"

namespace fault::shim {

RealFns real;

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
  FdChunk* c = FdChunkOf(fd);  // once for the three arrays
  const int i = fd & (kFdChunk - 1);
  if (g_table != nullptr) VerdictResetIn(c, i);
  FdState& st = c->fds[i];
  if (st.valid && st.in_gate_list) GateListRemove(fd, st);
  if (st.valid && st.lb_marked && g_table != nullptr) {
    int proto = c->kind[i] == kUdp ? 1 : 0;
    __atomic_fetch_and(&g_table->loopback_ports[proto][st.lb_port / 64],
                       ~(uint64_t{1} << (st.lb_port % 64)), __ATOMIC_RELAXED);
    st.lb_marked = 0;
  }
  c->kind[i] = kUnknown;
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
  if (have_ep) eng::FormatEndpoint(ep, target, sizeof(target));
  return ApplySyscallRulesMasked(s, family, op, nullptr, mask, target);
}

}  // namespace fault::shim

using namespace fault::shim;  // NOLINT: the wrappers are the C ABI
namespace eng = ::fault::engine;

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

