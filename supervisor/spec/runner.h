// Runs the cells of a loaded spec: for each (scenario, fault) cell, fresh
// services under `fault exec --reload-on SIGHUP`, readiness, the cell's
// fault switched on by a reload (or in force from the start with
// from_start=True), the scenario with its fault windows, the fault switched
// off, the expectation, shutdown, and the cell's fault events
// (docs/spec.md, "Fault windows").
//
//   RunOptions o;
//   o.fault_binary = "/proc/self/exe";
//   RunResult r = RunSpec(*spec, o);
//
// Cells run one after another (services of two cells never overlap, so
// fixed ports are safe), or, with RunOptions::jobs, several at a time when
// no service is shared or has a fixed port: each cell then has its own
// ports and directories (CellInstances, installed on the thread that runs
// it). With RunOptions::runs every cell runs again with the next seeds. A
// shared service (service(..., shared=True)) starts once and gets each cell's
// policy by a reload of `fault exec` (docs/spec.md, "Shared services"). Every
// phase is bounded: readiness by the service's ready_timeout and the cell
// timeout, the scenario by the cell timeout (its builtins wait at most until
// the cell's deadline, Starlark code is cancelled), shutdown by SIGTERM then
// SIGKILL after `stop_grace`.
//
// Thread safety: one RunSpec at a time per Spec (it sets the shared
// services' ports).
#ifndef FAULT_SUPERVISOR_SPEC_RUNNER_H_
#define FAULT_SUPERVISOR_SPEC_RUNNER_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/time/time.h"
#include "supervisor/spec/report.h"
#include "supervisor/spec/spec.h"

namespace fault::spec {

struct RunOptions {
  std::string fault_binary;  // the `fault` executable that runs services
  std::string filter;        // fnmatch glob over "scenario/fault"; "" = all
  uint64_t seed = 1;
  // Every cell runs `runs` times, run r with the seed seed + r (fault test
  // --runs).
  int runs = 1;
  // Cells at the same time (fault test --jobs), each with its own
  // services and ports; one at a time when a service is shared or has a
  // fixed port (RunResult::sequential_because says so).
  int jobs = 1;
  // Fault-timing exploration (fault test --explore-timing): every cell
  // whose fault is applied when run() starts (not from_start, not timed)
  // runs once without it to count its scenario's operations (exec,
  // http.*, tcp.connect), then once for each of them with the fault going
  // on right before it. fault_at_op > 0 (--fault-at-op): such cells run
  // with the fault going on before that operation only.
  bool explore_timing = false;
  int fault_at_op = 0;
  absl::Duration cell_timeout = absl::Seconds(30);
  absl::Duration stop_grace = absl::Seconds(3);
  bool keep_dirs = false;  // keep each cell's directory (logs, db files)
  // Called before and after each cell (progress display), from the thread
  // that runs it, one call at a time.
  std::function<void(int index, int total, const std::string& name)> on_start;
  std::function<void(int index, int total, const CellResult& result)> on_done;
};

RunResult RunSpec(Spec& spec, const RunOptions& options);

}  // namespace fault::spec

#endif  // FAULT_SUPERVISOR_SPEC_RUNNER_H_
