// Builtins shared by spec loading and scenario runs: records (struct),
// assertions, and the scenario builtins (exec, http.get/post/put/patch/delete,
// tcp.connect, sleep) that drive the system under test from a scenario. The
// fault events of a cell and the temporal assertions are in events.h, the
// outcome expectations (expect_success(), ...) in expectations.h.
//
// Scenario builtins need a running cell: the runner installs a CellContext
// on its thread with ScopedCell; outside one they fail with
// "exec: only available while a scenario runs". The fault windows
// (fault, fault_start, fault_stop) are spec builtins (spec.cc) that reach
// the runner through the CellContext's open_window and close_window.
//
// Thread safety: the current cell is thread-local.
#ifndef FAULT_SUPERVISOR_SPEC_BUILTINS_H_
#define FAULT_SUPERVISOR_SPEC_BUILTINS_H_

#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fault/v1/policy.pb.h"
#include "starlark/starlark.h"

namespace fault::spec {

struct ServiceDef;

// A fault applied to one service while part of a scenario runs:
// fault(svc, run = fn, ...) or fault_start(svc, ...) until fault_stop(svc)
// (docs/spec.md, "Fault windows").
struct FaultWindow {
  fault::v1::Policy policy;
  std::string where;          // file:line:col of the call that opened it
  std::string opened_by;      // "fault" or "fault_start"
  bool expect_events = true;  // the cell fails when it never fired
};

struct CellContext {
  absl::Time deadline = absl::InfiniteFuture();
  std::string timeout_message;  // the error when the deadline passes
  // Expands references to services' ports ("{db.main}", what db.main.addr
  // gives while the spec loads) in the url of http.* and in exec's argv
  // and env. Unset: no expansion.
  std::function<std::string(const std::string&)> expand_port_refs;

  // Fault events (events.h). The scenario's run() started at run_start
  // (the origin of an event's time) and ended at run_end (InfiniteFuture
  // while it runs). read_events returns the lines of the services'
  // --events files written so far, each with its "service"; unset: the
  // cell has no events.
  absl::Time run_start = absl::InfinitePast();
  absl::Time run_end = absl::InfiniteFuture();
  std::function<std::vector<nlohmann::json>()> read_events;
  // What a filter's service= and rule= may name: the spec's services and
  // fault assumptions.
  std::vector<std::string> service_names, fault_names;
  // The last read of the events, and when it was taken (under events_mu:
  // the functions of parallel() read them from several threads).
  std::mutex events_mu;
  std::vector<nlohmann::json> events_read;
  absl::Time events_read_at = absl::InfinitePast();
  // The scenario's run function is running (not its check): fault windows
  // may open.
  bool in_run = false;
  // Apply a window's fault to a running service, and remove it: "" once
  // `fault exec` has the new policies in force, else why not. Unset: no
  // windows.
  std::function<std::string(const ServiceDef&, const FaultWindow&)> open_window;
  std::function<std::string(const ServiceDef&)> close_window;
  // Called when an operation of the scenario on the system starts (exec,
  // http.get and the other methods, tcp.connect), from the thread that
  // runs it: the fault-timing exploration counts them and applies the
  // cell's fault before one (fault test --explore-timing). "" or why the
  // operation must fail. Unset: nothing.
  std::function<std::string(absl::string_view op)> before_operation;
};

class ScopedCell {
 public:
  explicit ScopedCell(CellContext* cell);
  ~ScopedCell();
  ScopedCell(const ScopedCell&) = delete;
  ScopedCell& operator=(const ScopedCell&) = delete;
};

// The cell of the calling thread, or null outside a scenario.
CellContext* CurrentCell();

// Fails the calling builtin with the cell's timeout message.
[[noreturn]] void FailCellTimeout(const CellContext& cell);

// A read-only value with named attributes; repr "struct(a = 1, ...)".
starlark::Value MakeRecord(
    std::vector<std::pair<std::string, starlark::Value>> fields,
    std::string type = "struct");

// A Starlark duration argument: "2s" or a number of seconds.
absl::Duration DurationArg(absl::string_view fname, absl::string_view param,
                           const starlark::Value& v);

// Adds struct, assert_*, exec, http, tcp and sleep, the event builtins
// (events.h) and the expectations (expectations.h).
void AddCommonBuiltins(starlark::StringDict* predeclared);

// Position of the Starlark call being evaluated ("file:line:col").
std::string CallPosition(starlark::Thread& thread);

}  // namespace fault::spec

#endif  // FAULT_SUPERVISOR_SPEC_BUILTINS_H_
