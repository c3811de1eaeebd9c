// What the exported wrappers share: the dispatch checks and the slow paths
// of send-, receive- and open-like calls. Internal to libfault_shim.so.
#ifndef FAULT_SHIM_SRC_SHIM_WRAPPERS_H_
#define FAULT_SHIM_SRC_SHIM_WRAPPERS_H_

#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "shim/src/shim_state.h"

#define FAULT_EXPORT extern "C" __attribute__((visibility("default")))

namespace fault::shim {

// ================================================================ wrappers ===




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

// The part of OpenCommon for when a rule may apply: out of line, so that
// the common case needs neither its stack frame (a path buffer) nor the
// registers it saves.
[[gnu::noinline]] inline int OpenSlow(int dirfd, const char* path, int flags, mode_t mode,
                                      bool at,
                                      int (*pass_fn)(int, const char*, int, mode_t, bool)) {
  Slow s;
  if (s.ok && !LeftToSeccomp(s.idx(), eng::kFamilyOpen)) {
    char abs[256];
    ResolvePath(dirfd, path, abs, sizeof(abs));
    if (ApplySyscallRules(s, eng::kFamilyOpen, FAULT_OP_OPEN, abs)) return -1;
    if (ViaStub(s.idx(), eng::kFamilyOpen)) {
      int fd = static_cast<int>(
          Raw(SYS_openat, dirfd, reinterpret_cast<long>(path), flags, mode));
      if (fd >= 0) SetKind(fd, kOpened);
      return fd;
    }
  }
  int fd = pass_fn(dirfd, path, flags, mode, at);
  if (fd >= 0) SetKind(fd, kOpened);
  return fd;
}

inline int OpenCommon(int dirfd, const char* path, int flags, mode_t mode, bool at,
               int (*pass_fn)(int, const char*, int, mode_t, bool)) {
  EnsureReal();
  if (__builtin_expect(MaybeFault(SysHot(eng::kFamilyOpen), kHotSysScoped), 0))
    return OpenSlow(dirfd, path, flags, mode, at, pass_fn);
  int fd = pass_fn(dirfd, path, flags, mode, at);
  if (fd >= 0) SetKind(fd, kOpened);
  return fd;
}

inline int PassOpen(int dirfd, const char* path, int flags, mode_t mode, bool at) {
  if (at) return real.openat(dirfd, path, flags, mode);
  return real.open(path, flags, mode);
}
inline int PassOpen64(int dirfd, const char* path, int flags, mode_t mode, bool at) {
  if (at) return real.openat64(dirfd, path, flags, mode);
  return real.open64(path, flags, mode);
}

inline bool NeedsMode(int flags) {
  return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}


}  // namespace fault::shim

#endif  // FAULT_SHIM_SRC_SHIM_WRAPPERS_H_
