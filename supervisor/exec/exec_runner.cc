#include "supervisor/exec/exec_runner.h"

#include <dirent.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "fault/table.h"
#include "shim/engine/engine.h"
#include "supervisor/cli/paths.h"
#include "supervisor/cli/version.h"
#include "supervisor/control/control_listener.h"
#include "supervisor/control/control_plane.h"
#include "supervisor/control/event_convert.h"
#include "supervisor/exec/child_process.h"
#include "supervisor/exec/event_log.h"
#include "supervisor/exec/events_file.h"
#include "supervisor/exec/policy_table.h"
#include "supervisor/exec/run_report.h"
#include "supervisor/exec/table_compiler.h"
#include "supervisor/policy/loader.h"
#include "supervisor/stream/stream_engine.h"

extern char** environ;

namespace fault::exec {
namespace {

// The engine for redirected connections: one loop, listeners on loopback
// advertised in the table.
stream::StreamEngine::Options EngineOptions(fault_table* table,
                                            std::shared_ptr<stream::ProtocolFaultSet> protocol) {
  stream::StreamEngine::Options o;
  o.table = table;
  o.protocol_faults = std::move(protocol);
  return o;
}

// The compiled rules' protocol faults, for the stream engine.
std::map<std::string, std::shared_ptr<const stream::ProtocolFaults>> ProtocolFaultsOf(
    const CompiledTable& compiled) {
  std::map<std::string, std::shared_ptr<const stream::ProtocolFaults>> out;
  for (const CompiledRule& rule : compiled.rules) {
    if (rule.protocol == nullptr) continue;
    auto f = std::make_shared<stream::ProtocolFaults>();
    f->seed = rule.seed;
    f->has_seed = true;
    for (const fault::v1::HttpFault& h : rule.protocol->http_faults()) {
      stream::ProtocolFaults::Http x;
      x.method = h.method();
      x.path = h.path();
      x.status = static_cast<int>(h.status());
      x.body = h.body();
      x.drop = h.drop();
      x.delay_ns = h.delay_ns();
      x.probability_ppm = h.probability_ppm();
      f->http.push_back(std::move(x));
    }
    for (const fault::v1::RedisFault& r : rule.protocol->redis_faults()) {
      stream::ProtocolFaults::Redis x;
      x.commands.assign(r.commands().begin(), r.commands().end());
      x.key = r.key();
      x.error = r.error();
      x.drop = r.drop();
      x.delay_ns = r.delay_ns();
      x.probability_ppm = r.probability_ppm();
      f->redis.push_back(std::move(x));
    }
    for (const fault::v1::PostgresFault& g : rule.protocol->postgres_faults()) {
      stream::ProtocolFaults::Postgres x;
      x.query = g.query();
      x.sqlstate = g.sqlstate();
      x.message = g.message();
      x.drop = g.drop();
      x.delay_ns = g.delay_ns();
      x.probability_ppm = g.probability_ppm();
      f->postgres.push_back(std::move(x));
    }
    out[rule.name] = std::move(f);
  }
  return out;
}

// The event ring is drained every kDrainMinIntervalNs while events arrive.
// While it stays empty the interval doubles up to kDrainMaxIntervalNs, so an
// idle supervisor wakes ten times a second rather than a hundred and takes
// next to no CPU time from the program; the first drain that finds events
// goes back to the short interval. The ring holds FAULT_EVENT_RING_SIZE
// (8192) events: at the long interval a burst fills it only above ~80,000
// faults a second, and the summary reports any drops.
constexpr int64_t kDrainMinIntervalNs = 10'000'000;
constexpr int64_t kDrainMaxIntervalNs = 100'000'000;
// How long the stream engine may go on delivering what the programs sent
// before they exited.
constexpr int64_t kEngineFlushTimeoutNs = 60'000'000'000;

// The control plane's threads wake the runner thread with this signal
// (thread-directed, blocked and taken with sigtimedwait like the others). Its
// default action is to be ignored, so one that reached another thread would
// be harmless; programs never get it from fault.
constexpr int kControlSignal = SIGURG;

// Signals sent to `fault` that the program gets too.
constexpr int kForwarded[] = {SIGHUP,  SIGINT,  SIGQUIT, SIGTERM, SIGUSR1,
                              SIGUSR2, SIGALRM, SIGWINCH, SIGCONT};

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

// Everything about one published generation the supervisor keeps.
struct Generation {
  CompiledTable compiled;
  std::vector<std::string> names;
  std::vector<uint16_t> syscall_owner;
};

// "exited with status 1", "was killed by SIGKILL": how a reaped process ended.
std::string HowItEnded(int wait_status) {
  if (WIFSIGNALED(wait_status)) return "was killed by " + SignalName(WTERMSIG(wait_status));
  return absl::StrCat("exited with status ", WEXITSTATUS(wait_status));
}

// When this process already runs under `fault exec` (its environment names a
// policy table that is still there), the variable that says so, e.g.
// "FAULT_TABLE=/proc/4242/fd/3"; "" otherwise. A variable naming a table
// that is gone (its run ended) does not count.
std::string EnclosingRun() {
  if (const char* path = getenv(FAULT_ENV_TABLE);
      path != nullptr && *path != 0) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      struct stat st;
      bool table = fstat(fd, &st) == 0 &&
                   st.st_size >= static_cast<off_t>(sizeof(fault_table));
      close(fd);
      if (table) return absl::StrCat(FAULT_ENV_TABLE, "=", path);
    }
  }
  if (const char* fd = getenv(FAULT_ENV_TABLE_FD); fd != nullptr && *fd != 0) {
    char target[64] = {};
    std::string link = absl::StrCat("/proc/self/fd/", fd);
    ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
    if (n > 0 && absl::StrContains(target, "fault-policy-table")) {
      return absl::StrCat(FAULT_ENV_TABLE_FD, "=", fd);
    }
  }
  return "";
}

Generation Describe(CompiledTable compiled) {
  Generation g;
  for (const CompiledRule& r : compiled.rules) g.names.push_back(r.name);
  for (uint32_t j = 0; j < compiled.config->n_syscall_rules; ++j) {
    g.syscall_owner.push_back(compiled.config->syscall_rules[j].rule);
  }
  g.compiled = std::move(compiled);
  return g;
}

class Runner : private fault::control::ControlledRun {
 public:
  Runner(const ExecOptions& options, std::ostream& err) : o_(options), err_(err) {}
  int Run();

 private:
  // `first`: the run's first load (may use ExecOptions::selected). The
  // control plane's changes apply on top of what the command line gives.
  absl::StatusOr<CompiledTable> Compile(std::optional<uint64_t> seed, bool first = false);
  absl::StatusOr<CompiledTable> CompileSet(const fault::v1::PolicySet& set,
                                           std::optional<uint64_t> seed);
  // Makes `compiled` the current generation: drains the old one's events,
  // publishes, and returns the new generation.
  uint64_t Install(CompiledTable compiled);
  // --control: loads the gRPC module and starts serving; false (said on
  // err_) when it cannot.
  bool StartControl();
  // Ends the control plane (calls, streams, the socket). Idempotent.
  void StopControl();
  // The variables that tell the programs where the control plane is.
  void AddControlEnvironment(std::vector<std::string>* env) const;
  // fault::control::ControlledRun (on this thread, from Serve()).
  fault::v1::PolicySet BasePolicies() override { return base_; }
  absl::StatusOr<uint64_t> Publish(const fault::v1::PolicySet& set) override;
  fault::v1::StatusResponse Status() override;
  std::vector<fault::v1::RuleCounters> Counters() override;
  std::vector<std::string> CurrentNames() override { return current_.names; }
  void Warn(const std::vector<std::string>& warnings);
  void Drain(bool final);
  void Reload();
  absl::Status CheckLayerFamilies(const fault_config& config) const;
  void FoldCounters();
  int Finish(int wait_status);
  std::vector<ExecLayer*> AllLayers() const;
  // Reaps a companion that exited, says so once.
  void NoteCompanionExit(pid_t pid, int wait_status);
  // Waits for --wait-for targets; "" when all accept, else why not. A
  // terminating signal meanwhile sets *signal_out.
  std::string WaitForTargets(const sigset_t& waited, int* signal_out);
  // SIGTERM to each running companion's group, SIGKILL after a grace period.
  void StopCompanions();
  // When the event ring is drained next: every kDrainMinIntervalNs while
  // events arrive, doubling up to kDrainMaxIntervalNs while it stays empty.
  struct DrainPacing {
    int64_t interval;
    int64_t next;
  };
  // Drains the ring if it is time, then waits for one of `waited` until
  // the next drain. Returns the signal (0 or less: none came).
  int DrainAndWait(const sigset_t& waited, DrainPacing* pacing, siginfo_t* info);
  // Starts the stream engine when `config` has network rules and it is not
  // running yet (warns once if it cannot start).
  void StartEngineFor(const fault_config& config);
  // Lets the stream engine pass on what the programs sent before they
  // exited (as the kernel delivers a closed socket's buffer), then stops it.
  void FinishEngine();
  // After the program ended: while processes it started still run (they are
  // fault's children now, or descend from them), says so once, keeps
  // draining events, forwards signals to them and reaps them.
  void FollowDescendants(const sigset_t& waited, int program_status);

  struct LiveCompanion {
    const CompanionProgram* program;
    pid_t pid;
    bool running;
  };
  std::vector<LiveCompanion> companions_;
  bool stopping_companions_ = false;

  const ExecOptions& o_;
  std::ostream& err_;
  RandomSeedSource random_;
  std::set<std::string> warned_;
  std::unique_ptr<PolicyTable> table_;
  std::unique_ptr<stream::StreamEngine> engine_;
  // The current rules' protocol faults, shared with the engine.
  std::shared_ptr<stream::ProtocolFaultSet> protocol_faults_ =
      std::make_shared<stream::ProtocolFaultSet>();  // null until a network rule
  bool engine_failed_ = false;                     // warned once, not retried
  // The rule names of every generation published in this run (events carry
  // the generation they were decided under).
  std::map<uint32_t, std::shared_ptr<const std::vector<std::string>>> names_by_generation_;
  // The policies the command line gives, as last loaded.
  fault::v1::PolicySet base_;
  // --control.
  std::unique_ptr<fault::control::ControlPlane> control_;
  std::unique_ptr<fault::control::ControlListener> control_listener_;
  pid_t runner_tid_ = 0;
  pid_t program_pid_ = 0;
  bool program_running_ = false;
  int64_t start_ns_ = 0;
  uint64_t generation_ = 0;  // the table's current one
  Generation current_;
  CounterSnapshot baseline_;
  RunReport report_;
  std::optional<EventsFile> events_;
  uint64_t events_written_ = 0;  // drained from the ring (the summary's count)
  bool events_failure_reported_ = false;
  std::optional<uint64_t> run_seed_;
  bool run_seed_random_ = false;
};

absl::StatusOr<CompiledTable> Runner::Compile(std::optional<uint64_t> seed,
                                              bool first) {
  std::vector<std::string> warnings;
  absl::StatusOr<fault::v1::PolicySet> set;
  if (first && o_.selected.has_value()) {
    set = *o_.selected;
    warnings = o_.selected_warnings;
  } else {
    set = SelectPolicies(o_, &warnings);
  }
  if (!set.ok()) return set.status();
  base_ = *set;
  if (control_ != nullptr) *set = control_->overlay().Apply(base_);
  absl::StatusOr<CompiledTable> compiled = CompileSet(*set, seed);
  if (compiled.ok()) Warn(warnings);
  return compiled;
}

absl::StatusOr<CompiledTable> Runner::CompileSet(const fault::v1::PolicySet& set,
                                                 std::optional<uint64_t> seed) {
  CompileOptions c;
  c.global_seed = seed;
  c.seeds = o_.seeds != nullptr ? o_.seeds : &random_;
  c.run_duration_ns = o_.run_duration_ns;
  c.activate = !o_.scopes_only;
  for (ExecLayer* layer : AllLayers()) c.families_mask |= layer->families_mask();
  return CompileTable(set, c);
}

void Runner::Warn(const std::vector<std::string>& warnings) {
  for (const std::string& w : warnings) {
    if (warned_.insert(w).second) err_ << "fault: warning: " << w << "\n";
  }
}

void Runner::Drain(bool final) {
  std::vector<fault_event> events;
  table_->DrainEvents(&events, final);
  std::vector<std::string> lines;
  for (const fault_event& e : events) {
    // Named by the rules of the generation it was decided under: a reload
    // may have renumbered them since.
    auto gen = names_by_generation_.find(e.generation);
    const std::vector<std::string>& names =
        gen != names_by_generation_.end() ? *gen->second : current_.names;
    report_.AddEvent(e, names);
    if (events_.has_value()) {
      lines.push_back(EventToJson(e, names).dump() + "\n");
    }
    ++events_written_;
  }
  if (control_ != nullptr) {
    std::vector<fault::control::HubEvent> hub;
    hub.reserve(events.size());
    for (const fault_event& e : events) {
      auto gen = names_by_generation_.find(e.generation);
      hub.push_back({0, e,
                     gen != names_by_generation_.end()
                         ? gen->second
                         : std::make_shared<const std::vector<std::string>>(current_.names)});
    }
    control_->hub().Publish(std::move(hub), table_->dropped_events());
  }
  if (!events_.has_value()) return;
  events_->Append(lines);
  if (events_->failed() && !events_failure_reported_) {
    events_failure_reported_ = true;
    err_ << "fault: writing --events " << o_.events_path << ": " << events_->error()
         << "; no further events are written and the run will fail (exit status "
         << kExitEventsLost << ")\n";
  }
}

void Runner::FoldCounters() {
  CounterSnapshot now = table_->ReadCounters();
  report_.AddCounters(now, baseline_);
  baseline_ = std::move(now);
}

absl::Status Runner::CheckLayerFamilies(const fault_config& config) const {
  auto names_of = [](uint64_t mask) {
    std::vector<std::string> names;
    for (int f = 1; f < engine::kFamilyCount; ++f) {
      if (mask & engine::FamilyBit(f)) names.push_back(engine::FamilyName(f));
    }
    return absl::StrJoin(names, ", ");
  };
  // A program without a layer besides the shim would silently run without
  // these rules: the shim cannot apply them.
  if (uint64_t only = SyscallFamiliesMask(config) & engine::SeccompOnlyFamilies()) {
    bool all = !o_.layers.empty();
    for (const CompanionProgram& c : o_.companions) all = all && !c.layers.empty();
    if (!all) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the new policies fault ", names_of(only),
          ", which only the seccomp layer applies, and this run was started without it "
          "(restart the run to add them)"));
    }
  }
  if (config.n_partitions != 0) {
    // Every program must be under a layer that applies partitions.
    auto covered = [](const std::vector<ExecLayer*>& layers) {
      for (ExecLayer* layer : layers) {
        if (layer->handles_partitions()) return true;
      }
      return false;
    };
    bool all = covered(o_.layers);
    for (const CompanionProgram& c : o_.companions) all = all && covered(c.layers);
    if (!all) {
      return absl::FailedPreconditionError(
          "the new policies add partitions, which this run was not set up for (the "
          "programs must be named and under the seccomp layer from the start)");
    }
  }
  for (ExecLayer* layer : AllLayers()) {
    uint64_t need = SyscallFamiliesMask(config);
    if (config.n_partitions != 0)
      need |= engine::FamilyBit(engine::kFamilyConnect) | engine::FamilyBit(engine::kFamilySend);
    uint64_t missing = need & ~layer->families_mask();
    if (missing == 0) continue;
    return absl::FailedPreconditionError(absl::StrCat(
        "the ", layer->name(), " layer was set up for other syscall families; the new "
        "policies add ", names_of(missing), " (restart the run to add them)"));
  }
  return absl::OkStatus();
}

void Runner::Reload() {
  absl::StatusOr<CompiledTable> compiled = Compile(o_.seed ? o_.seed : run_seed_);
  if (!compiled.ok()) {
    err_ << "fault: reload failed, keeping the previous policies: "
         << Msg(compiled.status()) << "\n";
    return;
  }
  // A layer with a filter built at start (seccomp) cannot take on syscall
  // families it was not built for: refuse rather than silently not apply.
  if (absl::Status s = CheckLayerFamilies(*compiled->config); !s.ok()) {
    err_ << "fault: reload failed, keeping the previous policies: " << Msg(s) << "\n";
    return;
  }
  uint64_t generation = Install(std::move(*compiled));
  // Also with --quiet: whoever sent the signal learns here that the new
  // policies are in force (`fault test` waits for this line).
  err_ << "fault: reloaded " << current_.names.size() << " "
       << (current_.names.size() == 1 ? "policy" : "policies") << " (generation "
       << generation << ")\n";
}

uint64_t Runner::Install(CompiledTable compiled) {
  // Events and counters so far belong to the old rules.
  Drain(false);
  FoldCounters();
  current_ = Describe(std::move(compiled));
  // Before the publish: a program's shim that sees the new rules finds the
  // engine's ports in the table already.
  protocol_faults_->Set(ProtocolFaultsOf(current_.compiled));
  StartEngineFor(*current_.compiled.config);
  uint64_t generation = table_->Publish(*current_.compiled.config);
  generation_ = generation;
  names_by_generation_[static_cast<uint32_t>(generation)] =
      std::make_shared<const std::vector<std::string>>(current_.names);
  baseline_ = table_->ReadCounters();
  report_.BeginGeneration(current_.names, current_.syscall_owner);
  if (control_ != nullptr) control_->Published(generation);
  return generation;
}

absl::StatusOr<uint64_t> Runner::Publish(const fault::v1::PolicySet& set) {
  if (absl::Status s = RefuseProxyOnlyPolicies(set); !s.ok()) return s;
  absl::StatusOr<CompiledTable> compiled = CompileSet(set, o_.seed ? o_.seed : run_seed_);
  if (!compiled.ok()) {
    return absl::InvalidArgumentError(compiled.status().message());
  }
  if (absl::Status s = CheckLayerFamilies(*compiled->config); !s.ok()) return s;
  uint64_t generation = Install(std::move(*compiled));
  if (!o_.quiet) {
    err_ << "fault: control: " << current_.names.size() << " "
         << (current_.names.size() == 1 ? "policy" : "policies") << " in effect (generation "
         << generation << ")\n";
  }
  return generation;
}

fault::v1::StatusResponse Runner::Status() {
  fault::v1::StatusResponse r;
  for (const std::string& a : o_.command) r.add_command(a);
  r.set_pid(static_cast<uint32_t>(program_pid_));
  r.set_supervisor_pid(static_cast<uint32_t>(getpid()));
  std::set<std::string> seen;
  auto layer = [&](const std::string& name) {
    if (seen.insert(name).second) r.add_layers(name);
  };
  if (o_.preload_shim) layer("shim");
  for (ExecLayer* l : AllLayers()) layer(l->name());
  r.set_uptime_ns(MonotonicNowNs() - start_ns_);
  r.set_events(events_written_);
  r.set_events_dropped(table_->dropped_events());
  r.set_version(FAULT_VERSION_STRING);
  r.set_running(program_running_);
  return r;
}

std::vector<fault::v1::RuleCounters> Runner::Counters() {
  FoldCounters();
  return report_.Counters();
}

bool Runner::StartControl() {
  if (!o_.control.has_value()) return true;
  runner_tid_ = static_cast<pid_t>(syscall(SYS_gettid));
  const pid_t pid = getpid(), tid = runner_tid_;
  control_ = std::make_unique<fault::control::ControlPlane>(
      [pid, tid] { syscall(SYS_tgkill, pid, tid, kControlSignal); },
      fault::control::ConvertEvent, fault::control::EffectNumber);
  absl::StatusOr<std::unique_ptr<fault::control::ControlListener>> listener =
      fault::control::ControlListener::Start(*o_.control, o_.control_token, control_.get());
  if (!listener.ok()) {
    err_ << "fault exec: --control " << o_.control->Text() << ": " << Msg(listener.status())
         << "\n";
    control_.reset();
    return false;
  }
  control_listener_ = *std::move(listener);
  control_->Published(generation_);
  if (!o_.quiet) {
    err_ << "fault: control plane on " << control_listener_->endpoint().Text()
         << " (FAULT_CONTROL)\n";
  }
  return true;
}

void Runner::StopControl() {
  if (control_ != nullptr) control_->Stop();
  if (control_listener_ != nullptr) control_listener_->Stop();
}

void Runner::AddControlEnvironment(std::vector<std::string>* env) const {
  if (control_listener_ == nullptr) return;
  const std::string control = absl::StrCat(fault::control::kEnvControl, "=");
  const std::string token = absl::StrCat(fault::control::kEnvControlTokenFile, "=");
  std::erase_if(*env, [&](const std::string& v) {
    return absl::StartsWith(v, control) || absl::StartsWith(v, token);
  });
  env->push_back(control + control_listener_->endpoint().Text());
  if (!o_.control_token_file.empty()) env->push_back(token + o_.control_token_file);
}

int Runner::Run() {
  start_ns_ = MonotonicNowNs();
  if (o_.command.empty()) {
    err_ << "fault exec: no program given (usage: fault exec [options] -- PROGRAM "
            "ARGS...)\n";
    return kExitUsage;
  }
  // The inner run would give its program a table of its own, and the outer
  // run would neither apply its policies there nor see the events: refuse
  // rather than silently replace the outer policies.
  if (std::string outer = EnclosingRun(); !outer.empty()) {
    err_ << "fault exec: already running under fault exec (" << outer
         << "); nested runs are refused: run the program directly (the outer "
            "run's "
            "policies apply to it), or unset FAULT_TABLE, FAULT_TABLE_FD and "
            "LD_PRELOAD to start a separate run\n";
    return kExitUsage;
  }
  std::string shim = o_.shim_path;
  if (!o_.preload_shim) {
    shim.clear();
  } else if (shim.empty()) {
    shim = fault::cli::FindShimLibrary();
    if (shim.empty()) {
      err_ << "fault exec: cannot find libfault_shim.so (looked in $FAULT_SHIM, "
              "../lib next to the fault binary, /usr/local/lib/fault and "
              "/usr/lib/fault); pass --shim PATH\n";
      return kExitUsage;
    }
  } else if (access(shim.c_str(), R_OK) != 0) {
    err_ << "fault exec: --shim " << shim << ": " << std::strerror(errno) << "\n";
    return kExitUsage;
  }
  absl::StatusOr<CompiledTable> compiled = Compile(o_.seed, /*first=*/true);
  if (!compiled.ok()) {
    err_ << "fault exec: " << Msg(compiled.status()) << "\n";
    return kExitUsage;
  }
  run_seed_ = compiled->run_seed;
  run_seed_random_ = compiled->run_seed_random;
  current_ = Describe(std::move(*compiled));
  protocol_faults_->Set(ProtocolFaultsOf(current_.compiled));

  absl::StatusOr<std::string> path = ResolveProgram(o_.command[0], getenv("PATH"));
  if (!path.ok()) {
    err_ << "fault exec: " << Msg(path.status()) << "\n";
    return kExitNotFound;
  }
  std::vector<std::string> companion_paths;
  for (const CompanionProgram& c : o_.companions) {
    absl::StatusOr<std::string> p =
        c.command.empty() ? absl::NotFoundError("empty command")
                          : ResolveProgram(c.command[0], getenv("PATH"));
    if (!p.ok()) {
      err_ << "fault exec: --with " << c.name << ": " << Msg(p.status()) << "\n";
      return kExitNotFound;
    }
    companion_paths.push_back(*p);
  }
  if (!o_.events_path.empty()) {
    absl::StatusOr<EventsFile> file = EventsFile::Open(o_.events_path);
    if (!file.ok()) {
      err_ << "fault exec: --events " << o_.events_path << ": "
           << file.status().message() << "\n";
      return kExitUsage;
    }
    events_.emplace(*std::move(file));
  }
  auto close_events = [this] {
    if (events_.has_value()) events_->Close();
  };

  absl::StatusOr<std::unique_ptr<PolicyTable>> table =
      PolicyTable::Create({.start_ns = MonotonicNowNs(), .stub_page = kStubPageAddress});
  if (!table.ok()) {
    err_ << "fault exec: creating the policy table: " << Msg(table.status()) << "\n";
    close_events();
    return kExitInternal;
  }
  table_ = std::move(*table);
  const std::string table_path = TablePath(getpid(), table_->fd());
  generation_ = table_->Publish(*current_.compiled.config);
  names_by_generation_[static_cast<uint32_t>(generation_)] =
      std::make_shared<const std::vector<std::string>>(current_.names);
  StartEngineFor(*current_.compiled.config);
  baseline_ = table_->ReadCounters();
  report_.BeginGeneration(current_.names, current_.syscall_owner);
  if (absl::Status s = CheckLayerFamilies(*current_.compiled.config); !s.ok()) {
    err_ << "fault exec: " << Msg(s) << "\n";
    close_events();
    return kExitUsage;
  }

  std::vector<ExecLayer*> prepared;
  auto stop_layers = [&prepared] {
    for (ExecLayer* layer : prepared) layer->Stop();
  };
  for (ExecLayer* layer : AllLayers()) {
    if (absl::Status s = layer->Prepare(table_.get()); !s.ok()) {
      err_ << "fault exec: layer " << layer->name() << ": " << Msg(s) << "\n";
      stop_layers();
      close_events();
      return kExitUsage;
    }
    prepared.push_back(layer);
  }

  // Processes the program leaves behind (a daemon's double fork) become
  // fault's children rather than init's, so that the run can follow them.
  prctl(PR_SET_CHILD_SUBREAPER, 1);

  sigset_t waited, original;
  sigemptyset(&waited);
  sigaddset(&waited, SIGCHLD);
  for (int sig : kForwarded) sigaddset(&waited, sig);
  if (o_.reload_signal != 0) sigaddset(&waited, o_.reload_signal);
  if (o_.control.has_value()) sigaddset(&waited, kControlSignal);
  pthread_sigmask(SIG_BLOCK, &waited, &original);

  auto give_up = [&](int status) {
    StopControl();
    StopCompanions();
    stop_layers();
    engine_.reset();
    pthread_sigmask(SIG_SETMASK, &original, nullptr);
    Drain(true);
    close_events();
    return status;
  };

  // After the mask: the server's threads inherit it, so the signals the
  // runner waits for never reach them.
  if (!StartControl()) return give_up(kExitUsage);

  for (size_t i = 0; i < o_.companions.size(); ++i) {
    const CompanionProgram& c = o_.companions[i];
    SpawnRequest request;
    request.path = companion_paths[i];
    request.argv = c.command;
    request.env =
        BuildChildEnvironment(environ, c.preload_shim ? shim : std::string(),
                              table_path, kStubPageAddress);
    AddControlEnvironment(&request.env);
    request.child_mask = original;
    request.layers = c.layers;
    request.new_process_group = true;
    request.die_with_parent = true;  // never outlive a killed supervisor
    absl::StatusOr<pid_t> pid = Spawn(request);
    if (!pid.ok()) {
      err_ << "fault exec: --with " << c.name << ": " << Msg(pid.status()) << "\n";
      return give_up(absl::IsNotFound(pid.status()) ? kExitNotFound : kExitCannotExecute);
    }
    companions_.push_back({&c, *pid, true});
    for (ExecLayer* layer : c.layers) {
      if (absl::Status s = layer->Started(*pid); !s.ok()) {
        err_ << "fault: layer " << layer->name() << " of " << c.name << ": " << Msg(s)
             << " (the program runs without it)\n";
      }
    }
  }
  if (!o_.wait_for.empty()) {
    int signal = 0;
    if (std::string why = WaitForTargets(waited, &signal); !why.empty()) {
      err_ << "fault exec: " << why << "\n";
      return give_up(signal != 0 ? 128 + signal : kExitInternal);
    }
  }

  SpawnRequest request;
  request.path = *path;
  request.argv = o_.command;
  request.env =
      BuildChildEnvironment(environ, shim, table_path, kStubPageAddress);
  AddControlEnvironment(&request.env);
  request.child_mask = original;
  request.layers = o_.layers;
  // Under a seccomp filter the program cannot run on correctly without us
  // (its covered syscalls would fail with ENOSYS): it dies with us instead.
  // Spawn forks from this, the main thread, so the death signal is tied to
  // the process's lifetime, not to a helper thread's; and the filter sets
  // NO_NEW_PRIVS, so an execve of a setuid program does not clear it.
  for (const ExecLayer* layer : o_.layers) {
    request.die_with_parent |= layer->needs_live_supervisor();
  }
  absl::StatusOr<pid_t> child = Spawn(request);
  if (!child.ok()) {
    err_ << "fault exec: " << Msg(child.status()) << "\n";
    return give_up(absl::IsNotFound(child.status()) ? kExitNotFound : kExitCannotExecute);
  }
  program_pid_ = *child;
  program_running_ = true;
  for (ExecLayer* layer : o_.layers) {
    if (absl::Status s = layer->Started(*child); !s.ok()) {
      err_ << "fault: layer " << layer->name() << ": " << Msg(s)
           << " (the program runs without it)\n";
    }
  }

  int wait_status = 0;
  DrainPacing pacing{kDrainMinIntervalNs, MonotonicNowNs() + kDrainMinIntervalNs};
  for (;;) {
    bool child_done = false;
    int st = 0;
    pid_t done;
    // Also reaps the program's orphans, which this subreaper inherits.
    while ((done = waitpid(-1, &st, WNOHANG)) > 0) {
      if (done == *child) {
        wait_status = st;
        child_done = true;
        program_running_ = false;
      } else {
        NoteCompanionExit(done, st);
      }
    }
    if (child_done) break;
    siginfo_t info;
    int sig = DrainAndWait(waited, &pacing, &info);
    if (sig <= 0 || sig == SIGCHLD) continue;
    if (sig == kControlSignal && control_ != nullptr) {
      control_->Serve(this);
      continue;
    }
    if (sig == o_.reload_signal) {
      Reload();
      continue;
    }
    // A terminal sends its signals to the whole foreground process group,
    // the program included: forwarding those would deliver them twice.
    if (info.si_code == SI_KERNEL) continue;
    kill(*child, sig);
    for (const LiveCompanion& c : companions_) {
      if (c.running) kill(-c.pid, sig);
    }
  }
  StopCompanions();
  FollowDescendants(waited, wait_status);
  stop_layers();
  FinishEngine();
  pthread_sigmask(SIG_SETMASK, &original, nullptr);
  Drain(true);
  FoldCounters();
  StopControl();
  close_events();
  return Finish(wait_status);
}

int Runner::DrainAndWait(const sigset_t& waited, DrainPacing* pacing, siginfo_t* info) {
  int64_t now = MonotonicNowNs();
  if (now >= pacing->next) {
    uint64_t before = events_written_;
    Drain(false);
    // While someone follows the events (WatchEvents), the short interval
    // holds even when idle: the first event after a quiet spell reaches
    // them within it, and a burst finds an empty ring.
    const bool watched = control_ != nullptr && control_->hub().watchers() > 0;
    pacing->interval = events_written_ != before || watched
                           ? kDrainMinIntervalNs
                           : std::min(2 * pacing->interval, kDrainMaxIntervalNs);
    pacing->next = now + pacing->interval;
  }
  int64_t wait_ns = std::max<int64_t>(pacing->next - now, 1);
  timespec timeout{wait_ns / 1000000000, wait_ns % 1000000000};
  return sigtimedwait(&waited, info, &timeout);
}

void Runner::StartEngineFor(const fault_config& config) {
  // Connections that a network rule selects are handed to the stream
  // engine, which applies their effects on real sockets (docs/exec.md).
  // Without network rules nothing is ever handed to it: it is started with
  // the first configuration that has some (at start or on a reload), which
  // keeps its sockets and thread out of the start of every other run.
  if (engine_ != nullptr || engine_failed_ || config.n_rules == 0) return;
  absl::StatusOr<std::unique_ptr<stream::StreamEngine>> engine =
      stream::StreamEngine::Start(EngineOptions(table_->table(), protocol_faults_));
  if (engine.ok()) {
    engine_ = std::move(*engine);
    return;
  }
  engine_failed_ = true;
  err_ << "fault: warning: the stream engine did not start (" << Msg(engine.status())
       << "); network effects are applied inside the program's calls, where an "
          "event loop may not see them\n";
}

void Runner::FinishEngine() {
  if (engine_ == nullptr) return;
  size_t cut = engine_->Finish(kEngineFlushTimeoutNs);
  if (cut > 0) {
    err_ << "fault: " << cut << " connection(s) still had bytes in flight when the program "
         << "exited and their far end stopped taking them (or after "
         << kEngineFlushTimeoutNs / 1'000'000'000 << " s); cut short\n";
  }
  engine_.reset();
}

std::vector<ExecLayer*> Runner::AllLayers() const {
  std::vector<ExecLayer*> all = o_.layers;
  for (const CompanionProgram& c : o_.companions) {
    all.insert(all.end(), c.layers.begin(), c.layers.end());
  }
  return all;
}

void Runner::NoteCompanionExit(pid_t pid, int wait_status) {
  for (LiveCompanion& c : companions_) {
    if (c.pid != pid || !c.running) continue;
    c.running = false;
    if (stopping_companions_) return;  // even with --quiet: not part of the summary
    err_ << "fault: " << c.program->name << " (--with, pid " << pid << ") "
         << HowItEnded(wait_status) << "\n";
    return;
  }
}

std::string Runner::WaitForTargets(const sigset_t& waited, int* signal_out) {
  const int64_t deadline = MonotonicNowNs() + o_.wait_timeout_ns;
  for (const WaitTarget& t : o_.wait_for) {
    // Resolved once; then only connects are retried.
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* res = nullptr;
    const std::string port = std::to_string(t.port);
    int gai = getaddrinfo(t.host.c_str(), port.c_str(), &hints, &res);
    if (gai != 0) return absl::StrCat("--wait-for ", t.text, ": ", gai_strerror(gai));
    std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses(res, &freeaddrinfo);
    for (;;) {
      bool up = false;
      for (addrinfo* a = addresses.get(); a != nullptr && !up; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        up = connect(fd, a->ai_addr, a->ai_addrlen) == 0;
        close(fd);
      }
      if (up) break;
      for (LiveCompanion& c : companions_) {
        int st = 0;
        if (c.running && waitpid(c.pid, &st, WNOHANG) == c.pid) {
          c.running = false;
          return absl::StrCat("--wait-for ", t.text, ": ", c.program->name, " ",
                              HowItEnded(st), " before anything accepted connections there");
        }
      }
      const int64_t now = MonotonicNowNs();
      if (now >= deadline) {
        return absl::StrCat("--wait-for ", t.text, ": nothing accepted connections within ",
                            o_.wait_timeout_ns / 1'000'000, " ms");
      }
      const int64_t nap = std::min<int64_t>(deadline - now, 50'000'000);
      timespec timeout{nap / 1000000000, nap % 1000000000};
      siginfo_t info;
      int sig = sigtimedwait(&waited, &info, &timeout);
      if (sig == kControlSignal && control_ != nullptr) {
        control_->Serve(this);
      } else if (sig > 0 && sig == o_.reload_signal) {
        Reload();
      } else if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP || sig == SIGQUIT) {
        *signal_out = sig;
        return absl::StrCat("--wait-for ", t.text, ": interrupted by ", SignalName(sig));
      }
    }
  }
  return "";
}

// The pids of this process's children, from /proc/self/task/*/children
// (any thread may be the parent an orphan is given to).
std::vector<pid_t> ChildPids() {
  std::vector<pid_t> pids;
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return pids;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::string path = absl::StrCat("/proc/self/task/", e->d_name, "/children");
    FILE* f = std::fopen(path.c_str(), "re");
    if (f == nullptr) continue;
    long pid;
    while (std::fscanf(f, "%ld", &pid) == 1)
      pids.push_back(static_cast<pid_t>(pid));
    std::fclose(f);
  }
  closedir(dir);
  std::sort(pids.begin(), pids.end());
  pids.erase(std::unique(pids.begin(), pids.end()), pids.end());
  return pids;
}

void Runner::FollowDescendants(const sigset_t& waited, int program_status) {
  // True while some child is left. A subreaper with no children has no
  // descendants either: every orphan is handed to it.
  auto reap = [] {
    pid_t done;
    int st;
    while ((done = waitpid(-1, &st, WNOHANG)) > 0) {
    }
    return done == 0;
  };
  // A short grace for processes already on their way out (a companion's
  // group just killed, a shell's last child).
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  for (int step = 0; step < 10 && reap(); ++step) {
    timespec nap{0, 10'000'000};
    sigtimedwait(&chld, nullptr, &nap);
  }
  if (!reap()) return;
  std::vector<pid_t> left = ChildPids();
  std::vector<std::string> pids;
  for (pid_t p : left) pids.push_back(std::to_string(p));
  err_ << "fault: the program " << HowItEnded(program_status) << "; "
       << (left.size() == 1
               ? "1 process it started is"
               : absl::StrCat(left.size(), " processes it started are"))
       << " still running (pid " << absl::StrJoin(pids, ", ")
       << "): following until they end (SIGINT or SIGTERM to fault is passed "
          "on to them; "
          "a second one kills them)\n";
  err_.flush();
  int terminations = 0;
  DrainPacing pacing{kDrainMinIntervalNs, MonotonicNowNs()};
  const pid_t own_group = getpgrp();
  while (reap()) {
    siginfo_t info;
    int sig = DrainAndWait(waited, &pacing, &info);
    if (sig <= 0 || sig == SIGCHLD) continue;
    if (sig == kControlSignal && control_ != nullptr) {
      control_->Serve(this);
      continue;
    }
    if (sig == o_.reload_signal) {
      Reload();
      continue;
    }
    const bool terminating =
        sig == SIGINT || sig == SIGTERM || sig == SIGHUP || sig == SIGQUIT;
    if (terminating && ++terminations >= 2) sig = SIGKILL;
    for (pid_t p : ChildPids()) {
      // The terminal's signals reached those in fault's own group already.
      if (info.si_code == SI_KERNEL && sig != SIGKILL &&
          getpgid(p) == own_group)
        continue;
      kill(p, sig);
    }
  }
}

void Runner::StopCompanions() {
  stopping_companions_ = true;
  auto reap = [this] {
    bool any = false;
    for (LiveCompanion& c : companions_) {
      int st = 0;
      if (c.running && waitpid(c.pid, &st, WNOHANG) == c.pid) c.running = false;
      any = any || c.running;
    }
    return any;
  };
  for (const LiveCompanion& c : companions_) {
    if (!c.running) continue;
    kill(-c.pid, SIGTERM);
    kill(c.pid, SIGTERM);
  }
  // Up to 3 s for a clean exit, in bounded steps.
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  for (int step = 0; step < 150 && reap(); ++step) {
    timespec nap{0, 20'000'000};
    sigtimedwait(&chld, nullptr, &nap);
  }
  for (LiveCompanion& c : companions_) {
    if (!c.running) continue;
    kill(-c.pid, SIGKILL);
    kill(c.pid, SIGKILL);
    int st = 0;
    while (waitpid(c.pid, &st, 0) < 0 && errno == EINTR) {
    }
    c.running = false;
  }
  // Whatever else of the groups is left (a companion's children).
  for (const LiveCompanion& c : companions_) kill(-c.pid, SIGKILL);
}

int Runner::Finish(int wait_status) {
  int status = 0;
  if (WIFEXITED(wait_status)) status = WEXITSTATUS(wait_status);
  if (!o_.quiet) {
    SummaryInfo info;
    info.events = events_written_;
    info.events_lost = events_.has_value() ? events_->lost() : 0;
    info.dropped = table_->dropped_events();
    info.incomplete = table_->incomplete_events();
    info.has_run_seed = run_seed_.has_value();
    info.run_seed = run_seed_.value_or(0);
    info.run_seed_random = run_seed_random_;
    info.blind_spots = o_.blind_spots;
    bool shim_expected = o_.preload_shim;
    for (const CompanionProgram& c : o_.companions) shim_expected |= c.preload_shim;
    if (shim_expected && __atomic_load_n(&table_->table()->attached, __ATOMIC_RELAXED) == 0) {
      info.blind_spots.push_back(
          "no process of the run loaded the preload shim (its environment lost LD_PRELOAD or "
          "FAULT_TABLE, or it could not open the table)");
    }
    err_ << report_.Summary(info);
  }
  // A run whose record of what it injected is incomplete has failed, even
  // when the program succeeded (a failing program's own status wins, as it
  // says more).
  bool events_lost = events_.has_value() && events_->failed();
  if (events_lost) {
    if (events_->close_failed()) {
      err_ << "fault exec: --events " << o_.events_path << ": " << events_->error()
           << "; the " << events_->written()
           << " events written may not all be in the file\n";
    } else {
      err_ << "fault exec: --events " << o_.events_path << ": " << events_->error()
           << "; " << events_->lost() << " of " << events_written_
           << " events are missing from the file\n";
    }
    if (WIFEXITED(wait_status) && status == 0) status = kExitEventsLost;
  }
  if (o_.expect_faults) {
    std::vector<std::string> never = report_.NeverFired();
    bool none_loaded = report_.stats().empty();
    if (none_loaded) err_ << "fault: --expect-faults: no policies were loaded\n";
    std::erase_if(never, [&](const std::string& n) {
      return std::any_of(o_.added_policies.begin(), o_.added_policies.end(),
                         [&](const fault::v1::Policy& p) { return p.name() == n; });
    });
    for (const std::string& n : never) {
      err_ << "fault: --expect-faults: policy \"" << n << "\" never fired\n";
    }
    if ((none_loaded || !never.empty()) && WIFEXITED(wait_status) && status == 0 &&
        !events_lost) {
      status = kExitNeverFired;
    }
  }
  if (WIFSIGNALED(wait_status)) {
    int sig = WTERMSIG(wait_status);
    err_ << "fault: program killed by signal " << sig << " (" << SignalName(sig) << ")"
         << (WCOREDUMP(wait_status) ? ", core dumped" : "") << "\n";
    status = 128 + sig;
  }
  err_.flush();
  return status;
}

}  // namespace

absl::StatusOr<fault::v1::PolicySet> SelectPolicies(const ExecOptions& o,
                                                    std::vector<std::string>* warnings) {
  fault::v1::PolicySet out;
  if (!o.uses.empty() && o.policy_files.empty()) {
    return absl::InvalidArgumentError("--use needs --policy FILE to take the policy from");
  }
  if (!o.uses.empty() && o.inline_policy.has_value()) {
    return absl::InvalidArgumentError(
        "--use and effect flags: give a named policy or inline fields but not both");
  }
  if (!o.policy_files.empty()) {
    absl::StatusOr<fault::v1::PolicySet> files = fault::policy::LoadPolicyFiles(o.policy_files);
    if (!files.ok()) return files.status();
    if (o.uses.empty()) {
      out = std::move(*files);
    } else {
      std::set<std::string> taken;
      for (const std::string& name : o.uses) {
        bool found = false;
        for (const fault::v1::Policy& p : files->policies()) {
          if (p.name() != name) continue;
          found = true;
          if (taken.insert(name).second) *out.add_policies() = p;
        }
        if (!found) {
          warnings->push_back(absl::StrCat("no policy named \"", name, "\" in ",
                                           absl::StrJoin(o.policy_files, ", "),
                                           "; running without it"));
        }
      }
    }
  }
  if (o.inline_policy.has_value()) {
    for (const fault::v1::Policy& p : out.policies()) {
      if (p.name() == o.inline_policy->name()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "the effect flags make a policy named \"", p.name(),
            "\" and a policy file has one of that name too"));
      }
    }
    *out.add_policies() = *o.inline_policy;
  }
  for (const fault::v1::Policy& added : o.added_policies) {
    for (const fault::v1::Policy& p : out.policies()) {
      if (p.name() == added.name()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "fault exec adds a policy named \"", p.name(),
            "\" and a policy of that name is given too (rename yours)"));
      }
    }
    *out.add_policies() = added;
  }
  if (absl::Status s = RefuseProxyOnlyPolicies(out); !s.ok()) return s;
  return out;
}

absl::Status RefuseProxyOnlyPolicies(const fault::v1::PolicySet& set) {
  // An HTTP error response replaces the server's answer, which only a
  // proxy that reads the requests can give; the layers of fault exec see
  // the program's calls, not its HTTP requests.
  for (const fault::v1::Policy& p : set.policies()) {
    if (p.has_http_error()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "policy \"", p.name(),
          "\": http_error answers HTTP requests in place of the server, which "
          "only the HTTP proxy does: run it with fault run, or leave "
          "http_error out for fault exec"));
    }
  }
  return absl::OkStatus();
}

int RunExec(const ExecOptions& options, std::ostream& err) {
  Runner runner(options, err);
  return runner.Run();
}

}  // namespace fault::exec
