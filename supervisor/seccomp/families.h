// Syscall families (the numbers of fault.v1.SyscallFault.Family) and the
// syscall numbers each one covers, per architecture.
//
// Thread-safety: every function here is pure or reads immutable tables.
#ifndef FAULT_SUPERVISOR_SECCOMP_FAMILIES_H_
#define FAULT_SUPERVISOR_SECCOMP_FAMILIES_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace fault::seccomp {

// Same numbers as fault::engine::Family (shim/engine/families.h, where the
// names are), fault.v1.SyscallFault.Family and fault_syscall_rule.family.
enum class Family : uint8_t {
  kUnspecified = 0,
  kOpen = 1,
  kRead = 2,
  kWrite = 3,
  kFsync = 4,
  kFdatasync = 5,
  kConnect = 6,
  kAccept = 7,
  kSend = 8,
  kRecv = 9,
  kClose = 10,
  kUnlink = 11,
  kRename = 12,
  kMkdir = 13,
  kFtruncate = 14,
  kIoUring = 15,
};
inline constexpr int kMaxFamily = 15;

// Bit `f` of a families mask stands for Family f.
constexpr uint64_t FamilyBit(Family f) {
  return uint64_t{1} << static_cast<int>(f);
}

// AUDIT_ARCH_* values of the architectures the filter generator knows.
enum class Arch : uint32_t {
  kX86_64 = 0xC000003E,   // AUDIT_ARCH_X86_64
  kAarch64 = 0xC00000B7,  // AUDIT_ARCH_AARCH64
};

// The architecture this binary was built for.
Arch NativeArch();

// Lower-case family name ("write", "fsync", ...), "" for unknown numbers.
std::string_view FamilyName(Family f);

// Syscall names of one family, in a fixed order (both architectures; names
// an architecture lacks, such as `open` on aarch64, are skipped there).
const std::vector<std::string_view>& FamilySyscallNames(Family f);

// Syscall numbers of one family on `arch`, resolved through libseccomp.
std::vector<int> FamilySyscalls(Family f, Arch arch);

// The family a syscall number belongs to on `arch`, kUnspecified if none.
Family FamilyOfSyscall(int nr, Arch arch);

// Parses "write", "fsync", ... into a family.
absl::StatusOr<Family> ParseFamily(std::string_view name);

}  // namespace fault::seccomp

#endif  // FAULT_SUPERVISOR_SECCOMP_FAMILIES_H_
