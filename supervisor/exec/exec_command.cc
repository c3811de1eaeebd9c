// `fault exec [options] -- PROGRAM ARGS...`: the command line. The work is
// in exec_runner.cc.
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "supervisor/cli/commands.h"
#include "supervisor/exec/child_process.h"
#include "supervisor/exec/exec_runner.h"
#include "supervisor/exec/program_info.h"
#include "supervisor/policy/loader.h"
#include "supervisor/policy/units.h"
#include "supervisor/seccomp/seccomp_exec_layer.h"

namespace fault::cli {
namespace {

struct ExecFlags {
  fault::exec::ExecOptions options;
  fault::policy::EffectFlags effects;
  std::string seed;
  std::string run_duration;
  std::string reload_on;
  std::string layer = "auto";
};

// Why the seccomp layer alone cannot apply `p` ("" when it can): it sees
// syscalls, not payloads or name lookups, so only syscall-level faults and
// partitions are in its reach.
std::string SeccompOnlyProblem(const fault::v1::Policy& p) {
  const fault::v1::LinkProfile empty;
  std::vector<std::string> effects;
  auto link_used = [&](const fault::v1::LinkProfile& l) {
    return l.SerializeAsString() != empty.SerializeAsString();
  };
  if (link_used(p.link()) || link_used(p.uplink()) || link_used(p.downlink())) {
    effects.push_back("link effects (latency, loss, rate, ...)");
  }
  if (p.has_timeout()) effects.push_back("timeout");
  if (p.has_connection_error()) effects.push_back("connection_error");
  if (p.has_half_open()) effects.push_back("half_open");
  if (p.blackhole()) effects.push_back("blackhole");
  if (p.has_session_budget()) effects.push_back("session_budget");
  if (p.has_payload_mutation()) effects.push_back("payload_mutation");
  if (p.has_dns()) effects.push_back("dns");
  if (effects.empty()) return "";
  std::string list;
  for (const std::string& e : effects) list += (list.empty() ? "" : ", ") + e;
  return "policy \"" + p.name() + "\": " + list +
         " need the preload shim, which cannot run in this program; the seccomp layer "
         "applies only syscall faults (write=deny(...), fsync=delay(...), ...) and partitions";
}

int RunFromFlags(ExecFlags& f) {
  fault::exec::ExecOptions& o = f.options;
  auto usage = [](const std::string& message) {
    std::cerr << "fault exec: " << message << "\n";
    return fault::exec::kExitUsage;
  };
  // The policy library's --seed is one of its effect flags; for `fault
  // exec` it is the run's seed, for every policy without its own (the
  // inline one included).
  auto& given = f.effects.given;
  for (auto it = given.begin(); it != given.end();) {
    if (it->first == "seed") {
      if (!f.seed.empty()) return usage("--seed: given more than once");
      f.seed = it->second;
      it = given.erase(it);
    } else {
      ++it;
    }
  }
  if (!f.seed.empty()) {
    uint64_t seed = 0;
    if (!absl::SimpleAtoi(f.seed, &seed)) {
      return usage("--seed " + f.seed + ": not an unsigned 64-bit integer");
    }
    o.seed = seed;
  }
  if (!f.run_duration.empty()) {
    absl::StatusOr<int64_t> ns = fault::policy::ParseDuration(f.run_duration);
    if (!ns.ok()) {
      return usage("--run-duration " + f.run_duration + ": " +
                   std::string(ns.status().message()));
    }
    o.run_duration_ns = *ns;
  }
  if (!f.reload_on.empty()) {
    o.reload_signal = fault::exec::SignalFromName(f.reload_on);
    if (o.reload_signal == 0) return usage("--reload-on " + f.reload_on + ": not a signal");
    if (o.reload_signal == SIGCHLD || o.reload_signal == SIGKILL ||
        o.reload_signal == SIGSTOP) {
      return usage("--reload-on " + f.reload_on + ": that signal cannot be used");
    }
  }
  absl::StatusOr<std::optional<fault::v1::Policy>> inline_policy =
      fault::policy::PolicyFromFlags(f.effects, "cli");
  if (!inline_policy.ok()) return usage(std::string(inline_policy.status().message()));
  o.inline_policy = std::move(*inline_policy);
  if (!o.uses.empty() && o.inline_policy.has_value()) {
    return usage("a named policy or inline fields but not both (--use with effect flags)");
  }
  if (o.command.empty()) return usage("no program given: fault exec [options] -- PROGRAM ARGS...");

  // Which layers apply the faults (docs/exec.md, "Layers").
  std::vector<std::string> warnings;
  absl::StatusOr<fault::v1::PolicySet> policies = fault::exec::SelectPolicies(o, &warnings);
  if (!policies.ok()) return usage(std::string(policies.status().message()));
  const uint64_t families = fault::seccomp::SeccompFamilies(*policies);
  bool use_shim = true;
  bool use_seccomp = false;
  if (f.layer == "auto") {
    const char* path_env = std::getenv("PATH");
    absl::StatusOr<std::string> program =
        fault::exec::ResolveProgram(o.command[0], path_env ? path_env : "/usr/bin:/bin");
    absl::StatusOr<fault::exec::Linkage> linkage =
        program.ok() ? fault::exec::ProgramLinkage(*program)
                     : absl::StatusOr<fault::exec::Linkage>(program.status());
    if (linkage.ok() && *linkage == fault::exec::Linkage::kStatic) {
      use_shim = false;
      use_seccomp = true;
      if (!o.quiet) {
        std::cerr << "fault exec: " << o.command[0]
                  << " is statically linked: using the seccomp layer alone\n";
      }
    } else {
      use_seccomp = families != 0;
    }
  } else if (f.layer == "preload" || f.layer == "shim") {
  } else if (f.layer == "seccomp") {
    use_shim = false;
    use_seccomp = true;
  } else if (f.layer == "both") {
    use_seccomp = true;
  } else {
    return usage("--layer " + f.layer + ": not a layer (use auto, preload, seccomp or both)");
  }
  for (const fault::v1::Policy& p : policies->policies()) {
    if (p.partitions_size() > 0) {
      return usage("policy \"" + p.name() +
                   "\": partition needs two programs under one supervisor; fault exec runs "
                   "one program (cut its connections with --target and connection_error or "
                   "blackhole instead)");
    }
  }
  if (!use_shim) {
    // Refuse what seccomp cannot do rather than run without it.
    for (const fault::v1::Policy& p : policies->policies()) {
      if (std::string problem = SeccompOnlyProblem(p); !problem.empty()) return usage(problem);
    }
  }
  o.preload_shim = use_shim;
  std::unique_ptr<fault::seccomp::SeccompExecLayer> seccomp;
  if (use_seccomp) {
    seccomp = std::make_unique<fault::seccomp::SeccompExecLayer>(
        fault::seccomp::SeccompExecLayer::Options{.families_mask = families,
                                                  .program = o.command[0]});
    o.layers.push_back(seccomp.get());
  }
  return fault::exec::RunExec(o, std::cerr);
}

}  // namespace

void RegisterExecCommand(CLI::App& app) {
  auto flags = std::make_shared<ExecFlags>();
  CLI::App* exec = app.add_subcommand(
      "exec",
      "Run a program under fault policies: fault exec [options] -- PROGRAM ARGS...");
  exec->add_option("--policy", flags->options.policy_files,
                   "Policy file (YAML or JSON); repeatable")
      ->type_name("FILE");
  exec->add_option("--use", flags->options.uses,
                   "Use only this policy of the files; repeatable. An unknown name "
                   "runs without it and warns")
      ->type_name("NAME");
  fault::policy::AddEffectFlags(exec, &flags->effects);
  if (exec->get_option_no_throw("--seed") == nullptr) {
    exec->add_option("--seed", flags->seed,
                     "Seed for every policy without its own (default: random, "
                     "printed in the summary)")
        ->type_name("N");
  }
  exec->add_option("--run-duration", flags->run_duration,
                   "Run duration that percent schedule intervals refer to")
      ->type_name("DURATION");
  exec->add_option("--events", flags->options.events_path,
                   "Write every injected fault as a JSON line to FILE")
      ->type_name("FILE.jsonl");
  exec->add_flag("-q,--quiet", flags->options.quiet, "No summary on exit");
  exec->add_flag("--expect-faults", flags->options.expect_faults,
                 "Exit with status 3 when some policy never fired");
  exec->add_option("--reload-on", flags->reload_on,
                   "Re-read the policy files on this signal (e.g. SIGHUP)")
      ->type_name("SIGNAL");
  exec->add_option("--shim", flags->options.shim_path,
                   "The preload shim (default: libfault_shim.so next to fault)")
      ->type_name("PATH");
  exec->add_flag("--scopes-only", flags->options.scopes_only,
                 "Load the policies inactive: they apply only inside "
                 "fault_scope_push()/fault::ScopedPolicy scopes");
  exec->add_option("--layer", flags->layer,
                   "Injection layer: auto (default: the shim, plus seccomp for the syscall "
                   "families the policies cover; seccomp alone for static programs), "
                   "preload, seccomp or both")
      ->type_name("LAYER");
  exec->add_option("command", flags->options.command, "PROGRAM ARGS...");
  // One value per occurrence, so that `--policy a.yaml -- prog` ends the
  // options at `--` instead of taking it as another value.
  for (CLI::Option* option : exec->get_options()) {
    if (option->get_items_expected_max() > 1 && !option->get_positional()) {
      option->allow_extra_args(false);
    }
  }
  exec->callback([flags] { fault::cli::ExitStatus() = RunFromFlags(*flags); });
}

}  // namespace fault::cli
