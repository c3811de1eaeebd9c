#include "supervisor/cli/commands.h"
namespace fault::cli {
void RegisterPolicyCommands(CLI::App& app) {
  app.add_subcommand("policy", "Validate and show policy files")->require_subcommand(1);
}
}  // namespace fault::cli
