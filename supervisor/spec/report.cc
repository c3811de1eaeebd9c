#include "supervisor/spec/report.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "supervisor/cli/markup.h"

namespace fault::spec {
namespace {


// A Markdown table cell: one line, no pipes breaking the table.
std::string MdCell(absl::string_view s) {
  std::string one = absl::StrReplaceAll(s, {{"\n", " "}, {"|", "\\|"}});
  if (one.size() > 160) one = one.substr(0, 157) + "...";
  return one;
}

// The line of a failure message that says what failed: the last line of a
// Starlark traceback ("Error in assert_eq: ..."), else the first line.
std::string FirstLine(absl::string_view s) {
  std::vector<absl::string_view> lines =
      absl::StrSplit(s, '\n', absl::SkipEmpty());
  if (lines.empty()) return "";
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    if (absl::StartsWith(*it, "Error")) return std::string(*it);
  }
  return std::string(lines.front());
}

// The fault of a cell as the reports show it: with --explore-timing or
// --fault-at-op, where it went on ("disk_full @op 2/3 http.post").
std::string FaultColumn(const CellResult& c) {
  if (c.fault_at_op <= 0) return c.fault;
  return absl::StrCat(c.fault, " @op ", c.fault_at_op,
                      c.operations > 0 ? absl::StrCat("/", c.operations) : "",
                      c.fault_op.empty() ? "" : " ", c.fault_op);
}

// A cell's name in the reports: with --runs, followed by its seed.
std::string CellLabel(const RunResult& run, const CellResult& c) {
  std::string name = absl::StrCat(c.scenario, "/", FaultColumn(c));
  if (run.runs <= 1) return name;
  return absl::StrCat(name, " (seed ", c.seed, ")");
}

}  // namespace

int RunResult::passed() const {
  return static_cast<int>(
      std::count_if(cells.begin(), cells.end(),
                    [](const CellResult& c) { return c.passed; }));
}
int RunResult::failed() const {
  return static_cast<int>(cells.size()) - passed();
}

std::vector<std::pair<std::string, int>> CountEvents(
    const nlohmann::json& events) {
  std::map<std::string, int> counts;
  for (const auto& e : events) {
    std::string key =
        absl::StrCat(e.value("effect", "?"), " ", e.value("op", "?"));
    if (e.contains("errno_name"))
      absl::StrAppend(&key, " ", e["errno_name"].get<std::string>());
    counts[key]++;
  }
  std::vector<std::pair<std::string, int>> out(counts.begin(), counts.end());
  std::stable_sort(out.begin(), out.end(),
                   [](auto& a, auto& b) { return a.second > b.second; });
  return out;
}

namespace {

// A word of a command line as a POSIX shell reads it back.
std::string ShellQuote(absl::string_view w) {
  bool plain = !w.empty();
  for (char c : w)
    plain &= absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
             absl::StrContains("-_./=:,+@%", c);
  if (plain) return std::string(w);
  return absl::StrCat("'", absl::StrReplaceAll(w, {{"'", "'\\''"}}), "'");
}

// The failed cells, each with the command that runs it again alone with
// its seed (the same fault decisions).
std::string ReplayLines(const RunResult& run) {
  if (run.replay_command.empty() || run.failed() == 0) return "";
  std::string out = "failed cells, each replayed alone with its seed by:\n";
  for (const auto& c : run.cells) {
    if (c.passed) continue;
    absl::StrAppend(
        &out, "  ", run.replay_command, " --filter ", ShellQuote(c.name()),
        " --seed ", c.seed,
        c.fault_at_op > 0 ? absl::StrCat(" --fault-at-op ", c.fault_at_op) : "",
        "\n");
  }
  return out;
}

// With --runs: one row per cell over its runs: PASS (every run), FAIL
// (every run) or FLAKY, the runs that passed, the mean time, and the seeds
// that failed with the first failure's message.
std::string RenderRunsSummary(const RunResult& run) {
  struct Row {
    std::string scenario, fault;
    int passed = 0, runs = 0;
    double seconds = 0;
    std::vector<uint64_t> failed_seeds;
    std::string message;
  };
  std::vector<Row> rows;
  std::map<std::string, size_t> index;
  for (const auto& c : run.cells) {
    auto [it, fresh] = index.emplace(
        absl::StrCat(c.scenario, "/", FaultColumn(c)), rows.size());
    if (fresh) {
      rows.emplace_back();
      rows.back().scenario = c.scenario;
      rows.back().fault = FaultColumn(c);
    }
    Row& row = rows[it->second];
    ++row.runs;
    row.seconds += c.seconds;
    if (c.passed) {
      ++row.passed;
    } else {
      row.failed_seeds.push_back(c.seed);
      if (row.message.empty()) row.message = FirstLine(c.message);
    }
  }
  size_t ws = 8, wf = 5;
  for (const auto& r : rows) {
    ws = std::max(ws, r.scenario.size());
    wf = std::max(wf, r.fault.size());
  }
  std::string out =
      absl::StrFormat("%-*s  %-*s  %-6s  %7s  %8s  %s\n", ws, "scenario", wf,
                      "fault", "result", "passed", "mean", "message");
  int passed = 0, failed = 0, flaky = 0;
  for (const auto& r : rows) {
    const char* result = r.passed == r.runs ? "PASS"
                         : r.passed == 0    ? "FAIL"
                                            : "FLAKY";
    passed += r.passed == r.runs;
    failed += r.passed == 0;
    flaky += r.passed != r.runs && r.passed != 0;
    std::string message;
    if (!r.failed_seeds.empty())
      message =
          absl::StrCat(r.failed_seeds.size() == 1 ? "seed " : "seeds ",
                       absl::StrJoin(r.failed_seeds, ", "), ": ", r.message);
    std::string row =
        absl::StrFormat("%-*s  %-*s  %-6s  %7s  %7.2fs  %s", ws, r.scenario, wf,
                        r.fault, result, absl::StrCat(r.passed, "/", r.runs),
                        r.seconds / r.runs, message);
    absl::StrAppend(&out, absl::StripTrailingAsciiWhitespace(row), "\n");
  }
  absl::StrAppend(&out, ReplayLines(run));
  absl::StrAppend(&out, passed, " passed, ", failed, " failed, ", flaky,
                  " flaky in ", run.runs, " runs (seeds ", run.seed, " to ",
                  run.seed + run.runs - 1, ")\n");
  return out;
}

}  // namespace

std::string RenderSummary(const RunResult& run) {
  if (run.runs > 1) return RenderRunsSummary(run);
  size_t ws = 8, wf = 5;
  for (const auto& c : run.cells) {
    ws = std::max(ws, c.scenario.size());
    wf = std::max(wf, FaultColumn(c).size());
  }
  std::string out =
      absl::StrFormat("%-*s  %-*s  %-6s  %8s  %6s  %s\n", ws, "scenario", wf,
                      "fault", "result", "time", "events", "message");
  for (const auto& c : run.cells) {
    std::string row =
        absl::StrFormat("%-*s  %-*s  %-6s  %7.2fs  %6d  %s", ws, c.scenario, wf,
                        FaultColumn(c), c.passed ? "PASS" : "FAIL", c.seconds,
                        static_cast<int>(c.events.size()),
                        c.passed ? "" : FirstLine(c.message));
    absl::StrAppend(&out, absl::StripTrailingAsciiWhitespace(row), "\n");
  }
  absl::StrAppend(&out, ReplayLines(run));
  absl::StrAppend(&out, run.passed(), " passed, ", run.failed(), " failed\n");
  return out;
}

std::string RenderJUnit(const RunResult& run) {
  double total = 0;
  for (const auto& c : run.cells) total += c.seconds;
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  absl::StrAppendFormat(
      &out, "<testsuites tests=\"%d\" failures=\"%d\" time=\"%.3f\">\n",
      run.cells.size(), run.failed(), total);
  absl::StrAppendFormat(&out,
                        "  <testsuite name=\"%s\" tests=\"%d\" failures=\"%d\" "
                        "errors=\"0\" time=\"%.3f\">\n",
                        cli::MarkupEscape(run.spec), run.cells.size(), run.failed(),
                        total);
  absl::StrAppendFormat(
      &out,
      "    <properties><property name=\"seed\" value=\"%d\"/></properties>\n",
      run.seed);
  for (const auto& c : run.cells) {
    absl::StrAppendFormat(
        &out, "    <testcase classname=\"%s\" name=\"%s\" time=\"%.3f\"",
        cli::MarkupEscape(c.scenario), cli::MarkupEscape(CellLabel(run, c)), c.seconds);
    if (c.passed && c.output.empty()) {
      out += "/>\n";
      continue;
    }
    out += ">\n";
    if (!c.passed) {
      absl::StrAppendFormat(
          &out, "      <failure message=\"%s\">%s</failure>\n",
          cli::MarkupEscape(FirstLine(c.message)), cli::MarkupEscape(c.message));
    }
    if (!c.output.empty()) {
      absl::StrAppendFormat(&out, "      <system-out>%s</system-out>\n",
                            cli::MarkupEscape(c.output));
    }
    out += "    </testcase>\n";
  }
  out += "  </testsuite>\n</testsuites>\n";
  return out;
}

nlohmann::json RenderJson(const RunResult& run) {
  nlohmann::json cells = nlohmann::json::array();
  for (const auto& c : run.cells) {
    cells.push_back({{"name", c.name()},
                     {"scenario", c.scenario},
                     {"fault", c.fault},
                     {"seed", c.seed},
                     {"fault_at_op", c.fault_at_op},
                     {"operation", c.fault_op},
                     {"status", c.passed ? "passed" : "failed"},
                     {"message", c.message},
                     {"seconds", c.seconds},
                     {"policy", c.policy_yaml},
                     {"events", c.events}});
  }
  return {{"spec", run.spec},       {"seed", run.seed},
          {"runs", run.runs},       {"passed", run.passed()},
          {"failed", run.failed()}, {"cells", cells}};
}

std::string RenderMarkdown(const RunResult& run) {
  std::string out = absl::StrCat("# fault test: ", run.spec, "\n\n",
                                 run.passed(), " passed, ", run.failed(),
                                 " failed (seed ", run.seed, ")\n\n");
  out +=
      "| scenario | fault | result | time | fault events "
      "|\n|---|---|---|---|---|\n";
  for (const auto& c : run.cells) {
    std::string ev;
    for (const auto& [k, n] : CountEvents(c.events))
      absl::StrAppend(&ev, ev.empty() ? "" : ", ", k, ": ", n);
    absl::StrAppendFormat(
        &out, "| %s | %s | %s | %.2fs | %s |\n", MdCell(c.scenario),
        MdCell(run.runs > 1
                   ? absl::StrCat(FaultColumn(c), " (seed ", c.seed, ")")
                   : FaultColumn(c)),
        c.passed ? "pass" : "**FAIL**", c.seconds,
        ev.empty() ? "-" : MdCell(ev));
  }
  bool any_failed = false;
  for (const auto& c : run.cells) {
    if (c.passed) continue;
    if (!any_failed) out += "\n## Failures\n";
    any_failed = true;
    absl::StrAppend(&out, "\n### ", CellLabel(run, c), "\n\n```\n",
                    absl::StripTrailingAsciiWhitespace(c.message), "\n```\n");
    if (!c.policy_yaml.empty())
      absl::StrAppend(&out, "\nPolicy:\n\n```yaml\n", c.policy_yaml, "```\n");
  }
  return out;
}

namespace {


// A stable colour per effect, so that a reader learns them across cells.
const char* EffectColour(absl::string_view effect) {
  static constexpr const char* kPalette[] = {"#d62728", "#1f77b4", "#ff7f0e", "#2ca02c",
                                             "#9467bd", "#8c564b", "#e377c2", "#17becf"};
  size_t h = 0;
  for (char c : effect) h = h * 31 + static_cast<unsigned char>(c);
  return kPalette[h % (sizeof(kPalette) / sizeof(kPalette[0]))];
}

std::string JsonText(const nlohmann::json& e, const char* key) {
  if (!e.contains(key)) return "";
  const nlohmann::json& v = e[key];
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// The events of one cell on a time axis, one row per service; each mark
// names its event in a tooltip.
std::string Timeline(const nlohmann::json& events) {
  int64_t first = INT64_MAX, last = INT64_MIN;
  std::vector<std::string> services;
  for (const auto& e : events) {
    if (!e.contains("time_ns") || !e["time_ns"].is_number()) continue;
    int64_t t = e["time_ns"].get<int64_t>();
    first = std::min(first, t);
    last = std::max(last, t);
    std::string svc = JsonText(e, "service");
    if (std::find(services.begin(), services.end(), svc) == services.end())
      services.push_back(svc);
  }
  if (services.empty()) return "";
  constexpr int kLeft = 140, kWidth = 720, kRow = 22;
  const double span = std::max<int64_t>(last - first, 1);
  const int height = static_cast<int>(services.size()) * kRow + 24;
  std::string out = absl::StrFormat(
      "<svg class=\"timeline\" width=\"%d\" height=\"%d\" role=\"img\" "
      "aria-label=\"fault events over time\">\n",
      kLeft + kWidth + 10, height);
  for (size_t i = 0; i < services.size(); ++i) {
    const int y = static_cast<int>(i) * kRow + 14;
    absl::StrAppendFormat(&out,
                          "<text x=\"4\" y=\"%d\">%s</text><line x1=\"%d\" y1=\"%d\" "
                          "x2=\"%d\" y2=\"%d\" stroke=\"#ccc\"/>\n",
                          y + 4, cli::MarkupEscape(services[i].empty() ? "-" : services[i]), kLeft,
                          y, kLeft + kWidth, y);
  }
  for (const auto& e : events) {
    if (!e.contains("time_ns") || !e["time_ns"].is_number()) continue;
    const int64_t t = e["time_ns"].get<int64_t>();
    const std::string svc = JsonText(e, "service");
    const size_t row = std::find(services.begin(), services.end(), svc) - services.begin();
    const double x = kLeft + (t - first) / span * kWidth;
    const int y = static_cast<int>(row) * kRow + 14;
    const std::string effect = JsonText(e, "effect");
    absl::StrAppendFormat(
        &out,
        "<rect class=\"event\" x=\"%.1f\" y=\"%d\" width=\"3\" height=\"12\" "
        "fill=\"%s\"><title>+%.3f s %s %s %s %s</title></rect>\n",
        x - 1.5, y - 6, EffectColour(effect), (t - first) / 1e9,
        cli::MarkupEscape(JsonText(e, "op")), cli::MarkupEscape(effect), cli::MarkupEscape(JsonText(e, "rule")),
        cli::MarkupEscape(JsonText(e, "target")));
  }
  absl::StrAppendFormat(&out,
                        "<text x=\"%d\" y=\"%d\">0 s</text><text x=\"%d\" y=\"%d\" "
                        "text-anchor=\"end\">%.3f s</text>\n</svg>\n",
                        kLeft, height - 2, kLeft + kWidth, height - 2, span / 1e9);
  return out;
}

}  // namespace

std::string RenderHtml(const RunResult& run) {
  std::string out = absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
      "<title>fault test: ", cli::MarkupEscape(run.spec), "</title>\n<style>\n"
      "body{font-family:sans-serif;margin:2em;color:#222}"
      "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;"
      "text-align:left}tr.failed td.result{background:#fdd;font-weight:bold}"
      "tr.passed td.result{background:#dfd}pre{background:#f6f6f6;padding:8px;"
      "overflow:auto}svg.timeline text{font-size:11px}section{margin-top:2em}\n"
      "</style></head><body>\n<h1>fault test: ", cli::MarkupEscape(run.spec), "</h1>\n",
      absl::StrFormat("<p id=\"totals\">%d passed, %d failed (seed %d)</p>\n", run.passed(),
                      run.failed(), run.seed),
      "<table id=\"cells\"><thead><tr><th>scenario</th><th>fault</th><th>result</th>"
      "<th>time</th><th>fault events</th><th>message</th></tr></thead><tbody>\n");
  for (size_t i = 0; i < run.cells.size(); ++i) {
    const CellResult& c = run.cells[i];
    std::string ev;
    for (const auto& [k, n] : CountEvents(c.events))
      absl::StrAppend(&ev, ev.empty() ? "" : ", ", k, ": ", n);
    absl::StrAppendFormat(
        &out,
        "<tr class=\"%s\"><td>%s</td><td>%s</td><td class=\"result\">"
        "<a href=\"#cell-%d\">%s</a></td><td>%.2fs</td><td>%s</td><td>%s</td></tr>\n",
        c.passed ? "passed" : "failed", cli::MarkupEscape(c.scenario), cli::MarkupEscape(c.fault), i,
        c.passed ? "pass" : "FAIL", c.seconds, cli::MarkupEscape(ev.empty() ? "-" : ev),
        cli::MarkupEscape(FirstLine(c.message)));
  }
  out += "</tbody></table>\n";
  for (size_t i = 0; i < run.cells.size(); ++i) {
    const CellResult& c = run.cells[i];
    absl::StrAppendFormat(
        &out, "<section id=\"cell-%d\" class=\"cell %s\"><h2>%s: %s</h2>\n", i,
        c.passed ? "passed" : "failed", cli::MarkupEscape(CellLabel(run, c)),
        c.passed ? "pass" : "FAIL");
    if (!c.passed)
      absl::StrAppend(&out, "<pre class=\"failure\">",
                      cli::MarkupEscape(
                          std::string(absl::StripTrailingAsciiWhitespace(c.message))),
                      "</pre>\n");
    if (std::string t = Timeline(c.events); !t.empty()) {
      absl::StrAppend(&out, "<h3>Fault events (", c.events.size(), ")</h3>\n", t);
    }
    if (!c.policy_yaml.empty())
      absl::StrAppend(&out, "<details><summary>Policy</summary><pre>",
                      cli::MarkupEscape(c.policy_yaml), "</pre></details>\n");
    if (!c.output.empty())
      absl::StrAppend(&out, "<details><summary>Output</summary><pre>", cli::MarkupEscape(c.output),
                      "</pre></details>\n");
    out += "</section>\n";
  }
  out += "</body></html>\n";
  return out;
}

}  // namespace fault::spec
