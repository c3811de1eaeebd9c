// Internal declarations of libfault_shim.so, shared by its source files.
// Nothing here is exported (the version script keeps everything local but
// the wrapped libc symbols and the scope API).
#ifndef FAULT_SHIM_SRC_SHIM_INTERNAL_H_
#define FAULT_SHIM_SRC_SHIM_INTERNAL_H_

#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "fault/table.h"
#include "shim/engine/engine.h"

#define FAULT_HIDDEN __attribute__((visibility("hidden")))
#define FAULT_TLS __thread __attribute__((tls_model("initial-exec")))

namespace fault::shim {

// The next definitions of the functions the shim wraps (dlsym RTLD_NEXT).
struct RealFns {
  int (*connect)(int, const sockaddr*, socklen_t);
  int (*accept)(int, sockaddr*, socklen_t*);
  int (*accept4)(int, sockaddr*, socklen_t*, int);
  ssize_t (*send)(int, const void*, size_t, int);
  ssize_t (*sendto)(int, const void*, size_t, int, const sockaddr*, socklen_t);
  ssize_t (*sendmsg)(int, const msghdr*, int);
  ssize_t (*write)(int, const void*, size_t);
  ssize_t (*writev)(int, const iovec*, int);
  ssize_t (*pwrite)(int, const void*, size_t, off_t);
  ssize_t (*pwrite64)(int, const void*, size_t, off64_t);
  ssize_t (*recv)(int, void*, size_t, int);
  ssize_t (*recvfrom)(int, void*, size_t, int, sockaddr*, socklen_t*);
  ssize_t (*recvmsg)(int, msghdr*, int);
  ssize_t (*read)(int, void*, size_t);
  ssize_t (*readv)(int, const iovec*, int);
  ssize_t (*pread)(int, void*, size_t, off_t);
  ssize_t (*pread64)(int, void*, size_t, off64_t);
  int (*close)(int);
  int (*fsync)(int);
  int (*fdatasync)(int);
  int (*open)(const char*, int, ...);
  int (*open64)(const char*, int, ...);
  int (*openat)(int, const char*, int, ...);
  int (*openat64)(int, const char*, int, ...);
  int (*creat)(const char*, mode_t);
  int (*creat64)(const char*, mode_t);
  int (*socket)(int, int, int);
  int (*dup2)(int, int);
  int (*dup3)(int, int, int);
  int (*getsockopt)(int, int, int, void*, socklen_t*);
  int (*getsockname)(int, sockaddr*, socklen_t*);
  int (*getpeername)(int, sockaddr*, socklen_t*);
  int (*getaddrinfo)(const char*, const char*, const addrinfo*, addrinfo**);
  hostent* (*gethostbyname)(const char*);
  int (*gethostbyname_r)(const char*, hostent*, char*, size_t, hostent**, int*);
  int (*poll)(pollfd*, nfds_t, int);
  int (*ppoll)(pollfd*, nfds_t, const timespec*, const sigset_t*);
  int (*select)(int, fd_set*, fd_set*, fd_set*, timeval*);
  int (*pselect)(int, fd_set*, fd_set*, fd_set*, const timespec*,
                 const sigset_t*);
  int (*epoll_wait)(int, epoll_event*, int, int);
  int (*epoll_pwait)(int, epoll_event*, int, int, const sigset_t*);
  int (*epoll_ctl)(int, int, int, epoll_event*);
};

extern RealFns real FAULT_HIDDEN;

// Resolves `real` (idempotent).
void ResolveReal() FAULT_HIDDEN;

// The raw-syscall stub page (null: not mapped). Calls syscall `nr`.
using StubFn = long (*)(long nr, long a1, long a2, long a3, long a4, long a5,
                        long a6);
extern StubFn g_stub FAULT_HIDDEN;
// Maps the stub page named by FAULT_STUB_PAGE; warns once on failure.
// Returns true if mapped, false if absent or failed (*failed set).
bool MapStubPage(const char* env, bool* failed) FAULT_HIDDEN;

// Writes a message to stderr with the real write (no formatting, no malloc).
void Warn(const char* a, const char* b = nullptr,
          const char* c = nullptr) FAULT_HIDDEN;

}  // namespace fault::shim

#endif  // FAULT_SHIM_SRC_SHIM_INTERNAL_H_
