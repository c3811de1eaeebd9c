// `fault scenario run|validate|generate`: scenario files (scenario.h) run
// through the in-process fault proxy (runner.h), with their reports
// (report.h); OpenAPI templates (generate.h).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "supervisor/cli/commands.h"
#include "supervisor/cli/input_file.h"
#include "supervisor/scenario/curl_api.h"
#include "supervisor/scenario/generate.h"
#include "supervisor/scenario/report.h"
#include "supervisor/scenario/runner.h"
#include "supervisor/scenario/scenario.h"

namespace fault::cli {
namespace {

constexpr int kExitFailed = 1;         // an item failed an expectation, an SLO or a budget
constexpr int kExitUsage = 2;          // bad flags or scenario files; nothing ran
constexpr int kExitTool = 125;         // libcurl missing, a report could not be written
constexpr int kExitInterrupted = 130;  // SIGINT or SIGTERM: the reports hold what ran

std::atomic<bool> g_interrupted{false};
extern "C" void OnStopSignal(int) { g_interrupted.store(true); }

struct ScenarioFlags {
  std::string scenario, report, result, html, junit, seed, jobs;
  bool no_progress = false;
  std::string spec_file, spec_url;
};

std::string FromEnv(const std::string& value, const char* var, const char* fallback) {
  if (!value.empty()) return value;
  const char* v = std::getenv(var);
  if (v != nullptr && *v != '\0') return v;
  return fallback;
}

int Run(const ScenarioFlags& f) {
  const std::string path = FromEnv(f.scenario, "FAULT_SCENARIO_PATH", "");
  const std::string report = FromEnv(f.report, "FAULT_SCENARIO_REPORT_PATH", "report.md");
  const std::string result = FromEnv(f.result, "FAULT_SCENARIO_RESULTS_PATH", "results.json");
  if (path.empty()) {
    std::cerr
        << "fault scenario run: -s/--scenario FILE|DIR is required (or FAULT_SCENARIO_PATH)\n";
    return kExitUsage;
  }
  const std::string ext = absl::AsciiStrToLower(std::filesystem::path(result).extension().string());
  if (ext != ".json" && ext != ".yaml" && ext != ".yml") {
    std::cerr << "fault scenario run: --result " << result
              << ": the results are written as .json, .yaml or .yml; name the file so\n";
    return kExitUsage;
  }
  std::optional<uint64_t> seed;
  if (!f.seed.empty()) {
    uint64_t v;
    if (!absl::SimpleAtoi(f.seed, &v)) {
      std::cerr << "fault scenario run: --seed: \"" << f.seed << "\" is not a whole number\n";
      return kExitUsage;
    }
    seed = v;
  }
  size_t jobs = 1;
  if (!f.jobs.empty() && (!absl::SimpleAtoi(f.jobs, &jobs) || jobs < 1 || jobs > 64)) {
    std::cerr << "fault scenario run: --jobs: \"" << f.jobs << "\" is not a number from 1 to 64\n";
    return kExitUsage;
  }
  absl::StatusOr<std::vector<fault::scenario::Scenario>> scenarios =
      fault::scenario::LoadScenarios(path);
  if (!scenarios.ok()) {
    std::cerr << scenarios.status().message() << "\n";
    return kExitUsage;
  }
  absl::StatusOr<const fault::scenario::CurlApi*> curl = fault::scenario::LoadCurl();
  if (!curl.ok()) {
    std::cerr << "fault scenario run: " << curl.status().message() << "\n";
    return kExitTool;
  }
  fault::scenario::RunOptions o;
  o.seed = seed;
  o.progress = !f.no_progress && isatty(STDOUT_FILENO) == 1;
  o.out = &std::cout;
  o.interrupted = &g_interrupted;
  o.jobs = jobs;
  struct sigaction sa = {};
  sa.sa_handler = OnStopSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  fault::scenario::RunSummary summary = fault::scenario::RunScenarios(*scenarios, o, **curl);
  std::cout << absl::StrFormat("Tests run: %d, Tests failed: %d\nTotal time: %.1fs\n",
                               summary.items.size(), summary.failed,
                               (summary.end_unix_ns - summary.start_unix_ns) / 1e9);
  int status = summary.interrupted ? kExitInterrupted : summary.failed == 0 ? 0 : kExitFailed;
  if (summary.interrupted) std::cout << "Interrupted: the reports hold the items that ran\n";
  auto write = [&](const std::string& p, const std::string& text, const char* what) {
    absl::Status s = fault::scenario::WriteFileAtomically(p, text);
    if (!s.ok()) {
      std::cerr << "fault scenario run: writing the " << what << ": " << s.message() << "\n";
      status = kExitTool;
    } else {
      std::cout << what << ": " << p << "\n";
    }
  };
  write(report, fault::scenario::MarkdownReport(summary), "Report");
  const nlohmann::json results = fault::scenario::ResultsJson(summary);
  write(result, ext == ".json" ? results.dump(2) + "\n" : fault::scenario::JsonToYaml(results),
        "Results");
  if (!f.html.empty()) write(f.html, fault::scenario::HtmlReport(summary), "HTML report");
  if (!f.junit.empty()) write(f.junit, fault::scenario::JunitReport(summary), "JUnit report");
  return status;
}

int Validate(const ScenarioFlags& f) {
  const std::string path = FromEnv(f.scenario, "FAULT_SCENARIO_PATH", "");
  if (path.empty()) {
    std::cerr << "fault scenario validate: -s/--scenario FILE|DIR is required\n";
    return kExitUsage;
  }
  absl::StatusOr<std::vector<fault::scenario::Scenario>> scenarios =
      fault::scenario::LoadScenarios(path);
  if (!scenarios.ok()) {
    std::cerr << scenarios.status().message() << "\n";
    return kExitUsage;
  }
  size_t items = 0;
  for (const auto& s : *scenarios) items += s.items.size();
  std::cout << path << ": " << scenarios->size() << " scenarios, " << items << " items: OK\n";
  return 0;
}

int Generate(const ScenarioFlags& f) {
  if (!f.spec_url.empty()) {
    std::cerr << "fault scenario generate: --spec-url: not supported (fault fetches nothing); "
                 "download the document and give it as --spec-file\n";
    return kExitUsage;
  }
  if (f.spec_file.empty() || f.scenario.empty()) {
    std::cerr << "fault scenario generate: needs --spec-file FILE and --scenario DIR|FILE.yaml\n";
    return kExitUsage;
  }
  absl::StatusOr<std::string> text =
      fault::cli::ReadInputFile(f.spec_file, fault::cli::kMaxScriptBytes, "OpenAPI documents");
  if (!text.ok()) {
    std::cerr << "fault scenario generate: " << text.status().message() << "\n";
    return kExitUsage;
  }
  absl::StatusOr<std::vector<fault::scenario::GeneratedFile>> files =
      fault::scenario::GenerateScenarios(*text, f.spec_file);
  if (!files.ok()) {
    std::cerr << "fault scenario generate: " << files.status().message() << "\n";
    return kExitUsage;
  }
  const bool one_file = absl::EndsWith(f.scenario, ".yaml") || absl::EndsWith(f.scenario, ".yml");
  if (one_file) {
    std::string all;
    for (const auto& g : *files) all += (all.empty() ? "" : "---\n") + g.text;
    absl::Status s = fault::scenario::WriteFileAtomically(f.scenario, all);
    if (!s.ok()) {
      std::cerr << "fault scenario generate: " << s.message() << "\n";
      return kExitTool;
    }
  } else {
    std::error_code ec;
    std::filesystem::create_directories(f.scenario, ec);
    if (ec) {
      std::cerr << "fault scenario generate: " << f.scenario << ": " << ec.message() << "\n";
      return kExitTool;
    }
    for (const auto& g : *files) {
      absl::Status s = fault::scenario::WriteFileAtomically(
          (std::filesystem::path(f.scenario) / g.name).string(), g.text);
      if (!s.ok()) {
        std::cerr << "fault scenario generate: " << s.message() << "\n";
        return kExitTool;
      }
    }
  }
  std::cout << "fault scenario generate: " << files->size() << " endpoints, " << files->size() * 8
            << " scenarios in " << f.scenario << "\n";
  return 0;
}

}  // namespace

void RegisterScenarioCommand(CLI::App& app) {
  auto flags = std::make_shared<ScenarioFlags>();
  CLI::App* sc = app.add_subcommand(
      "scenario",
      "Run scenario files: HTTP calls through the fault proxy under faults, with "
      "strategies, expectations, SLOs and reports");
  sc->require_subcommand(1);
  CLI::App* run = sc->add_subcommand("run", "Run the scenarios of a file or directory");
  run->add_option("-s,--scenario", flags->scenario,
                  "Scenario file or directory (FAULT_SCENARIO_PATH)");
  run->add_option("-r,--report", flags->report,
                  "Markdown report (default report.md; FAULT_SCENARIO_REPORT_PATH)");
  run->add_option("--result", flags->result,
                  "Results, .json or .yaml (default results.json; FAULT_SCENARIO_RESULTS_PATH)");
  run->add_option("--html", flags->html, "Also a self-contained HTML report with plots");
  run->add_option("--junit", flags->junit, "Also a JUnit XML report");
  run->add_option("--seed", flags->seed,
                  "Seed of the fault decisions (default: random, in the results)");
  run->add_option("--jobs", flags->jobs,
                  "Items run at a time, each with its own proxy (default 1: timings then meet "
                  "no other load)");
  run->add_flag("--no-progress", flags->no_progress, "No live progress line on a terminal");
  run->callback([flags] { ExitStatus() = Run(*flags); });
  CLI::App* validate = sc->add_subcommand("validate", "Check scenario files without running them");
  validate->add_option("-s,--scenario,path", flags->scenario, "Scenario file or directory");
  validate->callback([flags] { ExitStatus() = Validate(*flags); });
  CLI::App* gen = sc->add_subcommand(
      "generate", "Scenario templates for every endpoint of an OpenAPI document");
  gen->add_option("-s,--scenario", flags->scenario, "Output directory, or one .yaml file");
  gen->add_option("--spec-file", flags->spec_file, "OpenAPI 3.0/3.1 document (YAML or JSON)");
  gen->add_option("--spec-url", flags->spec_url, "Not supported: download the document first");
  gen->callback([flags] { ExitStatus() = Generate(*flags); });
}

}  // namespace fault::cli
