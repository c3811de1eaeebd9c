// Reading a notified syscall's arguments out of the target: strings and
// structures through process_vm_readv, descriptors and the working
// directory through /proc. Everything read here is only a hint until the
// caller confirms with SECCOMP_IOCTL_NOTIF_ID_VALID that the syscall is still
// waiting (the target may have exited and its pid been reused).
//
// Thread-safety: stateless.
#ifndef FAULT_SUPERVISOR_SECCOMP_TARGET_MEMORY_H_
#define FAULT_SUPERVISOR_SECCOMP_TARGET_MEMORY_H_

#include <sys/socket.h>
#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "supervisor/seccomp/families.h"

namespace fault::seccomp {

// Reads `len` bytes at `addr` in `pid`; false unless all were read.
bool ReadTargetBytes(pid_t pid, uint64_t addr, void* out, size_t len);

// Reads a NUL-terminated string of at most `max` bytes.
std::optional<std::string> ReadTargetString(pid_t pid, uint64_t addr,
                                            size_t max = 4096);

// readlink(/proc/PID/fd/FD), or "" for errors.
std::string TargetFdPath(pid_t pid, int fd);

// The absolute path a *at() call names: `path` itself if absolute, else
// joined to the directory of `dirfd` (AT_FDCWD: the working directory).
std::string ResolveTargetPath(pid_t tid, int dirfd, const std::string& path);

// The path (file families) and destination address (connect, sendto,
// sendmsg, sendmmsg) of syscall `nr` (native architecture) with `args`,
// made by thread `tid`. Fields stay empty when unknown.
struct SyscallDetail {
  std::string path;
  std::optional<sockaddr_storage> addr;
};
SyscallDetail ReadSyscallDetail(pid_t tid, int nr, Family family,
                                const std::array<uint64_t, 6>& args);

// The thread group id of thread `tid` (from /proc/TID/status), or `tid`.
pid_t ThreadGroupOf(pid_t tid);

// "127.0.0.1:8080", "[::1]:53", "" for other families.
std::string FormatSockaddr(const sockaddr_storage& ss);

}  // namespace fault::seccomp

#endif  // FAULT_SUPERVISOR_SECCOMP_TARGET_MEMORY_H_
