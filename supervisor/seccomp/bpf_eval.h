// A userspace interpreter for classic BPF programs as seccomp runs them, so
// generated filters are tested without a kernel: feed fake seccomp_data,
// compare the returned action.
//
// It implements the instruction subset the kernel's seccomp checker accepts
// (seccomp_check_filter): loads from seccomp_data (32-bit, aligned), the
// scratch memory, ALU, jumps, ret. It also counts which seccomp_data fields
// the program read, so tests can prove a verdict depended on `nr` and `arch`
// only (what the kernel's constant-action cache needs).
//
// Thread-safety: pure functions.
#ifndef FAULT_SUPERVISOR_SECCOMP_BPF_EVAL_H_
#define FAULT_SUPERVISOR_SECCOMP_BPF_EVAL_H_

#include <linux/filter.h>

#include <array>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace fault::seccomp {

// Same layout as struct seccomp_data.
struct FakeSeccompData {
  int32_t nr = 0;
  uint32_t arch = 0;
  uint64_t instruction_pointer = 0;
  std::array<uint64_t, 6> args{};
};

struct EvalResult {
  uint32_t ret = 0;
  // Whether the run loaded instruction_pointer or any argument.
  bool read_ip = false;
  bool read_args = false;
  int steps = 0;
};

// Runs `program` over `data`. Errors for programs the kernel would refuse or
// that misbehave at run time (out-of-range load, jump past the end, falling
// off the end, division by zero).
absl::StatusOr<EvalResult> EvaluateBpf(const std::vector<sock_filter>& program,
                                       const FakeSeccompData& data);

}  // namespace fault::seccomp

#endif  // FAULT_SUPERVISOR_SECCOMP_BPF_EVAL_H_
