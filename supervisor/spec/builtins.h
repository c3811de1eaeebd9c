// Builtins shared by spec loading and scenario runs: records (struct),
// assertions, and the scenario builtins (exec, http.get/post, tcp.connect,
// sleep) that drive the system under test from a scenario.
//
// Scenario builtins need a running cell: the runner installs a CellContext
// on its thread with ScopedCell; outside one they fail with
// "exec: only available while a scenario runs".
//
// Thread safety: the current cell is thread-local.
#ifndef FAULT_SUPERVISOR_SPEC_BUILTINS_H_
#define FAULT_SUPERVISOR_SPEC_BUILTINS_H_

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "starlark/starlark.h"

namespace fault::spec {

struct CellContext {
  absl::Time deadline = absl::InfiniteFuture();
  std::string timeout_message;  // the error when the deadline passes
  // Expands references to services' ports ("{db.main}", what db.main.addr
  // gives while the spec loads) in the url of http.* and in exec's argv
  // and env. Unset: no expansion.
  std::function<std::string(const std::string&)> expand_port_refs;
};

class ScopedCell {
 public:
  explicit ScopedCell(CellContext* cell);
  ~ScopedCell();
  ScopedCell(const ScopedCell&) = delete;
  ScopedCell& operator=(const ScopedCell&) = delete;
};

// A read-only value with named attributes; repr "struct(a = 1, ...)".
starlark::Value MakeRecord(
    std::vector<std::pair<std::string, starlark::Value>> fields,
    std::string type = "struct");

// A Starlark duration argument: "2s" or a number of seconds.
absl::Duration DurationArg(absl::string_view fname, absl::string_view param,
                           const starlark::Value& v);

// Adds struct, assert_*, exec, http, tcp and sleep.
void AddCommonBuiltins(starlark::StringDict* predeclared);

// Position of the Starlark call being evaluated ("file:line:col").
std::string CallPosition(starlark::Thread& thread);

}  // namespace fault::spec

#endif  // FAULT_SUPERVISOR_SPEC_BUILTINS_H_
