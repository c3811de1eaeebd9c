// `fault test SPEC.star`: runs the fault matrix of a spec and reports.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "supervisor/cli/commands.h"
#include "supervisor/cli/input_file.h"
#include "supervisor/policy/units.h"
#include "supervisor/spec/mock.h"
#include "supervisor/spec/report.h"
#include "supervisor/spec/runner.h"
#include "supervisor/spec/spec.h"

namespace fault::cli {
namespace {

struct TestFlags {
  std::string spec;
  std::string filter;
  std::string junit, json, report, html;
  uint64_t seed = 1;
  std::string cell_timeout = "30s";
  std::string runs = "1", jobs = "1", fault_at_op;
  bool explore_timing = false;
  bool keep = false;
  std::vector<std::string> vars;
};

// A Starlark error is a traceback whose last line reads
// "Error in fn: FILE:LINE:COL: why" for errors raised by spec builtins.
// Print "FILE:LINE:COL: fn: why" first, so the position leads.
std::string FormatSpecError(absl::string_view msg) {
  std::vector<absl::string_view> lines =
      absl::StrSplit(msg, '\n', absl::SkipEmpty());
  if (lines.empty()) return "";
  // The innermost Starlark frame: "  FILE:LINE:COL: in FUNCTION".
  std::string where;
  int frames = 0;
  for (absl::string_view l : lines) {
    if (!absl::StartsWith(l, "  ")) continue;
    ++frames;
    size_t in = l.rfind(": in ");
    if (in != absl::string_view::npos) where = std::string(l.substr(2, in - 2));
  }
  absl::string_view last = lines.back();
  std::string head;
  if (absl::ConsumePrefix(&last, "Error in ")) {
    size_t colon = last.find(": ");
    absl::string_view fn = last.substr(0, colon);
    absl::string_view rest =
        colon == absl::string_view::npos ? "" : last.substr(colon + 2);
    // rest starts with a position when a spec builtin raised it.
    std::vector<absl::string_view> parts =
        absl::StrSplit(rest, absl::MaxSplits(": ", 1));
    if (parts.size() == 2 &&
        std::count(parts[0].begin(), parts[0].end(), ':') == 2) {
      head = absl::StrCat(parts[0], ": ", fn, ": ", parts[1]);
    } else {
      // Builtins often name themselves too ("sleep: only available ...").
      absl::ConsumePrefix(&rest, absl::StrCat(fn, ": "));
      head = absl::StrCat(where, where.empty() ? "" : ": ", fn, ": ", rest);
    }
  } else if (absl::ConsumePrefix(&last, "Error: ")) {
    head = absl::StrCat(where, where.empty() ? "" : ": ", last);
  }
  if (head.empty() || lines.size() == 1) return std::string(msg);
  // A backtrace adds nothing when the error is in top-level code.
  if (frames <= 1) return head;
  return absl::StrCat(head, "\n", msg);
}

bool WriteAtomically(const std::string& path, const std::string& text) {
  std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f.write(text.data(), text.size())) return false;
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    unlink(tmp.c_str());
    return false;
  }
  return true;
}

// A whole number in [lo, hi], or nothing.
std::optional<int> NumberIn(const std::string& s, int lo, int hi) {
  if (s.empty() || s.size() > 9 ||
      s.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  int n = std::stoi(s);
  if (n < lo || n > hi) return std::nullopt;
  return n;
}

// A word of a command line as a POSIX shell reads it back.
std::string ShellWord(const std::string& w) {
  bool plain = !w.empty();
  for (char c : w)
    plain &= absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
             absl::StrContains("-_./=:,+@%", c);
  if (plain) return w;
  return absl::StrCat("'", absl::StrReplaceAll(w, {{"'", "'\\''"}}), "'");
}

int RunTest(const TestFlags& f) {
  constexpr int kMaxRuns = 10000, kMaxJobs = 64;
  std::optional<int> runs = NumberIn(f.runs, 1, kMaxRuns);
  if (!runs) {
    fprintf(stderr, "fault test: --runs: \"%s\" is not a number from 1 to %d\n",
            f.runs.c_str(), kMaxRuns);
    return 2;
  }
  if (f.seed > std::numeric_limits<uint64_t>::max() - (*runs - 1)) {
    fprintf(stderr,
            "fault test: --seed %llu with --runs %d: the seeds of the runs "
            "(seed to seed + runs - 1) would pass 2^64 - 1\n",
            static_cast<unsigned long long>(f.seed), *runs);
    return 2;
  }
  std::optional<int> at_op;
  if (!f.fault_at_op.empty()) {
    at_op = NumberIn(f.fault_at_op, 1, 1000000);
    if (!at_op) {
      fprintf(stderr,
              "fault test: --fault-at-op: \"%s\" is not a number from 1 to "
              "1000000 (the scenario's operations count from 1)\n",
              f.fault_at_op.c_str());
      return 2;
    }
    if (f.explore_timing) {
      fprintf(stderr,
              "fault test: --fault-at-op and --explore-timing: give one "
              "(--explore-timing tries every operation)\n");
      return 2;
    }
  }
  std::optional<int> jobs = NumberIn(f.jobs, 1, kMaxJobs);
  if (!jobs) {
    fprintf(stderr, "fault test: --jobs: \"%s\" is not a number from 1 to %d\n",
            f.jobs.c_str(), kMaxJobs);
    return 2;
  }
  absl::StatusOr<int64_t> timeout =
      fault::policy::ParseDuration(f.cell_timeout);
  if (!timeout.ok() || *timeout <= 0) {
    fprintf(
        stderr,
        "fault test: --cell-timeout: \"%s\" is not a positive duration%s%s\n",
        f.cell_timeout.c_str(), timeout.ok() ? "" : ": ",
        timeout.ok() ? "" : std::string(timeout.status().message()).c_str());
    return 2;
  }
  absl::StatusOr<std::string> spec_text = fault::cli::ReadInputFile(
      f.spec, fault::cli::kMaxScriptBytes, "spec files");
  if (!spec_text.ok()) {
    fprintf(stderr, "fault test: %s\n",
            std::string(spec_text.status().message()).c_str());
    return 2;
  }
  std::vector<std::pair<std::string, std::string>> vars;
  for (const std::string& v : f.vars) {
    size_t eq = v.find('=');
    if (eq == std::string::npos || eq == 0) {
      fprintf(stderr, "fault test: --var %s: want KEY=VALUE\n", v.c_str());
      return 2;
    }
    vars.emplace_back(v.substr(0, eq), v.substr(eq + 1));
  }
  absl::StatusOr<std::unique_ptr<fault::spec::Spec>> spec =
      fault::spec::LoadSpec(f.spec, *spec_text, vars);
  if (!spec.ok()) {
    fprintf(stderr, "%s\nfault test: %s: spec error, nothing was run\n",
            FormatSpecError(spec.status().message()).c_str(), f.spec.c_str());
    return 2;
  }
  fault::spec::RunOptions o;
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  o.fault_binary = n > 0 ? std::string(self, n) : "/proc/self/exe";
  o.filter = f.filter;
  o.seed = f.seed;
  o.runs = *runs;
  o.jobs = *jobs;
  o.explore_timing = f.explore_timing;
  o.fault_at_op = at_op.value_or(0);
  o.cell_timeout = absl::Nanoseconds(*timeout);
  o.keep_dirs = f.keep;
  if (isatty(STDERR_FILENO)) {
    o.on_start = [](int i, int total, const std::string& name) {
      fprintf(stderr, "\r\033[K[%d/%d] %s ...", i + 1, total, name.c_str());
    };
    o.on_done = [runs = *runs](int i, int total,
                               const fault::spec::CellResult& r) {
      std::string name = r.name();
      if (runs > 1) absl::StrAppend(&name, " (seed ", r.seed, ")");
      fprintf(stderr, "\r\033[K[%d/%d] %s %s (%.2fs)\n", i + 1, total,
              name.c_str(), r.passed ? "PASS" : "FAIL", r.seconds);
    };
  }
  fault::spec::RunResult run = fault::spec::RunSpec(**spec, o);
  if (run.cells.empty()) {
    fprintf(stderr, "fault test: --filter %s matches no cell\n",
            f.filter.c_str());
    return 2;
  }
  if (!run.sequential_because.empty())
    fprintf(stderr, "fault test: --jobs %d: the cells ran one at a time: %s\n",
            *jobs, run.sequential_because.c_str());
  // What runs one failed cell again: the same binary, spec, variables and
  // cell timeout; the summary adds --filter and --seed.
  run.replay_command =
      absl::StrCat(ShellWord(o.fault_binary), " test ", ShellWord(f.spec));
  for (const std::string& v : f.vars)
    absl::StrAppend(&run.replay_command, " --var ", ShellWord(v));
  if (f.cell_timeout != "30s")
    absl::StrAppend(&run.replay_command, " --cell-timeout ",
                    ShellWord(f.cell_timeout));
  fputs(fault::spec::RenderSummary(run).c_str(), stdout);
  fflush(stdout);
  int status = run.failed() > 0 ? 1 : 0;
  auto write = [&](const std::string& path, const std::string& text,
                   const char* flag) {
    if (path.empty()) return;
    if (!WriteAtomically(path, text)) {
      fprintf(stderr, "fault test: %s %s: cannot write: %s\n", flag,
              path.c_str(), strerror(errno));
      status = status == 0 ? 2 : status;
    }
  };
  write(f.junit, fault::spec::RenderJUnit(run), "--junit");
  // Service output may hold bytes that are not UTF-8: replace them.
  write(f.json,
        fault::spec::RenderJson(run).dump(
            2, ' ', false, nlohmann::json::error_handler_t::replace) +
            "\n",
        "--json");
  write(f.report, fault::spec::RenderMarkdown(run), "--report");
  write(f.html, fault::spec::RenderHtml(run), "--html");
  return status;
}

// `fault mock FILE PORT`: the server of a spec's mock_service (mock.h).
struct MockFlags {
  std::string config;
  int port = 0;
};

int RunMock(const MockFlags& f) {
  absl::StatusOr<std::string> text = fault::cli::ReadInputFile(
      f.config, fault::cli::kMaxScriptBytes, "mock configurations");
  if (!text.ok()) {
    fprintf(stderr, "fault mock: %s\n",
            std::string(text.status().message()).c_str());
    return 2;
  }
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  absl::StatusOr<fault::spec::MockConfig> config =
      j.is_discarded() ? absl::InvalidArgumentError("not JSON")
                       : fault::spec::MockConfigFromJson(j);
  if (!config.ok()) {
    fprintf(stderr, "fault mock: %s: %s\n", f.config.c_str(),
            std::string(config.status().message()).c_str());
    return 2;
  }
  std::string error = fault::spec::ServeMock(*config, f.port);
  fprintf(stderr, "fault mock: %s\n", error.c_str());
  return 1;
}

// `fault mock` is registered with `fault test`: main.cc registers every
// command when the first argument names none of its list, as "mock" does.
void RegisterMockCommand(CLI::App& app) {
  auto flags = std::make_shared<MockFlags>();
  CLI::App* cmd = app.add_subcommand(
      "mock",
      "Serve canned HTTP or TCP replies on 127.0.0.1:PORT from a JSON file "
      "(the mock services of `fault test` specs, docs/spec.md)");
  cmd->add_option("config", flags->config, "The replies (JSON)")->required();
  cmd->add_option("port", flags->port, "The port")
      ->required()
      ->check(CLI::Range(0, 65535));
  cmd->callback([flags] { ExitStatus() = RunMock(*flags); });
}

}  // namespace

void RegisterTestCommand(CLI::App& app) {
  auto flags = std::make_shared<TestFlags>();
  CLI::App* cmd =
      app.add_subcommand("test",
                         "Run the fault matrix of a Starlark spec: every "
                         "(scenario, fault) cell with fresh services "
                         "under `fault exec` (docs/spec.md)");
  cmd->add_option("spec", flags->spec, "The spec file (.star)")->required();
  cmd->add_option("--filter", flags->filter,
                  "Run only cells whose \"scenario/fault\" matches this glob");
  cmd->add_option("--junit", flags->junit, "Write JUnit XML here");
  cmd->add_option("--json", flags->json,
                  "Write JSON (every cell and its fault events) here");
  cmd->add_option("--report", flags->report, "Write a Markdown report here");
  cmd->add_option("--html", flags->html,
                  "Write an HTML report here (one page, no script: the cells, each "
                  "cell's failure and a timeline of its fault events)");
  cmd->add_option("--seed", flags->seed,
                  "Seed of every fault decision (default 1)");
  cmd->add_option("--runs", flags->runs,
                  "Run every cell N times, run r with the seed --seed + r; the "
                  "summary shows which cells are flaky (default 1)");
  cmd->add_option("--jobs", flags->jobs,
                  "Run up to N cells at the same time, each with its own "
                  "services and ports (default 1)");
  cmd->add_flag("--explore-timing", flags->explore_timing,
                "For every cell whose fault goes on when the scenario starts: "
                "count the scenario's operations (exec, http.*, tcp.connect) "
                "in a run without the fault, then run the cell once per "
                "operation with the fault going on right before it");
  cmd->add_option("--fault-at-op", flags->fault_at_op,
                  "The cells' faults go on right before the scenario's "
                  "operation N (from 1), not when it starts (the replay of "
                  "one position of --explore-timing)");
  cmd->add_option(
      "--cell-timeout", flags->cell_timeout,
      "Bound of one cell: start, readiness and scenario (default 30s)");
  cmd->add_option(
      "--var", flags->vars,
      "KEY=VALUE, available to the spec as vars[\"KEY\"] (repeatable)");
  cmd->add_flag("--keep", flags->keep,
                "Keep the cells' directories (service logs, data, events)");
  cmd->callback([flags] { ExitStatus() = RunTest(*flags); });
  RegisterMockCommand(app);
}

}  // namespace fault::cli
