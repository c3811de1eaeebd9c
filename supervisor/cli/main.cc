// fault: run a program under controlled, reproducible faults.
#include <cstdio>
#include <string>

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

  fault::cli::RegisterExecCommand(app);
  fault::cli::RegisterRunCommand(app);
  fault::cli::RegisterPolicyCommands(app);
  fault::cli::RegisterDoctorCommand(app);
  fault::cli::RegisterStarlarkCommand(app);
  fault::cli::RegisterTestCommand(app);

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
