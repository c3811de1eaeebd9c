#include "supervisor/cli/commands.h"
namespace fault::cli {
void RegisterDoctorCommand(CLI::App& app) {
  app.add_subcommand("doctor", "Report what this kernel and these privileges allow");
}
}  // namespace fault::cli
