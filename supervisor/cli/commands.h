// The subcommands of the `fault` CLI. Each module adds its own subcommands
// to the top-level app; main.cc only wires them together.
#ifndef FAULT_SUPERVISOR_CLI_COMMANDS_H_
#define FAULT_SUPERVISOR_CLI_COMMANDS_H_

#include <CLI/CLI.hpp>

namespace fault::cli {

// Process exit status a subcommand asks for. Subcommands store their result
// here from their callback; main returns it.
int& ExitStatus();

void RegisterPolicyCommands(CLI::App& app);     // supervisor/policy
void RegisterExecCommand(CLI::App& app);        // supervisor/exec
void RegisterDoctorCommand(CLI::App& app);      // supervisor/doctor
void RegisterStarlarkCommand(CLI::App& app);    // starlark/
void RegisterTestCommand(CLI::App& app);        // supervisor/spec
void RegisterRunCommand(CLI::App& app);         // supervisor/run

}  // namespace fault::cli

#endif  // FAULT_SUPERVISOR_CLI_COMMANDS_H_
