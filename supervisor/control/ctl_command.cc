// `fault ctl`: the control plane's client for people and scripts
// (docs/control.md). It loads the gRPC module, like `fault exec --control`.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "fault/table.h"
#include "fault/v1/control.pb.h"
#include "supervisor/cli/commands.h"
#include "supervisor/cli/input_file.h"
#include "supervisor/control/control_address.h"
#include "supervisor/grpc/control_api.h"
#include "supervisor/grpc/loader.h"
#include "supervisor/grpc/module.h"
#include "supervisor/policy/units.h"

namespace fault::cli {
namespace {

// Exit statuses: 0 done, 1 the call failed, 2 bad usage (nothing sent).
constexpr int kFailed = 1;
constexpr int kUsage = 2;

struct CtlFlags {
  std::string control;     // --control, else $FAULT_CONTROL
  std::string token_file;  // --token-file, else $FAULT_CONTROL_TOKEN_FILE
  std::string timeout = "10s";
  // Subcommand arguments.
  std::string file;
  std::string name;
  uint64_t generation = 0;
  bool follow = false;
  bool json = false;
  std::vector<std::string> policies;
  std::vector<std::string> effects;
  int64_t after = -1;
};

// `fault ctl` in a script that runs under `fault exec` has the run's shim
// preloaded, and the policies it changes would apply to its own calls to
// the control plane (a latency policy without targets would delay them; a
// blackhole would cut them). So it starts again without the shim, before
// any connection. Returns only when there is nothing to leave (or the exec
// failed, and it goes on as it is).
void LeaveTheShim() {
  const char* preload = std::getenv("LD_PRELOAD");
  if (preload == nullptr || std::strstr(preload, "libfault_shim") == nullptr)
    return;
  std::vector<std::string> kept;
  for (absl::string_view entry :
       absl::StrSplit(preload, absl::ByAnyChar(": "))) {
    if (!entry.empty() && !absl::StrContains(entry, "libfault_shim")) {
      kept.emplace_back(entry);
    }
  }
  if (kept.empty()) {
    unsetenv("LD_PRELOAD");
  } else {
    setenv("LD_PRELOAD", absl::StrJoin(kept, ":").c_str(), 1);
  }
  unsetenv(FAULT_ENV_TABLE);
  unsetenv(FAULT_ENV_TABLE_FD);
  unsetenv(FAULT_ENV_STUB_PAGE);
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string cmdline((std::istreambuf_iterator<char>(in)),
                      std::istreambuf_iterator<char>());
  std::vector<std::string> args =
      absl::StrSplit(cmdline, '\0', absl::SkipEmpty());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  if (argv.size() > 1) execv("/proc/self/exe", argv.data());
}

int Usage(const std::string& what, const std::string& message) {
  std::cerr << "fault ctl " << what << ": " << message << "\n";
  return kUsage;
}

// The client the flags and environment name; null after saying why.
std::unique_ptr<grpc_module::ControlClient> Connect(const std::string& what,
                                                    const CtlFlags& f,
                                                    int* status) {
  LeaveTheShim();
  *status = kUsage;
  std::string address = f.control;
  if (address.empty()) {
    const char* env = std::getenv(fault::control::kEnvControl);
    if (env == nullptr || *env == '\0') {
      Usage(what,
            "no control plane given: pass --control ADDRESS or set "
            "FAULT_CONTROL (fault exec "
            "--control exports it to the program it runs)");
      return nullptr;
    }
    address = env;
  }
  absl::StatusOr<fault::control::ControlEndpoint> endpoint =
      fault::control::ParseControlAddress(address);
  if (endpoint.ok() && !endpoint->tcp && endpoint->socket_path.empty()) {
    endpoint = absl::InvalidArgumentError(
        absl::StrCat(address, ": give the socket's path (unix:PATH)"));
  }
  if (!endpoint.ok()) {
    Usage(what, absl::StrCat("--control ", endpoint.status().message()));
    return nullptr;
  }
  std::string token_file = f.token_file;
  if (token_file.empty()) {
    const char* env = std::getenv(fault::control::kEnvControlTokenFile);
    if (env != nullptr) token_file = env;
  }
  std::string token;
  if (!token_file.empty()) {
    absl::StatusOr<std::string> t = fault::control::ReadTokenFile(token_file);
    if (!t.ok()) {
      Usage(what, absl::StrCat("--token-file ", t.status().message()));
      return nullptr;
    }
    token = *t;
  }
  absl::StatusOr<const grpc_module::Module*> module = grpc_module::Load();
  if (!module.ok()) {
    std::cerr << "fault ctl: " << module.status().message() << "\n";
    *status = kFailed;
    return nullptr;
  }
  if ((*module)->control == nullptr) {
    std::cerr << "fault ctl: this build's gRPC module has no control plane\n";
    *status = kFailed;
    return nullptr;
  }
  *status = 0;
  return (*module)->control->connect({endpoint->GrpcAddress(), token});
}

// One unary call; prints the error and returns false when it failed.
bool Call(const std::string& what, const CtlFlags& f, const std::string& method,
          const google::protobuf::Message& request,
          google::protobuf::Message* response, int* status) {
  absl::StatusOr<int64_t> timeout = fault::policy::ParseDuration(f.timeout);
  if (!timeout.ok() || *timeout <= 0) {
    *status = Usage(what, "--timeout " + f.timeout +
                              ": expected a positive duration (10s)");
    return false;
  }
  std::unique_ptr<grpc_module::ControlClient> client = Connect(what, f, status);
  if (client == nullptr) return false;
  grpc_module::CallResult r =
      client->Call(method, request.SerializeAsString(),
                   static_cast<int>(*timeout / 1'000'000));
  if (r.code != 0) {
    // Validation errors name file:line:column as `fault policy validate`
    // prints them; everything else says where it came from.
    if (r.code == 3 && what == "put") {
      std::cerr << r.message << "\n";
    } else {
      std::cerr << "fault ctl " << what << ": " << r.message << "\n";
    }
    *status = kFailed;
    return false;
  }
  if (!response->ParseFromString(r.response)) {
    std::cerr << "fault ctl " << what << ": malformed response\n";
    *status = kFailed;
    return false;
  }
  *status = 0;
  return true;
}

std::string Seconds(int64_t ns) { return absl::StrFormat("%.3fs", ns / 1e9); }

void PrintChange(const fault::v1::ChangeResponse& r) {
  std::cout << r.policies_size()
            << (r.policies_size() == 1 ? " policy" : " policies")
            << " in effect" << (r.policies_size() ? ": " : "")
            << absl::StrJoin(r.policies(), ", ") << " (generation "
            << r.generation() << ")\n";
}

int Status(const CtlFlags& f) {
  fault::v1::StatusResponse r;
  int status = 0;
  if (!Call("status", f, "Status", fault::v1::StatusRequest(), &r, &status))
    return status;
  if (r.command().empty()) {
    std::cout << "program:    none (the fault proxy, fault run)\n";
  } else {
    std::cout << "program:    " << absl::StrJoin(r.command(), " ") << " (pid "
              << r.pid() << (r.running() ? ", running" : ", exited") << ")\n";
  }
  std::cout << "supervisor: pid " << r.supervisor_pid() << ", fault "
            << r.version() << "\n"
            << "layers:     " << absl::StrJoin(r.layers(), ", ") << "\n"
            << "uptime:     " << Seconds(r.uptime_ns()) << "\n"
            << "generation: " << r.generation() << "\n"
            << "policies:   "
            << (r.policies().empty() ? "(none)"
                                     : absl::StrJoin(r.policies(), ", "))
            << "\n"
            << "events:     " << r.events() << " (" << r.events_dropped()
            << " dropped in the program)\n";
  return 0;
}

int Policies(const CtlFlags& f) {
  fault::v1::ListPoliciesResponse r;
  int status = 0;
  if (!Call("policies", f, "ListPolicies", fault::v1::ListPoliciesRequest(), &r,
            &status)) {
    return status;
  }
  if (f.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const fault::v1::PolicyInfo& p : r.policies()) {
      out.push_back({{"name", p.policy().name()},
                     {"origin", p.origin() == fault::v1::POLICY_ORIGIN_CONTROL
                                    ? "control"
                                    : "command line"},
                     {"matched", p.counters().matched()},
                     {"fired", p.counters().fired()}});
    }
    std::cout << out.dump() << "\n";
    return 0;
  }
  std::cout << absl::StrFormat("%-24s %-13s %12s %12s\n", "POLICY", "FROM",
                               "MATCHED", "FIRED");
  for (const fault::v1::PolicyInfo& p : r.policies()) {
    std::cout << absl::StrFormat("%-24s %-13s %12d %12d\n", p.policy().name(),
                                 p.origin() == fault::v1::POLICY_ORIGIN_CONTROL
                                     ? "control"
                                     : "command line",
                                 p.counters().matched(), p.counters().fired());
  }
  std::cout << "(generation " << r.generation() << ")\n";
  return 0;
}

int Put(const CtlFlags& f) {
  absl::StatusOr<std::string> text =
      ReadInputFile(f.file, kMaxPolicyBytes, "policy files");
  if (!text.ok()) {
    std::cerr << text.status().message() << "\n";
    return kFailed;
  }
  fault::v1::PutPoliciesRequest q;
  q.set_text(*text);
  q.set_filename(f.file);
  fault::v1::ChangeResponse r;
  int status = 0;
  if (!Call("put", f, "PutPolicies", q, &r, &status)) return status;
  PrintChange(r);
  return 0;
}

int Delete(const CtlFlags& f) {
  fault::v1::DeletePolicyRequest q;
  q.set_name(f.name);
  fault::v1::ChangeResponse r;
  int status = 0;
  if (!Call("delete", f, "DeletePolicy", q, &r, &status)) return status;
  PrintChange(r);
  return 0;
}

int Clear(const CtlFlags& f) {
  fault::v1::ChangeResponse r;
  int status = 0;
  if (!Call("clear", f, "Clear", fault::v1::ClearRequest(), &r, &status))
    return status;
  PrintChange(r);
  return 0;
}

int Wait(const CtlFlags& f) {
  absl::StatusOr<int64_t> timeout = fault::policy::ParseDuration(f.timeout);
  fault::v1::WaitGenerationRequest q;
  q.set_generation(f.generation);
  if (timeout.ok()) q.set_timeout_ns(*timeout);
  fault::v1::WaitGenerationResponse r;
  int status = 0;
  CtlFlags call = f;
  // The call's own deadline covers the wait.
  if (timeout.ok())
    call.timeout = absl::StrCat(*timeout / 1'000'000 + 1000, "ms");
  if (!Call("wait", call, "WaitGeneration", q, &r, &status)) return status;
  std::cout << "generation " << r.generation() << "\n";
  return 0;
}

int Events(const CtlFlags& f) {
  int status = 0;
  std::unique_ptr<grpc_module::ControlClient> client =
      Connect("events", f, &status);
  if (client == nullptr) return status;
  fault::v1::WatchEventsRequest q;
  for (const std::string& p : f.policies) q.add_policies(p);
  for (const std::string& e : f.effects) q.add_effects(e);
  // Without --follow: what the run holds, then exit. With it: from --after
  // (or what comes next) until the run ends or an interrupt.
  if (f.after >= 0) {
    q.set_after_sequence(static_cast<uint64_t>(f.after));
  } else if (!f.follow) {
    q.set_after_sequence(0);
  }
  uint64_t dropped = 0, program_dropped = 0;
  grpc_module::CallResult r =
      client->Watch(q.SerializeAsString(), [&](const std::string& bytes) {
        fault::v1::WatchEventsResponse m;
        if (!m.ParseFromString(bytes)) return false;
        for (const fault::v1::Event& e : m.events()) {
          nlohmann::json j = {{"sequence", e.sequence()},
                              {"time_ns", e.time_ns()},
                              {"pid", e.pid()},
                              {"tid", e.tid()},
                              {"layer", e.layer()},
                              {"op", e.op()},
                              {"effect", e.effect()},
                              {"rule", e.policy()},
                              {"target", e.target()},
                              {e.value_key(), e.value()},
                              {"generation", e.generation()}};
          std::cout << j.dump() << "\n";
        }
        if (m.dropped_for_watcher() != dropped ||
            m.dropped_in_program() != program_dropped) {
          dropped = m.dropped_for_watcher();
          program_dropped = m.dropped_in_program();
          std::cerr << "fault ctl events: " << dropped
                    << " events missed by this client, " << program_dropped
                    << " dropped in the program\n";
        }
        std::cout.flush();
        if (!f.follow && m.events_size() < 4096) return false;
        return true;
      });
  if (r.code != 0) {
    std::cerr << "fault ctl events: " << r.message << "\n";
    return kFailed;
  }
  return 0;
}

}  // namespace

void RegisterCtlCommand(CLI::App& app) {
  auto f = std::make_shared<CtlFlags>();
  CLI::App* ctl =
      app.add_subcommand("ctl",
                         "Talk to the control plane of a running "
                         "fault exec --control or fault run --control "
                         "(docs/control.md)");
  ctl->require_subcommand(1);
  // --control and the others may also follow the subcommand.
  ctl->fallthrough();
  ctl->add_option("--control", f->control,
                  "unix:PATH or tcp:HOST:PORT (default: $FAULT_CONTROL)")
      ->type_name("ADDRESS");
  ctl->add_option("--token-file", f->token_file,
                  "The token for a control plane that needs one (default: "
                  "$FAULT_CONTROL_TOKEN_FILE)")
      ->type_name("FILE");
  ctl->add_option("--timeout", f->timeout,
                  "How long a call may take (default 10s)")
      ->type_name("DURATION");
  auto run = [](CLI::App* sub, int (*body)(const CtlFlags&),
                std::shared_ptr<CtlFlags> f) {
    sub->callback([body, f] { ExitStatus() = body(*f); });
  };
  run(ctl->add_subcommand("status",
                          "What runs: program, layers, generation, policies"),
      Status, f);
  CLI::App* policies = ctl->add_subcommand(
      "policies", "The policies in effect with their counters");
  policies->add_flag("--json", f->json, "One JSON array");
  run(policies, Policies, f);
  CLI::App* put = ctl->add_subcommand(
      "put",
      "Add or replace the policies of a policy file (YAML or JSON, as fault "
      "policy "
      "validate reads it); returns once they are in effect");
  put->add_option("file", f->file, "Policy file")->required();
  run(put, Put, f);
  CLI::App* del = ctl->add_subcommand("delete", "Remove one policy");
  del->add_option("name", f->name, "Policy name")->required();
  run(del, Delete, f);
  run(ctl->add_subcommand("clear", "Remove every policy"), Clear, f);
  CLI::App* events = ctl->add_subcommand(
      "events",
      "Print fault events as JSON lines: those the run holds, or with --follow "
      "the ones to come");
  events->add_flag("-f,--follow", f->follow,
                   "Keep printing until the run ends");
  events->add_option("--policy", f->policies,
                     "Only this policy's events; repeatable");
  events->add_option("--effect", f->effects,
                     "Only events of this effect; repeatable");
  events->add_option("--after", f->after, "Start after this sequence number")
      ->type_name("N");
  run(events, Events, f);
  CLI::App* wait = ctl->add_subcommand(
      "wait",
      "Wait until the run's policy table has published GENERATION (--timeout)");
  wait->add_option("generation", f->generation, "Generation")->required();
  run(wait, Wait, f);
}

}  // namespace fault::cli
