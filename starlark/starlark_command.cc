// `fault starlark FILE.star`: runs a Starlark file; without FILE and with a
// terminal on stdin, a read-eval-print loop.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "starlark/lib/lib.h"
#include "starlark/starlark.h"
#include "supervisor/cli/commands.h"
#include "supervisor/cli/input_file.h"

namespace fault::cli {
namespace {

namespace sl = ::fault::starlark;

struct StarlarkOptions {
  std::string file;
  bool allow_while = false;
  bool allow_recursion = false;
  bool allow_toplevel_control = false;
  bool allow_global_reassign = false;
  uint64_t max_steps = 0;
};

// The library modules json, math and time, in every file and the REPL.
sl::StringDict Predeclared() {
  sl::StringDict p;
  sl::AddLibraryModules(&p);
  return p;
}

void ConfigureThread(sl::Thread& th, const StarlarkOptions& o) {
  th.dialect.allow_while = o.allow_while;
  th.dialect.allow_recursion = o.allow_recursion;
  th.dialect.allow_toplevel_control = o.allow_toplevel_control;
  th.dialect.allow_global_reassign = o.allow_global_reassign;
  th.max_steps = o.max_steps;
  if (o.allow_recursion) th.max_call_depth = 1000;
  th.print = [](sl::Thread&, const std::string& s) {
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  };
}

int RunFile(const StarlarkOptions& o) {
  absl::StatusOr<std::string> text = fault::cli::ReadInputFile(
      o.file, fault::cli::kMaxScriptBytes, "Starlark scripts");
  if (!text.ok()) {
    std::fprintf(stderr, "fault starlark: %s\n",
                 std::string(text.status().message()).c_str());
    return 1;
  }
  sl::Thread th;
  ConfigureThread(th, o);
  std::string dir = o.file.substr(0, o.file.find_last_of('/') + 1);
  th.load = [dir, &o](
                sl::Thread& parent,
                const std::string& module) -> absl::StatusOr<sl::StringDict> {
    std::string path =
        module.empty() || module[0] == '/' ? module : dir + module;
    absl::StatusOr<std::string> s = fault::cli::ReadInputFile(
        path, fault::cli::kMaxScriptBytes, "Starlark scripts");
    if (!s.ok()) return s.status();
    sl::Thread child;
    ConfigureThread(child, o);
    child.load = parent.load;
    return sl::ExecFile(child, path, *s, Predeclared());
  };
  auto r = sl::ExecFile(th, o.file, *text, Predeclared());
  int rc = 0;
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", std::string(r.status().message()).c_str());
    rc = 1;
  }
  return rc;
}

int RunRepl(const StarlarkOptions& o) {
  StarlarkOptions ro = o;
  ro.allow_global_reassign = true;
  ro.allow_toplevel_control = true;
  sl::Thread th;
  ConfigureThread(th, ro);
  sl::StringDict env = Predeclared();
  std::string line, chunk;
  int n = 0;
  for (;;) {
    std::fputs(chunk.empty() ? ">>> " : "... ", stdout);
    std::fflush(stdout);
    if (!std::getline(std::cin, line)) break;
    if (!chunk.empty() || line.find(':') == line.size() - 1 ||
        (!line.empty() && line.back() == ':')) {
      chunk += line + "\n";
      if (!line.empty()) continue;
    } else {
      chunk = line + "\n";
    }
    std::string src = chunk;
    chunk.clear();
    // Echo the value of a lone expression, like Python's REPL.
    std::string name = "<stdin:" + std::to_string(++n) + ">";
    sl::StringDict pre = env;
    auto try_expr =
        sl::ExecFile(th, name, "__repl_value__ = (" + src + ")\n", pre);
    if (try_expr.ok()) {
      for (auto& [k, v] : *try_expr) {
        if (k == "__repl_value__") {
          if (!v.IsNone()) std::printf("%s\n", sl::Repr(v).c_str());
        } else {
          env[k] = v;
        }
      }
      continue;
    }
    auto r = sl::ExecFile(th, name, src, pre);
    if (!r.ok()) {
      std::fprintf(stderr, "%s\n", std::string(r.status().message()).c_str());
      continue;
    }
    for (auto& [k, v] : *r) env[k] = v;
  }
  std::fputs("\n", stdout);
  return 0;
}

}  // namespace

void RegisterStarlarkCommand(CLI::App& app) {
  auto opts = std::make_shared<StarlarkOptions>();
  CLI::App* cmd = app.add_subcommand(
      "starlark", "Run a Starlark file, or a REPL when stdin is a terminal");
  cmd->add_option("file", opts->file, "Starlark file to run");
  cmd->add_flag("--allow-while", opts->allow_while, "Allow while loops");
  cmd->add_flag("--allow-recursion", opts->allow_recursion,
                "Allow recursive calls");
  cmd->add_flag("--allow-toplevel-control", opts->allow_toplevel_control,
                "Allow if/for/while at the top level of a file");
  cmd->add_flag("--allow-global-reassign", opts->allow_global_reassign,
                "Allow assigning a global more than once");
  cmd->add_option("--max-steps", opts->max_steps,
                  "Abort after this many execution steps (0: no limit)");
  cmd->callback([opts]() {
    if (opts->file.empty()) {
      if (!isatty(STDIN_FILENO)) {
        std::fprintf(
            stderr,
            "fault starlark: no FILE given and stdin is not a terminal\n");
        ExitStatus() = 2;
        return;
      }
      ExitStatus() = RunRepl(*opts);
      return;
    }
    ExitStatus() = RunFile(*opts);
  });
}

}  // namespace fault::cli
