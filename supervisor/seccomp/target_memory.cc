#include "supervisor/seccomp/target_memory.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace fault::seccomp {
namespace {

constexpr uint64_t kPage = 4096;

std::string ReadLink(const std::string& path) {
  char buf[4096];
  ssize_t n = readlink(path.c_str(), buf, sizeof(buf));
  if (n <= 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

std::optional<sockaddr_storage> ReadSockaddr(pid_t tid, uint64_t addr,
                                             uint64_t len) {
  if (addr == 0 || len < sizeof(sa_family_t)) return std::nullopt;
  sockaddr_storage ss{};
  len = std::min<uint64_t>(len, sizeof(ss));
  if (!ReadTargetBytes(tid, addr, &ss, len)) return std::nullopt;
  if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6) return std::nullopt;
  return ss;
}

std::optional<sockaddr_storage> ReadMsghdrName(pid_t tid,
                                               uint64_t msghdr_addr) {
  msghdr m{};
  if (msghdr_addr == 0 || !ReadTargetBytes(tid, msghdr_addr, &m, sizeof(m)))
    return std::nullopt;
  return ReadSockaddr(tid, reinterpret_cast<uint64_t>(m.msg_name),
                      m.msg_namelen);
}

}  // namespace

bool ReadTargetBytes(pid_t pid, uint64_t addr, void* out, size_t len) {
  iovec local{out, len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  return process_vm_readv(pid, &local, 1, &remote, 1, 0) ==
         static_cast<ssize_t>(len);
}

std::optional<std::string> ReadTargetString(pid_t pid, uint64_t addr,
                                            size_t max) {
  if (addr == 0) return std::nullopt;
  std::string out;
  char buf[kPage];
  // Page by page: a string may end just before an unmapped page.
  while (out.size() < max) {
    size_t chunk = kPage - (addr % kPage);
    chunk = std::min(chunk, max - out.size());
    iovec local{buf, chunk};
    iovec remote{reinterpret_cast<void*>(addr), chunk};
    ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (n <= 0) return std::nullopt;
    const char* end =
        static_cast<const char*>(memchr(buf, '\0', static_cast<size_t>(n)));
    if (end != nullptr) {
      out.append(buf, static_cast<size_t>(end - buf));
      return out;
    }
    out.append(buf, static_cast<size_t>(n));
    addr += static_cast<uint64_t>(n);
  }
  return std::nullopt;
}

std::string TargetFdPath(pid_t pid, int fd) {
  return ReadLink(absl::StrCat("/proc/", pid, "/fd/", fd));
}

std::string ResolveTargetPath(pid_t tid, int dirfd, const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  std::string base = dirfd == AT_FDCWD
                         ? ReadLink(absl::StrCat("/proc/", tid, "/cwd"))
                         : TargetFdPath(tid, dirfd);
  if (base.empty()) return path;
  if (path.empty()) return base;
  if (base.back() != '/') base += '/';
  return base + path;
}

SyscallDetail ReadSyscallDetail(pid_t tid, int nr, Family family,
                                const std::array<uint64_t, 6>& args) {
  SyscallDetail d;
  auto path_at = [&](uint64_t dirfd, uint64_t addr) {
    std::optional<std::string> p = ReadTargetString(tid, addr);
    if (p.has_value())
      d.path = ResolveTargetPath(tid, static_cast<int>(dirfd), *p);
  };
  switch (family) {
    case Family::kOpen:
    case Family::kUnlink:
    case Family::kRename:
    case Family::kMkdir:
      if (nr == SYS_openat || nr == SYS_openat2 || nr == SYS_unlinkat ||
          nr == SYS_renameat || nr == SYS_renameat2 || nr == SYS_mkdirat) {
        path_at(args[0], args[1]);
      } else {
        path_at(static_cast<uint64_t>(AT_FDCWD),
                args[0]);  // open, creat, unlink, ...
      }
      break;
    case Family::kConnect:
      d.addr = ReadSockaddr(tid, args[1], args[2]);
      break;
    case Family::kSend:
      if (nr == SYS_sendto) {
        d.addr = ReadSockaddr(tid, args[4], args[5]);
      } else {
        // sendmsg: msghdr*; sendmmsg: mmsghdr* whose first member is a msghdr.
        d.addr = ReadMsghdrName(tid, args[1]);
      }
      d.path = TargetFdPath(tid, static_cast<int>(args[0]));
      break;
    case Family::kIoUring:
      break;  // io_uring_setup(entries, params): no file, no address
    default: {
      std::string p = TargetFdPath(tid, static_cast<int>(args[0]));
      if (!p.empty() && p[0] == '/') d.path = std::move(p);
      break;
    }
  }
  return d;
}

pid_t ThreadGroupOf(pid_t tid) {
  std::ifstream in(absl::StrCat("/proc/", tid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view v = line;
    if (absl::ConsumePrefix(&v, "Tgid:")) {
      pid_t tgid;
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(v), &tgid)) return tgid;
    }
  }
  return tid;
}

std::string FormatSockaddr(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(ss);
    inet_ntop(AF_INET, &in.sin_addr, buf, sizeof(buf));
    return absl::StrCat(buf, ":", ntohs(in.sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(ss);
    inet_ntop(AF_INET6, &in6.sin6_addr, buf, sizeof(buf));
    return absl::StrCat("[", buf, "]:", ntohs(in6.sin6_port));
  }
  return "";
}

}  // namespace fault::seccomp
