// An injection layer besides the preload shim that `fault exec` sets up
// around the child, e.g. the seccomp user-notification supervisor
// (supervisor/seccomp). The runner calls, in this order:
//
//   families_mask()   before compiling: the syscall families the layer
//                     handles (copied into fault_config.families_mask so the
//                     shim leaves them alone when its stub page is missing)
//   Prepare(table)    after the table exists and holds the first policy
//   InChild()         in the child between fork and execve
//   Started(pid)      in the parent once the child runs
//   Stop()            after the child exited (and on every early exit)
//
// A layer that cannot apply a policy it was given says so from Prepare();
// the run is then refused (exit 2), never silently weakened.
#ifndef FAULT_SUPERVISOR_EXEC_EXEC_LAYER_H_
#define FAULT_SUPERVISOR_EXEC_EXEC_LAYER_H_

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "supervisor/exec/policy_table.h"

namespace fault::exec {

class ExecLayer {
 public:
  virtual ~ExecLayer() = default;
  virtual std::string name() const = 0;
  virtual uint64_t families_mask() const = 0;
  // Whether the layer applies partition(a, b) rules (it was set up with the
  // programs' names and sees every connect and send).
  virtual bool handles_partitions() const { return false; }
  // Whether the program must not outlive `fault`: a seccomp filter whose
  // notifications nobody answers any more fails every covered syscall with
  // ENOSYS, writes no rule selected included. The runner then starts the
  // program with PR_SET_PDEATHSIG(SIGKILL) (docs/exec.md, "If fault dies").
  virtual bool needs_live_supervisor() const { return false; }
  // `table` outlives the layer's use of it; the layer may read it from any
  // thread (seqlock readers never block the writer).
  virtual absl::Status Prepare(PolicyTable* table) = 0;
  // Async-signal-safe code only (the parent may be multi-threaded).
  // Returns 0, or an errno that makes the child fail before execve.
  virtual int InChild() noexcept = 0;
  virtual absl::Status Started(pid_t child) = 0;
  virtual void Stop() = 0;
};

}  // namespace fault::exec

#endif  // FAULT_SUPERVISOR_EXEC_EXEC_LAYER_H_
