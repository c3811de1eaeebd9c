#include "supervisor/spec/report.h"

#include <algorithm>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"

namespace fault::spec {
namespace {

std::string XmlEscape(absl::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // XML 1.0 forbids most control characters even escaped.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t' &&
            c != '\r') {
          out += '?';
        } else {
          out += c;
        }
    }
  }
  return out;
}

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

std::string RenderSummary(const RunResult& run) {
  size_t ws = 8, wf = 5;
  for (const auto& c : run.cells) {
    ws = std::max(ws, c.scenario.size());
    wf = std::max(wf, c.fault.size());
  }
  std::string out =
      absl::StrFormat("%-*s  %-*s  %-6s  %8s  %6s  %s\n", ws, "scenario", wf,
                      "fault", "result", "time", "events", "message");
  for (const auto& c : run.cells) {
    std::string row =
        absl::StrFormat("%-*s  %-*s  %-6s  %7.2fs  %6d  %s", ws, c.scenario, wf,
                        c.fault, c.passed ? "PASS" : "FAIL", c.seconds,
                        static_cast<int>(c.events.size()),
                        c.passed ? "" : FirstLine(c.message));
    absl::StrAppend(&out, absl::StripTrailingAsciiWhitespace(row), "\n");
  }
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
                        XmlEscape(run.spec), run.cells.size(), run.failed(),
                        total);
  absl::StrAppendFormat(
      &out,
      "    <properties><property name=\"seed\" value=\"%d\"/></properties>\n",
      run.seed);
  for (const auto& c : run.cells) {
    absl::StrAppendFormat(
        &out, "    <testcase classname=\"%s\" name=\"%s\" time=\"%.3f\"",
        XmlEscape(c.scenario), XmlEscape(c.name()), c.seconds);
    if (c.passed && c.output.empty()) {
      out += "/>\n";
      continue;
    }
    out += ">\n";
    if (!c.passed) {
      absl::StrAppendFormat(
          &out, "      <failure message=\"%s\">%s</failure>\n",
          XmlEscape(FirstLine(c.message)), XmlEscape(c.message));
    }
    if (!c.output.empty()) {
      absl::StrAppendFormat(&out, "      <system-out>%s</system-out>\n",
                            XmlEscape(c.output));
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
                     {"status", c.passed ? "passed" : "failed"},
                     {"message", c.message},
                     {"seconds", c.seconds},
                     {"policy", c.policy_yaml},
                     {"events", c.events}});
  }
  return {{"spec", run.spec},
          {"seed", run.seed},
          {"passed", run.passed()},
          {"failed", run.failed()},
          {"cells", cells}};
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
    absl::StrAppendFormat(&out, "| %s | %s | %s | %.2fs | %s |\n",
                          MdCell(c.scenario), MdCell(c.fault),
                          c.passed ? "pass" : "**FAIL**", c.seconds,
                          ev.empty() ? "-" : MdCell(ev));
  }
  bool any_failed = false;
  for (const auto& c : run.cells) {
    if (c.passed) continue;
    if (!any_failed) out += "\n## Failures\n";
    any_failed = true;
    absl::StrAppend(&out, "\n### ", c.name(), "\n\n```\n",
                    absl::StripTrailingAsciiWhitespace(c.message), "\n```\n");
    if (!c.policy_yaml.empty())
      absl::StrAppend(&out, "\nPolicy:\n\n```yaml\n", c.policy_yaml, "```\n");
  }
  return out;
}

}  // namespace fault::spec
