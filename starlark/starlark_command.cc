#include "supervisor/cli/commands.h"
namespace fault::cli {
void RegisterStarlarkCommand(CLI::App& app) {
  app.add_subcommand("starlark", "Run a Starlark file, or a REPL");
}
}  // namespace fault::cli
