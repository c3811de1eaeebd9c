#include "supervisor/cli/commands.h"
namespace fault::cli {
void RegisterExecCommand(CLI::App& app) {
  app.add_subcommand("exec", "Run a program under a fault policy");
}
}  // namespace fault::cli
