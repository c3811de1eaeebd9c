// `fault run`: the fault proxy. Compiles the run's policies into a table,
// starts the stream engine with the HTTP forward proxy and the TCP
// mappings, shows what happens (a live line on a terminal, plain lines or
// nothing otherwise), and stops on SIGINT, SIGTERM or --duration with the
// same summary, events and exit statuses as `fault exec`.
//
//   absl::StatusOr<RunConfig> config = BuildRunConfig(flags, getenv);
//   int status = RunProxy(*config, std::cout, std::cerr);
//
// Not thread-safe; meant to run once per process (it blocks signals).
#ifndef FAULT_SUPERVISOR_RUN_PROXY_RUNNER_H_
#define FAULT_SUPERVISOR_RUN_PROXY_RUNNER_H_

#include <ostream>

#include "supervisor/run/run_config.h"

namespace fault::run {

inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 2;        // bad flags or policies; nothing started
inline constexpr int kExitNeverFired = 3;   // --expect-faults and a policy never fired
inline constexpr int kExitEventsLost = 4;   // the --events file is incomplete
inline constexpr int kExitCannotListen = 1; // a listener could not be bound, or
                                            // stealth capture could not start

// Runs the proxy until SIGINT/SIGTERM or config.duration_ns. `out` gets the
// prelude and the live view, `err` warnings, errors and the summary.
int RunProxy(const RunConfig& config, std::ostream& out, std::ostream& err);

}  // namespace fault::run

#endif  // FAULT_SUPERVISOR_RUN_PROXY_RUNNER_H_
