// Syscall families: the one list of their numbers and names.
//
// A family is a set of syscalls one syscall fault names (`write` covers
// write, writev, pwrite64, ...). The numbers are those of
// fault.v1.SyscallFault.Family, of fault_syscall_rule.family and of the bits
// of fault_config.families_mask; the names are those of policy files, flags,
// specs, events and messages. The policy parser, the seccomp layer, the exec
// runner and the spec front end read them from here; the syscalls of each
// family are the seccomp layer's (supervisor/seccomp/families.cc).
//
// Header-only and libc-free: the preload shim includes it (through
// engine.h), as does every supervisor module. Adding a family: append it
// here and to SyscallFault.Family in proto/fault/v1/policy.proto (the
// parser checks that both have the same number of values), then give it its
// syscalls in supervisor/seccomp/families.cc.
//
// Thread-safety: constant data only.
#ifndef FAULT_SHIM_ENGINE_FAMILIES_H_
#define FAULT_SHIM_ENGINE_FAMILIES_H_

#include <stdint.h>

namespace fault::engine {

enum Family : uint8_t {
  kFamilyNone = 0,
  kFamilyOpen = 1,
  kFamilyRead = 2,
  kFamilyWrite = 3,
  kFamilyFsync = 4,
  kFamilyFdatasync = 5,
  kFamilyConnect = 6,
  kFamilyAccept = 7,
  kFamilySend = 8,
  kFamilyRecv = 9,
  kFamilyClose = 10,
  kFamilyUnlink = 11,
  kFamilyRename = 12,
  kFamilyMkdir = 13,
  kFamilyFtruncate = 14,
  kFamilyIoUring = 15,  // io_uring_setup: the seccomp layer only
  kFamilyCount = 16,
};

struct FamilyTraits {
  const char* name;  // as written in policies and events; "" for kFamilyNone
  // Its calls name a file (a path or a descriptor of one): path globs apply.
  bool file;
  // Only the seccomp layer can fault it: libc has no wrapper the shim could
  // take over (liburing makes the io_uring_setup syscall itself).
  bool seccomp_only;
};

// One family a line.
// clang-format off
inline constexpr FamilyTraits kFamilies[kFamilyCount] = {
    {"", false, false},
    {"open", true, false},
    {"read", true, false},
    {"write", true, false},
    {"fsync", true, false},
    {"fdatasync", true, false},
    {"connect", false, false},
    {"accept", false, false},
    {"send", false, false},
    {"recv", false, false},
    {"close", true, false},
    {"unlink", true, false},
    {"rename", true, false},
    {"mkdir", true, false},
    {"ftruncate", true, false},
    {"io_uring", false, true},
};
// clang-format on

// The name of `family`, "" when it is not one.
constexpr const char* FamilyName(int family) {
  return family > kFamilyNone && family < kFamilyCount ? kFamilies[family].name
                                                       : "";
}

// Bits of the families only the seccomp layer can fault.
constexpr uint64_t SeccompOnlyFamilies() {
  uint64_t mask = 0;
  for (int f = 1; f < kFamilyCount; ++f) {
    if (kFamilies[f].seccomp_only) mask |= uint64_t{1} << f;
  }
  return mask;
}

}  // namespace fault::engine

#endif  // FAULT_SHIM_ENGINE_FAMILIES_H_
