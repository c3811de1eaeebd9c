// fault: run a program under controlled, reproducible faults.
#include <cstdio>
#include <string>
#include <string_view>

#include "supervisor/cli/commands.h"
#include "supervisor/cli/version.h"

namespace fault::cli {
int& ExitStatus() {
  static int status = 0;
  return status;
}
}  // namespace fault::cli

int main(int argc, char** argv) {
  CLI::App app{
      "fault runs a program under controlled, reproducible network, DNS and "
      "disk faults, without changing the program.\n\n"
      "  fault exec --policy slow_link.yaml -- ./app\n"
      "  fault exec --latency 200ms --packet-loss 1% -- curl http://localhost:8080/\n"
      "  fault run --with-latency --latency-mean 300 --upstream '*'   (then curl -x "
      "http://127.0.0.1:3180 ...)\n"
      "  fault policy validate policies.yaml\n"
      "  fault doctor",
      "fault"};
  app.set_version_flag("--version", std::string("fault ") + FAULT_VERSION_STRING);
  app.require_subcommand(1);
  app.fallthrough(false);

  // Registering a subcommand's options costs time (CLI11 checks each new
  // name against the others), and `fault exec` is started around every
  // test binary: when the first argument names a subcommand, only that one
  // is registered. Anything else (--help, a typo) sees them all.
  struct Command {
    const char* name;
    void (*add)(CLI::App&);
  };
  static constexpr Command kCommands[] = {
      {"exec", fault::cli::RegisterExecCommand},
      {"run", fault::cli::RegisterRunCommand},
      {"policy", fault::cli::RegisterPolicyCommands},
      {"doctor", fault::cli::RegisterDoctorCommand},
      {"starlark", fault::cli::RegisterStarlarkCommand},
      {"test", fault::cli::RegisterTestCommand},
  };
  const Command* only = nullptr;
  for (const Command& c : kCommands)
    if (argc > 1 && std::string_view(argv[1]) == c.name) only = &c;
  for (const Command& c : kCommands)
    if (only == nullptr || only == &c) c.add(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    // CLI11 returns 0 for --help/--version; usage errors are exit status 2
    // as in most Unix tools.
    return rc == 0 ? 0 : 2;
  }
  return fault::cli::ExitStatus();
}
