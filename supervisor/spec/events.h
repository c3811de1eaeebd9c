// The fault events of a cell as a scenario sees them: the events() builtin
// and the temporal assertions over them (assert_eventually, assert_never,
// assert_count, assert_before), read from the lines of the services'
// `fault exec --events` files while the cell runs (docs/spec.md, "Events and
// temporal assertions").
//
//   def check(r):
//       assert_eventually(kind = "latency", service = "api", within = "2s")
//       assert_before({"op": "connect"}, {"op": "send"})
//       for e in events(service = "api", op = "send"): print(e.time, e.rule)
//
// An event's time is in seconds since the scenario's run() started. The
// pure parts (an event from its JSON line, filters, the verdicts and their
// messages) are apart from the builtins so that they are tested without a
// cell; the builtins read the events through the thread's CellContext
// (builtins.h).
//
// Thread safety: plain values and functions; the builtins use the calling
// thread's cell.
#ifndef FAULT_SUPERVISOR_SPEC_EVENTS_H_
#define FAULT_SUPERVISOR_SPEC_EVENTS_H_

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "starlark/starlark.h"

namespace fault::spec {

// One fault event of a cell.
struct CellEvent {
  double time = 0;  // seconds since run() started; negative: before it
  int64_t time_ns = 0;
  std::string service, layer, op, effect, rule, target, errno_name;
  std::string key;      // the same event in every read ("service#line")
  nlohmann::json json;  // the line of the events file, with "service"
};

// A line of `fault exec --events` (with "service") as a CellEvent. `key`
// names it across reads; `run_start_ns` is the origin of its time.
CellEvent EventFromJson(const nlohmann::json& line, int64_t run_start_ns,
                        std::string key);

// The event as a Starlark struct "fault_event" (docs/spec.md lists its
// fields; a value the event does not carry is None).
starlark::Value EventValue(const CellEvent& e);

// The names an event's kind (the `effect` of the events file) and op can
// have, in the order of the events file's documentation.
const std::vector<std::string>& EventKinds();
const std::vector<std::string>& EventOps();

// Which events an assertion is about: field values (every one given must
// match; `target` is an fnmatch glob, the others are exact), or a
// predicate, a Starlark function of an event.
struct EventFilter {
  std::string service, kind, op, rule, target;  // "" matches any
  starlark::Value where;                        // null when none

  bool MatchesFields(const CellEvent& e) const;
  // `{"service": "db", "kind": "deny"}`, `<function f>`, or "" (any).
  std::string Describe() const;
};

// What service= and rule= can name: the spec's services and faults.
struct FilterNames {
  std::vector<std::string> services, faults;
};

// "" when every value of `f` can match an event of the spec; else why not,
// with the values it can have ("kind \"dney\" is not a fault kind (kinds:
// latency, ...)").
std::string CheckFilterValues(const EventFilter& f, const FilterNames& names);

// A filter from the argument `param` of `fname`: a dict of the events()
// keywords, a function of an event, or None (any event). A service or a
// fault_assumption stands for its name. Fails (a Starlark error) on
// anything else and on values CheckFilterValues refuses.
EventFilter FilterFromValue(starlark::Thread& th, absl::string_view fname,
                            absl::string_view param, const starlark::Value& v,
                            const FilterNames& names);

// What was read of a cell's events: every event read, in time order, and
// the time (seconds since run() started) up to which no event can be
// missing any more (fault exec writes an event within a bounded delay).
struct Observation {
  std::vector<CellEvent> events;
  double complete_through = 0;
};

// The events an assertion counts: those at or before `until`.
struct Window {
  double until = std::numeric_limits<double>::infinity();
  std::string text;  // " within 2s of the scenario's start", or ""
};

struct Verdict {
  enum State { kUndecided, kPassed, kFailed };
  State state = kUndecided;
  // Why it failed ("got no fault event matching ..., want one"), and the
  // events that show it ("; the cell's events (2): 0.1s ..., 0.2s ...").
  // The assertion's msg goes between them.
  std::string message, detail;
};

// The verdicts of the temporal assertions. `matched[i]` says whether
// o.events[i] passes the filter `f`. Each decides as soon as what was read
// settles it, and is undecided while events of the window may be missing.
//
// assert_eventually: some matching event in the window.
Verdict DecideEventually(const Observation& o, const std::vector<bool>& matched,
                         const EventFilter& f, const Window& w);
// assert_never: no matching event in the window.
Verdict DecideNever(const Observation& o, const std::vector<bool>& matched,
                    const EventFilter& f, const Window& w);
// assert_count: between min and max matching events in the window.
Verdict DecideCount(const Observation& o, const std::vector<bool>& matched,
                    const EventFilter& f, const Window& w,
                    std::optional<int64_t> min, std::optional<int64_t> max);
// assert_before: the first event matching `first` comes before the first
// matching `then`, both in the window.
Verdict DecideBefore(const Observation& o, const std::vector<bool>& first,
                     const std::vector<bool>& then, const EventFilter& ff,
                     const EventFilter& tf, const Window& w);

// "0.102s api latency send 127.0.0.1:4242 (rule slow)".
std::string FormatEvent(const CellEvent& e);

// How long after an event fault exec has written it at the latest: it
// drains its event ring at least every 100 ms (docs/exec.md), plus slack
// for a supervisor that waits for the CPU.
inline constexpr absl::Duration kEventWriteDelay = absl::Milliseconds(200);

// Adds events, assert_eventually, assert_never, assert_count and
// assert_before.
void AddEventBuiltins(starlark::StringDict* predeclared);

}  // namespace fault::spec

#endif  // FAULT_SUPERVISOR_SPEC_EVENTS_H_
