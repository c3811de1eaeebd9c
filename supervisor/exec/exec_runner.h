// `fault exec` without its command line: load and compile the policies,
// create the shared table, start the program with the shim preloaded, drain
// events while it runs, forward signals, reload on a signal, and print the
// summary. Returns the exit status `fault` should end with.
//
//   ExecOptions options;
//   options.policy_files = {"slow_link.yaml"};
//   options.command = {"curl", "http://127.0.0.1:8080/"};
//   int status = RunExec(options, std::cerr);
//
// Not thread-safe; meant to run once per process (it blocks signals).
#ifndef FAULT_SUPERVISOR_EXEC_EXEC_RUNNER_H_
#define FAULT_SUPERVISOR_EXEC_EXEC_RUNNER_H_

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "fault/v1/policy.pb.h"
#include "supervisor/control/control_address.h"
#include "supervisor/exec/exec_layer.h"
#include "supervisor/exec/seed_source.h"

namespace fault::exec {

// Exit statuses of `fault exec` itself (the program's own pass through).
inline constexpr int kExitUsage = 2;          // bad flags or policies; nothing started
inline constexpr int kExitNeverFired = 3;     // --expect-faults and a policy never fired
// --events FILE could not be written in full (ENOSPC, EIO, /dev/full, an
// error at close): the run's record of what it injected is incomplete, so
// the run fails even though the program exited 0. Only replaces a 0 status
// (a failing program's own status, or 128+N, says more and wins); wins over
// kExitNeverFired. 4 is outside what fault otherwise returns for its own
// reasons (2, 3, 125-127); like 3 it can coincide with a program's own
// status, which the "fault exec: --events ..." line on stderr tells apart.
inline constexpr int kExitEventsLost = 4;
inline constexpr int kExitInternal = 125;     // fault failed before the program started
inline constexpr int kExitCannotExecute = 126;
inline constexpr int kExitNotFound = 127;

// A program started before the main one under the same supervisor, policy
// table and layers (`fault exec --with NAME=COMMAND`), e.g. the server the
// main program talks to. It runs in a process group of its own and is
// stopped (SIGTERM, then SIGKILL) when the main program ends.
struct CompanionProgram {
  std::string name;
  std::vector<std::string> command;
  bool preload_shim = true;
  std::vector<ExecLayer*> layers;
};

// An address that must accept TCP connections before the main program
// starts (`--wait-for HOST:PORT`).
struct WaitTarget {
  std::string host;
  uint16_t port = 0;
  std::string text;  // as the user wrote it, for messages
};

struct ExecOptions {
  std::vector<std::string> policy_files;
  std::vector<std::string> uses;                  // --use NAME; empty: all
  std::optional<fault::v1::Policy> inline_policy; // from the effect flags
  // Policies the command line adds besides files and effect flags
  // (`--io-uring=deny`), after them and across reloads. They do not count
  // for --expect-faults: the user did not ask for their faults as such.
  std::vector<fault::v1::Policy> added_policies;
  std::optional<uint64_t> seed;
  int64_t run_duration_ns = 0;
  std::string events_path;
  bool quiet = false;
  bool expect_faults = false;
  bool scopes_only = false;
  int reload_signal = 0;                          // 0: none
  std::string shim_path;                          // empty: FindShimLibrary()
  bool preload_shim = true;                       // false: other layers only
  // Traffic the chosen layers cannot see, known before the start (a Go
  // program without the seccomp layer, ...): named in the summary under a
  // policy that never matched.
  std::vector<std::string> blind_spots;
  std::vector<std::string> command;
  std::vector<ExecLayer*> layers;                 // besides the shim
  // The policies the caller already selected (SelectPolicies) with their
  // warnings, for the first load: the files are then read once, and the run
  // uses exactly what the caller checked. Reloads read the files again.
  std::optional<fault::v1::PolicySet> selected;
  std::vector<std::string> selected_warnings;
  std::vector<CompanionProgram> companions;       // started first, in order
  std::vector<WaitTarget> wait_for;               // then these must accept
  int64_t wait_timeout_ns = 10'000'000'000;
  SeedSource* seeds = nullptr;                    // null: RandomSeedSource
  // `--control`: serve the control plane there (docs/control.md); the
  // gRPC module is loaded only then. With a token, every call needs it.
  std::optional<fault::control::ControlEndpoint> control;
  std::string control_token;
  std::string control_token_file;  // exported as FAULT_CONTROL_TOKEN_FILE
};

// The policies a run uses: the files' (all, or those --use names, in --use
// order), then the inline one, then the added ones. Unknown --use names are reported in
// `warnings` and skipped. Errors name the file or flag. A policy with
// http_error is refused (only `fault run`, the HTTP proxy, applies it).
absl::StatusOr<fault::v1::PolicySet> SelectPolicies(
    const ExecOptions& options, std::vector<std::string>* warnings);

// Refuses a policy with http_error: only `fault run`, the HTTP proxy,
// applies it. The error names the policy.
absl::Status RefuseProxyOnlyPolicies(const fault::v1::PolicySet& set);

int RunExec(const ExecOptions& options, std::ostream& err);

}  // namespace fault::exec

#endif  // FAULT_SUPERVISOR_EXEC_EXEC_RUNNER_H_
