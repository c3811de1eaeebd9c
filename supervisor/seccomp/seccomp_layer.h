// The seccomp layer's public API for `fault exec`: build the filter from a
// plan, install it in the forked child before execve, hand the listener to
// the parent, answer notifications there, and probe what the kernel offers.
//
// Usage (fault exec):
//   SeccompPlan plan{.families_mask = table->config.families_mask,
//                    .stub_page = table->stub_page};
//   int sv[2]; socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv);
//   plan.handoff_fd = sv[1];
//   absl::StatusOr<CompiledFilter> filter = CompileSeccompPlan(plan);  //
//   before fork pid_t pid = fork(); if (pid == 0) {                      //
//   child: async-signal-safe only
//     close(sv[0]);
//     if (InstallFilterInChild(*filter, sv[1]) != 0) _exit(127);
//     execve(...);
//   }
//   close(sv[1]);
//   absl::StatusOr<int> listener = ReceiveListener(sv[0], absl::Seconds(10));
//   EngineDecider decider(table, &partitions);
//   NotifyLoop loop(&decider, table);
//   loop.Start(*listener, "app");
//   ... waitpid(pid) ...; loop.WaitUntilDone(absl::Seconds(1)); loop.Stop();
//
// Thread-safety: see each declaration.
#ifndef FAULT_SUPERVISOR_SECCOMP_SECCOMP_LAYER_H_
#define FAULT_SUPERVISOR_SECCOMP_SECCOMP_LAYER_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "supervisor/seccomp/decider.h"
#include "supervisor/seccomp/engine_decider.h"
#include "supervisor/seccomp/families.h"
#include "supervisor/seccomp/filter.h"
#include "supervisor/seccomp/notify_loop.h"
#include "supervisor/seccomp/partition.h"

namespace fault::seccomp {

struct SeccompPlan {
  // Bit f: notify the syscalls of Family f (fault_config.families_mask).
  uint64_t families_mask = 0;
  // The shim's raw-syscall stub page (fault_table.stub_page); 0: none.
  uint64_t stub_page = 0;
  // Families notified even when called from the stub page (partitions: the
  // supervisor must see the shim's own connects and sends too).
  uint64_t even_from_stub_mask = 0;
  // The child's end of the socket the listener is sent over. When the plan
  // covers the send family, sendmsg on this descriptor is exempt from
  // notification: the child sends the listener before anyone can answer.
  int handoff_fd = -1;
  // What syscalls of another ABI (i386, x32) get: kill the process.
  uint32_t on_wrong_arch = kRetKillProcess;
};

// Compiles the plan for this machine's architecture. Call before fork.
absl::StatusOr<CompiledFilter> CompileSeccompPlan(const SeccompPlan& plan);

// In the forked child, after setting up the environment and before execve:
// prctl(PR_SET_NO_NEW_PRIVS), seccomp(SECCOMP_SET_MODE_FILTER,
// SECCOMP_FILTER_FLAG_NEW_LISTENER), then sends the listener over `sock_fd`
// (SCM_RIGHTS). On failure sends the errno instead, so the parent can say
// why. Async-signal-safe (no allocation, no locks). Returns 0 or -errno.
// The listener is close-on-exec: execve drops the child's copy.
int InstallFilterInChild(const CompiledFilter& filter, int sock_fd);

// In the parent: waits up to `timeout` for the child's listener.
absl::StatusOr<int> ReceiveListener(int sock_fd,
                                    absl::Duration timeout = absl::Seconds(10));

struct SeccompSupport {
  bool user_notification = false;  // SECCOMP_RET_USER_NOTIF and a listener
  bool sync_wakeup = false;  // SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP accepted
  bool continue_flag =
      false;  // SECCOMP_USER_NOTIF_FLAG_CONTINUE (kernel >= 5.5)
};

// Forks a short-lived child that installs a notifying filter and hands the
// listener back, to see what this kernel allows. Safe to call from a
// multi-threaded process.
absl::StatusOr<SeccompSupport> ProbeSeccompSupport();

}  // namespace fault::seccomp

#endif  // FAULT_SUPERVISOR_SECCOMP_SECCOMP_LAYER_H_
