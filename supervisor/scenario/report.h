// The reports of a scenario run:
// - Markdown (`-r`), laid out as the Rust tool's report.md, plus each
//   item's fault timeline, reliability controls and why it failed;
// - results (`--result`), JSON (or YAML by the file's extension) with the
//   Rust tool's structure, plus ours under "fault" keys;
// - JUnit XML (`--junit`): a testsuite per scenario, a testcase per item;
// - HTML (`--html`): one self-contained page (inline CSS and SVG, no
//   script, nothing fetched) with, per item, latency over time with the
//   fault windows shaded, percentile bars and the error rate over time.
//
// Thread-compatible; pure functions of a RunSummary.
#ifndef FAULT_SUPERVISOR_SCENARIO_REPORT_H_
#define FAULT_SUPERVISOR_SCENARIO_REPORT_H_

#include <string>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "supervisor/scenario/runner.h"

namespace fault::scenario {

std::string MarkdownReport(const RunSummary& s);
nlohmann::json ResultsJson(const RunSummary& s);
std::string JunitReport(const RunSummary& s);
std::string HtmlReport(const RunSummary& s);

// Writes `text` to `path` whole or not at all (a temporary file renamed).
absl::Status WriteFileAtomically(const std::string& path, const std::string& text);

// ResultsJson as YAML (for a --result path ending in .yaml or .yml).
std::string JsonToYaml(const nlohmann::json& j);

}  // namespace fault::scenario

#endif  // FAULT_SUPERVISOR_SCENARIO_REPORT_H_
