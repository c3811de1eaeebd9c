// Outcome expectations of a cell: expect_success(), expect_error_within(d)
// and expect_hang(), given as a scenario's check or in fault_matrix
// overrides in place of a check function (docs/spec.md, "Outcome
// expectations"). Unlike a check function, an expectation sees how run()
// ended (it returned, it failed, it was still running when the cell timed
// out) and how long it took.
//
//   fault_matrix(
//       scenarios = [write],
//       faults = [None, db_down, db_blackhole],
//       overrides = {(write, db_down): expect_error_within("2s"),
//                    (write, db_blackhole): expect_hang()})
//
// Thread safety: expectation values are immutable; the functions are pure.
#ifndef FAULT_SUPERVISOR_SPEC_EXPECTATIONS_H_
#define FAULT_SUPERVISOR_SPEC_EXPECTATIONS_H_

#include <string>

#include "absl/time/time.h"
#include "starlark/starlark.h"

namespace fault::spec {

// How a scenario's run() ended.
struct RunOutcome {
  enum class End { kReturned, kFailed, kHung };
  End end = End::kReturned;
  starlark::Value value;  // what run() returned (kReturned)
  std::string error;      // why it failed (kFailed), the timeout (kHung)
  // From run()'s start to its end (to the cell's deadline when it hung).
  absl::Duration elapsed;
};

// Whether `v` is an expectation (expect_success(), ...).
bool IsExpectation(const starlark::Value& v);

// Whether `v` is expect_hang(), the one expectation a run that was still
// going at the cell timeout meets.
bool ExpectsHang(const starlark::Value& v);

// "" when the outcome meets the expectation `v` (IsExpectation(v)); else
// why not, naming the expectation and where it was written.
std::string CheckExpectation(starlark::Thread& th, const starlark::Value& v,
                             const RunOutcome& outcome);

// "" when `result`, what run() returned, reports no error; else the error
// it reports: a non-empty `error` ("connect: Connection refused"), an HTTP
// `status` of 500 or above, `ok` False, or a non-zero `exit_code`
// (attributes of a struct or a result, or keys of a dict). Any other value
// reports no error.
std::string ResultError(starlark::Thread& th, const starlark::Value& result);

// Adds expect_success, expect_error_within and expect_hang.
void AddExpectationBuiltins(starlark::StringDict* predeclared);

}  // namespace fault::spec

#endif  // FAULT_SUPERVISOR_SPEC_EXPECTATIONS_H_
