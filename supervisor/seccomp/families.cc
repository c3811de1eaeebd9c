#include "supervisor/seccomp/families.h"

#include <seccomp.h>

#include <array>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "shim/engine/families.h"

namespace fault::seccomp {
namespace {

static_assert(kMaxFamily + 1 == ::fault::engine::kFamilyCount,
              "a family in shim/engine/families.h needs its syscalls here");

// Indexed by Family; the names are shim/engine/families.h's.
const std::array<std::vector<std::string_view>, kMaxFamily + 1>& Syscalls() {
  static const auto* const kSyscalls =
      new std::array<std::vector<std::string_view>, kMaxFamily + 1>{{
          {},
          {"open", "openat", "creat", "openat2"},
          {"read", "readv", "pread64", "preadv", "preadv2"},
          {"write", "writev", "pwrite64", "pwritev", "pwritev2"},
          {"fsync"},
          {"fdatasync"},
          {"connect"},
          {"accept", "accept4"},
          {"sendto", "sendmsg", "sendmmsg"},
          {"recvfrom", "recvmsg", "recvmmsg"},
          {"close"},
          {"unlink", "unlinkat"},
          {"rename", "renameat", "renameat2"},
          {"mkdir", "mkdirat"},
          {"ftruncate"},
          // Only the setup: a program without a ring cannot submit anything
          // (io_uring_enter and io_uring_register need the ring's fd).
          {"io_uring_setup"},
      }};
  return *kSyscalls;
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
  return ::fault::engine::FamilyName(i);
}

const std::vector<std::string_view>& FamilySyscallNames(Family f) {
  int i = static_cast<int>(f);
  if (i < 0 || i > kMaxFamily) i = 0;
  return Syscalls()[i];
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
  std::vector<std::string> names;
  for (int i = 1; i <= kMaxFamily; ++i) {
    names.emplace_back(::fault::engine::FamilyName(i));
    if (names.back() == name) return static_cast<Family>(i);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown syscall family \"", std::string(name),
                   "\" (expected one of ", absl::StrJoin(names, ", "), ")"));
}

}  // namespace fault::seccomp
