#include "supervisor/spec/events.h"

#include <gtest/gtest.h>

#include <limits>
#include <optional>

#include "absl/strings/match.h"

namespace fault::spec {
namespace {
namespace sl = ::fault::starlark;

constexpr int64_t kStart = 1'800'000'000'000'000'000;  // run() started

CellEvent Event(double seconds, const std::string& service,
                const std::string& effect, const std::string& op,
                const std::string& target = "127.0.0.1:4242",
                const std::string& rule = "slow") {
  nlohmann::json j = {{"time_ns", kStart + static_cast<int64_t>(seconds * 1e9)},
                      {"service", service},
                      {"layer", "shim"},
                      {"op", op},
                      {"effect", effect},
                      {"rule", rule},
                      {"target", target},
                      {"pid", 42},
                      {"tid", 43}};
  static int n = 0;
  return EventFromJson(j, kStart, std::to_string(n++));
}

// The events and whether each matches `f`, complete through `complete`.
struct Case {
  Observation o;
  std::vector<bool> matched;
};
Case Observe(std::vector<CellEvent> events, const EventFilter& f,
             double complete) {
  Case c;
  c.o.events = std::move(events);
  c.o.complete_through = complete;
  for (const CellEvent& e : c.o.events) c.matched.push_back(f.MatchesFields(e));
  return c;
}

Window Within(double s, const std::string& text) {
  Window w;
  w.until = s;
  w.text = " within " + text + " of the scenario's start";
  return w;
}

std::string Full(const Verdict& v) { return v.message + v.detail; }

std::string Error(const std::function<void()>& f) {
  try {
    f();
  } catch (const sl::EvalError& e) {
    return e.msg;
  }
  return "";
}

TEST(SpecEventsTest, EventFromJsonTimesFromRunStart) {
  nlohmann::json j = {{"time_ns", kStart - 250'000'000},
                      {"service", "db"},
                      {"op", "fdatasync"},
                      {"effect", "deny"},
                      {"rule", "disk"},
                      {"target", "/data/db"},
                      {"errno", 5},
                      {"errno_name", "EIO"}};
  CellEvent e = EventFromJson(j, kStart, "db#0");
  EXPECT_DOUBLE_EQ(e.time, -0.25);
  EXPECT_EQ(e.service, "db");
  EXPECT_EQ(e.effect, "deny");
  EXPECT_EQ(e.errno_name, "EIO");
  EXPECT_EQ(FormatEvent(e),
            "-0.250s db deny fdatasync EIO /data/db (rule disk)");
}

TEST(SpecEventsTest, EventValueHasEveryFieldNoneWhenAbsent) {
  CellEvent e = Event(1.5, "api", "latency", "send");
  e.json["delay_ns"] = 150'000'000;
  sl::Value v = EventValue(e);
  sl::Thread th;
  auto* h = v.as<sl::HostValue>();
  EXPECT_EQ(h->Type(), "fault_event");
  EXPECT_EQ(sl::Repr(h->Attr(th, "kind")), "\"latency\"");
  EXPECT_EQ(sl::Repr(h->Attr(th, "effect")), "\"latency\"");
  EXPECT_EQ(sl::Repr(h->Attr(th, "time")), "1.5");
  EXPECT_EQ(sl::Repr(h->Attr(th, "delay_ns")), "150000000");
  EXPECT_EQ(sl::Repr(h->Attr(th, "errno")), "None");
  EXPECT_EQ(sl::Repr(h->Attr(th, "errno_name")), "None");
  EXPECT_EQ(sl::Repr(h->Attr(th, "pid")), "42");
}

TEST(SpecEventsTest, FieldsMatchExactlyAndTargetAsGlob) {
  EventFilter f;
  f.service = "api";
  f.kind = "deny";
  CellEvent deny = Event(0.1, "api", "deny", "write", "/data/notes.db");
  EXPECT_TRUE(f.MatchesFields(deny));
  EXPECT_FALSE(f.MatchesFields(Event(0.1, "db", "deny", "write")));
  EXPECT_FALSE(f.MatchesFields(Event(0.1, "api", "latency", "write")));
  f.target = "*notes.db";
  EXPECT_TRUE(f.MatchesFields(deny));
  f.target = "/data/other";
  EXPECT_FALSE(f.MatchesFields(deny));
  EXPECT_TRUE(EventFilter().MatchesFields(deny));
  EXPECT_EQ(EventFilter().Describe(), "");
  f.target = "";
  EXPECT_EQ(f.Describe(), "{\"service\": \"api\", \"kind\": \"deny\"}");
}

TEST(SpecEventsTest, UnknownValuesNameTheValidOnes) {
  FilterNames names{{"api", "db"}, {"slow"}};
  EventFilter f;
  f.kind = "dney";
  EXPECT_EQ(CheckFilterValues(f, names),
            "kind \"dney\" is not a kind of fault event (kinds: latency, loss, "
            "rate, timeout, connection_error, half_open, blackhole, reorder, "
            "duplicate, session_budget, payload_mutation, dns_delay, "
            "dns_timeout, dns_nxdomain, deny, delay, partition, http_error, "
            "redis_error, postgres_error, protocol_drop)");
  f = EventFilter();
  f.op = "sned";
  EXPECT_TRUE(absl::StartsWith(
      CheckFilterValues(f, names),
      "op \"sned\" is not an operation of a fault event (ops: connect, accept, "
      "send, recv, read, write,"));
  f = EventFilter();
  f.service = "web";
  EXPECT_EQ(CheckFilterValues(f, names),
            "service \"web\" is not a service of the spec (services: \"api\", "
            "\"db\")");
  f = EventFilter();
  f.rule = "fast";
  EXPECT_EQ(CheckFilterValues(f, names),
            "rule \"fast\" is not a fault_assumption of the spec, so no event "
            "has it (faults: \"slow\")");
  f.rule = "slow";
  f.kind = "latency";
  f.op = "send";
  f.service = "db";
  EXPECT_EQ(CheckFilterValues(f, names), "");
}

TEST(SpecEventsTest, FilterFromDictFunctionOrNone) {
  sl::Thread th;
  FilterNames names{{"api"}, {"slow"}};
  sl::Value d = sl::NewDict();
  sl::DictOf(d)->t.Insert(sl::Str("kind"), sl::Str("latency"));
  sl::DictOf(d)->t.Insert(sl::Str("service"), sl::None());
  EventFilter f = FilterFromValue(th, "assert_never", "match", d, names);
  EXPECT_EQ(f.kind, "latency");
  EXPECT_EQ(f.service, "");
  EXPECT_TRUE(f.where.IsNull());
  EXPECT_TRUE(
      FilterFromValue(th, "x", "match", sl::None(), names).Describe().empty());

  sl::DictOf(d)->t.Insert(sl::Str("knd"), sl::Str("deny"));
  EXPECT_EQ(
      Error([&] { FilterFromValue(th, "assert_never", "match", d, names); }),
      "assert_never: for parameter \"match\": unknown filter key \"knd\" "
      "(keys: service, kind, op, rule, target)");
  sl::Value bad = sl::NewDict();
  sl::DictOf(bad)->t.Insert(sl::Str("op"), sl::Str("sendd"));
  EXPECT_TRUE(absl::StartsWith(
      Error([&] { FilterFromValue(th, "assert_before", "then", bad, names); }),
      "assert_before: for parameter \"then\": op \"sendd\" is not an "
      "operation of a fault event (ops: connect,"));
  sl::Value n = sl::NewDict();
  sl::DictOf(n)->t.Insert(sl::Str("kind"), sl::Int(3));
  EXPECT_EQ(Error([&] { FilterFromValue(th, "events", "match", n, names); }),
            "events: for parameter \"match\": kind: got int, want string");
  EXPECT_EQ(
      Error([&] {
        FilterFromValue(th, "assert_count", "match", sl::Int(1), names);
      }),
      "assert_count: for parameter \"match\": got int, want a dict of events() "
      "keywords (service, kind, op, rule, target) or a function of an event");
}

TEST(SpecEventsTest, EventuallyPassesOnAMatchBeforeTheWindowIsOver) {
  EventFilter f;
  f.kind = "latency";
  Case c = Observe({Event(0.2, "api", "latency", "send")}, f, 0.1);
  EXPECT_EQ(DecideEventually(c.o, c.matched, f, Within(2, "2s")).state,
            Verdict::kPassed);
  // A match after the window does not count.
  Case late = Observe({Event(2.5, "api", "latency", "send")}, f, 3);
  Verdict v = DecideEventually(late.o, late.matched, f, Within(2, "2s"));
  EXPECT_EQ(v.state, Verdict::kFailed);
  EXPECT_EQ(v.message,
            "got no fault event matching {\"kind\": \"latency\"} within 2s of "
            "the scenario's start, want one");
  EXPECT_EQ(v.detail,
            "; the cell's events (1): 2.500s api latency send 127.0.0.1:4242 "
            "(rule slow)");
}

TEST(SpecEventsTest, EventuallyWaitsWhileEventsMayBeMissing) {
  EventFilter f;
  f.service = "db";
  Case c = Observe({Event(0.2, "api", "latency", "send")}, f, 1.0);
  EXPECT_EQ(DecideEventually(c.o, c.matched, f, Within(2, "2s")).state,
            Verdict::kUndecided);
  c.o.complete_through = 2;
  Verdict v = DecideEventually(c.o, c.matched, f, Within(2, "2s"));
  EXPECT_EQ(v.state, Verdict::kFailed);
  EXPECT_EQ(
      Full(v),
      "got no fault event matching {\"service\": \"db\"} within 2s of the "
      "scenario's start, want one; \"db\" has no fault events, the "
      "cell's (1): 0.200s api latency send 127.0.0.1:4242 (rule slow)");
  Case none = Observe({}, EventFilter(), 5);
  Window so_far;
  so_far.until = 5;
  EXPECT_EQ(Full(DecideEventually(none.o, none.matched, EventFilter(), so_far)),
            "got no fault event, want one; the cell has no fault events");
}

TEST(SpecEventsTest, ClosestEventsAreThoseOfTheServiceAtMostFive) {
  EventFilter f;
  f.service = "api";
  f.kind = "deny";
  std::vector<CellEvent> events;
  for (int i = 0; i < 7; ++i)
    events.push_back(Event(0.1 * (i + 1), "api", "latency", "recv"));
  events.push_back(Event(0.9, "db", "latency", "recv"));
  Case c = Observe(events, f, 10);
  Verdict v = DecideEventually(c.o, c.matched, f, Window{10, ""});
  EXPECT_TRUE(absl::StartsWith(v.detail, "; events of \"api\" (7): 0.100s api"))
      << v.detail;
  EXPECT_TRUE(absl::EndsWith(v.detail,
                             "0.500s api latency recv 127.0.0.1:4242 "
                             "(rule slow), ... (7 in all)"))
      << v.detail;
}

TEST(SpecEventsTest, NeverFailsOnTheFirstMatch) {
  EventFilter f;
  f.kind = "deny";
  Case c = Observe({Event(0.2, "api", "latency", "send"),
                    Event(0.3, "api", "deny", "write", "/x", "disk")},
                   f, 0.5);
  Verdict v = DecideNever(c.o, c.matched, f, Within(2, "2s"));
  EXPECT_EQ(v.state, Verdict::kFailed);
  EXPECT_EQ(Full(v),
            "got a fault event matching {\"kind\": \"deny\"} within 2s of the "
            "scenario's start, want none; matching: 0.300s api deny write /x "
            "(rule disk)");
  c.o.complete_through = 2;
  EXPECT_EQ(Full(DecideNever(c.o, c.matched, f, Within(2, "2s"))),
            "got 1 fault event matching {\"kind\": \"deny\"} within 2s of the "
            "scenario's start, want none; matching: 0.300s api deny write /x "
            "(rule disk)");
  EventFilter other;
  other.kind = "delay";
  Case ok = Observe(c.o.events, other, 0.5);
  EXPECT_EQ(DecideNever(ok.o, ok.matched, other, Within(2, "2s")).state,
            Verdict::kUndecided);
  ok.o.complete_through = 2;
  EXPECT_EQ(DecideNever(ok.o, ok.matched, other, Within(2, "2s")).state,
            Verdict::kPassed);
}

TEST(SpecEventsTest, CountBounds) {
  EventFilter f;
  f.op = "send";
  std::vector<CellEvent> three = {Event(0.1, "api", "latency", "send"),
                                  Event(0.2, "api", "latency", "send"),
                                  Event(0.3, "api", "latency", "recv"),
                                  Event(0.4, "api", "latency", "send")};
  Case c = Observe(three, f, 1);
  Window w{1, ""};
  EXPECT_EQ(DecideCount(c.o, c.matched, f, w, 3, 3).state, Verdict::kPassed);
  EXPECT_EQ(DecideCount(c.o, c.matched, f, w, 1, std::nullopt).state,
            Verdict::kPassed);
  Verdict v = DecideCount(c.o, c.matched, f, w, std::nullopt, 2);
  EXPECT_EQ(Full(v),
            "got 3 fault events matching {\"op\": \"send\"}, want at most 2; "
            "matching: 0.100s api latency send 127.0.0.1:4242 (rule slow), "
            "0.200s api latency send 127.0.0.1:4242 (rule slow), 0.400s api "
            "latency send 127.0.0.1:4242 (rule slow)");
  v = DecideCount(c.o, c.matched, f, w, 4, 6);
  EXPECT_EQ(v.message,
            "got 3 fault events matching {\"op\": \"send\"}, want 4 to 6");
  // Within a window: only its events count; above max fails early.
  Case early = Observe(three, f, 0.25);
  EXPECT_EQ(
      DecideCount(early.o, early.matched, f, Within(2, "2s"), 2, std::nullopt)
          .state,
      Verdict::kPassed);
  EXPECT_EQ(
      DecideCount(early.o, early.matched, f, Within(2, "2s"), 4, std::nullopt)
          .state,
      Verdict::kUndecided);
  v = DecideCount(early.o, early.matched, f, Within(2, "2s"), std::nullopt, 1);
  EXPECT_EQ(v.state, Verdict::kFailed);
  EXPECT_EQ(v.message,
            "got more than 1 fault event matching {\"op\": \"send\"} within 2s "
            "of the scenario's start, want at most 1");
  EXPECT_EQ(DecideCount(c.o, c.matched, f, Within(0.15, "150ms"), 1, 1).state,
            Verdict::kPassed);
  v = DecideCount(c.o, c.matched, f, Within(0.15, "150ms"), 2, std::nullopt);
  EXPECT_TRUE(absl::StartsWith(Full(v),
                               "got 1 fault event matching {\"op\": \"send\"} "
                               "within 150ms of the scenario's start, want at "
                               "least 2; matching: 0.100s"))
      << Full(v);
}

TEST(SpecEventsTest, BeforeComparesTheFirstMatches) {
  EventFilter connect, send, deny;
  connect.op = "connect";
  send.op = "send";
  deny.kind = "deny";
  std::vector<CellEvent> events = {Event(0.1, "api", "delay", "connect"),
                                   Event(0.2, "api", "latency", "send"),
                                   Event(0.3, "api", "delay", "connect")};
  Observation o{events, 1};
  auto matches = [&](const EventFilter& f) {
    std::vector<bool> m;
    for (const CellEvent& e : o.events) m.push_back(f.MatchesFields(e));
    return m;
  };
  Window w{1, ""};
  EXPECT_EQ(
      DecideBefore(o, matches(connect), matches(send), connect, send, w).state,
      Verdict::kPassed);
  Verdict v =
      DecideBefore(o, matches(send), matches(connect), send, connect, w);
  EXPECT_EQ(Full(v),
            "the first fault event matching {\"op\": \"connect\"} came before "
            "the first matching {\"op\": \"send\"}, want {\"op\": \"send\"} "
            "first; the first matching {\"op\": \"connect\"}: 0.100s api delay "
            "connect 127.0.0.1:4242 (rule slow); the first matching {\"op\": "
            "\"send\"}: 0.200s api latency send 127.0.0.1:4242 (rule slow)");
  v = DecideBefore(o, matches(deny), matches(send), deny, send, w);
  EXPECT_EQ(v.message,
            "got no fault event matching {\"kind\": \"deny\"}, want one before "
            "the first matching {\"op\": \"send\"}");
  EXPECT_TRUE(absl::StartsWith(v.detail,
                               "; the first matching {\"op\": \"send\"}: "
                               "0.200s api latency send 127.0.0.1:4242 (rule "
                               "slow); the cell's events (3): "))
      << v.detail;
  v = DecideBefore(o, matches(send), matches(deny), send, deny, w);
  EXPECT_EQ(v.message,
            "got no fault event matching {\"kind\": \"deny\"}, want one after "
            "the first matching {\"op\": \"send\"}");
  v = DecideBefore(o, matches(connect), matches(EventFilter()), connect,
                   EventFilter(), w);
  EXPECT_EQ(Full(v),
            "the first fault event matching {\"op\": \"connect\"} is also the "
            "first, want {\"op\": \"connect\"} strictly before any; it is: "
            "0.100s api delay connect 127.0.0.1:4242 (rule slow)");
  o.complete_through = 0.5;
  EXPECT_EQ(
      DecideBefore(o, matches(connect), matches(send), connect, send, w).state,
      Verdict::kUndecided);
}

}  // namespace
}  // namespace fault::spec
