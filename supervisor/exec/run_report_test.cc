#include "supervisor/exec/run_report.h"

#include <cstring>

#include <gtest/gtest.h>

namespace fault::exec {
namespace {

fault_event Event(uint16_t rule, uint16_t effect, const char* target) {
  fault_event e;
  std::memset(&e, 0, sizeof(e));
  e.rule = rule;
  e.effect = effect;
  std::strcpy(e.target, target);
  return e;
}

CounterSnapshot Counters(std::vector<uint64_t> matched, std::vector<uint64_t> fired) {
  CounterSnapshot s;
  s.rule_matched = std::move(matched);
  s.rule_fired = std::move(fired);
  return s;
}

TEST(RunReportTest, SummaryNamesNeverMatchedAndNeverFired) {
  RunReport r;
  r.BeginGeneration({"slow", "typo", "idle"}, {});
  for (int i = 0; i < 3; ++i) r.AddEvent(Event(0, FAULT_EFFECT_LATENCY, "127.0.0.1:80"));
  r.AddEvent(Event(0, FAULT_EFFECT_LOSS, "127.0.0.1:53"));
  r.AddCounters(Counters({10, 0, 4}, {4, 0, 0}), {});
  SummaryInfo info;
  info.events = 4;
  info.has_run_seed = true;
  info.run_seed = 99;
  info.run_seed_random = true;
  EXPECT_EQ(r.Summary(info),
            "fault: policy \"slow\": matched 10, fired 4\n"
            "fault:   latency 127.0.0.1:80: 3\n"
            "fault:   loss 127.0.0.1:53: 1\n"
            "fault: policy \"typo\": never matched \xE2\x80\x94 check its targets\n"
            "fault: policy \"idle\": matched 4, never fired\n"
            "fault: 4 events, 0 dropped; seed 99 (random; repeat the run with --seed 99)\n");
  EXPECT_EQ(r.NeverFired(), (std::vector<std::string>{"typo", "idle"}));
}

TEST(RunReportTest, SyscallFaultsCountForTheirPolicy) {
  RunReport r;
  r.BeginGeneration({"net", "disk"}, {1, 1});
  CounterSnapshot now = Counters({0, 0}, {0, 0});
  now.syscall_matched = {2, 5};
  now.syscall_fired = {1, 0};
  r.AddCounters(now, {});
  EXPECT_EQ(r.stats().at("disk").matched, 7u);
  EXPECT_EQ(r.stats().at("disk").fired, 1u);
  EXPECT_EQ(r.NeverFired(), std::vector<std::string>{"net"});
}

TEST(RunReportTest, CountersFoldAcrossGenerationsByName) {
  RunReport r;
  r.BeginGeneration({"a", "b"}, {});
  r.AddCounters(Counters({5, 1}, {2, 0}), Counters({1, 0}, {1, 0}));
  r.BeginGeneration({"b", "c"}, {});
  r.AddCounters(Counters({3, 2}, {3, 2}), {});
  EXPECT_EQ(r.stats().at("a").matched, 4u);
  EXPECT_EQ(r.stats().at("a").fired, 1u);
  EXPECT_EQ(r.stats().at("b").matched, 4u);
  EXPECT_EQ(r.stats().at("b").fired, 3u);
  EXPECT_EQ(r.stats().at("c").fired, 2u);
}

TEST(RunReportTest, LongBreakdownsAreCut) {
  RunReport r;
  r.BeginGeneration({"many"}, {});
  for (int i = 0; i < 8; ++i) {
    std::string target = "10.0.0." + std::to_string(i) + ":1";
    for (int k = 0; k <= i; ++k) r.AddEvent(Event(0, FAULT_EFFECT_DENY, target.c_str()));
  }
  r.AddCounters(Counters({36}, {36}), {});
  SummaryInfo info;
  info.events = 36;
  info.dropped = 2;
  info.has_run_seed = true;
  info.run_seed = 1;
  std::string s = r.Summary(info);
  EXPECT_NE(s.find("fault:   deny 10.0.0.7:1: 8\n"), std::string::npos) << s;
  EXPECT_NE(s.find("fault:   ... 2 more kinds and targets: 3\n"), std::string::npos) << s;
  EXPECT_NE(s.find("fault: 36 events, 2 dropped; seed 1 (--seed)\n"), std::string::npos) << s;
  EXPECT_NE(s.find("miss 2 events"), std::string::npos) << s;
}

TEST(RunReportTest, EventsNotWrittenAreCounted) {
  RunReport r;
  SummaryInfo info;
  info.events = 5;
  info.events_lost = 3;
  EXPECT_NE(r.Summary(info).find("fault: 5 events, 0 dropped, 3 not written to --events\n"),
            std::string::npos);
}

TEST(RunReportTest, NoPolicies) {
  RunReport r;
  r.BeginGeneration({}, {});
  EXPECT_EQ(r.Summary({}),
            "fault: no policies were loaded; nothing was injected\n"
            "fault: 0 events, 0 dropped\n");
}

}  // namespace
}  // namespace fault::exec
