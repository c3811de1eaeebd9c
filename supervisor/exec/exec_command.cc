// `fault exec [options] -- PROGRAM ARGS...`: the command line. The work is
// in exec_runner.cc.
#include <unistd.h>
#include <wordexp.h>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "fault/table.h"
#include "shim/engine/families.h"
#include "supervisor/cli/commands.h"
#include "supervisor/control/control_address.h"
#include "supervisor/exec/child_process.h"
#include "supervisor/exec/exec_runner.h"
#include "supervisor/exec/program_info.h"
#include "supervisor/policy/loader.h"
#include "supervisor/policy/units.h"
#include "supervisor/seccomp/partition.h"
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
  std::string name;                  // --name: the main program's
  std::vector<std::string> with;     // --with NAME=COMMAND
  std::vector<std::string> wait_for; // --wait-for HOST:PORT
  std::string wait_timeout;
  std::string io_uring;              // --io-uring: "", deny or allow
  std::string control;               // --control ADDRESS
  std::string control_token_file;    // --control-token-file FILE
};

// The policy `--io-uring=deny` adds: every io_uring_setup fails with ENOSYS,
// so a program that can do without a ring falls back to plain syscalls.
constexpr char kIoUringDenyPolicy[] = "io-uring-deny";

fault::v1::Policy IoUringDenyPolicy() {
  fault::v1::Policy p;
  p.set_name(kIoUringDenyPolicy);
  fault::v1::SyscallFault* r = p.add_syscalls();
  r->set_family(fault::v1::SyscallFault::FAMILY_IO_URING);
  r->set_action(fault::v1::SyscallFault::ACTION_DENY);
  r->set_errno_name("ENOSYS");
  r->set_probability_ppm(1'000'000);
  return p;
}

// A program name for partitions: letters, digits, '_', '-', '.'; short
// enough for the policy table.
std::string NameProblem(const std::string& name) {
  if (name.empty()) return "the name is empty";
  if (name.size() >= FAULT_NAME_MAX) {
    return "the name is longer than " + std::to_string(FAULT_NAME_MAX - 1) + " bytes";
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' &&
        c != '.') {
      return "the name may contain only letters, digits, '_', '-' and '.'";
    }
  }
  return "";
}

// Splits COMMAND as a shell would split words (quotes, backslashes,
// $VARIABLES), without running anything: no command substitution, no
// pipes or redirections.
absl::StatusOr<std::vector<std::string>> SplitCommand(const std::string& command) {
  wordexp_t w{};
  int rc = wordexp(command.c_str(), &w, WRDE_NOCMD);
  switch (rc) {
    case 0:
      break;
    case WRDE_BADCHAR:
      return absl::InvalidArgumentError(
          "the command contains one of | & ; < > ( ) { } or a newline outside quotes "
          "(run a shell for those: sh -c '...')");
    case WRDE_CMDSUB:
      return absl::InvalidArgumentError("command substitution is not allowed");
    case WRDE_SYNTAX:
      return absl::InvalidArgumentError("unbalanced quotes");
    default:
      return absl::InvalidArgumentError("the command cannot be split into words");
  }
  std::vector<std::string> words(w.we_wordv, w.we_wordv + w.we_wordc);
  wordfree(&w);
  if (words.empty()) return absl::InvalidArgumentError("the command is empty");
  return words;
}

// Whether `p` has network effects: applied by the stream engine to TCP
// connections, which reach it through the shim or, for programs that make
// raw syscalls, through the seccomp layer's connect notification.
bool HasNetworkEffects(const fault::v1::Policy& p) {
  const fault::v1::LinkProfile empty;
  auto link_used = [&](const fault::v1::LinkProfile& l) {
    return l.SerializeAsString() != empty.SerializeAsString();
  };
  return link_used(p.link()) || link_used(p.uplink()) || link_used(p.downlink()) ||
         p.has_timeout() || p.has_connection_error() || p.has_half_open() || p.blackhole() ||
         p.has_session_budget();
}

// Why the seccomp layer alone cannot apply `p` ("" when it can): it sees
// syscalls, not payloads or name lookups. Network effects reach TCP
// connections through the stream engine; names and datagrams need the shim.
std::string SeccompOnlyProblem(const fault::v1::Policy& p) {
  std::vector<std::string> effects;
  if (p.has_dns()) effects.push_back("dns");
  if (p.has_payload_mutation()) effects.push_back("payload_mutation");
  if (HasNetworkEffects(p)) {
    bool names = false, udp = false;
    for (const fault::v1::Target& t : p.targets()) {
      names = names || !t.hostname().empty() || !t.sni().empty();
      udp = udp || t.protocol() == fault::v1::PROTOCOL_UDP;
    }
    if (names) effects.push_back("hostname and sni targets");
    if (udp) effects.push_back("network effects on UDP");
  }
  if (effects.empty()) return "";
  std::string list;
  for (const std::string& e : effects) list += (list.empty() ? "" : ", ") + e;
  return "policy \"" + p.name() + "\": " + list +
         " cannot be applied without the preload shim, which cannot run in this program; "
         "without it fault applies syscall faults, partitions and network effects on TCP "
         "connections";
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
  if (!f.control.empty()) {
    absl::StatusOr<fault::control::ControlEndpoint> endpoint =
        fault::control::ParseControlAddress(f.control);
    if (!endpoint.ok()) {
      return usage("--control " + std::string(endpoint.status().message()));
    }
    if (endpoint->tcp && f.control_token_file.empty()) {
      return usage("--control " + f.control +
                   ": a TCP control plane needs --control-token-file FILE (anyone who can "
                   "reach the port could change the faults); or use --control unix");
    }
    if (o.reload_signal == SIGURG) {
      return usage("--reload-on " + f.reload_on + ": --control uses that signal itself");
    }
    o.control = *endpoint;
  }
  if (!f.control_token_file.empty()) {
    if (f.control.empty()) return usage("--control-token-file needs --control ADDRESS");
    absl::StatusOr<std::string> token = fault::control::ReadTokenFile(f.control_token_file);
    if (!token.ok()) {
      return usage("--control-token-file " + std::string(token.status().message()));
    }
    o.control_token = *token;
    char* abs = realpath(f.control_token_file.c_str(), nullptr);
    o.control_token_file = abs != nullptr ? abs : f.control_token_file;
    std::free(abs);
  }
  absl::StatusOr<std::optional<fault::v1::Policy>> inline_policy =
      fault::policy::PolicyFromFlags(f.effects, "cli");
  if (!inline_policy.ok()) return usage(std::string(inline_policy.status().message()));
  o.inline_policy = std::move(*inline_policy);
  if (!o.uses.empty() && o.inline_policy.has_value()) {
    return usage("a named policy or inline fields but not both (--use with effect flags)");
  }
  if (o.command.empty()) return usage("no program given: fault exec [options] -- PROGRAM ARGS...");
  if (!f.io_uring.empty() && f.io_uring != "deny" && f.io_uring != "allow") {
    return usage("--io-uring " + f.io_uring + ": not a choice (use --io-uring=deny or --io-uring=allow)");
  }
  if (f.io_uring == "deny") o.added_policies.push_back(IoUringDenyPolicy());

  // Which layers apply the faults (docs/exec.md, "Layers").
  std::vector<std::string> warnings;
  absl::StatusOr<fault::v1::PolicySet> policies = fault::exec::SelectPolicies(o, &warnings);
  if (!policies.ok()) return usage(std::string(policies.status().message()));
  const uint64_t families = fault::seccomp::SeccompFamilies(*policies);
  bool network_effects = false;
  std::string network_policy;  // the first policy with network effects
  for (const fault::v1::Policy& p : policies->policies()) {
    if (!network_effects && HasNetworkEffects(p)) network_policy = p.name();
    network_effects = network_effects || HasNetworkEffects(p);
  }
  if (f.layer != "auto" && f.layer != "preload" && f.layer != "shim" && f.layer != "seccomp" &&
      f.layer != "both") {
    return usage("--layer " + f.layer + ": not a layer (use auto, preload, seccomp or both)");
  }

  // The programs: the main one, then --with companions, each named.
  struct Program {
    std::string name;
    std::vector<std::string> command;
    bool use_shim = true;
    bool use_seccomp = false;
    bool raw_sockets = false;  // static or Go: connects bypass the shim
  };
  std::vector<Program> programs;
  {
    Program main_program;
    main_program.command = o.command;
    if (!f.name.empty()) {
      if (std::string why = NameProblem(f.name); !why.empty()) {
        return usage("--name " + f.name + ": " + why);
      }
      main_program.name = f.name;
    } else {
      std::string base = o.command[0].substr(o.command[0].find_last_of('/') + 1);
      if (NameProblem(base).empty()) main_program.name = base;
    }
    programs.push_back(std::move(main_program));
  }
  for (const std::string& spec : f.with) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos) {
      return usage("--with " + spec + ": expected NAME=COMMAND (e.g. --with db='redis-server "
                   "--port 6400')");
    }
    Program p;
    p.name = spec.substr(0, eq);
    if (std::string why = NameProblem(p.name); !why.empty()) {
      return usage("--with " + spec + ": " + why);
    }
    for (const Program& other : programs) {
      if (other.name == p.name) {
        return usage("--with " + spec + ": the name \"" + p.name + "\" is taken" +
                     (&other == &programs[0] ? " by the main program (rename it with --name)"
                                             : " by another --with"));
      }
    }
    absl::StatusOr<std::vector<std::string>> words = SplitCommand(spec.substr(eq + 1));
    if (!words.ok()) return usage("--with " + spec + ": " + std::string(words.status().message()));
    p.command = std::move(*words);
    programs.push_back(std::move(p));
  }
  for (const std::string& w : f.wait_for) {
    size_t colon = w.rfind(':');
    uint32_t port = 0;
    if (colon == std::string::npos || colon == 0 ||
        !absl::SimpleAtoi(w.substr(colon + 1), &port) || port == 0 || port > 65535) {
      return usage("--wait-for " + w + ": expected HOST:PORT with a port in 1..65535");
    }
    std::string host = w.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    o.wait_for.push_back({.host = host, .port = static_cast<uint16_t>(port), .text = w});
  }
  if (!f.wait_timeout.empty()) {
    absl::StatusOr<int64_t> ns = fault::policy::ParseDuration(f.wait_timeout);
    if (!ns.ok()) {
      return usage("--wait-timeout " + f.wait_timeout + ": " + std::string(ns.status().message()));
    }
    if (*ns <= 0) return usage("--wait-timeout " + f.wait_timeout + ": must be positive");
    o.wait_timeout_ns = *ns;
  }

  // Connects and accepts submitted through io_uring reach neither the shim
  // nor the seccomp layer, so they would bypass the stream engine: say so
  // before anything starts rather than run without the effects
  // (docs/exec.md, "I/O models").
  if (network_effects && f.io_uring != "deny") {
    for (size_t i = 0; i < programs.size(); ++i) {
      const char* path_env = std::getenv("PATH");
      absl::StatusOr<std::string> path = fault::exec::ResolveProgram(
          programs[i].command[0], path_env ? path_env : "/usr/bin:/bin");
      if (!path.ok() || !fault::exec::NeedsLiburing(*path)) continue;
      const std::string who =
          (i == 0 ? "" : "--with " + programs[i].name + ": ") + programs[i].command[0];
      if (f.io_uring.empty()) {
        return usage(who + " needs liburing: connects and accepts it submits through io_uring "
                     "would bypass the network effects of policy \"" + network_policy +
                     "\". Run it with --io-uring=deny (its io_uring setup fails with ENOSYS, "
                     "so it takes its fallback if it has one) or --io-uring=allow (only "
                     "connections it makes with connect(2) and accept(2) get the effects)");
      }
      std::cerr << "fault exec: " << who
                << " needs liburing (--io-uring=allow): only connections it makes with "
                   "connect(2) and accept(2) get the network effects, not those it submits "
                   "through io_uring\n";
    }
  }

  bool has_partitions = false;
  for (const fault::v1::Policy& p : policies->policies()) {
    for (const fault::v1::Partition& part : p.partitions()) {
      has_partitions = true;
      for (const std::string& end : {part.a(), part.b()}) {
        bool launched = false;
        for (const Program& prog : programs) launched = launched || prog.name == end;
        if (launched) continue;
        std::string names;
        for (const Program& prog : programs) {
          if (!prog.name.empty()) names += (names.empty() ? "" : ", ") + prog.name;
        }
        return usage("policy \"" + p.name() + "\": partition(" + part.a() + ", " + part.b() +
                     "): no program named \"" + end +
                     "\" is launched (this run launches: " + names +
                     "; name the main program with --name and start others with "
                     "--with NAME=COMMAND)");
      }
    }
  }
  if (has_partitions && (f.layer == "preload" || f.layer == "shim")) {
    return usage("--layer " + f.layer +
                 ": partitions need the seccomp layer (use --layer auto, seccomp or both)");
  }

  for (size_t i = 0; i < programs.size(); ++i) {
    Program& prog = programs[i];
    const std::string who = i == 0 ? "" : "--with " + prog.name + ": ";
    if (f.layer == "auto") {
      const char* path_env = std::getenv("PATH");
      absl::StatusOr<std::string> program =
          fault::exec::ResolveProgram(prog.command[0], path_env ? path_env : "/usr/bin:/bin");
      absl::StatusOr<fault::exec::Linkage> linkage =
          program.ok() ? fault::exec::ProgramLinkage(*program)
                       : absl::StatusOr<fault::exec::Linkage>(program.status());
      if (linkage.ok() && *linkage == fault::exec::Linkage::kStatic) {
        prog.use_shim = false;
        prog.use_seccomp = true;
        if (!o.quiet) {
          std::cerr << "fault exec: " << who << prog.command[0]
                    << " is statically linked: using the seccomp layer alone\n";
        }
      } else {
        prog.use_seccomp = families != 0;
      }
      // Go's runtime connects with raw syscalls, shim or not: its
      // connections reach the stream engine through the seccomp layer.
      prog.raw_sockets = (linkage.ok() && *linkage == fault::exec::Linkage::kStatic) ||
                         (program.ok() && fault::exec::IsGoProgram(*program));
      if (prog.raw_sockets && network_effects) {
        prog.use_seccomp = true;
        if (!o.quiet && prog.use_shim) {
          std::cerr << "fault exec: " << who << prog.command[0]
                    << " is a Go program: its connections are redirected through the "
                       "seccomp layer\n";
        }
      }
    } else if (f.layer == "seccomp") {
      prog.use_shim = false;
      prog.use_seccomp = true;
    } else if (f.layer == "both") {
      prog.use_seccomp = true;
    }
    if (!prog.use_seccomp && (families & fault::engine::SeccompOnlyFamilies()) != 0) {
      return usage(who + "--layer " + f.layer + ": io_uring faults (--io-uring=deny, "
                   "io_uring=deny(...)) need the seccomp layer (use --layer auto, seccomp or "
                   "both)");
    }
    if (!prog.use_shim) {
      // Refuse what seccomp cannot do rather than run without it.
      for (const fault::v1::Policy& p : policies->policies()) {
        if (std::string problem = SeccompOnlyProblem(p); !problem.empty()) {
          return usage(who + problem);
        }
      }
    }
  }

  // The seccomp filter comes with NO_NEW_PRIVS: a set-user-ID or
  // file-capability program then runs without its privileges, and would
  // fail in ways that look like the fault under test. Say so before it runs.
  for (const Program& prog : programs) {
    if (!prog.use_seccomp) continue;
    const char* path_env = std::getenv("PATH");
    absl::StatusOr<std::string> program =
        fault::exec::ResolveProgram(prog.command[0], path_env ? path_env : "/usr/bin:/bin");
    if (!program.ok()) continue;  // the runner reports it
    absl::StatusOr<fault::exec::ExecPrivileges> privileges =
        fault::exec::ReadExecPrivileges(*program);
    if (!privileges.ok()) continue;
    std::string lost =
        fault::exec::PrivilegesLostUnderNoNewPrivs(*privileges, geteuid(), getegid());
    if (lost.empty()) continue;
    std::cerr << "fault: warning: " << *program << " " << lost
              << ": the seccomp layer sets NO_NEW_PRIVS, so it runs without those "
                 "privileges (and may fail, e.g. with EPERM); run fault as root, or use "
                 "only faults that need no seccomp filter (--layer preload)\n";
  }

  std::unique_ptr<fault::seccomp::PartitionMap> partition_map;
  if (has_partitions) partition_map = std::make_unique<fault::seccomp::PartitionMap>();
  std::vector<std::unique_ptr<fault::seccomp::SeccompExecLayer>> seccomp_layers;
  auto seccomp_for = [&](const Program& prog) -> fault::exec::ExecLayer* {
    if (!prog.use_seccomp) return nullptr;
    uint64_t mask = families;
    if (network_effects && (prog.raw_sockets || !prog.use_shim))
      mask |= fault::seccomp::FamilyBit(fault::seccomp::Family::kConnect);
    seccomp_layers.push_back(std::make_unique<fault::seccomp::SeccompExecLayer>(
        fault::seccomp::SeccompExecLayer::Options{.families_mask = mask,
                                                  .program = prog.name,
                                                  .partitions = partition_map.get()}));
    return seccomp_layers.back().get();
  };
  for (const Program& prog : programs) {
    if (!network_effects || prog.use_seccomp) continue;
    const char* path_env = std::getenv("PATH");
    absl::StatusOr<std::string> program =
        fault::exec::ResolveProgram(prog.command[0], path_env ? path_env : "/usr/bin:/bin");
    if (program.ok() && fault::exec::IsGoProgram(*program)) {
      o.blind_spots.push_back(prog.command[0] +
                              " is a Go program, whose connects only the seccomp layer sees "
                              "(run with --layer auto or both)");
    }
  }
  o.selected = *std::move(policies);
  o.selected_warnings = std::move(warnings);
  o.preload_shim = programs[0].use_shim;
  if (fault::exec::ExecLayer* layer = seccomp_for(programs[0])) o.layers.push_back(layer);
  for (size_t i = 1; i < programs.size(); ++i) {
    fault::exec::CompanionProgram c;
    c.name = programs[i].name;
    c.command = programs[i].command;
    c.preload_shim = programs[i].use_shim;
    if (fault::exec::ExecLayer* layer = seccomp_for(programs[i])) c.layers.push_back(layer);
    o.companions.push_back(std::move(c));
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
  exec->add_option("--name", flags->name,
                   "The program's name in partition(a, b) rules (default: its file name)")
      ->type_name("NAME");
  exec->add_option("--with", flags->with,
                   "Also start COMMAND, named NAME, before the program and under the same "
                   "policies (e.g. the server it talks to); stopped when the program ends; "
                   "repeatable")
      ->type_name("NAME=COMMAND");
  exec->add_option("--wait-for", flags->wait_for,
                   "Start the program only once HOST:PORT accepts TCP connections; "
                   "repeatable")
      ->type_name("HOST:PORT");
  exec->add_option("--wait-timeout", flags->wait_timeout,
                   "How long --wait-for waits (default 10s)")
      ->type_name("DURATION");
  exec->add_option("--io-uring", flags->io_uring,
                   "For programs that need liburing when a policy has network effects "
                   "(connects and accepts through io_uring bypass them): deny (their "
                   "io_uring setup fails with ENOSYS) or allow (run them anyway)")
      ->type_name("deny|allow");
  exec->add_option("--control", flags->control,
                   "Serve the gRPC control plane (fault ctl, docs/control.md) on unix (a "
                   "socket in a new private directory), unix:PATH or tcp:HOST:PORT (needs "
                   "--control-token-file); exported to the program as FAULT_CONTROL")
      ->type_name("ADDRESS");
  exec->add_option("--control-token-file", flags->control_token_file,
                   "A file holding the token every control call must send (authorization: "
                   "Bearer TOKEN); exported as FAULT_CONTROL_TOKEN_FILE")
      ->type_name("FILE");
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
