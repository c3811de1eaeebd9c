// Results of a `fault test` run and their renderings: the summary table,
// JUnit XML, JSON (with every fault event of every cell), Markdown and HTML.
//
// Thread safety: plain values and pure functions.
#ifndef FAULT_SUPERVISOR_SPEC_REPORT_H_
#define FAULT_SUPERVISOR_SPEC_REPORT_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace fault::spec {

struct CellResult {
  std::string scenario;
  std::string fault;  // "none" for the baseline
  bool passed = false;
  std::string message;  // why it failed ("" when it passed)
  double seconds = 0;
  std::string policy_yaml;  // the cell's policy as a policy file ("" for none)
  nlohmann::json events = nlohmann::json::array();  // each with "service"
  std::string output;  // print() of the scenario and service logs
  uint64_t seed = 0;   // of every fault decision in the cell
  // The fault went on before the scenario's operation number fault_at_op
  // (1-based; 0: when run() started) of `operations` in all, fault_op
  // (http.post, ...) (fault test --explore-timing, --fault-at-op).
  int fault_at_op = 0;
  int operations = 0;
  std::string fault_op;
  std::string name() const { return scenario + "/" + fault; }
};

struct RunResult {
  std::string spec;
  uint64_t seed = 0;  // of the first run
  int runs = 1;       // every cell ran this often, run r with seed + r
  // Every cell of every run, run by run in matrix order.
  std::vector<CellResult> cells;
  // Why the cells ran one at a time although --jobs asked for more.
  std::string sequential_because;
  // The command that runs the spec again, without --filter and --seed
  // ("fault test spec.star --var k=v"): the summary gives each failed cell
  // its replay command, this with --filter CELL --seed SEED. "": none.
  std::string replay_command;
  int passed() const;
  int failed() const;
};

// The table printed at the end; its last line is "N passed, N failed".
std::string RenderSummary(const RunResult& run);
std::string RenderJUnit(const RunResult& run);
nlohmann::json RenderJson(const RunResult& run);
std::string RenderMarkdown(const RunResult& run);
// One self-contained page (no script, no network): the cell table, and for
// each cell its failure, a timeline of its fault events by service (inline
// SVG), its policy and its output.
std::string RenderHtml(const RunResult& run);

// Fault events of a cell counted by "effect op" ("deny write: 3"), most
// frequent first.
std::vector<std::pair<std::string, int>> CountEvents(
    const nlohmann::json& events);

}  // namespace fault::spec

#endif  // FAULT_SUPERVISOR_SPEC_REPORT_H_
