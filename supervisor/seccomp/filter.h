// The seccomp filter generator: a small value-type description of what the
// filter does per syscall number, compiled to a classic BPF program.
//
// Shape of every generated program:
//
//   check arch (mismatch: ret <on_wrong_arch>)
//   x86_64 only: nr >= 0x40000000 (x32 ABI) -> ret <on_wrong_arch>
//   for each covered nr: nr == N -> [argument tests] -> jump to NOTIFY_TAIL
//   ret ALLOW                       <- every syscall no rule covers
//   NOTIFY_TAIL: instruction_pointer in the stub page -> ret ALLOW
//                ret USER_NOTIF
//
// A rule marked `even_from_stub` jumps past the stub-page test: the shim's
// own calls of that syscall are notified too (partitions need to see every
// connect, also those the shim makes through its stub).
//
// A syscall that no rule covers is decided by reading `arch` and `nr` only,
// so the kernel's constant-action bitmap (seccomp_cache) marks it ALLOW and
// never runs the filter for it. The instruction-pointer test is on the
// notified syscalls' path only.
//
// Usage:
//   FilterSpec spec(Arch::kX86_64);
//   spec.NotifyFamily(Family::kWrite).Notify(__NR_fsync).AllowFromStubPage(page);
//   absl::StatusOr<CompiledFilter> filter = spec.Compile();
//
// Thread-safety: value types; no shared state.
#ifndef FAULT_SUPERVISOR_SECCOMP_FILTER_H_
#define FAULT_SUPERVISOR_SECCOMP_FILTER_H_

#include <linux/filter.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "supervisor/seccomp/families.h"

namespace fault::seccomp {

// seccomp return values (linux/seccomp.h), spelled out so that tests and the
// disassembler do not depend on which kernel headers are installed.
inline constexpr uint32_t kRetKillProcess = 0x80000000U;
inline constexpr uint32_t kRetKillThread = 0x00000000U;
inline constexpr uint32_t kRetTrap = 0x00030000U;
inline constexpr uint32_t kRetErrno = 0x00050000U;
inline constexpr uint32_t kRetUserNotif = 0x7fc00000U;
inline constexpr uint32_t kRetTrace = 0x7ff00000U;
inline constexpr uint32_t kRetLog = 0x7ffc0000U;
inline constexpr uint32_t kRetAllow = 0x7fff0000U;
inline constexpr uint32_t kRetActionFull = 0xffff0000U;
inline constexpr uint32_t kRetData = 0x0000ffffU;

inline constexpr uint64_t kStubPageSize = 4096;

// Notify only when (args[index] & mask) == value (or != value when
// `not_equal`); otherwise allow.
struct ArgMatch {
  int index = 0;  // 0..5
  uint64_t mask = ~uint64_t{0};
  uint64_t value = 0;
  bool not_equal = false;
  bool operator==(const ArgMatch&) const = default;
};

// What the filter does for one syscall number that a rule covers.
struct SyscallRule {
  // All must hold for the syscall to be notified; empty: always notified.
  std::vector<ArgMatch> notify_if;
  // Notified also when made from the stub page.
  bool even_from_stub = false;
  bool operator==(const SyscallRule&) const = default;
};

// The compiled program, ready for seccomp(SECCOMP_SET_MODE_FILTER).
struct CompiledFilter {
  std::vector<sock_filter> program;
  // Every syscall number the program may notify, sorted.
  std::vector<int> notified;
  Arch arch = Arch::kX86_64;
  uint64_t stub_page = 0;
};

class FilterSpec {
 public:
  explicit FilterSpec(Arch arch = NativeArch()) : arch_(arch) {}

  // Notify syscall `nr` unconditionally.
  FilterSpec& Notify(int nr);
  // Notify syscall `nr` only when `match` holds, ANDed with earlier
  // conditions for the same nr (also after Notify(nr)). Notify(nr) after
  // NotifyIf(nr, ...) drops the conditions.
  FilterSpec& NotifyIf(int nr, ArgMatch match);
  // Notify every syscall of the family on this spec's architecture.
  FilterSpec& NotifyFamily(Family family);
  // Every family whose bit is set in `mask` (bit f: Family f).
  FilterSpec& NotifyFamilies(uint64_t mask);
  // Allow notified syscalls whose instruction_pointer lies in
  // [page, page + 4096). `page` must be page-aligned; 0 turns it off.
  FilterSpec& AllowFromStubPage(uint64_t page);
  // Notify `nr` (as Notify/NotifyIf decide) also when it comes from the stub
  // page. Has no effect on a syscall number no rule covers.
  FilterSpec& EvenFromStub(int nr);
  // EvenFromStub for every syscall of the families in `mask`.
  FilterSpec& EvenFromStubFamilies(uint64_t mask);
  // What a syscall of another architecture (or the x32 ABI) gets.
  // Default: kRetKillProcess.
  FilterSpec& OnWrongArch(uint32_t seccomp_ret);

  // Compiles; records the first error of the calls above (sticky) and
  // reports it here.
  absl::StatusOr<CompiledFilter> Compile() const;

  Arch arch() const { return arch_; }
  const std::map<int, SyscallRule>& rules() const { return rules_; }

 private:
  Arch arch_;
  std::map<int, SyscallRule> rules_;
  uint64_t stub_page_ = 0;
  uint32_t wrong_arch_ret_ = kRetKillProcess;
  std::string error_;
};

// A text listing of the program, one instruction per line, with seccomp_data
// fields and return actions named ("ld [nr]", "ret USER_NOTIF").
std::string Disassemble(const std::vector<sock_filter>& program);

// Name of a seccomp return action ("ALLOW", "ERRNO(38)", ...).
std::string RetName(uint32_t ret);

}  // namespace fault::seccomp

#endif  // FAULT_SUPERVISOR_SECCOMP_FILTER_H_
