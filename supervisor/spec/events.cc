#include "supervisor/spec/events.h"

#include <fnmatch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "fault/table.h"
#include "supervisor/exec/event_log.h"
#include "supervisor/policy/units.h"
#include "supervisor/spec/builtins.h"

namespace fault::spec {
namespace sl = ::fault::starlark;
using sl::Value;

namespace {

constexpr const char* kFilterKeys[] = {"service", "kind", "op", "rule",
                                       "target"};

// How many events a failure message lists.
constexpr size_t kListed = 5;

std::string JsonString(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

Value JsonInt(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return sl::None();
  return sl::Int(it->get<int64_t>());
}

std::string Quoted(const std::vector<std::string>& names) {
  std::vector<std::string> q;
  q.reserve(names.size());
  for (const auto& n : names) q.push_back(absl::StrCat("\"", n, "\""));
  return absl::StrJoin(q, ", ");
}

// " matching {...}", or "" for a filter that matches any event.
std::string Matching(const EventFilter& f) {
  std::string d = f.Describe();
  return d.empty() ? "" : absl::StrCat(" matching ", d);
}

std::string Plural(size_t n, absl::string_view one) {
  if (n == 0) return absl::StrCat("no ", one);
  if (n == 1) return absl::StrCat("1 ", one);
  return absl::StrCat(n, " ", one, "s");
}

// "0.1s ..., 0.2s ..." (at most kListed, then how many there are in all).
std::string ListEvents(const std::vector<const CellEvent*>& list) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < list.size() && i < kListed; ++i)
    parts.push_back(FormatEvent(*list[i]));
  std::string out = absl::StrJoin(parts, ", ");
  if (list.size() > kListed)
    absl::StrAppend(&out, ", ... (", list.size(), " in all)");
  return out;
}

// The events a failure message shows for `f` when none matched: those of
// its service when it names one, else all of the cell's.
std::string Closest(const Observation& o, const EventFilter& f) {
  std::vector<const CellEvent*> all, of_service;
  for (const CellEvent& e : o.events) {
    all.push_back(&e);
    if (e.service == f.service) of_service.push_back(&e);
  }
  if (all.empty()) return "; the cell has no fault events";
  if (f.service.empty())
    return absl::StrCat("; the cell's events (", all.size(),
                        "): ", ListEvents(all));
  if (of_service.empty())
    return absl::StrCat("; \"", f.service,
                        "\" has no fault events, the cell's (", all.size(),
                        "): ", ListEvents(all));
  return absl::StrCat("; events of \"", f.service, "\" (", of_service.size(),
                      "): ", ListEvents(of_service));
}

bool Complete(const Observation& o, const Window& w) {
  return o.complete_through >= w.until;
}

std::vector<const CellEvent*> InWindow(const Observation& o,
                                       const std::vector<bool>& matched,
                                       const Window& w) {
  std::vector<const CellEvent*> out;
  for (size_t i = 0; i < o.events.size(); ++i)
    if (matched[i] && o.events[i].time <= w.until) out.push_back(&o.events[i]);
  return out;
}

Verdict Passed() { return Verdict{Verdict::kPassed, "", ""}; }
Verdict Undecided() { return Verdict{Verdict::kUndecided, "", ""}; }
Verdict Failed(std::string message, std::string detail) {
  return Verdict{Verdict::kFailed, std::move(message), std::move(detail)};
}

}  // namespace

CellEvent EventFromJson(const nlohmann::json& line, int64_t run_start_ns,
                        std::string key) {
  CellEvent e;
  auto t = line.find("time_ns");
  if (t != line.end() && t->is_number_integer()) e.time_ns = t->get<int64_t>();
  e.time = static_cast<double>(e.time_ns - run_start_ns) / 1e9;
  e.service = JsonString(line, "service");
  e.layer = JsonString(line, "layer");
  e.op = JsonString(line, "op");
  e.effect = JsonString(line, "effect");
  e.rule = JsonString(line, "rule");
  e.target = JsonString(line, "target");
  e.errno_name = JsonString(line, "errno_name");
  e.key = std::move(key);
  e.json = line;
  return e;
}

Value EventValue(const CellEvent& e) {
  auto str_or_none = [](const std::string& s) {
    return s.empty() ? sl::None() : sl::Str(s);
  };
  const nlohmann::json& j = e.json;
  return MakeRecord({{"time", sl::Float(e.time)},
                     {"time_ns", sl::Int(e.time_ns)},
                     {"service", sl::Str(e.service)},
                     {"pid", JsonInt(j, "pid")},
                     {"tid", JsonInt(j, "tid")},
                     {"layer", sl::Str(e.layer)},
                     {"op", sl::Str(e.op)},
                     {"kind", sl::Str(e.effect)},
                     {"effect", sl::Str(e.effect)},
                     {"rule", sl::Str(e.rule)},
                     {"syscall_rule", JsonInt(j, "syscall_rule")},
                     {"target", sl::Str(e.target)},
                     {"errno", JsonInt(j, "errno")},
                     {"errno_name", str_or_none(e.errno_name)},
                     {"delay_ns", JsonInt(j, "delay_ns")},
                     {"bytes", JsonInt(j, "bytes")},
                     {"eai", JsonInt(j, "eai")},
                     {"status", JsonInt(j, "status")},
                     {"value", JsonInt(j, "value")}},
                    "fault_event");
}

const std::vector<std::string>& EventKinds() {
  static const std::vector<std::string> kinds = [] {
    std::vector<std::string> v;
    for (uint16_t i = 1; i < FAULT_EFFECT_COUNT; ++i)
      v.push_back(fault::exec::EffectName(i));
    return v;
  }();
  return kinds;
}

const std::vector<std::string>& EventOps() {
  static const std::vector<std::string> ops = [] {
    std::vector<std::string> v;
    for (uint16_t i = 1; i < FAULT_OP_COUNT; ++i)
      v.push_back(fault::exec::OpName(i));
    return v;
  }();
  return ops;
}

bool EventFilter::MatchesFields(const CellEvent& e) const {
  if (!service.empty() && e.service != service) return false;
  if (!kind.empty() && e.effect != kind) return false;
  if (!op.empty() && e.op != op) return false;
  if (!rule.empty() && e.rule != rule) return false;
  if (!target.empty() && fnmatch(target.c_str(), e.target.c_str(), 0) != 0)
    return false;
  return true;
}

std::string EventFilter::Describe() const {
  if (!where.IsNull()) return sl::Repr(where);
  std::vector<std::string> parts;
  const std::string* values[] = {&service, &kind, &op, &rule, &target};
  for (size_t i = 0; i < 5; ++i)
    if (!values[i]->empty())
      parts.push_back(
          absl::StrCat("\"", kFilterKeys[i], "\": \"", *values[i], "\""));
  if (parts.empty()) return "";
  return absl::StrCat("{", absl::StrJoin(parts, ", "), "}");
}

std::string CheckFilterValues(const EventFilter& f, const FilterNames& names) {
  auto known = [](const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  if (!f.kind.empty() && !known(EventKinds(), f.kind))
    return absl::StrCat("kind \"", f.kind,
                        "\" is not a kind of fault event (kinds: ",
                        absl::StrJoin(EventKinds(), ", "), ")");
  if (!f.op.empty() && !known(EventOps(), f.op))
    return absl::StrCat("op \"", f.op,
                        "\" is not an operation of a fault event (ops: ",
                        absl::StrJoin(EventOps(), ", "), ")");
  if (!f.service.empty() && !known(names.services, f.service))
    return absl::StrCat("service \"", f.service,
                        "\" is not a service of the spec (services: ",
                        Quoted(names.services), ")");
  if (!f.rule.empty() && !known(names.faults, f.rule))
    return absl::StrCat(
        "rule \"", f.rule,
        "\" is not a fault_assumption of the spec, so no event has it",
        names.faults.empty()
            ? " (the spec has none)"
            : absl::StrCat(" (faults: ", Quoted(names.faults), ")"));
  return "";
}

namespace {

// Sets the field `key` of `f` from a filter value: a string, a service or
// a fault_assumption (its name), or None (any).
void SetFilterField(sl::Thread& th, absl::string_view fname,
                    absl::string_view param, const std::string& key,
                    const Value& v, EventFilter* f) {
  std::string* fields[] = {&f->service, &f->kind, &f->op, &f->rule, &f->target};
  size_t i = 0;
  while (i < 5 && key != kFilterKeys[i]) ++i;
  if (i == 5)
    sl::Fail(absl::StrCat(fname, ": for parameter \"", param,
                          "\": unknown filter key \"", key,
                          "\" (keys: ", absl::StrJoin(kFilterKeys, ", "), ")"));
  if (v.IsNone()) return;
  if (v.Is(sl::Kind::kString)) {
    *fields[i] = sl::StrOf(v);
    return;
  }
  if (v.Is(sl::Kind::kHost)) {
    std::string type = v.as<sl::HostValue>()->Type();
    if ((key == "service" && type == "service") ||
        (key == "rule" && type == "fault_assumption")) {
      *fields[i] = sl::StrOf(v.as<sl::HostValue>()->Attr(th, "name"));
      return;
    }
  }
  sl::Fail(absl::StrCat(fname, ": for parameter \"", param, "\": ", key,
                        ": got ", sl::TypeName(v), ", want string",
                        key == "service" ? " or service"
                        : key == "rule"  ? " or fault_assumption"
                                         : ""));
}

void CheckOrFail(absl::string_view fname, absl::string_view param,
                 const EventFilter& f, const FilterNames& names) {
  std::string problem = CheckFilterValues(f, names);
  if (!problem.empty())
    sl::Fail(absl::StrCat(fname, ": for parameter \"", param, "\": ", problem));
}

}  // namespace

EventFilter FilterFromValue(sl::Thread& th, absl::string_view fname,
                            absl::string_view param, const Value& v,
                            const FilterNames& names) {
  EventFilter f;
  if (v.IsNull() || v.IsNone()) return f;
  if (v.Is(sl::Kind::kFunction) || v.Is(sl::Kind::kBuiltin)) {
    f.where = v;
    return f;
  }
  if (!v.Is(sl::Kind::kDict))
    sl::Fail(absl::StrCat(fname, ": for parameter \"", param, "\": got ",
                          sl::TypeName(v),
                          ", want a dict of events() keywords (service, kind, "
                          "op, rule, target) or a function of an event"));
  sl::DictOf(v)->t.ForEach([&](const sl::HashTable::Entry& e) {
    if (!e.key.Is(sl::Kind::kString))
      sl::Fail(absl::StrCat(fname, ": for parameter \"", param,
                            "\": filter keys are strings, got ",
                            sl::TypeName(e.key)));
    SetFilterField(th, fname, param, sl::StrOf(e.key), e.value, &f);
  });
  CheckOrFail(fname, param, f, names);
  return f;
}

Verdict DecideEventually(const Observation& o, const std::vector<bool>& matched,
                         const EventFilter& f, const Window& w) {
  if (!InWindow(o, matched, w).empty()) return Passed();
  if (!Complete(o, w)) return Undecided();
  return Failed(
      absl::StrCat("got no fault event", Matching(f), w.text, ", want one"),
      Closest(o, f));
}

Verdict DecideNever(const Observation& o, const std::vector<bool>& matched,
                    const EventFilter& f, const Window& w) {
  std::vector<const CellEvent*> in = InWindow(o, matched, w);
  if (in.empty()) return Complete(o, w) ? Passed() : Undecided();
  // One is enough: it fails before the window is over, and then says only
  // that there is one.
  return Failed(absl::StrCat("got ",
                             Complete(o, w) ? Plural(in.size(), "fault event")
                                            : "a fault event",
                             Matching(f), w.text, ", want none"),
                absl::StrCat("; matching: ", ListEvents(in)));
}

Verdict DecideCount(const Observation& o, const std::vector<bool>& matched,
                    const EventFilter& f, const Window& w,
                    std::optional<int64_t> min, std::optional<int64_t> max) {
  std::vector<const CellEvent*> in = InWindow(o, matched, w);
  const int64_t n = static_cast<int64_t>(in.size());
  const bool complete = Complete(o, w);
  std::string want;
  if (min && max)
    want = *min == *max ? absl::StrCat("exactly ", *min)
                        : absl::StrCat(*min, " to ", *max);
  else if (min)
    want = absl::StrCat("at least ", *min);
  else
    want = absl::StrCat("at most ", *max);
  auto fail = [&] {
    // Before the window is over, only "more than max" can be known.
    std::string got =
        complete    ? Plural(in.size(), "fault event")
        : *max == 0 ? "a fault event"
                    : absl::StrCat("more than ", Plural(*max, "fault event"));
    return Failed(
        absl::StrCat("got ", got, Matching(f), w.text, ", want ", want),
        in.empty() ? Closest(o, f)
                   : absl::StrCat("; matching: ", ListEvents(in)));
  };
  if (max && n > *max) return fail();
  if (complete) return min && n < *min ? fail() : Passed();
  if (min && !max && n >= *min) return Passed();
  return Undecided();
}

Verdict DecideBefore(const Observation& o, const std::vector<bool>& first,
                     const std::vector<bool>& then, const EventFilter& ff,
                     const EventFilter& tf, const Window& w) {
  if (!Complete(o, w)) return Undecided();
  const CellEvent *a = nullptr, *b = nullptr;
  size_t ai = 0, bi = 0;
  for (size_t i = 0; i < o.events.size(); ++i) {
    if (o.events[i].time > w.until) break;
    if (a == nullptr && first[i]) {
      a = &o.events[i];
      ai = i;
    }
    if (b == nullptr && then[i]) {
      b = &o.events[i];
      bi = i;
    }
  }
  const std::string fd = ff.Describe().empty() ? "any" : ff.Describe();
  const std::string td = tf.Describe().empty() ? "any" : tf.Describe();
  if (a == nullptr)
    return Failed(absl::StrCat("got no fault event", Matching(ff),
                               ", want one before the first", Matching(tf)),
                  b ? absl::StrCat("; the first", Matching(tf), ": ",
                                   FormatEvent(*b), Closest(o, ff))
                    : Closest(o, ff));
  if (b == nullptr)
    return Failed(absl::StrCat("got no fault event", Matching(tf),
                               ", want one after the first", Matching(ff)),
                  absl::StrCat("; the first", Matching(ff), ": ",
                               FormatEvent(*a), Closest(o, tf)));
  if (ai == bi)
    return Failed(absl::StrCat("the first fault event", Matching(ff),
                               " is also the first", Matching(tf), ", want ",
                               fd, " strictly before ", td),
                  absl::StrCat("; it is: ", FormatEvent(*a)));
  if (ai > bi)
    return Failed(
        absl::StrCat("the first fault event", Matching(tf),
                     " came before the first", Matching(ff), ", want ", fd,
                     " first"),
        absl::StrCat("; the first", Matching(tf), ": ", FormatEvent(*b),
                     "; the first", Matching(ff), ": ", FormatEvent(*a)));
  return Passed();
}

std::string FormatEvent(const CellEvent& e) {
  std::string out =
      absl::StrFormat("%.3fs %s %s %s", e.time, e.service, e.effect, e.op);
  if (!e.errno_name.empty()) absl::StrAppend(&out, " ", e.errno_name);
  if (!e.target.empty()) absl::StrAppend(&out, " ", e.target);
  if (!e.rule.empty()) absl::StrAppend(&out, " (rule ", e.rule, ")");
  return out;
}

// ---- the builtins ----

namespace {

CellContext& RequireEventsCell(absl::string_view fname) {
  CellContext* cell = CurrentCell();
  if (cell == nullptr)
    sl::Fail(absl::StrCat(fname, ": only available while a scenario runs"));
  return *cell;
}

FilterNames NamesOf(const CellContext& cell) {
  return FilterNames{cell.service_names, cell.fault_names};
}

double SecondsSinceRun(const CellContext& cell, absl::Time t) {
  return absl::ToDoubleSeconds(t - cell.run_start);
}

// The events of the cell read at `at`, in time order.
Observation Build(const CellContext& cell,
                  const std::vector<nlohmann::json>& lines, absl::Time at,
                  absl::Time through) {
  Observation o;
  const int64_t origin = absl::ToUnixNanos(cell.run_start);
  std::map<std::string, int> per_service;
  for (const nlohmann::json& line : lines) {
    std::string service = JsonString(line, "service");
    int n = per_service[service]++;
    o.events.push_back(
        EventFromJson(line, origin, absl::StrCat(service, "#", n)));
  }
  std::stable_sort(o.events.begin(), o.events.end(),
                   [](const CellEvent& a, const CellEvent& b) {
                     return a.time_ns < b.time_ns;
                   });
  o.complete_through =
      SecondsSinceRun(cell, std::min(at - kEventWriteDelay, through));
  return o;
}

// Reads the cell's events until every one up to `through` has been
// written, or `settled` says what was read decides the question. Bounded
// by the cell's deadline (past it the cell fails as timed out).
Observation Observe(CellContext& cell, absl::Time through,
                    const std::function<bool(const Observation&)>& settled) {
  for (;;) {
    absl::Time now = absl::Now();
    std::vector<nlohmann::json> lines;
    absl::Time read_at;
    {
      std::lock_guard<std::mutex> l(cell.events_mu);
      // The last read already covers `through` (a check's calls share one).
      if (cell.events_read_at - kEventWriteDelay < through) {
        cell.events_read = cell.read_events ? cell.read_events()
                                            : std::vector<nlohmann::json>{};
        cell.events_read_at = now;
      }
      lines = cell.events_read;
      read_at = cell.events_read_at;
    }
    Observation o = Build(cell, lines, read_at, through);
    if (o.complete_through >= SecondsSinceRun(cell, through) ||
        (settled && settled(o)))
      return o;
    absl::Time next = through + kEventWriteDelay;
    if (settled) next = std::min(next, now + absl::Milliseconds(25));
    if (next > cell.deadline) {
      absl::SleepFor(cell.deadline - now);
      FailCellTimeout(cell);
    }
    absl::SleepFor(next - now);
  }
}

// "Now" for the events: the call in run(), the end of run() in a check.
absl::Time EventsNow(const CellContext& cell) {
  return std::min(absl::Now(), cell.run_end);
}

// Whether each event passes `f`; a predicate is called once per event.
class Matcher {
 public:
  Matcher(sl::Thread& th, const EventFilter& f) : th_(th), f_(f) {}
  std::vector<bool> operator()(const Observation& o) {
    std::vector<bool> out;
    for (const CellEvent& e : o.events) out.push_back(Match(e));
    return out;
  }

 private:
  bool Match(const CellEvent& e) {
    if (f_.where.IsNull()) return f_.MatchesFields(e);
    auto it = memo_.find(e.key);
    if (it != memo_.end()) return it->second;
    Value arg = EventValue(e);
    bool m = sl::Truth(sl::CallValue(
        th_, f_.where, sl::Args{std::span<const Value>(&arg, 1), {}}));
    memo_[e.key] = m;
    return m;
  }
  sl::Thread& th_;
  const EventFilter& f_;
  std::map<std::string, bool> memo_;
};

std::string MsgSuffix(const Value& msg) {
  if (msg.IsNull() || msg.IsNone()) return "";
  return absl::StrCat(": ", sl::ToStr(msg));
}

Value EventsBuiltin(sl::Thread& th, const Value&, const sl::Args& args) {
  CellContext& cell = RequireEventsCell("events");
  if (args.pos.size() > 5)
    sl::Fail(absl::StrCat("events: got ", args.pos.size(),
                          " positional arguments, want at most 5"));
  EventFilter f;
  std::vector<bool> given(5, false);
  auto set = [&](const std::string& key, const Value& v) {
    for (size_t i = 0; i < 5; ++i) {
      if (key != kFilterKeys[i]) continue;
      if (given[i])
        sl::Fail(absl::StrCat("events: got multiple values for parameter \"",
                              key, "\""));
      given[i] = true;
    }
    SetFilterField(th, "events", key, key, v, &f);
  };
  for (size_t i = 0; i < args.pos.size(); ++i) set(kFilterKeys[i], args.pos[i]);
  for (auto& [k, v] : args.kw) {
    const std::string& key = sl::StrOf(k);
    if (std::find(std::begin(kFilterKeys), std::end(kFilterKeys), key) ==
        std::end(kFilterKeys))
      sl::Fail(absl::StrCat("events: unexpected keyword argument \"", key,
                            "\" (want ", absl::StrJoin(kFilterKeys, ", "),
                            ")"));
    set(key, v);
  }
  std::string problem = CheckFilterValues(f, NamesOf(cell));
  if (!problem.empty()) sl::Fail(absl::StrCat("events: ", problem));
  absl::Time through = EventsNow(cell);
  Observation o = Observe(cell, through, nullptr);
  const double until = SecondsSinceRun(cell, through);
  std::vector<Value> out;
  for (const CellEvent& e : o.events)
    if (e.time <= until && f.MatchesFields(e)) out.push_back(EventValue(e));
  return sl::NewList(std::move(out));
}

// The arguments of assert_eventually, assert_never and assert_count: the
// filter as `match` (a dict or a function) or as the events() keywords,
// `within`, `msg`, and for assert_count `min` and `max`.
struct TemporalArgs {
  EventFilter filter;
  Value within, msg, min, max;
};

TemporalArgs ParseTemporal(sl::Thread& th, const std::string& fname,
                           const sl::Args& args, bool counts) {
  TemporalArgs t;
  std::vector<std::string> params = {"match", "within", "msg"};
  if (counts) params = {"match", "min", "max", "within", "msg"};
  std::map<std::string, Value> got;
  if (args.pos.size() > params.size())
    sl::Fail(absl::StrCat(fname, ": got ", args.pos.size(),
                          " positional arguments, want at most ",
                          params.size()));
  for (size_t i = 0; i < args.pos.size(); ++i) got[params[i]] = args.pos[i];
  EventFilter by_keywords;
  bool keywords = false;
  for (auto& [k, v] : args.kw) {
    const std::string& key = sl::StrOf(k);
    if (std::find(params.begin(), params.end(), key) != params.end()) {
      if (got.count(key))
        sl::Fail(absl::StrCat(fname, ": got multiple values for parameter \"",
                              key, "\""));
      got[key] = v;
      continue;
    }
    if (std::find(std::begin(kFilterKeys), std::end(kFilterKeys), key) ==
        std::end(kFilterKeys))
      sl::Fail(absl::StrCat(fname, ": unexpected keyword argument \"", key,
                            "\" (want ", absl::StrJoin(params, ", "), ", ",
                            absl::StrJoin(kFilterKeys, ", "), ")"));
    SetFilterField(th, fname, key, key, v, &by_keywords);
    keywords = true;
  }
  CellContext& cell = RequireEventsCell(fname);
  if (got.count("match")) {
    if (keywords)
      sl::Fail(absl::StrCat(fname,
                            ": give the filter either as match (a dict or a "
                            "function) or as keywords (service=, kind=, ...), "
                            "not both"));
    t.filter = FilterFromValue(th, fname, "match", got["match"], NamesOf(cell));
  } else {
    t.filter = by_keywords;
    std::string problem = CheckFilterValues(t.filter, NamesOf(cell));
    if (!problem.empty()) sl::Fail(absl::StrCat(fname, ": ", problem));
  }
  t.within = got["within"];
  t.msg = got["msg"];
  t.min = got["min"];
  t.max = got["max"];
  return t;
}

// The window of an assertion: up to `within` after run() started, or,
// without it, the events so far.
Window WindowOf(const CellContext& cell, const std::string& fname,
                const Value& within, absl::Time* through) {
  Window w;
  if (within.IsNull() || within.IsNone()) {
    *through = EventsNow(cell);
    w.until = SecondsSinceRun(cell, *through);
    return w;
  }
  absl::Duration d = DurationArg(fname, "within", within);
  *through = cell.run_start + d;
  w.until = absl::ToDoubleSeconds(d);
  w.text = absl::StrCat(
      " within ", fault::policy::FormatDuration(absl::ToInt64Nanoseconds(d)),
      " of the scenario's start");
  return w;
}

std::optional<int64_t> CountArg(const std::string& fname, const char* param,
                                const Value& v) {
  if (v.IsNull() || v.IsNone()) return std::nullopt;
  int64_t n;
  if (!v.Is(sl::Kind::kInt) || !sl::IntToInt64(v, &n))
    sl::Fail(absl::StrCat(fname, ": for parameter \"", param, "\": got ",
                          sl::TypeName(v), ", want int"));
  if (n < 0)
    sl::Fail(absl::StrCat(fname, ": for parameter \"", param, "\": got ", n,
                          ", want 0 or more"));
  return n;
}

using Decide =
    std::function<Verdict(const Observation&, const std::vector<bool>&)>;

// Observes the cell's events until `decide` can tell, up to `through`,
// and fails with its message.
void RunTemporal(sl::Thread& th, const std::string& fname,
                 const TemporalArgs& t, absl::Time through,
                 const Decide& decide) {
  CellContext& cell = RequireEventsCell(fname);
  Matcher match(th, t.filter);
  Observation o = Observe(cell, through, [&](const Observation& seen) {
    return decide(seen, match(seen)).state != Verdict::kUndecided;
  });
  Verdict v = decide(o, match(o));
  if (v.state == Verdict::kFailed)
    sl::Fail(absl::StrCat(v.message, MsgSuffix(t.msg), v.detail));
}

Value AssertEventually(sl::Thread& th, const Value&, const sl::Args& args) {
  const std::string fname = "assert_eventually";
  TemporalArgs t = ParseTemporal(th, fname, args, false);
  absl::Time through;
  Window w = WindowOf(RequireEventsCell(fname), fname, t.within, &through);
  RunTemporal(th, fname, t, through,
              [&](const Observation& o, const std::vector<bool>& m) {
                return DecideEventually(o, m, t.filter, w);
              });
  return sl::None();
}

Value AssertNever(sl::Thread& th, const Value&, const sl::Args& args) {
  const std::string fname = "assert_never";
  TemporalArgs t = ParseTemporal(th, fname, args, false);
  absl::Time through;
  Window w = WindowOf(RequireEventsCell(fname), fname, t.within, &through);
  RunTemporal(th, fname, t, through,
              [&](const Observation& o, const std::vector<bool>& m) {
                return DecideNever(o, m, t.filter, w);
              });
  return sl::None();
}

Value AssertCount(sl::Thread& th, const Value&, const sl::Args& args) {
  const std::string fname = "assert_count";
  TemporalArgs t = ParseTemporal(th, fname, args, true);
  std::optional<int64_t> min = CountArg(fname, "min", t.min);
  std::optional<int64_t> max = CountArg(fname, "max", t.max);
  if (!min && !max)
    sl::Fail("assert_count: give min=, max= or both (max = 0 is assert_never)");
  if (min && max && *min > *max)
    sl::Fail(absl::StrCat("assert_count: min ", *min, " is above max ", *max));
  absl::Time through;
  Window w = WindowOf(RequireEventsCell(fname), fname, t.within, &through);
  RunTemporal(th, fname, t, through,
              [&](const Observation& o, const std::vector<bool>& m) {
                return DecideCount(o, m, t.filter, w, min, max);
              });
  return sl::None();
}

Value AssertBefore(sl::Thread& th, const Value&, const sl::Args& args) {
  const std::string fname = "assert_before";
  Value first, then, msg;
  sl::UnpackArgs(fname, args,
                 {{"first", &first}, {"then", &then}, {"msg?", &msg}});
  CellContext& cell = RequireEventsCell(fname);
  EventFilter ff = FilterFromValue(th, fname, "first", first, NamesOf(cell));
  EventFilter tf = FilterFromValue(th, fname, "then", then, NamesOf(cell));
  absl::Time through = EventsNow(cell);
  Window w;
  w.until = SecondsSinceRun(cell, through);
  Observation o = Observe(cell, through, nullptr);
  Matcher mf(th, ff), mt(th, tf);
  Verdict v = DecideBefore(o, mf(o), mt(o), ff, tf, w);
  if (v.state == Verdict::kFailed)
    sl::Fail(absl::StrCat(v.message, MsgSuffix(msg), v.detail));
  return sl::None();
}

}  // namespace

void AddEventBuiltins(sl::StringDict* pre) {
  auto& p = *pre;
  p["events"] = sl::NewBuiltin("events", EventsBuiltin);
  p["assert_eventually"] =
      sl::NewBuiltin("assert_eventually", AssertEventually);
  p["assert_never"] = sl::NewBuiltin("assert_never", AssertNever);
  p["assert_count"] = sl::NewBuiltin("assert_count", AssertCount);
  p["assert_before"] = sl::NewBuiltin("assert_before", AssertBefore);
}

}  // namespace fault::spec
