// The seccomp layer as a `fault exec` injection layer (supervisor/exec/
// exec_layer.h): compiles the filter for the families the policies cover,
// installs it in the child before execve, and answers its notifications
// with the shared decision engine over the run's policy table.
//
// Usage (in the exec command):
//   SeccompExecLayer seccomp({.families_mask = SeccompFamilies(policy_set),
//                             .program = "app"});
//   options.layers.push_back(&seccomp);   // the runner calls the hooks
//
// The notification loop starts as soon as the child hands its listener
// over (from a thread Prepare() starts), not only at Started(): anything
// the child does between installing the filter and execve (such as
// reporting a failed execve through a pipe with write(2)) is answered.
//
// Thread-safety: the hooks are called by the runner in order from one
// thread; sync_wakeup() and stats() may be called from any thread.
#ifndef FAULT_SUPERVISOR_SECCOMP_SECCOMP_EXEC_LAYER_H_
#define FAULT_SUPERVISOR_SECCOMP_SECCOMP_EXEC_LAYER_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "fault/v1/policy.pb.h"
#include "supervisor/exec/exec_layer.h"
#include "supervisor/seccomp/seccomp_layer.h"

namespace fault::seccomp {

// The families a policy set needs the filter to notify: every syscall
// fault's family, plus connect and send when it has partitions.
uint64_t SeccompFamilies(const fault::v1::PolicySet& policies);

class SeccompExecLayer : public fault::exec::ExecLayer {
 public:
  struct Options {
    uint64_t families_mask = 0;
    std::string program;                 // name for partition(a, b); "" if none
    PartitionMap* partitions = nullptr;  // shared by programs of one supervisor
  };
  explicit SeccompExecLayer(Options options);
  ~SeccompExecLayer() override;

  std::string name() const override { return "seccomp"; }
  uint64_t families_mask() const override { return options_.families_mask; }
  // With a partition map the filter notifies connect and send even from the
  // shim's stub page, so partitions hold for dynamically linked programs.
  bool handles_partitions() const override;
  // The filter's notifications need this process to answer them.
  bool needs_live_supervisor() const override { return true; }
  absl::Status Prepare(fault::exec::PolicyTable* table) override;
  int InChild() noexcept override;
  absl::Status Started(pid_t child) override;
  void Stop() override;

  // Whether SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP is on (false before the
  // listener arrived).
  bool sync_wakeup() const;
  NotifyStats stats() const;

 private:
  void Receive();

  Options options_;
  CompiledFilter filter_;
  int parent_end_ = -1;
  int child_end_ = -1;
  int stop_fd_ = -1;
  std::unique_ptr<EngineDecider> decider_;
  std::unique_ptr<NotifyLoop> loop_;
  std::thread receiver_;
  std::atomic<bool> listening_{false};
};

}  // namespace fault::seccomp

#endif  // FAULT_SUPERVISOR_SECCOMP_SECCOMP_EXEC_LAYER_H_
