// Loading specs: the language's values and its errors, without running
// anything.
#include "supervisor/spec/spec.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "supervisor/spec/builtins.h"

namespace fault::spec {
namespace {

constexpr char kService[] =
    "svc = service(\"sleeper\", command = [\"/bin/sleep\", \"60\"], ports = "
    "{\"http\": 0})\n";

absl::Status LoadError(const std::string& body) {
  std::string src = std::string(kService) + body;
  auto s = LoadSpec("t.star", src);
  return s.ok() ? absl::OkStatus() : s.status();
}

// The last line of a Starlark error.
std::string LastLine(const absl::Status& st) {
  std::string m(st.message());
  size_t p = m.rfind('\n');
  return p == std::string::npos ? m : m.substr(p + 1);
}

TEST(SpecTest, LoadsMatrix) {
  std::string src = std::string(kService) + R"(
a = fault_assumption("disk", target = svc, fsync = deny("EIO"), write = [deny("ENOSPC", path = "*.db", probability = "50%"), delay("10ms")])
b = fault_assumption("net", latency = "50ms", dns_nxdomain = "10%")
c = fault_assumption("both", faults = [a, b], description = "x")
s1 = scenario("one", run = lambda: 1)
s2 = scenario("two", run = lambda: 2, check = lambda r: assert_eq(r, 2))
fault_matrix(scenarios = [s1, s2], faults = [None, a, c], overrides = {(s1, a): lambda r: None})
)";
  auto spec = LoadSpec("t.star", src);
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ((*spec)->cells.size(), 6u);
  EXPECT_EQ((*spec)->cells[0].name(), "one/none");
  EXPECT_EQ((*spec)->cells[1].name(), "one/disk");
  EXPECT_FALSE((*spec)->cells[1].check.IsNull());
  EXPECT_TRUE((*spec)->cells[2].check.IsNull());
  EXPECT_EQ((*spec)->cells[5].name(), "two/both");
  const Assumption& both = *(*spec)->assumptions[2];
  EXPECT_EQ(both.policy.syscalls_size(), 3);
  EXPECT_EQ(both.policy.link().latency().fixed_ns(), 50'000'000);
  ASSERT_EQ(both.targets.size(), 1u);
  EXPECT_EQ(both.targets[0]->name, "sleeper");
  EXPECT_FALSE((*spec)->services[0]->static_binary);
}

TEST(SpecTest, UnknownKeywordSuggests) {
  absl::Status st = LoadError("fault_assumption(\"x\", latncy = \"5ms\")\n");
  EXPECT_EQ(LastLine(st),
            "Error in fault_assumption: t.star:2:23: unexpected keyword "
            "argument \"latncy\" (did you mean \"latency\"?)");
}

TEST(SpecTest, UnknownErrno) {
  absl::Status st =
      LoadError("fault_assumption(\"x\", write = deny(\"EIOO\"))\n");
  EXPECT_EQ(LastLine(st),
            "Error in deny: t.star:2:36: \"EIOO\" is not an errno name (e.g. "
            "ENOSPC, EIO, ECONNREFUSED)");
}

TEST(SpecTest, WrongType) {
  absl::Status st = LoadError("fault_assumption(\"x\", fsync = \"EIO\")\n");
  EXPECT_EQ(LastLine(st),
            "Error in fault_assumption: t.star:2:23: fsync: got string, want "
            "deny(...) or delay(...)");
  st = LoadError("fault_assumption(\"x\", latency = deny(\"EIO\"))\n");
  EXPECT_EQ(
      LastLine(st),
      "Error in fault_assumption: t.star:2:23: latency: got deny; deny(...) "
      "and delay(...) go with a syscall family such as write= or connect=");
}

TEST(SpecTest, BadDuration) {
  absl::Status st =
      LoadError("fault_assumption(\"x\", fsync = delay(\"2 s\"))\n");
  EXPECT_TRUE(absl::StartsWith(
      LastLine(st), "Error in delay: t.star:2:37: \"2 s\" is not a duration"))
      << st;
}

TEST(SpecTest, ProtocolDelays) {
  std::string src = std::string(kService) + R"(
a = fault_assumption("slow", target = svc,
                     redis = [redis_error("SET", "READONLY r"), redis_delay("GET", "250ms", key = "s:*")],
                     postgres = postgres_delay("select *", "1s", probability = "50%"),
                     http = http_delay("GET /x", "5ms"))
fault_matrix(scenarios = [scenario("one", run = lambda: 1)], faults = [a])
)";
  auto spec = LoadSpec("t.star", src);
  ASSERT_TRUE(spec.ok()) << spec.status();
  const fault::v1::Policy& p = (*spec)->assumptions[0]->policy;
  ASSERT_EQ(p.redis_faults_size(), 2);
  EXPECT_EQ(p.redis_faults(1).delay_ns(), 250'000'000);
  EXPECT_EQ(p.redis_faults(1).key(), "s:*");
  ASSERT_EQ(p.postgres_faults_size(), 1);
  EXPECT_EQ(p.postgres_faults(0).delay_ns(), 1'000'000'000);
  EXPECT_EQ(p.postgres_faults(0).probability_ppm(), 500'000u);
  EXPECT_EQ(p.http_faults(0).delay_ns(), 5'000'000);
  // The parser's error, at the argument it names.
  absl::Status st = LoadError("x = redis_delay(\"GET\", \"-1s\")\n");
  EXPECT_TRUE(absl::StrContains(LastLine(st), "t.star:2:24: delay")) << st;
  st = LoadError("x = postgres_delay(query = \"\", delay = \"1s\")\n");
  EXPECT_TRUE(absl::StrContains(LastLine(st), "t.star:2:20: query: empty")) << st;
  // Each protocol takes its own kind, and the message names all three.
  st = LoadError("fault_assumption(\"x\", redis = http_delay(\"/a\", \"1s\"))\n");
  EXPECT_TRUE(absl::StrContains(
      LastLine(st), "redis: got http_delay, want redis_error(...), redis_drop(...) or "
                    "redis_delay(...)")) << st;
}

TEST(SpecTest, PolicyRulesWithSpecPosition) {
  absl::Status st = LoadError(
      "fault_assumption(\"x\", dns_nxdomain = \"60%\", dns_timeout = "
      "\"60%\")\n");
  EXPECT_EQ(LastLine(st),
            "Error in fault_assumption: t.star:2:45: \"x\": dns: timeout and "
            "nxdomain together are above 100%");
}

TEST(SpecTest, PolicyRuleErrorAtTheKeyword) {
  // One keyword alone breaks a rule: the error is at that keyword.
  absl::Status st = LoadError(
      "fault_assumption(\"x\", latency = \"5ms\", packet_loss = \"150%\")\n");
  EXPECT_EQ(LastLine(st),
            "Error in fault_assumption: t.star:2:40: \"x\": packet_loss: "
            "\"150%\" is not a probability: above 100%");
  // A deny(...) whose `when` the policy parser refuses: at the family.
  st = LoadError(
      "fault_assumption(\"x\", fsync = deny(\"EIO\"), write = deny(\"EIO\", "
      "when = \"x\"))\n");
  EXPECT_EQ(LastLine(st),
            "Error in fault_assumption: t.star:2:44: \"x\": "
            "syscalls[1].write.when: \"x\" is not a when counter: expected a "
            "call number (use N, N+, N+STEP, FIRST..LAST or FIRST..LAST+STEP)");
}

TEST(SpecTest, ElementOfAListArgument) {
  absl::Status st = LoadError(
      "a = fault_assumption(\"a\", latency = \"5ms\")\n"
      "fault_assumption(\"x\", faults = [a,\n    3])\n");
  EXPECT_EQ(LastLine(st),
            "Error in fault_assumption: t.star:4:5: for parameter \"faults\": "
            "got int in list, want fault_assumption");
  st = LoadError(
      "fault_assumption(\"x\", write = [deny(\"EIO\"), delay(\"1ms\"), "
      "\"EIO\"])\n");
  EXPECT_EQ(LastLine(st),
            "Error in fault_assumption: t.star:2:59: write: got string, want "
            "deny(...) or delay(...)");
  st = LoadError("service(\"y\", command = [\"/bin/true\", 3])\n");
  EXPECT_EQ(LastLine(st),
            "Error in service: t.star:2:38: for parameter \"command\": got int "
            "in list, want string");
}

TEST(SpecTest, UnpackedArgumentsHavePositions) {
  absl::Status st =
      LoadError("service(\"y\", command = [\"/bin/true\"], prts = {})\n");
  EXPECT_EQ(LastLine(st),
            "Error in service: t.star:2:39: unexpected keyword argument "
            "\"prts\" (did you mean \"ports\"?)");
  st = LoadError("scenario(\"s\", run = lambda: 1, check = 3)\n");
  EXPECT_EQ(LastLine(st),
            "Error in scenario: t.star:2:32: for parameter \"check\": got "
            "int, want function or expectation (expect_success(), "
            "expect_error_within(d), expect_hang())");
  st = LoadError("scenario(7, run = lambda: 1)\n");
  EXPECT_EQ(LastLine(st),
            "Error in scenario: t.star:2:10: for parameter \"name\": got int, "
            "want string");
  st = LoadError(
      "service(\"y\", command = [\"/bin/true\"], ports = {\"a\": 1, "
      "\"b\": 70000})\n");
  EXPECT_EQ(LastLine(st),
            "Error in service: t.star:2:56: ports: 70000 out of range");
}

TEST(SpecTest, ArgumentsFromKwargsPointAtTheStars) {
  absl::Status st = LoadError(
      "fault_assumption(\"x\", fsync = deny(\"EIO\"), **{\"latncy\": "
      "\"5ms\"})\n");
  EXPECT_EQ(LastLine(st),
            "Error in fault_assumption: t.star:2:44: unexpected keyword "
            "argument \"latncy\" (did you mean \"latency\"?)");
}

TEST(SpecTest, ErrorInAHelperIsAtTheHelpersCall) {
  // deny() runs inside mk(): the position is that of e in deny(e).
  absl::Status st = LoadError(
      "def mk(e):\n"
      "    return deny(e, path = \"*.db\")\n"
      "fault_assumption(\"x\", write = mk(\"EIOO\"))\n");
  EXPECT_EQ(LastLine(st),
            "Error in deny: t.star:3:17: \"EIOO\" is not an errno name (e.g. "
            "ENOSPC, EIO, ECONNREFUSED)");
}

TEST(SpecTest, CompositionConflict) {
  absl::Status st = LoadError(
      "a = fault_assumption(\"a\", latency = \"5ms\")\n"
      "b = fault_assumption(\"b\", latency = \"6ms\")\n"
      "fault_assumption(\"c\", faults = [a, b])\n");
  EXPECT_EQ(LastLine(st),
            "Error in fault_assumption: t.star:4:23: \"c\": latency is set "
            "twice differently: \"5ms\" by \"a\" and \"6ms\" by \"b\"");
}

TEST(SpecTest, StaticBinaryCannotSeeNetworkFaults) {
  // Debian's ldconfig is a static-pie binary.
  ASSERT_TRUE(IsStaticBinary("/sbin/ldconfig"));
  ASSERT_FALSE(IsStaticBinary("/bin/true"));
  absl::Status st = LoadError(
      "k = service(\"kv\", command = [\"/sbin/ldconfig\"])\n"
      "fault_assumption(\"ok\", target = k, fsync = deny(\"EIO\"))\n"
      "fault_assumption(\"x\", target = k, latency = \"5ms\")\n");
  EXPECT_EQ(LastLine(st),
            "Error in fault_assumption: t.star:4:35: \"x\": service \"kv\" is "
            "a static binary "
            "(/sbin/ldconfig): only syscall faults reach it (through the "
            "seccomp layer); network "
            "and DNS effects need the preload shim");
}

TEST(SpecTest, NoEffect) {
  absl::Status st =
      LoadError("fault_assumption(\"x\", description = \"nothing\")\n");
  EXPECT_EQ(
      LastLine(st),
      "Error in fault_assumption: t.star:2:17: \"x\": no fault effect given");
}

TEST(SpecTest, OverrideMustBeACell) {
  absl::Status st = LoadError(
      "a = fault_assumption(\"a\", latency = \"5ms\")\n"
      "s = scenario(\"s\", run = lambda: 1)\n"
      "fault_matrix(scenarios = [s], faults = [None], overrides = {(s, a): "
      "lambda r: None})\n");
  EXPECT_EQ(LastLine(st),
            "Error in fault_matrix: t.star:4:61: overrides: (s, a) is not a "
            "cell of this matrix");
}

TEST(SpecTest, PartitionBetweenTwoServices) {
  std::string src = std::string(kService) + R"(
db = service("db", command = ["/bin/sleep", "60"], ports = {"pg": 0})
split = fault_assumption("split", partition = partition(svc, db))
both = fault_assumption("both", faults = [split, fault_assumption("again", partition = [partition(db, svc)])])
fault_matrix(scenarios = [scenario("s", run = lambda: 1)], faults = [split, both])
)";
  auto spec = LoadSpec("t.star", src);
  ASSERT_TRUE(spec.ok()) << spec.status();
  const Assumption& split = *(*spec)->assumptions[0];
  ASSERT_EQ(split.policy.partitions_size(), 1);
  EXPECT_EQ(split.policy.partitions(0).a(), "sleeper");
  EXPECT_EQ(split.policy.partitions(0).b(), "db");
  ASSERT_EQ(split.targets.size(), 2u);  // both ends are targets
  EXPECT_EQ(split.targets[0]->name, "sleeper");
  EXPECT_EQ(split.targets[1]->name, "db");
  // The same pair in the other order composes into one partition.
  EXPECT_EQ((*spec)->assumptions[2]->policy.partitions_size(), 1);
}

TEST(SpecTest, PartitionMistakes) {
  absl::Status st = LoadError("partition(svc, svc)\n");
  EXPECT_EQ(LastLine(st),
            "Error in partition: t.star:2:16: partition(a, b): a and b are both "
            "service \"sleeper\"");
  st = LoadError("partition(svc, \"db\")\n");
  EXPECT_EQ(LastLine(st),
            "Error in partition: t.star:2:16: for parameter \"b\": got string, "
            "want service");
  st = LoadError("fault_assumption(\"x\", partition = svc)\n");
  EXPECT_EQ(LastLine(st),
            "Error in fault_assumption: t.star:2:23: partition: got service, want "
            "partition(a, b)");
  st = LoadError(
      "db = service(\"db\", command = [\"/bin/sleep\", \"1\"])\n"
      "fault_assumption(\"x\", fsync = deny(\"EIO\"), partition = partition(svc, db))\n");
  EXPECT_EQ(LastLine(st),
            "Error in fault_assumption: t.star:3:44: \"x\": a partition cannot be "
            "combined with other effects in one fault: a cell with a partition runs "
            "every service under one supervisor, so the other effects would reach "
            "every service; make them separate faults");
}

TEST(SpecTest, PartitionWithTargets) {
  absl::Status st = LoadError(
      "db = service(\"db\", command = [\"/bin/sleep\", \"1\"])\n"
      "fault_assumption(\"x\", partition = partition(svc, db), targets = "
      "[\"tcp://:80\"])\n");
  EXPECT_EQ(LastLine(st),
            "Error in fault_assumption: t.star:3:55: \"x\": targets= cannot "
            "narrow a partition: it cuts every connection between the two "
            "services, whatever the targets; leave out targets=");
}

// Effects the policy format accepts and no layer of fault exec applies are
// refused at their keyword, not run as faults that do nothing.
TEST(SpecTest, EffectsFaultExecDoesNotApply) {
  absl::Status st = LoadError(
      "fault_assumption(\"x\", latency = \"5ms\", packet_reorder = \"5%\")\n");
  EXPECT_EQ(LastLine(st),
            "Error in fault_assumption: t.star:2:40: \"x\": packet_reorder: "
            "fault exec does not reorder packets (neither the preload shim nor "
            "the stream engine implements packet_reorder; the shim only warns "
            "in the service's log), so this fault would do nothing; leave it "
            "out");
  st = LoadError(
      "fault_assumption(\"x\", downlink = {\"latency\": \"5ms\", "
      "\"packet_reorder\": {\"prob\": \"5%\"}})\n");
  EXPECT_TRUE(absl::StartsWith(
      LastLine(st),
      "Error in fault_assumption: t.star:2:23: \"x\": "
      "downlink.packet_reorder: fault exec does not reorder packets"))
      << st;
  st = LoadError(
      "fault_assumption(\"x\", payload_mutation = {\"kind\": "
      "\"corrupt_bytes\"})\n");
  EXPECT_EQ(LastLine(st),
            "Error in fault_assumption: t.star:2:23: \"x\": payload_mutation: "
            "fault exec does not change payloads (neither the preload shim nor "
            "the stream engine implements payload_mutation; the shim only "
            "warns in the service's log), so this fault would do nothing; "
            "leave it out");
}

// targets= narrow the socket families (connect, send, recv); a family that
// acts on files, or whose calls have no peer, is refused with targets=.
TEST(SpecTest, TargetsNarrowOnlySocketFamilies) {
  std::string src = std::string(kService) + R"(
t = ["tcp://127.0.0.1:5432"]
a = fault_assumption("a", connect = deny("ECONNREFUSED"), send = deny("EPIPE"), recv = delay("1s"), targets = t)
fault_matrix(scenarios = [scenario("s", run = lambda: 1)], faults = [a])
)";
  auto spec = LoadSpec("t.star", src);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ((*spec)->assumptions[0]->policy.syscalls_size(), 3);
  EXPECT_EQ((*spec)->assumptions[0]->policy.targets_size(), 1);

  absl::Status st = LoadError(
      "fault_assumption(\"x\", read = deny(\"ECONNRESET\"), targets = "
      "[\"tcp://127.0.0.1:5432\"])\n");
  EXPECT_EQ(LastLine(st),
            "Error in fault_assumption: t.star:2:23: \"x\": read= with "
            "targets=: targets= select connections by their peer, and read "
            "also acts on files, which have no peer: the rule would apply to "
            "every file the service touches (its own files, /proc, /sys, its "
            "libraries), whatever the targets. For one connection's traffic "
            "use recv= with targets=; for files, give path= in a fault "
            "without targets= (targets= apply to every rule of a fault, "
            "composed faults included)");
  st = LoadError(
      "fault_assumption(\"x\", targets = [\"tcp://:80\"], openat = "
      "deny(\"EACCES\"))\n");
  EXPECT_EQ(LastLine(st),
            "Error in fault_assumption: t.star:2:48: \"x\": openat= with "
            "targets=: targets= select connections by their peer, and openat "
            "acts on files, which have no peer: the rule would apply to every "
            "file the service touches (its own files, /proc, /sys, its "
            "libraries), whatever the targets. For files, give path= in a "
            "fault without targets= (targets= apply to every rule of a fault, "
            "composed faults included)");
  st = LoadError(
      "fault_assumption(\"x\", accept = deny(\"EMFILE\"), targets = "
      "[\"tcp://:80\"])\n");
  EXPECT_EQ(LastLine(st),
            "Error in fault_assumption: t.star:2:23: \"x\": accept= with "
            "targets=: targets= select connections by their peer, and an "
            "accept is decided before it has one: the rule would never apply. "
            "Leave out targets= to fault every accept, or fault the accepted "
            "connection's recv= or send= with targets=");
  // Composed: the targets of one fault reach the file rule of the other;
  // the error is at faults=.
  st = LoadError(
      "a = fault_assumption(\"a\", latency = \"5ms\", targets = "
      "[\"tcp://:80\"])\n"
      "b = fault_assumption(\"b\", fsync = deny(\"EIO\"))\n"
      "fault_assumption(\"c\", faults = [a, b])\n");
  EXPECT_TRUE(absl::StartsWith(
      LastLine(st),
      "Error in fault_assumption: t.star:4:23: \"c\": fsync= with targets=: "
      "targets= select connections by their peer, and fsync acts on files"))
      << st;
}

TEST(SpecTest, StaticBinaryCannotNarrowReceives) {
  absl::Status st = LoadError(
      "k = service(\"kv\", command = [\"/sbin/ldconfig\"])\n"
      "fault_assumption(\"ok\", target = k, connect = deny(\"ECONNREFUSED\"), "
      "targets = [\"tcp://:80\"])\n"
      "fault_assumption(\"x\", target = k, recv = deny(\"ECONNRESET\"), "
      "targets = [\"tcp://:80\"])\n");
  EXPECT_EQ(LastLine(st),
            "Error in fault_assumption: t.star:4:35: \"x\": service \"kv\" is "
            "a static binary (/sbin/ldconfig): only the seccomp layer reaches "
            "it, which knows the destination of connect and sendto but not "
            "the peer of a receive, so recv= with targets= would never apply; "
            "fault its connect= with targets=, or recv= without targets=");
}

TEST(SpecTest, ScenarioBuiltinsNeedACell) {
  absl::Status st = LoadError("sleep(\"1s\")\n");
  EXPECT_EQ(LastLine(st),
            "Error in sleep: sleep: only available while a scenario runs");
}

TEST(SpecTest, ParallelNeedsACell) {
  absl::Status st = LoadError("parallel(lambda: 1)\n");
  EXPECT_EQ(
      LastLine(st),
      "Error in parallel: parallel: only available while a scenario runs");
}

TEST(SpecTest, LoadBuiltinsRefuseToRunLater) {
  auto spec = LoadSpec("t.star",
                       std::string(kService) +
                           "def run():\n"
                           "    fault_assumption(\"late\", latency = \"1ms\")\n"
                           "fault_matrix(scenarios = [scenario(\"s\", run = "
                           "run)], faults = [None])\n");
  ASSERT_TRUE(spec.ok()) << spec.status();
  starlark::Thread th;
  absl::StatusOr<starlark::Value> r =
      starlark::Call(th, (*spec)->cells[0].scenario->run, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(LastLine(r.status()),
            "Error in fault_assumption: fault_assumption: only at the top "
            "level of a spec, while it loads");
}

TEST(SpecTest, FromStart) {
  std::string src = std::string(kService) + R"(
a = fault_assumption("a", read = deny("EIO"))
b = fault_assumption("b", latency = "5ms", from_start = True)
c = fault_assumption("c", faults = [a, b])
d = fault_assumption("d", faults = [a, b], from_start = False)
fault_matrix(scenarios = [scenario("s", run = lambda: 1)], faults = [a, b, c, d])
)";
  auto spec = LoadSpec("t.star", src);
  ASSERT_TRUE(spec.ok()) << spec.status();
  const auto& as = (*spec)->assumptions;
  EXPECT_FALSE(as[0]->from_start);  // the default: the scenario's window
  EXPECT_TRUE(as[1]->from_start);
  EXPECT_TRUE(as[2]->from_start);   // a part from the start keeps the whole
  EXPECT_FALSE(as[3]->from_start);  // unless the composition says otherwise
}

TEST(SpecTest, FromStartMistakes) {
  absl::Status st = LoadError(
      "fault_assumption(\"x\", latency = \"5ms\", from_start = \"yes\")\n");
  EXPECT_EQ(LastLine(st),
            "Error in fault_assumption: t.star:2:40: for parameter "
            "\"from_start\": got string, want bool");
  st = LoadError(
      "db = service(\"db\", command = [\"/bin/sleep\", \"1\"])\n"
      "fault_assumption(\"x\", partition = partition(svc, db), from_start = "
      "False)\n");
  EXPECT_EQ(LastLine(st),
            "Error in fault_assumption: t.star:3:55: \"x\": a partition "
            "applies from the start of the cell's services (fault exec sets "
            "it up when it starts them; it cannot be added while they run): "
            "leave out from_start = False");
  st = LoadError(
      "fault_assumption(\"x\", latency = \"5ms\", from_strat = True)\n");
  EXPECT_EQ(LastLine(st),
            "Error in fault_assumption: t.star:2:40: unexpected keyword "
            "argument \"from_strat\" (did you mean \"from_start\"?)");
}

TEST(SpecTest, WindowsNeedAScenario) {
  absl::Status st =
      LoadError("fault(svc, run = lambda: 1, latency = \"5ms\")\n");
  EXPECT_EQ(LastLine(st),
            "Error in fault: t.star:2:6: only available while a scenario runs");
  st = LoadError("fault_stop(svc)\n");
  EXPECT_EQ(LastLine(st),
            "Error in fault_stop: t.star:2:11: only available while a "
            "scenario runs");
}

// The scenario's run function, called inside a cell whose windows are
// recorded instead of applied to services.
class WindowTest : public ::testing::Test {
 protected:
  // Loads kService + `body`, runs the scenario "s"; its result or error.
  absl::StatusOr<starlark::Value> Run(const std::string& body) {
    auto spec =
        LoadSpec("t.star", std::string(kService) + body +
                               "fault_matrix(scenarios = [scenario("
                               "\"s\", run = run)], faults = [None])\n");
    if (!spec.ok()) return spec.status();
    spec_ = std::move(*spec);
    CellContext cell;
    cell.in_run = true;
    cell.open_window = [this](const ServiceDef& svc, const FaultWindow& w) {
      log_.push_back(absl::StrCat("open ", svc.name, " ", w.policy.name(),
                                  " by ", w.opened_by,
                                  w.expect_events ? "" : " quietly"));
      policies_.push_back(w.policy);
      return std::string();
    };
    cell.close_window = [this](const ServiceDef& svc) {
      log_.push_back(absl::StrCat("close ", svc.name));
      return std::string();
    };
    ScopedCell scoped(&cell);
    starlark::Thread th;
    return starlark::Call(th, spec_->cells[0].scenario->run, {});
  }
  std::unique_ptr<Spec> spec_;
  std::vector<std::string> log_;
  std::vector<fault::v1::Policy> policies_;
};

TEST_F(WindowTest, FaultRunsTheFunctionInsideItsWindow) {
  auto r = Run(R"(
disk = fault_assumption("disk", write = deny("ENOSPC"), expect_events = False)
def run():
    a = fault(svc, disk, run = lambda: 7)
    b = fault("sleeper", run = lambda: 8, read = deny("EIO", path = "*.conf"))
    fault_start(svc, latency = "5ms")
    fault_stop(svc)
    return [a, b]
)");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(starlark::Repr(*r), "[7, 8]");
  EXPECT_EQ(log_,
            (std::vector<std::string>{
                "open sleeper disk by fault quietly", "close sleeper",
                "open sleeper window-6-14 by fault", "close sleeper",
                "open sleeper window-7-16 by fault_start", "close sleeper"}));
  ASSERT_EQ(policies_.size(), 3u);
  EXPECT_EQ(policies_[0].syscalls(0).errno_name(), "ENOSPC");
  EXPECT_EQ(policies_[1].syscalls(0).path_glob(), "*.conf");
  EXPECT_EQ(policies_[2].link().latency().fixed_ns(), 5'000'000);
}

TEST_F(WindowTest, ClosesTheWindowWhenTheFunctionFails) {
  auto r =
      Run("def run():\n    fault(svc, run = lambda: fail(\"boom\"), "
          "latency = \"5ms\")\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(LastLine(r.status()), "Error in fail: fail: boom");
  EXPECT_EQ(log_, (std::vector<std::string>{"open sleeper window-3-10 by fault",
                                            "close sleeper"}));
}

TEST_F(WindowTest, Mistakes) {
  auto error = [&](const std::string& call) {
    auto r = Run("def run():\n    " + call + "\n");
    return r.ok() ? std::string("ok") : LastLine(r.status());
  };
  EXPECT_EQ(error("fault(svc, run = lambda: 1)"),
            "Error in fault: t.star:3:10: no fault effect given: give a "
            "fault_assumption or effect keywords (read = deny(\"EIO\"), "
            "latency = \"50ms\", ...)");
  EXPECT_EQ(error("fault(svc, latency = \"5ms\")"),
            "Error in fault: t.star:3:10: missing argument for run");
  EXPECT_EQ(error("fault(svc, run = 3, latency = \"5ms\")"),
            "Error in fault: t.star:3:16: for parameter \"run\": got int, "
            "want function");
  EXPECT_EQ(error("fault(3, run = len, latency = \"5ms\")"),
            "Error in fault: t.star:3:11: for parameter \"service\": got int, "
            "want service");
  EXPECT_EQ(error("fault_start(\"nope\", latency = \"5ms\")"),
            "Error in fault_start: t.star:3:17: no service named \"nope\" "
            "(services: \"sleeper\")");
  EXPECT_EQ(error("fault_start(svc, \"disk\")"),
            "Error in fault_start: t.star:3:22: for parameter \"assumption\": "
            "got string, want fault_assumption");
  EXPECT_EQ(error("fault_start(svc, target = svc, latency = \"5ms\")"),
            "Error in fault_start: t.star:3:22: unexpected keyword argument "
            "\"target\" (the window's service is the first argument)");
  EXPECT_EQ(error("fault_start(svc, latncy = \"5ms\")"),
            "Error in fault_start: t.star:3:22: unexpected keyword argument "
            "\"latncy\" (did you mean \"latency\"?)");
  EXPECT_EQ(error("fault_start(svc, packet_loss = \"150%\")"),
            "Error in fault_start: t.star:3:22: \"window-3-16\": packet_loss: "
            "\"150%\" is not a probability: above 100%");
  EXPECT_EQ(error("fault_start(svc, write = deny(\"EIO\", when = \"2\"))"),
            "Error in fault_start: t.star:3:22: \"window-3-16\": write= has a "
            "when counter, which a window cannot start from zero (it counts "
            "the service's calls since it started); give the fault to the "
            "matrix instead, where when counts from the start of the scenario");
  EXPECT_EQ(error("fault_stop(svc, 1)"),
            "Error in fault_stop: t.star:3:21: got 2 positional arguments, "
            "want at most 1");
  EXPECT_TRUE(log_.empty());
}

TEST_F(WindowTest, NoPartitionInAWindow) {
  auto r = Run(R"(
db = service("db", command = ["/bin/sleep", "60"])
split = fault_assumption("split", partition = partition(svc, db))
def run():
    fault(svc, split, run = lambda: 1)
)");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(LastLine(r.status()),
            "Error in fault: t.star:6:10: \"split\": a partition cannot be "
            "applied in a window: fault exec sets it up when it starts the "
            "cell's services (they run under one supervisor); give it to the "
            "matrix as a cell's fault");
}

TEST_F(WindowTest, NotInTheCheck) {
  auto spec =
      LoadSpec("t.star", std::string(kService) +
                             "fault_matrix(scenarios = [scenario(\"s\", "
                             "run = lambda: 1)], faults = [None])\n"
                             "def check(r):\n"
                             "    fault(svc, run = len, latency = \"5ms\")\n");
  ASSERT_TRUE(spec.ok()) << spec.status();
  CellContext cell;  // in_run is false while the check runs
  cell.open_window = [](const ServiceDef&, const FaultWindow&) {
    return std::string();
  };
  ScopedCell scoped(&cell);
  starlark::Thread th;
  starlark::Value args[] = {starlark::Int(1)};
  auto r = starlark::Call(th, (*spec)->globals["check"], args);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(LastLine(r.status()),
            "Error in fault: t.star:4:10: only inside a scenario's run "
            "function: the cell's faults are removed when it returns, before "
            "the check");
}

TEST(SpecTest, SyntaxError) {
  auto s = LoadSpec("t.star", "x = (\n");
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(absl::StartsWith(s.status().message(), "t.star:")) << s.status();
}

TEST(SpecTest, ServiceMustExist) {
  absl::Status st =
      LoadError("service(\"x\", command = [\"/nonexistent/prog\"])\n");
  EXPECT_EQ(LastLine(st),
            "Error in service: t.star:2:25: \"x\": command "
            "\"/nonexistent/prog\" is not an executable file");
}

TEST(SpecTest, SharedService) {
  auto spec = LoadSpec(
      "t.star", std::string(kService) +
                    "db = service(\"db\", command = [\"/bin/sleep\", \"60\"], "
                    "shared = True)\n"
                    "fault_matrix(scenarios = [scenario(\"s\", run = lambda: "
                    "1)], faults = [None])\n");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE((*spec)->services[0]->shared);
  EXPECT_TRUE((*spec)->services[1]->shared);
  absl::Status st = LoadError(
      "service(\"db\", command = [\"/bin/true\"], shared = \"yes\")\n");
  EXPECT_EQ(LastLine(st),
            "Error in service: t.star:2:40: for parameter \"shared\": got "
            "string, want bool");
}

TEST(SpecTest, DependenciesOrderTheStart) {
  std::string src = R"(
c = service("c", command = ["/bin/sleep", "1"], depends_on = ["b", "a"])
b = service("b", command = ["/bin/sleep", "1"], depends_on = "a")
d = service("d", command = ["/bin/sleep", "1"])
a = service("a", command = ["/bin/sleep", "1"])
e = service("e", command = ["/bin/sleep", "1"], depends_on = [d, c, d])
fault_matrix(scenarios = [scenario("s", run = lambda: None)], faults = [None])
)";
  auto spec = LoadSpec("t.star", src);
  ASSERT_TRUE(spec.ok()) << spec.status();
  // d and a first (no dependencies, definition order), then b, c, e.
  EXPECT_EQ((*spec)->start_order, (std::vector<size_t>{2, 3, 1, 0, 4}));
  const ServiceDef& e = *(*spec)->services[4];
  ASSERT_EQ(e.depends_on.size(), 2u);  // d once
  EXPECT_EQ(e.depends_on[0]->name, "d");
  EXPECT_EQ(e.depends_on[1]->name, "c");
}

TEST(SpecTest, DependencyCycle) {
  auto spec = LoadSpec("t.star", R"(
service("x", command = ["/bin/sleep", "1"], depends_on = ["y"])
service("y", command = ["/bin/sleep", "1"], depends_on = ["x"])
fault_matrix(scenarios = [scenario("s", run = lambda: None)], faults = [None])
)");
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().message(),
            "t.star:3:59: service: \"y\": depends_on: a cycle: \"x\" depends "
            "on \"y\", which depends on \"x\": none of them can start first; "
            "remove one of these dependencies");
}

TEST(SpecTest, TimedFaults) {
  std::string src = std::string(kService) + R"(
late = fault_assumption("late", fsync = deny("EIO"), after = "200ms", lasting = 0.3)
plain = fault_assumption("plain", write = deny("EIO"))
both = fault_assumption("both", faults = [plain, late])
own = fault_assumption("own", faults = [late], after = "1s")
fault_matrix(scenarios = [scenario("s", run = lambda: None)], faults = [late, both, own, plain])
)";
  auto spec = LoadSpec("t.star", src);
  ASSERT_TRUE(spec.ok()) << spec.status();
  const auto& as = (*spec)->assumptions;
  EXPECT_EQ(as[0]->after, absl::Milliseconds(200));
  EXPECT_EQ(as[0]->lasting, absl::Milliseconds(300));
  EXPECT_EQ(as[0]->timing_where, "t.star:3:54");
  EXPECT_FALSE(as[1]->timed());
  // A composition takes its parts' timing, or gives its own.
  EXPECT_EQ(as[2]->after, absl::Milliseconds(200));
  EXPECT_EQ(as[2]->lasting, absl::Milliseconds(300));
  EXPECT_EQ(as[3]->after, absl::Seconds(1));
  EXPECT_EQ(as[3]->lasting, absl::InfiniteDuration());
}

TEST(SpecTest, Vars) {
  auto s = LoadSpec("t.star",
                    std::string(kService) +
                        "fault_matrix(scenarios = [scenario(vars[\"n\"], run = "
                        "lambda: 1)], faults = [None])\n",
                    {{"n", "from_var"}});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)->cells[0].name(), "from_var/none");
}

TEST(SpecTest, AddressesOfOtherServicesWhileLoading) {
  auto spec = LoadSpec(
      "t.star",
      std::string(kService) +
          "db = service(\"db\", command = [\"/bin/sleep\", \"60\"], ports = "
          "{\"main\": 5432})\n"
          "client = service(\"client\", command = [\"/bin/sleep\", "
          "svc.http.url], env = {\"A\": svc.http.addr, \"B\": db.main.addr})\n"
          "DB_PORT = db.main.port\n"
          "def addr():\n"
          "    return svc.http.addr\n"
          "fault_matrix(scenarios = [scenario(\"s\", run = addr)], faults = "
          "[None])\n");
  ASSERT_TRUE(spec.ok()) << spec.status();
  const ServiceDef& client = *(*spec)->services[2];
  // A port chosen per cell is a reference, a fixed one its number.
  EXPECT_EQ(client.command[1], "http://127.0.0.1:{sleeper.http}");
  ASSERT_EQ(client.env.size(), 2u);
  EXPECT_EQ(client.env[0].second, "127.0.0.1:{sleeper.http}");
  EXPECT_EQ(client.env[1].second, "127.0.0.1:5432");
  EXPECT_EQ(starlark::Repr((*spec)->globals["DB_PORT"]), "5432");
  // The runner sets the cell's ports: references expand to them, and the
  // attributes read in a scenario are the cell's.
  (*spec)->services[0]->current_ports["http"] = 40001;
  EXPECT_EQ(ExpandPortRefs(client.env[0].second, (*spec)->services),
            "127.0.0.1:40001");
  starlark::Thread th;
  absl::StatusOr<starlark::Value> r =
      starlark::Call(th, (*spec)->cells[0].scenario->run, {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(starlark::Repr(*r), "\"127.0.0.1:40001\"");
}

TEST(SpecTest, PortReferencesAreFoundByServiceAndPort) {
  auto kv = std::make_shared<ServiceDef>();
  kv->name = "kv.primary";
  kv->ports = {{"tcp", 0}, {"admin.http", 0}};
  kv->current_ports = {{"tcp", 7000}, {"admin.http", 7001}};
  std::vector<std::shared_ptr<ServiceDef>> services = {kv};
  EXPECT_EQ(ExpandPortRefs("{kv.primary.tcp} {kv.primary.admin.http} "
                           "{other.tcp} {kv.primary} {{kv.primary.tcp}}",
                           services),
            "7000 7001 {other.tcp} {kv.primary} {7000}");
  std::vector<PortRef> refs = FindPortRefs("x{kv.primary.nope}", services);
  ASSERT_EQ(refs.size(), 1u);  // a service's name, but not one of its ports
  EXPECT_EQ(refs[0].port, "");
  EXPECT_EQ(refs[0].written, "nope");
  EXPECT_EQ(refs[0].begin, 1u);
}

TEST(SpecTest, PortReferenceMistakes) {
  // .port has no reference form: it fails rather than give 0.
  absl::Status st = LoadError("x = svc.http.port\n");
  EXPECT_EQ(LastLine(st),
            "Error: sleeper.http.port: the port is chosen when each cell "
            "starts (ports = {\"http\": 0}), not known while the spec loads; "
            "use sleeper.http.addr or .url (expanded when a cell starts its "
            "services), \"{sleeper.http}\" in command or env, read .port in a "
            "scenario, or give the port a fixed number");
  EXPECT_TRUE(absl::StrContains(st.message(), "t.star:2:13: in <toplevel>"))
      << st;
  // A port the service does not have.
  st = LoadError(
      "c = service(\"c\", command = [\"/bin/sleep\", \"60\"], env = {\"A\": "
      "\"127.0.0.1:{sleeper.htp}\"})\n"
      "fault_matrix(scenarios = [scenario(\"s\", run = lambda: 1)], faults = "
      "[None])\n");
  EXPECT_EQ(st.message(),
            "t.star:2:57: service: \"c\": env A: \"127.0.0.1:{sleeper.htp}\": "
            "service \"sleeper\" has no port \"htp\" (its ports: \"http\")");
  // A shared service, started once, cannot keep a port chosen per cell.
  st = LoadError(
      "c = service(\"c\", command = [\"/bin/sleep\", svc.http.addr], shared = "
      "True)\n"
      "fault_matrix(scenarios = [scenario(\"s\", run = lambda: 1)], faults = "
      "[None])\n");
  EXPECT_EQ(
      st.message(),
      "t.star:2:43: service: \"c\": command: \"127.0.0.1:{sleeper.http}\": "
      "a shared service starts once, but port \"http\" of \"sleeper\" (not "
      "shared) is chosen again for every cell; make \"sleeper\" shared too, "
      "or give that port a fixed number");
  // A fault's values are fixed at load: no reference to a per-cell port.
  st = LoadError(
      "fault_assumption(\"f\", latency = \"5ms\", targets = "
      "[\"tcp://\" + svc.http.addr])\n");
  EXPECT_EQ(LastLine(st),
            "Error in fault_assumption: t.star:2:40: targets: "
            "\"tcp://127.0.0.1:{sleeper.http}\" refers to port \"http\" of "
            "service \"sleeper\": a fault's values become its policy when the "
            "spec loads, before any cell chooses ports; give that port a fixed "
            "number (ports = {\"http\": 5432}), then sleeper.http.addr is "
            "\"127.0.0.1:5432\"");
}

std::string TestFile(const std::string& name) {
  return absl::StrCat(FAULT_SPEC_TESTDATA, "/", name);
}

absl::StatusOr<std::unique_ptr<Spec>> LoadTestFile(const std::string& name) {
  std::ifstream f(TestFile(name));
  std::stringstream text;
  text << f.rdbuf();
  return LoadSpec(TestFile(name), text.str());
}

TEST(SpecTest, LoadRunsEachFileOnce) {
  // load_spec.star loads lib/common.star twice, and lib/scenarios.star
  // loads it too: its service and fault would otherwise be defined thrice.
  auto spec = LoadTestFile("load_spec.star");
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ((*spec)->services.size(), 1u);
  EXPECT_EQ((*spec)->services[0]->name, "echo");
  ASSERT_EQ((*spec)->cells.size(), 2u);
  EXPECT_EQ((*spec)->cells[1].name(), "get/slow");
  EXPECT_FALSE((*spec)->cells[1].check.IsNull());  // the override, loaded
  // {spec_dir} in a loaded file is the spec's directory.
  EXPECT_EQ((*spec)->services[0]->command[1], TestFile("fetch_server.py"));
}

TEST(SpecTest, LoadByAbsolutePath) {
  auto spec = LoadSpec(
      "t.star", absl::StrCat("load(\"", TestFile("lib/common.star"),
                             "\", \"echo\", \"slow\")\n"
                             "fault_matrix(scenarios = [scenario(\"s\", run = "
                             "lambda: 1)], faults = [slow])\n"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ((*spec)->cells[0].name(), "s/slow");
}

TEST(SpecTest, LoadMissingFile) {
  auto spec = LoadTestFile("load_missing.star");
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().message(),
            absl::StrCat("Traceback (most recent call last):\n  ",
                         TestFile("load_missing.star"),
                         ":3:1: in <toplevel>\nError: cannot load "
                         "lib/nope.star: ",
                         TestFile("lib/nope.star"),
                         ": cannot read: No such file or directory"));
}

TEST(SpecTest, LoadCycle) {
  auto spec = LoadTestFile("load_cycle.star");
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().message(),
            absl::StrCat("Traceback (most recent call last):\n  ",
                         TestFile("load_cycle.star"), ":2:1: in <toplevel>\n  ",
                         TestFile("lib/cycle.star"),
                         ":1:1: in <toplevel>\nError: cannot load "
                         "../load_cycle.star: load cycle: ",
                         TestFile("load_cycle.star"), " loads ",
                         TestFile("lib/cycle.star"), ", which loads ",
                         TestFile("load_cycle.star")));
}

TEST(SpecTest, ErrorInALoadedFileIsAtItsPosition) {
  auto spec = LoadTestFile("load_error.star");
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(
      spec.status().message(),
      absl::StrCat(
          "Traceback (most recent call last):\n  ", TestFile("load_error.star"),
          ":2:1: in <toplevel>\n  ", TestFile("lib/bad.star"),
          ":3:49: in <toplevel>\nError in deny: ", TestFile("lib/bad.star"),
          ":3:50: \"EIOO\" is not an errno name (e.g. ENOSPC, "
          "EIO, ECONNREFUSED)"));
}

}  // namespace
}  // namespace fault::spec
