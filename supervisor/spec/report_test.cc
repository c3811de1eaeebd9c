#include "supervisor/spec/report.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"

namespace fault::spec {
namespace {

RunResult Sample() {
  RunResult run;
  run.spec = "notes.star";
  run.seed = 7;
  CellResult ok;
  ok.scenario = "write_note";
  ok.fault = "none";
  ok.passed = true;
  ok.seconds = 0.25;
  CellResult bad;
  bad.scenario = "write_note";
  bad.fault = "disk<full>";
  bad.passed = false;
  bad.seconds = 1.5;
  bad.message =
      "Traceback (most recent call last):\n  notes.star:3:5: in write\nError "
      "in assert_eq: got 500, want 201 & \"x\"";
  bad.policy_yaml =
      "disk<full>:\n  syscalls:\n    - write:\n        deny: ENOSPC\n";
  bad.events = nlohmann::json::array(
      {{{"effect", "deny"},
        {"op", "write"},
        {"errno_name", "ENOSPC"},
        {"service", "notes"}},
       {{"effect", "deny"},
        {"op", "write"},
        {"errno_name", "ENOSPC"},
        {"service", "notes"}},
       {{"effect", "latency"}, {"op", "send"}, {"service", "notes"}}});
  bad.output = "--- service notes ---\nlog line\n";
  run.cells = {ok, bad};
  return run;
}

TEST(ReportTest, SummaryEndsWithCounts) {
  std::string s = RenderSummary(Sample());
  EXPECT_TRUE(absl::EndsWith(s, "\n1 passed, 1 failed\n")) << s;
  EXPECT_NE(s.find("write_note  none        PASS"), std::string::npos) << s;
  EXPECT_NE(
      s.find("FAIL       1.50s       3  Error in assert_eq: got 500, want 201"),
      std::string::npos)
      << s;
}

TEST(ReportTest, ReplayLineForEachFailedCell) {
  RunResult run = Sample();
  run.cells[1].seed = 7;
  run.replay_command = "fault test 'my spec.star' --var k=v";
  std::string s = RenderSummary(run);
  EXPECT_TRUE(absl::EndsWith(
      s,
      "\nfailed cells, each replayed alone with its seed by:\n"
      "  fault test 'my spec.star' --var k=v --filter 'write_note/disk<full>' "
      "--seed 7\n1 passed, 1 failed\n"))
      << s;
}

TEST(ReportTest, FaultPositionOfTheTimingExploration) {
  RunResult run = Sample();
  run.cells[1].fault_at_op = 2;
  run.cells[1].operations = 3;
  run.cells[1].fault_op = "http.post";
  run.replay_command = "fault test s.star";
  std::string s = RenderSummary(run);
  EXPECT_NE(s.find("write_note  disk<full> @op 2/3 http.post  FAIL"),
            std::string::npos)
      << s;
  EXPECT_NE(
      s.find("--filter 'write_note/disk<full>' --seed 0 --fault-at-op 2\n"),
      std::string::npos)
      << s;
  EXPECT_EQ(RenderJson(run)["cells"][1]["fault_at_op"], 2);
  EXPECT_EQ(RenderJson(run)["cells"][1]["operation"], "http.post");
}

TEST(ReportTest, RunsSummaryShowsFlakyCells) {
  RunResult run;
  run.spec = "s.star";
  run.seed = 3;
  run.runs = 3;
  for (uint64_t seed = 3; seed <= 5; ++seed) {
    for (const char* fault : {"none", "coin", "broken"}) {
      CellResult c;
      c.scenario = "write";
      c.fault = fault;
      c.seed = seed;
      c.seconds = 0.5;
      c.passed = std::string(fault) == "none" ||
                 (std::string(fault) == "coin" && seed != 4);
      if (!c.passed) c.message = "Error in assert_eq: got 500, want 201";
      run.cells.push_back(c);
    }
  }
  std::string s = RenderSummary(run);
  EXPECT_EQ(s,
            "scenario  fault   result   passed      mean  message\n"
            "write     none    PASS        3/3     0.50s\n"
            "write     coin    FLAKY       2/3     0.50s  seed 4: Error in "
            "assert_eq: got 500, want 201\n"
            "write     broken  FAIL        0/3     0.50s  seeds 3, 4, 5: Error "
            "in assert_eq: got 500, want 201\n"
            "1 passed, 1 failed, 1 flaky in 3 runs (seeds 3 to 5)\n");
  // The other reports name each cell with its seed.
  EXPECT_NE(RenderJUnit(run).find("name=\"write/coin (seed 4)\""),
            std::string::npos);
  EXPECT_EQ(RenderJson(run)["cells"][4]["seed"], 4);
  EXPECT_EQ(RenderJson(run)["runs"], 3);
}

TEST(ReportTest, JUnit) {
  std::string x = RenderJUnit(Sample());
  EXPECT_NE(x.find("<testsuite name=\"notes.star\" tests=\"2\" failures=\"1\" "
                   "errors=\"0\" time=\"1.750\">"),
            std::string::npos)
      << x;
  EXPECT_NE(x.find("<testcase classname=\"write_note\" "
                   "name=\"write_note/none\" time=\"0.250\"/>"),
            std::string::npos)
      << x;
  EXPECT_NE(x.find("<testcase classname=\"write_note\" "
                   "name=\"write_note/disk&lt;full&gt;\" time=\"1.500\">"),
            std::string::npos)
      << x;
  EXPECT_NE(x.find("<failure message=\"Error in assert_eq: got 500, want 201 "
                   "&amp; &quot;x&quot;\">"),
            std::string::npos)
      << x;
  EXPECT_NE(
      x.find("<system-out>--- service notes ---\nlog line\n</system-out>"),
      std::string::npos)
      << x;
  EXPECT_NE(x.find("<property name=\"seed\" value=\"7\"/>"), std::string::npos);
}

TEST(ReportTest, Markdown) {
  std::string m = RenderMarkdown(Sample());
  EXPECT_TRUE(absl::StartsWith(
      m, "# fault test: notes.star\n\n1 passed, 1 failed (seed 7)\n"))
      << m;
  EXPECT_NE(m.find("| write_note | none | pass | 0.25s | - |"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("| write_note | disk<full> | **FAIL** | 1.50s | deny write "
                   "ENOSPC: 2, latency send: 1 |"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("### write_note/disk<full>\n\n```\nTraceback"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("```yaml\ndisk<full>:\n"), std::string::npos) << m;
}

TEST(ReportTest, HtmlEscapesEverythingAndMarksEachTimedEvent) {
  RunResult run = Sample();
  // Two timed events on one service, one without a time (not drawn).
  run.cells[1].events = nlohmann::json::array(
      {{{"effect", "deny"}, {"op", "write"}, {"service", "notes"}, {"time_ns", 1000000000}},
       {{"effect", "latency"}, {"op", "send"}, {"service", "notes"}, {"time_ns", 1500000000}},
       {{"effect", "deny"}, {"op", "write"}, {"service", "notes"}}});
  std::string h = RenderHtml(run);
  EXPECT_TRUE(absl::StartsWith(h, "<!DOCTYPE html>")) << h;
  EXPECT_NE(h.find("<p id=\"totals\">1 passed, 1 failed (seed 7)</p>"), std::string::npos);
  EXPECT_EQ(h.find("disk<full>"), std::string::npos) << "unescaped text in " << h;
  EXPECT_NE(h.find("disk&lt;full&gt;"), std::string::npos);
  EXPECT_NE(h.find("got 500, want 201 &amp; &quot;x&quot;"), std::string::npos);
  size_t marks = 0;
  for (size_t at = 0; (at = h.find("class=\"event\"", at)) != std::string::npos; ++at) ++marks;
  EXPECT_EQ(marks, 2u);
  EXPECT_NE(h.find("0.500 s"), std::string::npos) << "the timeline's span";
  EXPECT_EQ(h.find("<script"), std::string::npos);
  EXPECT_EQ(h.find("http"), std::string::npos) << "nothing fetched from elsewhere";
}

TEST(ReportTest, Json) {
  nlohmann::json j = RenderJson(Sample());
  EXPECT_EQ(j["passed"], 1);
  EXPECT_EQ(j["failed"], 1);
  EXPECT_EQ(j["seed"], 7);
  ASSERT_EQ(j["cells"].size(), 2u);
  EXPECT_EQ(j["cells"][1]["name"], "write_note/disk<full>");
  EXPECT_EQ(j["cells"][1]["status"], "failed");
  EXPECT_EQ(j["cells"][1]["events"].size(), 3u);
  EXPECT_EQ(j["cells"][1]["events"][0]["service"], "notes");
}

TEST(ReportTest, CountEventsMostFrequentFirst) {
  auto c = CountEvents(Sample().cells[1].events);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].first, "deny write ENOSPC");
  EXPECT_EQ(c[0].second, 2);
}

}  // namespace
}  // namespace fault::spec
