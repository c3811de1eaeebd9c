// The wrappers of file calls (open, read, write, fsync, close, dup).

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

using namespace fault::shim;  // NOLINT: the wrappers are the C ABI
namespace eng = ::fault::engine;

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

