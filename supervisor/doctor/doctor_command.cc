// `fault doctor`: what this kernel and these privileges allow.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "supervisor/cli/commands.h"
#include "supervisor/cli/paths.h"
#include "supervisor/doctor/probes.h"

namespace fault::cli {

void RegisterDoctorCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "doctor",
      "Report what this kernel and these privileges allow: the preload shim, seccomp user "
      "notification (and its sync wake-up flag), BPF and cgroup v2 attach");
  static bool json = false;
  cmd->add_flag("--json", json, "Print the results as JSON");
  cmd->callback([] {
    auto results = doctor::RunAllProbes(FindShimLibrary());
    if (json) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& r : results) {
        out.push_back({{"capability", r.capability},
                       {"verdict", doctor::VerdictName(r.verdict)},
                       {"detail", r.detail},
                       {"required", r.required}});
      }
      std::printf("%s\n", out.dump(2).c_str());
    } else {
      std::fputs(doctor::FormatReport(results).c_str(), stdout);
    }
    ExitStatus() = doctor::ExitCodeFor(results);
  });
}

}  // namespace fault::cli
