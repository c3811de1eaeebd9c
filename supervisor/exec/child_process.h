// Starting the program under test: its path (as execvp would find it), its
// environment (the caller's, plus the shim and the table), fork/exec with
// the policy table's fd inherited, and the names of signals for messages.
#ifndef FAULT_SUPERVISOR_EXEC_CHILD_PROCESS_H_
#define FAULT_SUPERVISOR_EXEC_CHILD_PROCESS_H_

#include <signal.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "supervisor/exec/exec_layer.h"

namespace fault::exec {

// The stub page address fault reserves in every target for the shim's
// raw-syscall stub (FAULT_STUB_PAGE): 2 TiB below the top of the x86-64
// user address space, above where the kernel places the top-down mmap area
// and the stack of ordinary processes, and inside the application ranges of
// ASan and TSan. See docs/exec.md.
inline constexpr uint64_t kStubPageAddress = 0x7e0000000000ull;

// `program` as execvp(3) would run it: unchanged when it contains a '/',
// else the first executable regular file named so in the directories of
// `path_env` (empty entries mean the current directory). NotFound when
// there is none.
absl::StatusOr<std::string> ResolveProgram(const std::string& program,
                                           const char* path_env);

// `environ` with LD_PRELOAD = shim + existing entries (the shim first),
// FAULT_TABLE = `table_path` and FAULT_STUB_PAGE set, and FAULT_TABLE_FD
// removed; every other variable unchanged and in its original order. An
// empty `shim_path` leaves LD_PRELOAD alone (a run without the shim layer).
std::vector<std::string> BuildChildEnvironment(char* const* environ,
                                               const std::string& shim_path,
                                               const std::string& table_path,
                                               uint64_t stub_page);

struct SpawnRequest {
  std::string path;                // resolved program
  std::vector<std::string> argv;   // argv[0] as the user typed it
  std::vector<std::string> env;
  int inherit_fd = -1;             // close-on-exec is cleared in the child
  sigset_t child_mask;             // the signal mask the program starts with
  std::vector<ExecLayer*> layers;  // InChild() hooks, in order
  bool new_process_group = false;  // the child leads a process group of its own
  bool die_with_parent = false;    // SIGKILL when the spawning process dies
};

// fork + execve. Returns the pid once execve succeeded; an error (with the
// errno of the failed step) when it did not, after reaping the child.
absl::StatusOr<pid_t> Spawn(const SpawnRequest& request);

// "SIGSEGV"; "SIG<N>" for numbers without a name.
std::string SignalName(int sig);

// "SIGHUP", "HUP", "hup", "1" -> 1; 0 when not a signal.
int SignalFromName(const std::string& name);

}  // namespace fault::exec

#endif  // FAULT_SUPERVISOR_EXEC_CHILD_PROCESS_H_
