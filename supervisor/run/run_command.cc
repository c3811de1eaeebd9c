// `fault run`: the fault proxy's command line (supervisor/run/run_config.h)
// wired to its runner (proxy_runner.h).
#include <cstdlib>
#include <iostream>
#include <memory>

#include "supervisor/cli/commands.h"
#include "supervisor/run/proxy_runner.h"
#include "supervisor/run/run_config.h"

namespace fault::cli {

void RegisterRunCommand(CLI::App& app) {
  auto flags = std::make_shared<fault::run::RunFlags>();
  CLI::App* run = app.add_subcommand(
      "run",
      "Run the fault proxy: an HTTP forward proxy (--proxy-address) and TCP mappings "
      "(--proxy PORT=HOST:PORT) that apply faults to the traffic they carry");
  fault::run::RegisterRunFlags(run, flags.get());
  run->callback([flags] {
    absl::StatusOr<fault::run::RunConfig> config =
        fault::run::BuildRunConfig(*flags, [](const char* name) { return std::getenv(name); });
    if (!config.ok()) {
      std::cerr << "fault run: " << config.status().message() << "\n";
      ExitStatus() = fault::run::kExitUsage;
      return;
    }
    ExitStatus() = fault::run::RunProxy(*config, std::cout, std::cerr);
  });
}

}  // namespace fault::cli
