#include "supervisor/seccomp/families.h"

#include <seccomp.h>

#include <array>
#include <string>

#include "absl/strings/str_cat.h"

namespace fault::seccomp {
namespace {

struct FamilyInfo {
  std::string_view name;
  std::vector<std::string_view> syscalls;
};

const std::array<FamilyInfo, kMaxFamily + 1>& Families() {
  static const auto* const kFamilies =
      new std::array<FamilyInfo, kMaxFamily + 1>{{
          {"", {}},
          {"open", {"open", "openat", "creat", "openat2"}},
          {"read", {"read", "readv", "pread64", "preadv", "preadv2"}},
          {"write", {"write", "writev", "pwrite64", "pwritev", "pwritev2"}},
          {"fsync", {"fsync"}},
          {"fdatasync", {"fdatasync"}},
          {"connect", {"connect"}},
          {"accept", {"accept", "accept4"}},
          {"send", {"sendto", "sendmsg", "sendmmsg"}},
          {"recv", {"recvfrom", "recvmsg", "recvmmsg"}},
          {"close", {"close"}},
          {"unlink", {"unlink", "unlinkat"}},
          {"rename", {"rename", "renameat", "renameat2"}},
          {"mkdir", {"mkdir", "mkdirat"}},
          {"ftruncate", {"ftruncate"}},
      }};
  return *kFamilies;
}

uint32_t ScmpArch(Arch arch) {
  return arch == Arch::kX86_64 ? SCMP_ARCH_X86_64 : SCMP_ARCH_AARCH64;
}

}  // namespace

Arch NativeArch() {
#if defined(__x86_64__)
  return Arch::kX86_64;
#elif defined(__aarch64__)
  return Arch::kAarch64;
#else
#error "fault's seccomp layer supports x86_64 and aarch64"
#endif
}

std::string_view FamilyName(Family f) {
  int i = static_cast<int>(f);
  if (i < 0 || i > kMaxFamily) return "";
  return Families()[i].name;
}

const std::vector<std::string_view>& FamilySyscallNames(Family f) {
  int i = static_cast<int>(f);
  if (i < 0 || i > kMaxFamily) i = 0;
  return Families()[i].syscalls;
}

std::vector<int> FamilySyscalls(Family f, Arch arch) {
  std::vector<int> out;
  for (std::string_view name : FamilySyscallNames(f)) {
    // libseccomp returns negative pseudo numbers for names the architecture
    // lacks (open, creat, ... on aarch64).
    int nr = seccomp_syscall_resolve_name_arch(ScmpArch(arch),
                                               std::string(name).c_str());
    if (nr >= 0) out.push_back(nr);
  }
  return out;
}

Family FamilyOfSyscall(int nr, Arch arch) {
  for (int i = 1; i <= kMaxFamily; ++i) {
    for (int n : FamilySyscalls(static_cast<Family>(i), arch)) {
      if (n == nr) return static_cast<Family>(i);
    }
  }
  return Family::kUnspecified;
}

absl::StatusOr<Family> ParseFamily(std::string_view name) {
  for (int i = 1; i <= kMaxFamily; ++i) {
    if (Families()[i].name == name) return static_cast<Family>(i);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown syscall family \"", std::string(name),
                   "\" (expected one of open, read, write, fsync, fdatasync, "
                   "connect, accept, send, "
                   "recv, close, unlink, rename, mkdir, ftruncate)"));
}

}  // namespace fault::seccomp
