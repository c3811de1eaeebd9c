#include "supervisor/spec/runner.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "supervisor/policy/loader.h"
#include "supervisor/policy/units.h"
#include "supervisor/spec/builtins.h"
#include "supervisor/spec/events.h"
#include "supervisor/spec/expectations.h"

extern char** environ;

namespace fault::spec {
namespace sl = ::fault::starlark;
using sl::Value;

namespace {

struct Proc {
  pid_t pid = -1;
  bool exited = false;
  int status = 0;
};

// Spawns argv in its own process group with stdout/stderr to `log`.
absl::StatusOr<pid_t> Spawn(
    const std::vector<std::string>& argv,
    const std::vector<std::pair<std::string, std::string>>& env,
    const std::string& log) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (!log.empty()) {
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
  } else {
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  }
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attr, &empty);
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) envs.emplace_back(*e);
  for (auto& [k, v] : env) envs.push_back(absl::StrCat(k, "=", v));
  std::vector<char*> cargv, cenv;
  std::vector<std::string> copy = argv;
  for (auto& s : copy) cargv.push_back(s.data());
  cargv.push_back(nullptr);
  for (auto& s : envs) cenv.push_back(s.data());
  cenv.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawnp(&pid, cargv[0], &fa, &attr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0)
    return absl::InternalError(absl::StrCat(argv[0], ": ", strerror(rc)));
  return pid;
}

bool Reap(Proc* p, bool block) {
  if (p->exited || p->pid < 0) return true;
  int st;
  pid_t r = waitpid(p->pid, &st, block ? 0 : WNOHANG);
  if (r == p->pid) {
    p->exited = true;
    p->status = st;
  }
  return p->exited;
}

std::string DescribeStatus(int st) {
  if (WIFEXITED(st)) return absl::StrCat("exit status ", WEXITSTATUS(st));
  if (WIFSIGNALED(st)) return absl::StrCat("signal ", WTERMSIG(st));
  return "unknown status";
}

// Stops p: SIGTERM (fault exec forwards it to the program), then SIGKILL to
// the process group after `grace`.
void Stop(Proc* p, absl::Duration grace) {
  if (p->pid < 0) return;
  if (!Reap(p, false)) {
    kill(p->pid, SIGTERM);
    absl::Time until = absl::Now() + grace;
    while (!Reap(p, false) && absl::Now() < until)
      absl::SleepFor(absl::Milliseconds(10));
  }
  kill(-p->pid,
       SIGKILL);  // leftovers of the group, and p itself if still running
  Reap(p, true);
}

// A port nothing listens on now. Ports are chosen for every service of a
// cell before any of them starts, so a port handed out recently (and not
// yet bound by its service) is not handed out again.
int FreePort() {
  static std::mutex mu;
  static std::deque<int> recent;
  std::lock_guard<std::mutex> lock(mu);
  int port = 0;
  for (int attempt = 0; attempt < 16; ++attempt) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    port = 0;
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
      port = ntohs(a.sin_port);
    close(fd);
    if (port != 0 && std::find(recent.begin(), recent.end(), port) == recent.end()) break;
  }
  recent.push_back(port);
  if (recent.size() > 256) recent.pop_front();
  return port;
}

// A port of `svc` in the calling thread's cell (0: not chosen).
int PortOf(const ServiceDef& svc, const std::string& name) {
  const std::map<std::string, int>& ports = CurrentPorts(svc);
  auto it = ports.find(name);
  return it == ports.end() ? 0 : it->second;
}

// Whether 127.0.0.1:port accepts a connection. The probe's connection
// ends before the cell's fault goes on (it goes on right after readiness):
// the probe closes its side and waits, at most kProbeDrain, for the
// service to close its own, so that the service's reads of the probe are
// not faulted and counted as the scenario's events. A service that does
// not close costs the wait once, at its last (successful) probe.
bool PortAccepts(int port) {
  constexpr int kProbeDrainMs = 100;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  if (ok && shutdown(fd, SHUT_WR) == 0) {
    absl::Time until = absl::Now() + absl::Milliseconds(kProbeDrainMs);
    for (;;) {
      int left =
          static_cast<int>(absl::ToInt64Milliseconds(until - absl::Now()));
      if (left <= 0) break;
      pollfd p{fd, POLLIN, 0};
      int n = poll(&p, 1, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      char buf[256];
      if (recv(fd, buf, sizeof(buf), 0) <= 0) break;  // closed (or reset)
    }
  }
  close(fd);
  return ok;
}

std::string ReadFile(const std::string& path, size_t max = 1 << 20) {
  std::ifstream f(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(f)),
                std::istreambuf_iterator<char>());
  if (s.size() > max) s = "...\n" + s.substr(s.size() - max);
  return s;
}

std::string Tail(const std::string& s, int lines) {
  size_t pos = s.size();
  for (int i = 0; i <= lines && pos != std::string::npos && pos > 0; ++i)
    pos = s.rfind('\n', pos - 1);
  return pos == std::string::npos || pos == 0 ? s : s.substr(pos + 1);
}

// Whether `fault exec --layer seccomp` works with this binary on this
// machine: "" when it does, else why not (its last line of output, or how
// it ended). The probe's output goes to `log`.
std::string SeccompLayerProblem(const std::string& fault_binary,
                                const std::string& log) {
  auto pid = Spawn({fault_binary, "exec", "--layer", "seccomp", "--quiet", "--",
                    "/bin/true"},
                   {}, log);
  if (!pid.ok()) return std::string(pid.status().message());
  Proc p{*pid};
  absl::Time until = absl::Now() + absl::Seconds(10);
  while (!Reap(&p, false) && absl::Now() < until)
    absl::SleepFor(absl::Milliseconds(10));
  if (!p.exited) {
    Stop(&p, absl::Seconds(1));
    return "`fault exec --layer seccomp -- /bin/true` did not finish in 10s";
  }
  if (WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0) return "";
  std::string out(absl::StripTrailingAsciiWhitespace(ReadFile(log, 4096)));
  std::string last = Tail(out, 0);
  return absl::StrCat("`fault exec --layer seccomp -- /bin/true` ended with ",
                      DescribeStatus(p.status),
                      last.empty() ? "" : absl::StrCat(": ", last));
}

// Cancels a Starlark thread at the cell's deadline.
class Watchdog {
 public:
  Watchdog(sl::Thread* th, absl::Time deadline, std::string reason)
      : worker_([this, th, deadline, reason] {
          std::unique_lock<std::mutex> l(mu_);
          while (!done_) {
            absl::Duration left = deadline - absl::Now();
            if (left <= absl::ZeroDuration()) {
              th->Cancel(reason);
              return;
            }
            cv_.wait_for(l, absl::ToChronoNanoseconds(left));
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> l(mu_);
      done_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread worker_;  // last: starts after the members it uses
};

int64_t NowNs() { return absl::ToUnixNanos(absl::Now()); }

off_t FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? st.st_size : 0;
}

// Bytes [from, end of file) of `path`.
std::string ReadFrom(const std::string& path, off_t from) {
  std::ifstream f(path, std::ios::binary);
  f.seekg(from);
  return std::string((std::istreambuf_iterator<char>(f)),
                     std::istreambuf_iterator<char>());
}

bool WriteFileAtomically(const std::string& path, const std::string& text) {
  std::string tmp = absl::StrCat(path, ".tmp");
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f.write(text.data(), text.size())) return false;
  }
  return rename(tmp.c_str(), path.c_str()) == 0;
}

// True once `pid` has started a child. fault exec blocks the signals it
// handles (SIGHUP among them) before it starts the program; before that, a
// SIGHUP would end it. (Its signal mask cannot be read from /proc instead:
// while fault exec waits in sigtimedwait the kernel shows them unblocked.)
// Without /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN) it cannot
// tell and says true.
bool HasChild(pid_t pid) {
  std::ifstream f(absl::StrCat("/proc/", pid, "/task/", pid, "/children"));
  if (!f.is_open()) return true;
  std::string first;
  return static_cast<bool>(f >> first);
}

// Policies that never fire: for every syscall family of `families`, a rule
// that would apply only to call number 999999999999999999. A service runs
// under one while no fault is in force: it keeps those families in the
// seccomp filter `fault exec` builds at start, which a reload cannot
// extend (docs/exec.md), and applies no fault. Shared services have
// `between_cells`, the others `fault-test.idle`.
constexpr char kBetweenCells[] = "between_cells";
constexpr char kIdle[] = "fault-test.idle";
constexpr uint64_t kNeverCall = 999'999'999'999'999'999;

fault::v1::Policy NeverFiringPolicy(const std::string& name,
                                    const std::set<int>& families) {
  fault::v1::Policy p;
  p.set_name(name);
  std::set<int> fs = families;
  if (fs.empty()) fs.insert(fault::v1::SyscallFault::FAMILY_OPEN);
  for (int f : fs) {
    fault::v1::SyscallFault* r = p.add_syscalls();
    r->set_family(static_cast<fault::v1::SyscallFault::Family>(f));
    r->set_action(fault::v1::SyscallFault::ACTION_DENY);
    r->set_errno_name("EIO");
    r->set_probability_ppm(1'000'000);
    r->mutable_when()->set_first(kNeverCall);
    r->mutable_when()->set_last(kNeverCall);
    r->mutable_when()->set_step(1);
  }
  return p;
}

std::set<int> SyscallFamilies(const fault::v1::Policy& p) {
  std::set<int> out;
  for (const auto& rule : p.syscalls()) out.insert(rule.family());
  return out;
}

// "fsync, write".
std::string FamilyNames(const std::set<int>& families) {
  std::vector<std::string> names;
  for (int f : families) {
    std::string n = fault::v1::SyscallFault::Family_Name(
        static_cast<fault::v1::SyscallFault::Family>(f));
    names.push_back(absl::AsciiStrToLower(n.substr(n.find('_') + 1)));
  }
  return absl::StrJoin(names, ", ");
}

// The syscall families of every fault of the spec that targets `svc`: a
// service that runs with the seccomp layer has its filter built for all of
// them, so that any of them can be applied later by a reload (the cell's
// fault, a window in the scenario).
std::set<int> FamiliesTargeting(const Spec& spec, const ServiceDef* svc) {
  std::set<int> out;
  for (const auto& a : spec.assumptions) {
    bool targets = false;
    for (const auto& t : a->targets) targets |= t.get() == svc;
    if (!targets) continue;
    for (int f : SyscallFamilies(a->policy)) out.insert(f);
  }
  return out;
}

// A running service's faults, switched by reloading its `fault exec`
// (`--policy FILE --reload-on SIGHUP`): the runner writes the policies in
// force into FILE, sends SIGHUP, and waits for fault exec's answer in the
// service's log, "fault: reloaded ..." (or "fault: reload failed ..."),
// which it prints once it has drained the events of the previous policies
// and published the new ones.
struct FaultSwitch {
  Proc* proc = nullptr;
  std::string policy_file, log;
  off_t log_read = 0;  // how far the log has been scanned for answers
  // False when the service's fault exec cannot take new policies (a static
  // binary without the seccomp layer); `no_reload` says why.
  bool reloads = false;
  std::string no_reload;
  // It runs with the seccomp layer, whose filter covers `families` only.
  bool seccomp = false;
  std::set<int> families;
  fault::v1::Policy idle;  // in force when nothing else is
  // In force besides: the cell's fault, and a window of the scenario.
  const fault::v1::Policy* cell = nullptr;
  bool cell_from_start = false;  // cell stays until the service stops
  std::optional<FaultWindow> window;

  bool InForce() const { return cell != nullptr || window.has_value(); }

  // The policies in force. The idle policy comes first in every set: its
  // rules keep their indices, and the rules of the faults after it start
  // on indices no call has counted yet (a `when` counts from there).
  std::string Yaml() const {
    fault::v1::PolicySet set;
    *set.add_policies() = idle;
    if (cell != nullptr) *set.add_policies() = *cell;
    if (window && (cell == nullptr || window->policy.name() != cell->name()))
      *set.add_policies() = window->policy;
    return fault::policy::FormatPolicySet(set);
  }
};

// Waits for fault exec's answer to a reload signal, reading the log from
// `sw->log_read`. Returns "" when reloaded, else why not.
std::string AwaitReloadAck(FaultSwitch* sw, absl::Time until) {
  static constexpr absl::string_view kOk = "fault: reloaded ";
  static constexpr absl::string_view kFailed = "fault: reload failed";
  for (int attempt = 0;; ++attempt) {
    std::string more = ReadFrom(sw->log, sw->log_read);
    size_t used = 0;
    for (size_t nl; (nl = more.find('\n', used)) != std::string::npos;
         used = nl + 1) {
      absl::string_view line(more.data() + used, nl - used);
      // Anywhere in the line: the program may have left a line unfinished.
      if (absl::StrContains(line, kOk)) {
        sw->log_read += nl + 1;
        return "";
      }
      if (size_t at = line.find(kFailed); at != absl::string_view::npos) {
        sw->log_read += nl + 1;
        return std::string(line.substr(at));
      }
    }
    sw->log_read += used;
    if (Reap(sw->proc, false))
      return absl::StrCat("it exited (", DescribeStatus(sw->proc->status), ")");
    if (absl::Now() >= until)
      return "fault exec did not acknowledge the reload";
    absl::SleepFor(absl::Milliseconds(attempt < 100 ? 2 : 10));
  }
}

// Writes the policies in force as the service's policy file and has fault
// exec reload it.
std::string Reload(FaultSwitch* sw, absl::Time until) {
  if (!WriteFileAtomically(sw->policy_file, sw->Yaml()))
    return absl::StrCat("cannot write ", sw->policy_file, ": ",
                        strerror(errno));
  while (!HasChild(sw->proc->pid)) {
    if (Reap(sw->proc, false))
      return absl::StrCat("it exited (", DescribeStatus(sw->proc->status), ")");
    if (absl::Now() >= until) return "fault exec did not start";
    absl::SleepFor(absl::Milliseconds(2));
  }
  kill(sw->proc->pid, SIGHUP);
  return AwaitReloadAck(sw, until);
}

// A service's log without fault exec's reload acknowledgements.
std::string WithoutAcks(const std::string& log) {
  if (!absl::StrContains(log, "fault: reloaded ")) return log;
  std::string out;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (absl::StrContains(line, "fault: reloaded ")) continue;
    absl::StrAppend(&out, line, "\n");
  }
  if (!absl::EndsWith(log, "\n") && !out.empty()) out.pop_back();
  while (absl::EndsWith(out, "\n\n")) out.pop_back();
  if (out == "\n") out.clear();
  return out;
}

// A service started once and kept across cells (service(..., shared=True)),
// under `fault exec --reload-on SIGHUP --policy DIR.policy.yaml` (unless
// it is a static binary and the seccomp layer does not work here). Between
// cells its policy is `between_cells`; a cell's fault and the windows of
// its scenario are applied by reloads. A cell's events are those whose
// time lies between the signal that applied the first of them and the
// acknowledgement of the reload that removed the last: no other policy
// fires in that window, so events of one cell never land in another's
// report.
struct SharedService {
  std::shared_ptr<ServiceDef> def;
  std::string dir;          // {dir}, and the files below
  std::string log, events;  // DIR.log, DIR.events.jsonl
  std::string layer;        // --layer for fault exec, or ""
  Proc proc;                // pid -1: not running
  FaultSwitch sw;           // its policies (sw.proc is &proc)
  off_t events_read = 0;    // how far the events have been read
  // The current cell.
  off_t cell_log_start = 0;
  bool live_in_cell = false;  // running and ready during the cell
  bool applied = false;       // some fault was in force during the cell
  int64_t window_start_ns = 0, window_end_ns = 0;
};

class CellRunner {
 public:
  // `no_seccomp`: why the seccomp layer is unavailable ("" when it is).
  // `at_op` > 0: the cell's fault goes on right before the scenario's
  // operation number at_op (1-based), not when run() starts
  // (--explore-timing, --fault-at-op).
  CellRunner(Spec& spec, const RunOptions& o, const std::string& dir,
             const std::string& no_seccomp,
             std::map<const ServiceDef*, SharedService>* shared, int at_op = 0)
      : spec_(spec),
        o_(o),
        dir_(dir),
        no_seccomp_(no_seccomp),
        shared_(*shared),
        at_op_(at_op),
        seccomp_(no_seccomp.empty()) {}

  // The operations the last Run's scenario started (exec, http.*,
  // tcp.connect), in order.
  const std::vector<std::string>& operations() const { return operations_; }

  CellResult Run(const Cell& cell) {
    ScopedCellInstances instances(&instances_);
    CellResult r;
    r.scenario = cell.scenario->name;
    r.fault = cell.fault ? cell.fault->name : "none";
    absl::Time start = absl::Now();
    absl::Time deadline = start + o_.cell_timeout;
    std::string timeout_msg =
        absl::StrCat("cell timed out after ",
                     fault::policy::FormatDuration(
                         absl::ToInt64Nanoseconds(o_.cell_timeout)),
                     " (--cell-timeout)");
    for (auto& [def, sh] : shared_) {
      sh.applied = false;
      sh.live_in_cell = false;
      sh.cell_log_start = FileSize(sh.log);
    }
    std::vector<Proc> procs(spec_.services.size());
    std::string message;
    std::string retried;
    for (int attempt = 1;; ++attempt) {
      port_taken_.clear();
      message = StartAndRun(cell, deadline, timeout_msg, &procs, &r);
      if (port_taken_.empty() || attempt == kPortAttempts || absl::Now() >= deadline) break;
      // A port chosen for a service was taken by another program between
      // the choice and the service's bind (a port is free when chosen,
      // not reserved): start the cell again, with new ports. Nothing of
      // the scenario ran yet.
      for (auto& p : procs) Stop(&p, o_.stop_grace);
      procs.assign(spec_.services.size(), Proc{});
      for (const auto& svc : spec_.services) {
        if (svc->shared) continue;
        unlink(absl::StrCat(dir_, "/", svc->name, ".log").c_str());
        unlink(absl::StrCat(dir_, "/", svc->name, ".events.jsonl").c_str());
      }
      absl::StrAppend(&retried, "service \"", port_taken_,
                      "\" could not listen: its port was taken before it started "
                      "(address already in use); the cell started again with new ports\n");
      CellResult fresh;
      fresh.scenario = r.scenario;
      fresh.fault = r.fault;
      r = std::move(fresh);
    }
    r.output.insert(0, retried);
    for (auto& p : procs) Stop(&p, o_.stop_grace);
    if (std::string m = FinishShared(); !m.empty())
      message = message.empty() ? m : absl::StrCat(message, "\n", m);
    // Events of every service, in service order.
    for (size_t i = 0; i < spec_.services.size(); ++i) {
      const auto& svc = spec_.services[i];
      std::vector<nlohmann::json> events;
      std::string log;
      if (svc->shared) {
        events = SharedEvents(&shared_.at(svc.get()));
        log = WithoutAcks(ReadFrom(shared_.at(svc.get()).log,
                                   shared_.at(svc.get()).cell_log_start));
      } else {
        std::ifstream f(absl::StrCat(dir_, "/", svc->name, ".events.jsonl"));
        std::string line;
        while (std::getline(f, line)) {
          nlohmann::json e = nlohmann::json::parse(line, nullptr, false);
          if (!e.is_discarded()) events.push_back(std::move(e));
        }
        log = WithoutAcks(
            ReadFile(absl::StrCat(dir_, "/", svc->name, ".log"), 64 << 10));
      }
      for (auto& e : events) {
        e["service"] = svc->name;
        r.events.push_back(std::move(e));
      }
      if (!log.empty())
        absl::StrAppend(&r.output, "--- service ", svc->name,
                        svc->shared ? " (shared) ---\n" : " ---\n", log,
                        log.back() == '\n' ? "" : "\n");
    }
    // Events of a rule (a policy's name) from some of the services. One
    // fault exec ran every service of a cell with a partition: its events
    // are the cell's, in the first service's file.
    auto fired = [&](const std::string& rule,
                     const std::vector<const ServiceDef*>& from) {
      int n = 0;
      for (const auto& e : r.events) {
        if (e.value("rule", "") != rule) continue;
        const std::string service = e.value("service", "");
        bool counts = false;
        for (const ServiceDef* svc : from)
          counts |= svc->name == service ||
                    (grouped_ && !svc->shared &&
                     service == spec_.services[group_lead_]->name);
        n += counts;
      }
      return n;
    };
    // Only the cell's fault counts for it, not the windows of the scenario.
    if (message.empty() && cell.fault && cell.fault->expect_events) {
      std::vector<const ServiceDef*> targets;
      std::vector<std::string> names;
      for (auto& t : cell.fault->targets) {
        targets.push_back(t.get());
        names.push_back(absl::StrCat("\"", t->name, "\""));
      }
      if (at_op_ > 0 && !at_op_applied_)
        message = absl::StrCat(
            "fault \"", cell.fault->name,
            "\" never fired: it was to go on before the scenario's operation ",
            at_op_, " (--fault-at-op), and run() started ", operations_.size(),
            "; if that is expected, give "
            "fault_assumption(..., expect_events=False)");
      else if (timed_never_applied_)
        message = absl::StrCat(
            "fault \"", cell.fault->name, "\" never fired: it was to go on ",
            fault::policy::FormatDuration(
                absl::ToInt64Nanoseconds(cell.fault->after)),
            " into the scenario's run (after=, ", cell.fault->timing_where,
            "), and run() returned before; if that is expected, give "
            "fault_assumption(..., expect_events=False)");
      else if (fired(cell.fault->name, targets) == 0)
        message = absl::StrCat(
            "fault \"", cell.fault->name,
            "\" never fired (no fault events from ", absl::StrJoin(names, ", "),
            "): the scenario did not reach it; if that is expected, give "
            "fault_assumption(..., expect_events=False)");
    }
    for (const OpenedWindow& w : windows_) {
      if (!message.empty()) break;
      if (!w.expect_events || fired(w.rule, {w.service}) > 0) continue;
      message = absl::StrCat(
          "fault window \"", w.rule, "\" on \"", w.service->name, "\" (",
          w.opened_by, " at ", w.where,
          ") never fired (no fault events from \"", w.service->name,
          "\" while it was open): nothing in the window reached it; if that "
          "is expected, give ",
          w.opened_by, "(..., expect_events = False)");
    }
    if (message.empty()) message = RunMonitors(r);
    r.passed = message.empty();
    r.message = message;
    r.operations = static_cast<int>(operations_.size());
    if (cell.fault && at_op_ > 0) {
      r.fault_at_op = at_op_;
      if (static_cast<size_t>(at_op_) <= operations_.size())
        r.fault_op = operations_[at_op_ - 1];
    }
    r.seconds = absl::ToDoubleSeconds(absl::Now() - start);
    return r;
  }

 private:
  bool Targets(const Cell& cell, const ServiceDef* svc) const {
    if (!cell.fault) return false;
    for (auto& t : cell.fault->targets)
      if (t.get() == svc) return true;
    return false;
  }

  // The spec's monitors over the cell's events, in time order: "" or the
  // first failure, with the event it failed on.
  std::string RunMonitors(CellResult& r) {
    if (spec_.monitors.empty()) return "";
    std::vector<CellEvent> events;
    for (const auto& line : r.events)
      events.push_back(
          EventFromJson(line, run_start_ns_, absl::StrCat("#", events.size())));
    std::stable_sort(events.begin(), events.end(),
                     [](const CellEvent& a, const CellEvent& b) {
                       return a.time_ns < b.time_ns;
                     });
    sl::Thread th;
    th.print = [&r](sl::Thread&, const std::string& s) {
      absl::StrAppend(&r.output, s, "\n");
    };
    std::string timeout =
        absl::StrCat("monitors timed out after ",
                     fault::policy::FormatDuration(
                         absl::ToInt64Nanoseconds(o_.cell_timeout)),
                     " (--cell-timeout)");
    Watchdog dog(&th, absl::Now() + o_.cell_timeout, timeout);
    for (const MonitorDef& m : spec_.monitors) {
      for (const CellEvent& e : events) {
        if (!m.filter.MatchesFields(e)) continue;
        Value args[] = {EventValue(e)};
        absl::StatusOr<Value> st = sl::Call(th, m.fn, args);
        if (!st.ok())
          return absl::StrCat("monitor ", sl::Repr(m.fn), " (", m.where,
                              ") failed on the event ", FormatEvent(e), ":\n",
                              st.status().message());
      }
    }
    return "";
  }

  // A string of svc's command, env or ready command for this cell: its
  // {dir}, its own ports ({http}) and other services' ({db.main}).
  std::string Substitute(const std::string& s, const ServiceDef& svc) const {
    if (!svc.mock_config.empty() && s == "{fault}") return o_.fault_binary;
    std::vector<std::pair<std::string, std::string>> reps = {
        {"{dir}", CurrentDir(svc)}};
    for (auto& [name, port] : CurrentPorts(svc))
      reps.emplace_back(absl::StrCat("{", name, "}"), absl::StrCat(port));
    return ExpandPortRefs(absl::StrReplaceAll(s, reps), spec_.services);
  }

  // Why the cell's fault cannot reach `svc` ("" when it can): a static
  // binary needs the seccomp layer.
  std::string Unreachable(const ServiceDef& svc, const Cell& cell) const {
    if (!svc.static_binary || seccomp_) return "";
    return absl::StrCat(
        "service \"", svc.name,
        "\" is a static binary and this build's `fault exec` has no "
        "seccomp layer (--layer seccomp): the faults of \"",
        cell.fault->name, "\" cannot reach it (", no_seccomp_, ")");
  }

  // A shared service's ports are its own (the same in every cell); a fresh
  // service's are this cell's.
  void AssignPorts(ServiceDef* svc) {
    std::map<std::string, int>& ports =
        svc->shared ? svc->current_ports : instances_[svc].ports;
    ports.clear();
    for (auto& [name, port] : svc->ports)
      ports[name] = port == 0 ? FreePort() : port;
  }

  // A mock service's replies, where its command (`fault mock
  // {dir}/mock.json PORT`) reads them.
  static std::string WriteMockConfig(const ServiceDef& svc,
                                     const std::string& dir) {
    if (svc.mock_config.empty()) return "";
    std::string path = absl::StrCat(dir, "/mock.json");
    if (!WriteFileAtomically(path, svc.mock_config))
      return absl::StrCat("mock service \"", svc.name, "\": cannot write ",
                          path, ": ", strerror(errno));
    return "";
  }

  // The argv of `fault exec` for a service.
  std::vector<std::string> ExecArgv(const std::string& events) {
    return {o_.fault_binary,       "exec",     "--seed",
            absl::StrCat(o_.seed), "--events", events};
  }

  // Starts a shared service that is not running (its readiness is checked
  // with the cell's services), with the policies of sh->sw in force.
  std::string StartShared(SharedService* sh) {
    ServiceDef& svc = *sh->def;
    std::vector<std::string> argv = ExecArgv(sh->events);
    argv.push_back("--quiet");
    if (sh->sw.reloads) {
      if (!WriteFileAtomically(sh->sw.policy_file, sh->sw.Yaml()))
        return absl::StrCat("shared service \"", svc.name, "\": cannot write ",
                            sh->sw.policy_file, ": ", strerror(errno));
      argv.insert(argv.end(),
                  {"--policy", sh->sw.policy_file, "--reload-on", "SIGHUP"});
    }
    if (!sh->layer.empty()) argv.insert(argv.end(), {"--layer", sh->layer});
    argv.push_back("--");
    for (auto& a : svc.command) argv.push_back(Substitute(a, svc));
    std::vector<std::pair<std::string, std::string>> env;
    for (auto& [k, v] : svc.env) env.emplace_back(k, Substitute(v, svc));
    sh->sw.log_read = FileSize(sh->log);
    sh->events_read = 0;  // fault exec truncates its --events file
    auto pid = Spawn(argv, env, sh->log);
    if (!pid.ok())
      return absl::StrCat("service \"", svc.name,
                          "\": ", pid.status().message());
    sh->proc = Proc{*pid};
    return "";
  }

  // Whether a running shared service has ended: fault exec exited, or its
  // program did (fault exec then exits too: wait for it, briefly).
  bool SharedEnded(SharedService* sh) {
    if (Reap(&sh->proc, false)) return true;
    if (HasChild(sh->proc.pid)) return false;
    absl::Time until = absl::Now() + o_.stop_grace;
    while (!Reap(&sh->proc, false) && absl::Now() < until)
      absl::SleepFor(absl::Milliseconds(5));
    if (!sh->proc.exited) {
      // fault exec outlived its program: stop it and report that.
      Stop(&sh->proc, absl::ZeroDuration());
    }
    return true;
  }

  // Stops a shared service; the next cell starts it again, with nothing in
  // force.
  void StopShared(SharedService* sh, absl::Duration grace) {
    Stop(&sh->proc, grace);
    sh->proc = Proc{};
    sh->sw.cell = nullptr;
    sh->sw.cell_from_start = false;
    sh->sw.window.reset();
  }

  // After a cell: the between-cells policy for the shared services that
  // still have some of the cell's faults in force, and a shared service
  // that died during the cell fails it.
  std::string FinishShared() {
    std::vector<std::string> msgs;
    for (auto& [def, sh] : shared_) {
      if (sh.proc.pid < 0) continue;
      if (SharedEnded(&sh)) {
        if (sh.live_in_cell) {
          // The program's last lines, without fault exec's own.
          std::string log;
          for (absl::string_view line :
               absl::StrSplit(ReadFrom(sh.log, sh.cell_log_start), '\n',
                              absl::SkipEmpty()))
            if (!absl::StartsWith(line, "fault: "))
              absl::StrAppend(&log, line, "\n");
          msgs.push_back(absl::StrCat(
              "shared service \"", def->name, "\" exited (",
              DescribeStatus(sh.proc.status),
              ") during the cell; it is started again for the next cell",
              log.empty() ? "" : ":\n", Tail(log, 10)));
        }
        sh.window_end_ns = NowNs();
        StopShared(&sh, absl::ZeroDuration());  // leftovers of its group
        continue;
      }
      if (!sh.sw.InForce()) continue;
      sh.sw.cell = nullptr;
      sh.sw.cell_from_start = false;
      sh.sw.window.reset();
      std::string err =
          Reload(&sh.sw, absl::Now() + o_.stop_grace + absl::Seconds(2));
      sh.window_end_ns = NowNs();
      if (!err.empty()) {
        msgs.push_back(absl::StrCat(
            "shared service \"", def->name,
            "\": removing the cell's policy failed (", err,
            "); it is stopped and started again for the next cell"));
        StopShared(&sh, o_.stop_grace);
      }
    }
    return absl::StrJoin(msgs, "\n");
  }

  // The events of a shared service in the current cell's window.
  std::vector<nlohmann::json> SharedEvents(SharedService* sh) {
    std::vector<nlohmann::json> out;
    if (sh->applied && sh->proc.pid >= 0) {
      // fault exec drains its ring every 10 ms: an event written while the
      // policy was being removed is in the file after the next drain.
      absl::SleepFor(absl::Milliseconds(30));
    }
    std::string more = ReadFrom(sh->events, sh->events_read);
    size_t used = 0;
    for (size_t nl; (nl = more.find('\n', used)) != std::string::npos;
         used = nl + 1) {
      if (!sh->applied) continue;
      nlohmann::json e = nlohmann::json::parse(
          more.begin() + used, more.begin() + nl, nullptr, false);
      if (e.is_discarded() || !e.contains("time_ns")) continue;
      int64_t t = e["time_ns"].get<int64_t>();
      if (t >= sh->window_start_ns && t <= sh->window_end_ns)
        out.push_back(std::move(e));
    }
    sh->events_read += used;
    return out;
  }

  // Reloads `svc`'s fault exec with what its switch has in force now. A
  // shared service's events count for the cell from the first signal that
  // applies a fault in it to the answer that removes the last; one whose
  // reload failed is stopped (what is in force is unknown) and started
  // again for the next cell.
  std::string Switch(const ServiceDef& svc, FaultSwitch* sw, absl::Time until) {
    SharedService* sh = svc.shared ? &shared_.at(&svc) : nullptr;
    if (sh != nullptr && sw->InForce() && !sh->applied) {
      sh->applied = true;
      sh->window_start_ns = NowNs();
    }
    std::string err = Reload(sw, until);
    if (sh != nullptr && !sw->InForce()) sh->window_end_ns = NowNs();
    if (!err.empty() && sh != nullptr) {
      sh->window_end_ns = NowNs();
      StopShared(sh, o_.stop_grace);
      absl::StrAppend(&err,
                      "; it is stopped and started again for the next cell");
    }
    return err;
  }

  // The switch of a service in this cell, or null with why it has none.
  FaultSwitch* SwitchOf(const ServiceDef& svc, std::string* why) {
    FaultSwitch* sw = nullptr;
    if (svc.shared) {
      SharedService& sh = shared_.at(&svc);
      if (sh.proc.pid < 0) {
        *why = absl::StrCat("shared service \"", svc.name, "\" is not running");
        return nullptr;
      }
      sw = &sh.sw;
    } else if (grouped_) {
      *why = absl::StrCat(
          "the services of this cell run under one fault exec, for the "
          "partition of its fault, so a window on \"",
          svc.name,
          "\" would reach all of them: fault windows are not available in a "
          "cell with a partition");
      return nullptr;
    } else {
      sw = &switches_.at(&svc);
    }
    if (!sw->reloads) {
      *why = sw->no_reload;
      return nullptr;
    }
    return sw;
  }

  // fault(svc, ...) and fault_start(svc, ...) in the scenario's run.
  std::string OpenWindow(const ServiceDef& svc, const FaultWindow& w,
                         absl::Time until) {
    std::string why;
    FaultSwitch* sw = SwitchOf(svc, &why);
    if (sw == nullptr) return why;
    if (sw->window) {
      return absl::StrCat(
          "service \"", svc.name, "\" already has a fault window, opened by ",
          sw->window->opened_by, " at ", sw->window->where,
          ": a service has one window at a time (windows on one service do "
          "not nest or overlap)",
          sw->window->opened_by == "fault_start"
              ? absl::StrCat("; close it first with fault_stop(\"", svc.name,
                             "\")")
              : "");
    }
    if (sw->seccomp) {
      // The filter fault exec built at the service's start cannot take on
      // another family (docs/exec.md); fsync rules cover fdatasync.
      std::set<int> missing;
      for (int f : SyscallFamilies(w.policy)) {
        bool fsync = sw->families.count(fault::v1::SyscallFault::FAMILY_FSYNC);
        if (!sw->families.count(f) &&
            !(fsync && f == fault::v1::SyscallFault::FAMILY_FDATASYNC))
          missing.insert(f);
      }
      if (!missing.empty())
        return absl::StrCat(
            "service \"", svc.name,
            "\" runs with the seccomp layer, whose filter fault exec built "
            "when the service started, for the syscall families of the "
            "faults that target it (",
            sw->families.empty() ? "none" : FamilyNames(sw->families),
            "); it cannot add ", FamilyNames(missing),
            " while the service runs: give ", FamilyNames(missing),
            " to a fault_assumption that targets \"", svc.name,
            "\" (the filter then covers it from the start)");
    }
    sw->window = w;
    if (std::string err = Switch(svc, sw, until); !err.empty()) {
      sw->window.reset();
      return absl::StrCat("the window's fault was not applied to \"", svc.name,
                          "\" (", err, ")");
    }
    windows_.push_back(
        {&svc, w.policy.name(), w.where, w.opened_by, w.expect_events});
    return "";
  }

  // The end of fault(svc, run = ...), and fault_stop(svc).
  std::string CloseWindow(const ServiceDef& svc, absl::Time until) {
    std::string why;
    FaultSwitch* sw = SwitchOf(svc, &why);
    if (sw == nullptr || !sw->window)
      return absl::StrCat("no fault window is open on service \"", svc.name,
                          "\"");
    sw->window.reset();
    if (std::string err = Switch(svc, sw, until); !err.empty())
      return absl::StrCat("removing the window's fault from \"", svc.name,
                          "\" failed (", err, ")");
    return "";
  }

  // When the scenario's run has returned, before its check: windows still
  // open close, and the cell's fault (unless from_start) is removed.
  std::string EndWindows(absl::Time until) {
    std::vector<std::string> msgs;
    auto end = [&](const ServiceDef& svc, FaultSwitch* sw) {
      if (!sw->reloads) return;
      if (!sw->window && (sw->cell == nullptr || sw->cell_from_start)) return;
      sw->window.reset();
      if (!sw->cell_from_start) sw->cell = nullptr;
      if (std::string err = Switch(svc, sw, until); !err.empty())
        msgs.push_back(absl::StrCat(
            svc.shared ? "shared service \"" : "service \"", svc.name,
            "\": removing its faults when the scenario's run returned "
            "failed (",
            err, ")"));
    };
    for (auto& [svc, sw] : switches_) end(*svc, &sw);
    for (auto& [def, sh] : shared_)
      if (sh.proc.pid >= 0) end(*def, &sh.sw);
    return absl::StrJoin(msgs, "\n");
  }

  // Returns the failure message, or "" when the cell passed.
  std::string StartAndRun(const Cell& cell, absl::Time deadline,
                          const std::string& timeout_msg,
                          std::vector<Proc>* procs, CellResult* r) {
    std::string policy_file = absl::StrCat(dir_, "/policy.yaml");
    const bool from_start = cell.fault && cell.fault->from_start;
    if (cell.fault) {
      fault::v1::PolicySet set;
      *set.add_policies() = cell.fault->policy;
      r->policy_yaml = fault::policy::FormatPolicySet(set);
      std::ofstream(policy_file) << r->policy_yaml;
    }
    std::vector<Proc*> live(spec_.services.size());
    std::vector<bool> check_ready(spec_.services.size(), true);
    for (size_t i = 0; i < spec_.services.size(); ++i) {
      auto& svc = spec_.services[i];
      live[i] = &(*procs)[i];
      if (svc->shared) {
        SharedService& sh = shared_.at(svc.get());
        live[i] = &sh.proc;
        if (sh.proc.pid >= 0 && SharedEnded(&sh)) {
          absl::StrAppend(&r->output, "shared service \"", svc->name,
                          "\" exited (", DescribeStatus(sh.proc.status),
                          ") between cells; starting it again\n");
          StopShared(&sh, absl::ZeroDuration());
        }
        if (sh.proc.pid >= 0) {
          check_ready[i] = false;
          sh.live_in_cell = true;
        } else {
          // Chosen before any service starts: others may refer to them.
          AssignPorts(svc.get());
          svc->current_dir = sh.dir;
          if (std::string m = WriteMockConfig(*svc, sh.dir); !m.empty())
            return m;
        }
        continue;
      }
      AssignPorts(svc.get());
      std::string& dir = instances_[svc.get()].dir;
      dir = absl::StrCat(dir_, "/", svc->name);
      mkdir(dir.c_str(), 0755);
      if (std::string m = WriteMockConfig(*svc, dir); !m.empty()) return m;
    }
    // A partition needs both programs under one supervisor: then the
    // cell's services (all but the shared ones) run under one `fault exec`,
    // the first as its program and the others as --with companions.
    grouped_ = cell.fault && cell.fault->policy.partitions_size() > 0;
    if (grouped_) {
      if (!seccomp_)
        return absl::StrCat(
            "fault \"", cell.fault->name,
            "\" has a partition, which needs the seccomp layer of "
            "`fault exec`, and it does not work here: ",
            no_seccomp_);
      for (const auto& t : cell.fault->targets) {
        if (t->shared)
          return absl::StrCat("fault \"", cell.fault->name, "\": service \"", t->name,
                              "\" is shared between cells, and a partition needs "
                              "both services started for the cell (drop shared=True)");
      }
    }
    // A fault from_start on a shared service is in force before the cell's
    // services start: one that runs gets it now, one that starts below
    // starts with it.
    for (auto& svc : spec_.services) {
      if (!from_start || grouped_ || !svc->shared || !Targets(cell, svc.get()))
        continue;
      if (std::string m = Unreachable(*svc, cell); !m.empty()) return m;
      SharedService& sh = shared_.at(svc.get());
      sh.sw.cell = &cell.fault->policy;
      sh.sw.cell_from_start = true;
      if (sh.proc.pid < 0) {
        sh.applied = true;
        sh.window_start_ns = NowNs();
        continue;
      }
      if (std::string err = Switch(*svc, &sh.sw, deadline); !err.empty())
        return absl::StrCat("shared service \"", svc->name,
                            "\": the cell's policy was not applied (", err,
                            ")");
    }
    // Starting one service (the shared ones that are not running; the
    // others, unless they start together under one fault exec), and
    // waiting until one is ready.
    auto start_one = [&](size_t i) -> std::string {
      const auto& svc = spec_.services[i];
      if (svc->shared) {
        SharedService& sh = shared_.at(svc.get());
        if (sh.proc.pid >= 0) return "";
        if (std::string m = StartShared(&sh); !m.empty()) return m;
        return "";
      }
      if (grouped_) return "";  // started together below
      bool targeted = Targets(cell, svc.get());
      if (targeted) {
        if (std::string m = Unreachable(*svc, cell); !m.empty()) return m;
      }
      std::vector<std::string> argv =
          ExecArgv(absl::StrCat(dir_, "/", svc->name, ".events.jsonl"));
      argv.push_back("--quiet");
      // Every service can take faults while it runs (the cell's, and the
      // windows of the scenario): its fault exec reloads its policy file
      // on SIGHUP, and starts with nothing in force unless the cell's
      // fault is from_start.
      FaultSwitch& sw = switches_[svc.get()];
      sw.proc = &(*procs)[i];
      if (svc->static_binary && !seccomp_) {
        sw.no_reload = absl::StrCat(
            "service \"", svc->name,
            "\" is a static binary and this build's `fault exec` has no "
            "seccomp layer (--layer seccomp): no fault can reach it (",
            no_seccomp_, ")");
      } else {
        sw.reloads = true;
        sw.policy_file = absl::StrCat(dir_, "/", svc->name, ".policy.yaml");
        sw.log = absl::StrCat(dir_, "/", svc->name, ".log");
        // The layers a start with the cell's fault would choose: the
        // seccomp layer for a static binary or for syscall faults (then
        // for every family a fault of the spec may bring), else the shim.
        sw.seccomp = svc->static_binary ||
                     (targeted && cell.fault->policy.syscalls_size() > 0);
        if (sw.seccomp) sw.families = FamiliesTargeting(spec_, svc.get());
        sw.idle = NeverFiringPolicy(kIdle, sw.families);
        if (targeted && from_start) {
          sw.cell = &cell.fault->policy;
          sw.cell_from_start = true;
        }
        if (!WriteFileAtomically(sw.policy_file, sw.Yaml()))
          return absl::StrCat("service \"", svc->name, "\": cannot write ",
                              sw.policy_file, ": ", strerror(errno));
        argv.insert(argv.end(),
                    {"--policy", sw.policy_file, "--reload-on", "SIGHUP"});
        if (svc->static_binary)
          argv.insert(argv.end(), {"--layer", "seccomp"});
        else if (!sw.seccomp)
          argv.insert(argv.end(), {"--layer", "preload"});
      }
      argv.push_back("--");
      for (auto& a : svc->command) argv.push_back(Substitute(a, *svc));
      std::vector<std::pair<std::string, std::string>> env;
      for (auto& [k, v] : svc->env) env.emplace_back(k, Substitute(v, *svc));
      auto pid = Spawn(argv, env, absl::StrCat(dir_, "/", svc->name, ".log"));
      if (!pid.ok())
        return absl::StrCat("service \"", svc->name,
                            "\": ", pid.status().message());
      (*procs)[i].pid = *pid;
      return "";
    };
    std::vector<bool> awaited(spec_.services.size(), false);
    auto await_one = [&](size_t i) -> std::string {
      const auto& svc = spec_.services[i];
      if (!check_ready[i] || awaited[i]) return "";
      awaited[i] = true;
      std::string log_path = svc->shared
                                 ? shared_.at(svc.get()).log
                                 : absl::StrCat(dir_, "/", svc->name, ".log");
      off_t log_from = svc->shared ? shared_.at(svc.get()).cell_log_start : 0;
      Proc* proc = live[i];
      if (grouped_ && !svc->shared) {
        // The group's one fault exec, and its output.
        proc = &(*procs)[group_lead_];
        log_path = absl::StrCat(dir_, "/", spec_.services[group_lead_]->name, ".log");
      }
      std::string m =
          AwaitReady(*svc, proc, log_path, log_from, deadline, timeout_msg);
      if (!m.empty()) {
        // A shared service that never got ready is started again next time.
        if (svc->shared) StopShared(&shared_.at(svc.get()), o_.stop_grace);
        return m;
      }
      if (svc->shared) shared_.at(svc.get()).live_in_cell = true;
      return "";
    };
    // In dependency order (depends_on): a service starts once the services
    // it depends on are ready. Services under one fault exec (a partition)
    // start together; their readiness is still checked in that order.
    std::map<const ServiceDef*, size_t> index;
    for (size_t i = 0; i < spec_.services.size(); ++i)
      index[spec_.services[i].get()] = i;
    std::vector<size_t> order = spec_.start_order;
    if (order.size() != spec_.services.size()) {  // a Spec not from LoadSpec
      order.resize(spec_.services.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    }
    for (size_t i : order) {
      const auto& svc = spec_.services[i];
      if (!grouped_ || svc->shared) {
        for (const ServiceDef* dep : svc->depends_on)
          if (std::string m = await_one(index.at(dep)); !m.empty()) return m;
      }
      if (std::string m = start_one(i); !m.empty()) return m;
    }
    if (grouped_) {
      if (std::string error = StartGroup(policy_file, procs); !error.empty())
        return error;
    }
    for (size_t i : order)
      if (std::string m = await_one(i); !m.empty()) return m;
    // The cell's fault, from now until the scenario's run returns (its
    // window): every service is ready.
    for (auto& svc : spec_.services) {
      if (from_start || !Targets(cell, svc.get())) continue;
      if (std::string m = Unreachable(*svc, cell); !m.empty()) return m;
      if (cell.fault->timed()) continue;  // TimedFault, while run() runs
      if (at_op_ > 0) continue;           // before_operation, below
      FaultSwitch* sw =
          svc->shared ? &shared_.at(svc.get()).sw : &switches_.at(svc.get());
      sw->cell = &cell.fault->policy;
      if (std::string err = Switch(*svc, sw, deadline); !err.empty())
        return absl::StrCat(
            svc->shared ? "shared service \"" : "service \"", svc->name,
            "\": the cell's policy was not applied (", err, ")");
    }
    // The scenario, then its expectation.
    CellContext ctx;
    ctx.deadline = deadline;
    ctx.timeout_message = timeout_msg;
    ctx.expand_port_refs = [this](const std::string& s) {
      return ExpandPortRefs(s, spec_.services);
    };
    ctx.read_events = [this] { return LiveEvents(); };
    ctx.before_operation = [this, &cell, deadline](absl::string_view op) {
      std::lock_guard<std::mutex> l(op_mu_);
      operations_.emplace_back(op);
      if (at_op_ == 0 || cell.fault == nullptr || cell.fault->from_start ||
          cell.fault->timed() ||
          operations_.size() != static_cast<size_t>(at_op_))
        return std::string();
      std::lock_guard<std::mutex> s(switch_mu_);
      at_op_applied_ = true;
      for (const auto& t : cell.fault->targets) {
        FaultSwitch* sw =
            t->shared ? &shared_.at(t.get()).sw : &switches_.at(t.get());
        sw->cell = &cell.fault->policy;
        if (std::string err = Switch(*t, sw, deadline); !err.empty())
          return absl::StrCat(t->shared ? "shared service \"" : "service \"",
                              t->name, "\": the cell's fault was not applied (",
                              err, ")");
      }
      return std::string();
    };
    for (const auto& svc : spec_.services)
      ctx.service_names.push_back(svc->name);
    for (const auto& a : spec_.assumptions) ctx.fault_names.push_back(a->name);
    ctx.open_window = [this, deadline](const ServiceDef& svc,
                                       const FaultWindow& w) {
      std::lock_guard<std::mutex> l(switch_mu_);
      return OpenWindow(svc, w, deadline);
    };
    ctx.close_window = [this, deadline](const ServiceDef& svc) {
      std::lock_guard<std::mutex> l(switch_mu_);
      return CloseWindow(svc, deadline);
    };
    ScopedCell scoped(&ctx);
    sl::Thread th;
    th.name = cell.name();
    th.print = [r](sl::Thread&, const std::string& s) {
      absl::StrAppend(&r->output, s, "\n");
    };
    Watchdog dog(&th, deadline, timeout_msg);
    ctx.in_run = true;
    ctx.run_start = absl::Now();
    run_start_ns_ = absl::ToUnixNanos(ctx.run_start);
    std::optional<TimedFault> timed;
    if (cell.fault && cell.fault->timed())
      timed.emplace(this, cell, ctx.run_start, deadline);
    absl::StatusOr<Value> result = sl::Call(th, cell.scenario->run, {});
    ctx.run_end = absl::Now();
    ctx.in_run = false;
    if (timed) {
      timed->Stop();
      if (!timed->error().empty()) return timed->error();
      timed_never_applied_ = !timed->applied();
    }
    auto timed_out = [&](const absl::Status& st) {
      return absl::Now() >= deadline ||
             std::string(st.message()).find(timeout_msg) != std::string::npos;
    };
    // The expectation: the cell's override, else the scenario's check. A
    // run that failed fails the cell, except that an override sees it as
    // scenario_error(error = "...") and may expect it. An expectation
    // (expect_success(), ...) sees how run() ended, a run still going at
    // the cell timeout included: only expect_hang() passes it.
    const bool is_override = !cell.check.IsNull();
    Value check = is_override ? cell.check : cell.scenario->check;
    const bool hung = !result.ok() && timed_out(result.status());
    if (hung && !(IsExpectation(check) && ExpectsHang(check)))
      return absl::StrCat(timeout_msg, "\n", result.status().message());
    // The check sees what the run observed, with the faults removed.
    if (std::string m =
            EndWindows(std::max(deadline, absl::Now() + absl::Seconds(2)));
        !m.empty())
      return result.ok() ? m : absl::StrCat(result.status().message(), "\n", m);
    if (IsExpectation(check)) {
      RunOutcome outcome;
      outcome.elapsed = std::min(ctx.run_end, deadline) - ctx.run_start;
      if (hung) {
        outcome.end = RunOutcome::End::kHung;
        outcome.error = timeout_msg;
      } else if (!result.ok()) {
        outcome.end = RunOutcome::End::kFailed;
        outcome.error = std::string(result.status().message());
      } else {
        outcome.value = *result;
      }
      return CheckExpectation(th, check, outcome);
    }
    if (!result.ok() && !is_override)
      return std::string(result.status().message());
    if (check.IsNull()) return "";
    Value arg =
        result.ok()
            ? *result
            : MakeRecord(
                  {{"error", sl::Str(std::string(result.status().message()))}},
                  "scenario_error");
    Value args[] = {arg};
    absl::StatusOr<Value> checked = sl::Call(th, check, args);
    if (!checked.ok()) {
      if (timed_out(checked.status()))
        return absl::StrCat(timeout_msg, "\n", checked.status().message());
      return absl::StrCat(
          is_override ? "override check failed:\n" : "check failed:\n",
          checked.status().message());
    }
    return "";
  }

  // The fault events the cell's services have written so far, each with
  // its "service" (events() and the temporal assertions; the report reads
  // them again once the services have stopped). Whole lines only: a line
  // fault exec is writing is read next time. A shared service's are those
  // since a fault of the cell went on in it.
  std::vector<nlohmann::json> LiveEvents() {
    std::vector<nlohmann::json> out;
    for (const auto& svc : spec_.services) {
      std::string text;
      int64_t from_ns = std::numeric_limits<int64_t>::min();
      if (svc->shared) {
        const SharedService& sh = shared_.at(svc.get());
        // Its events count from when a fault of this cell went on.
        if (!sh.live_in_cell || !sh.applied) continue;
        text = ReadFrom(sh.events, sh.events_read);
        from_ns = sh.window_start_ns;
      } else {
        text = ReadFrom(absl::StrCat(dir_, "/", svc->name, ".events.jsonl"), 0);
      }
      size_t used = 0;
      for (size_t nl; (nl = text.find('\n', used)) != std::string::npos;
           used = nl + 1) {
        nlohmann::json e = nlohmann::json::parse(
            text.begin() + used, text.begin() + nl, nullptr, false);
        if (e.is_discarded() || !e.is_object()) continue;
        auto t = e.find("time_ns");
        if (t != e.end() && t->is_number_integer() &&
            t->get<int64_t>() < from_ns)
          continue;
        e["service"] = svc->name;
        out.push_back(std::move(e));
      }
    }
    return out;
  }

  // Waits until `svc` is ready; returns "" or why it is not.
  std::string AwaitReady(ServiceDef& svc, Proc* p, const std::string& log_path,
                         off_t log_from, absl::Time deadline,
                         const std::string& timeout_msg) {
    absl::Time until = std::min(deadline, absl::Now() + svc.ready_timeout);
    for (int attempt = 0;; ++attempt) {
      if (Reap(p, false)) {
        std::string log = ReadFrom(log_path, log_from);
        // A port of its own choosing, which another program took first:
        // the cell is worth another start (Run).
        bool chosen = false;
        for (const auto& [name, port] : svc.ports) chosen |= port == 0;
        if (chosen && absl::StrContains(absl::AsciiStrToLower(log), "address already in use"))
          port_taken_ = svc.name;
        return absl::StrCat("service \"", svc.name, "\" exited (",
                            DescribeStatus(p->status), ") before it was ready",
                            log.empty() ? "" : ":\n", Tail(log, 10));
      }
      if (IsReady(svc, until)) return "";
      if (absl::Now() >= until) {
        if (until == deadline) return timeout_msg;
        return absl::StrCat(
            "service \"", svc.name, "\" was not ready after ",
            fault::policy::FormatDuration(
                absl::ToInt64Nanoseconds(svc.ready_timeout)),
            svc.ready_port.empty()
                ? " (ready command)"
                : absl::StrCat(" (port ", svc.ready_port, " ",
                               PortOf(svc, svc.ready_port), ")"));
      }
      absl::SleepFor(absl::Milliseconds(attempt < 20 ? 20 : 100));
    }
  }

  // Starts the cell's services but the shared ones under one `fault exec`
  // (--with for all but the first); its events and output go to the first
  // one's files.
  std::string StartGroup(const std::string& policy_file, std::vector<Proc>* procs) {
    group_lead_ = 0;
    while (group_lead_ < spec_.services.size() && spec_.services[group_lead_]->shared)
      ++group_lead_;
    if (group_lead_ == spec_.services.size()) return "";
    const auto& first = spec_.services[group_lead_];
    std::vector<std::string> argv =
        ExecArgv(absl::StrCat(dir_, "/", first->name, ".events.jsonl"));
    argv.insert(argv.end(), {"--quiet", "--policy", policy_file});
    // Each service's own environment: through env(1), so that one
    // service's variables do not reach the others.
    auto command_of = [&](const ServiceDef& svc) {
      std::vector<std::string> words;
      if (!svc.env.empty()) {
        words.push_back("/usr/bin/env");
        for (auto& [k, v] : svc.env)
          words.push_back(absl::StrCat(k, "=", Substitute(v, svc)));
      }
      for (auto& a : svc.command) words.push_back(Substitute(a, svc));
      return words;
    };
    auto quote = [](const std::string& w) {
      return absl::StrCat("'", absl::StrReplaceAll(w, {{"'", "'\\''"}}), "'");
    };
    for (size_t i = group_lead_ + 1; i < spec_.services.size(); ++i) {
      const auto& svc = spec_.services[i];
      if (svc->shared) continue;
      std::vector<std::string> quoted;
      for (const std::string& w : command_of(*svc)) quoted.push_back(quote(w));
      argv.push_back("--with");
      argv.push_back(absl::StrCat(svc->name, "=", absl::StrJoin(quoted, " ")));
    }
    argv.insert(argv.end(), {"--name", first->name, "--"});
    for (const std::string& w : command_of(*first)) argv.push_back(w);
    auto pid = Spawn(argv, {}, absl::StrCat(dir_, "/", first->name, ".log"));
    if (!pid.ok())
      return absl::StrCat("services of the partition: ", pid.status().message());
    (*procs)[group_lead_].pid = *pid;
    return "";
  }

  bool IsReady(ServiceDef& svc, absl::Time until) {
    if (!svc.ready_port.empty())
      return PortAccepts(PortOf(svc, svc.ready_port));
    if (svc.ready_command.empty()) return true;
    std::vector<std::string> argv;
    for (auto& a : svc.ready_command) argv.push_back(Substitute(a, svc));
    auto pid = Spawn(argv, {}, "");
    if (!pid.ok()) return false;
    Proc p{*pid};
    while (!Reap(&p, false) && absl::Now() < until)
      absl::SleepFor(absl::Milliseconds(10));
    if (!p.exited) {
      Stop(&p, absl::Milliseconds(100));
      return false;
    }
    return WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0;
  }

  // A cell's fault timed with after= and lasting= (docs/spec.md, "Timed
  // faults"): a thread that applies it to its target services at
  // run_start + after and removes it `lasting` later, by the same reloads
  // as any fault (serialized with the scenario's windows by switch_mu_).
  // Stop() ends it when run() returns; what is still in force is then
  // removed with the windows.
  class TimedFault {
   public:
    TimedFault(CellRunner* runner, const Cell& cell, absl::Time run_start,
               absl::Time deadline)
        : runner_(runner),
          cell_(cell),
          on_(run_start + cell.fault->after),
          off_(cell.fault->lasting == absl::InfiniteDuration()
                   ? absl::InfiniteFuture()
                   : on_ + cell.fault->lasting),
          deadline_(deadline),
          worker_([this] { Work(); }) {}
    ~TimedFault() { Stop(); }
    void Stop() {
      {
        std::lock_guard<std::mutex> l(mu_);
        stop_ = true;
      }
      cv_.notify_all();
      if (worker_.joinable()) worker_.join();
    }
    bool applied() const { return applied_; }
    const std::string& error() const { return error_; }

   private:
    // False when stopped first.
    bool WaitUntil(absl::Time t) {
      std::unique_lock<std::mutex> l(mu_);
      while (!stop_ && absl::Now() < t) {
        absl::Duration left = std::min(t, deadline_) - absl::Now();
        if (left <= absl::ZeroDuration()) return !stop_ && absl::Now() >= t;
        cv_.wait_for(l, absl::ToChronoNanoseconds(left));
      }
      return !stop_;
    }
    // Puts the cell's fault in force (on) or removes it in every target.
    void Set(bool on) {
      std::lock_guard<std::mutex> l(runner_->switch_mu_);
      for (const auto& t : cell_.fault->targets) {
        FaultSwitch* sw = t->shared ? &runner_->shared_.at(t.get()).sw
                                    : &runner_->switches_.at(t.get());
        sw->cell = on ? &cell_.fault->policy : nullptr;
        std::string err = runner_->Switch(*t, sw, deadline_);
        if (!err.empty() && error_.empty())
          error_ = absl::StrCat(t->shared ? "shared service \"" : "service \"",
                                t->name, "\": the cell's timed fault was not ",
                                on ? "applied" : "removed", " (", err, ")");
      }
      if (on) applied_ = true;
    }
    void Work() {
      if (!WaitUntil(on_)) return;
      Set(true);
      if (off_ == absl::InfiniteFuture() || !WaitUntil(off_)) return;
      Set(false);
    }

    CellRunner* runner_;
    const Cell& cell_;
    const absl::Time on_, off_, deadline_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    bool applied_ = false;  // read after Stop()
    std::string error_;     // likewise
    std::thread worker_;    // last: starts after the members it uses
  };

  // A window of the scenario, for its "never fired" check.
  struct OpenedWindow {
    const ServiceDef* service;
    std::string rule, where, opened_by;
    bool expect_events;
  };

  Spec& spec_;
  const RunOptions& o_;
  std::string dir_;
  // The faults of the services started for this cell (not the shared
  // ones, nor those of a cell with a partition).
  std::map<const ServiceDef*, FaultSwitch> switches_;
  CellInstances instances_;  // the ports and directories of fresh services
  // Held while a fault is switched in a running service: the scenario's
  // windows and a timed cell fault switch from two threads.
  std::mutex switch_mu_;
  std::mutex op_mu_;  // operations_, at_op_applied_
  std::vector<std::string> operations_;
  std::vector<OpenedWindow> windows_;  // opened in this cell, in order
  std::string no_seccomp_;             // why the seccomp layer does not work
  std::map<const ServiceDef*, SharedService>& shared_;
  size_t group_lead_ = 0;  // the service that is that fault exec's program
  int64_t run_start_ns_ = 0;  // when the scenario's run() started
  const int at_op_;           // see the constructor
  bool seccomp_;           // the seccomp layer works here
  bool grouped_ = false;   // this cell's services run under one fault exec
  bool timed_never_applied_ = false;  // run() returned before `after`
  bool at_op_applied_ = false;
  // The service that exited before it was ready because another program
  // had taken a port chosen for it ("" if none): Run starts the cell again,
  // at most kPortAttempts times in all.
  std::string port_taken_;
  static constexpr int kPortAttempts = 3;
};

std::string Sanitize(absl::string_view s) {
  std::string out;
  for (char c : s)
    out += (isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ||
            c == '.')
               ? c
               : '_';
  return out;
}

}  // namespace

namespace {

// The shared services of one pass over the cells (a run of --runs), and the
// syscall families their seccomp filter needs for every fault of the spec
// that targets them. Their files are under `base`.
std::map<const ServiceDef*, SharedService> SetUpShared(
    const Spec& spec, const std::string& base, bool seccomp,
    const std::string& no_seccomp) {
  std::map<const ServiceDef*, SharedService> shared;
  for (auto& svc : spec.services) {
    if (!svc->shared) continue;
    SharedService& sh = shared[svc.get()];
    sh.def = svc;
    std::string base_name = absl::StrCat(base, "/shared-", Sanitize(svc->name));
    sh.dir = base_name;
    mkdir(sh.dir.c_str(), 0755);
    sh.log = base_name + ".log";
    sh.events = base_name + ".events.jsonl";
    sh.sw.proc = &sh.proc;
    sh.sw.policy_file = base_name + ".policy.yaml";
    sh.sw.log = sh.log;
    std::set<int> families = FamiliesTargeting(spec, svc.get());
    sh.sw.idle = NeverFiringPolicy(kBetweenCells, families);
    if (svc->static_binary && !seccomp) {
      // No fault can reach it: the cells that fault it fail, and it runs
      // without a policy.
      sh.sw.no_reload = absl::StrCat(
          "service \"", svc->name,
          "\" is a static binary and this build's `fault exec` has no seccomp "
          "layer (--layer seccomp): no fault can reach it (",
          no_seccomp, ")");
      continue;
    }
    sh.sw.reloads = true;
    sh.sw.seccomp = svc->static_binary || !families.empty();
    sh.sw.families = families;
    if (svc->static_binary)
      sh.layer = "seccomp";
    else if (families.empty())
      sh.layer = "preload";  // as a fresh service with no syscall faults
  }
  return shared;
}

// Why the cells of `spec` cannot run at the same time ("" when they can):
// a shared service is one process for every cell, and a fixed port can be
// bound by one cell's service at a time.
std::string WhyNotParallel(const Spec& spec) {
  for (const auto& svc : spec.services) {
    if (svc->shared)
      return absl::StrCat("service \"", svc->name,
                          "\" is shared (one process for every cell)");
    for (const auto& [name, port] : svc->ports)
      if (port != 0)
        return absl::StrCat("service \"", svc->name, "\" has a fixed port (",
                            name, " = ", port,
                            "), which one cell at a time can use");
  }
  return "";
}

}  // namespace

RunResult RunSpec(Spec& spec, const RunOptions& o) {
  RunResult run;
  run.spec = spec.path;
  run.seed = o.seed;
  run.runs = std::max(1, o.runs);
  std::vector<const Cell*> cells;
  for (const Cell& c : spec.cells)
    if (o.filter.empty() || fnmatch(o.filter.c_str(), c.name().c_str(), 0) == 0)
      cells.push_back(&c);
  const char* tmp = getenv("TMPDIR");
  std::string base =
      absl::StrCat(tmp && *tmp ? tmp : "/tmp", "/fault-test-XXXXXX");
  if (mkdtemp(base.data()) == nullptr) {
    for (int r = 0; r < run.runs; ++r) {
      for (const Cell* c : cells) {
        CellResult res;
        res.scenario = c->scenario->name;
        res.fault = c->fault ? c->fault->name : "none";
        res.seed = o.seed + r;
        res.message = absl::StrCat("cannot create a directory under ",
                                   tmp ? tmp : "/tmp", ": ", strerror(errno));
        run.cells.push_back(res);
      }
    }
    return run;
  }
  // The seccomp layer is probed when some cell needs it: for a static
  // binary (only it reaches one) and for a partition (only it cuts the
  // services' connections; `fault exec --layer auto` turns it on for a
  // policy with partitions).
  bool need_seccomp = false;
  for (auto& s : spec.services) need_seccomp |= s->static_binary;
  for (const Cell* c : cells)
    need_seccomp |= c->fault && c->fault->policy.partitions_size() > 0;
  const std::string no_seccomp =
      need_seccomp
          ? SeccompLayerProblem(o.fault_binary, base + "/seccomp-probe.log")
          : "not probed";
  const bool seccomp = no_seccomp.empty();
  // A cell whose fault can go on before any operation of its scenario:
  // one applied by a reload when run() starts.
  auto explorable = [](const Cell& c) {
    return c.fault != nullptr && !c.fault->from_start && !c.fault->timed();
  };
  // With --explore-timing, each such cell runs once without its fault to
  // count the operations of its scenario (exec, http.*, tcp.connect); the
  // positions to try are then before each of them.
  std::map<const Cell*, int> operations;
  if (o.explore_timing) {
    std::string count_base = absl::StrCat(base, "/operations");
    mkdir(count_base.c_str(), 0755);
    std::map<const ServiceDef*, SharedService> shared =
        SetUpShared(spec, count_base, seccomp, no_seccomp);
    for (size_t i = 0; i < cells.size(); ++i) {
      if (!explorable(*cells[i])) continue;
      Cell bare = *cells[i];
      bare.fault = nullptr;
      std::string dir = absl::StrCat(count_base, "/", i + 1, "-",
                                     Sanitize(bare.scenario->name));
      mkdir(dir.c_str(), 0755);
      CellRunner runner(spec, o, dir, no_seccomp, &shared);
      runner.Run(bare);
      operations[cells[i]] = static_cast<int>(runner.operations().size());
    }
    for (auto& [def, sh] : shared) Stop(&sh.proc, o.stop_grace);
  }
  // Every (run, cell, position): run r uses the seed o.seed + r. Results
  // keep this order whatever order the cells finish in.
  struct Item {
    int run;
    const Cell* cell;
    int at_op;  // 0: the fault goes on when run() starts
  };
  std::vector<Item> items;
  for (int r = 0; r < run.runs; ++r) {
    for (const Cell* c : cells) {
      auto it = operations.find(c);
      if (it != operations.end() && it->second > 0) {
        for (int at = 1; at <= it->second; ++at) items.push_back({r, c, at});
      } else {
        items.push_back({r, c, explorable(*c) ? o.fault_at_op : 0});
      }
    }
  }
  const int total = static_cast<int>(items.size());
  run.cells.resize(total);
  std::vector<RunOptions> pass_options(run.runs, o);
  for (int r = 0; r < run.runs; ++r) pass_options[r].seed = o.seed + r;
  auto cell_dir = [&](int k) {
    const Item& item = items[k];
    const Cell& c = *item.cell;
    std::string dir = absl::StrCat(
        base, "/", k + 1, "-", Sanitize(c.scenario->name), "-",
        Sanitize(c.fault ? c.fault->name : "none"),
        item.at_op > 0 ? absl::StrCat("-op", item.at_op) : "",
        run.runs > 1 ? absl::StrCat("-seed", o.seed + item.run) : "");
    mkdir(dir.c_str(), 0755);
    return dir;
  };
  auto label = [&](int k) {
    const Item& item = items[k];
    std::string name = item.cell->name();
    if (item.at_op > 0) absl::StrAppend(&name, " @op ", item.at_op);
    if (run.runs > 1) absl::StrAppend(&name, " (seed ", o.seed + item.run, ")");
    return name;
  };
  auto finish = [&](int k, CellResult* res) {
    res->seed = o.seed + items[k].run;
    auto it = operations.find(items[k].cell);
    if (it != operations.end()) res->operations = it->second;
  };
  const int jobs = std::max(1, std::min(o.jobs, total));
  if (jobs > 1) run.sequential_because = WhyNotParallel(spec);
  if (jobs <= 1 || !run.sequential_because.empty()) {
    for (int r = 0; r < run.runs; ++r) {
      // Shared services start again for every run, with its seed.
      std::string shared_base = base;
      if (run.runs > 1) {
        shared_base = absl::StrCat(base, "/seed", o.seed + r);
        mkdir(shared_base.c_str(), 0755);
      }
      std::map<const ServiceDef*, SharedService> shared =
          SetUpShared(spec, shared_base, seccomp, no_seccomp);
      for (int k = 0; k < total; ++k) {
        if (items[k].run != r) continue;
        if (o.on_start) o.on_start(k, total, label(k));
        CellRunner runner(spec, pass_options[r], cell_dir(k), no_seccomp,
                          &shared, items[k].at_op);
        CellResult res = runner.Run(*items[k].cell);
        finish(k, &res);
        if (o.on_done) o.on_done(k, total, res);
        run.cells[k] = std::move(res);
      }
      for (auto& [def, sh] : shared) Stop(&sh.proc, o.stop_grace);
    }
  } else {
    // Cells at the same time, each with its own services, ports and
    // directory: `jobs` threads take the next item in order.
    std::mutex mu;
    int next = 0, started = 0;
    auto worker = [&] {
      std::map<const ServiceDef*, SharedService> none;  // no shared service
      for (;;) {
        int k;
        {
          std::lock_guard<std::mutex> l(mu);
          if (next == total) return;
          k = next++;
          if (o.on_start) o.on_start(started++, total, label(k));
        }
        CellRunner runner(spec, pass_options[items[k].run], cell_dir(k),
                          no_seccomp, &none, items[k].at_op);
        CellResult res = runner.Run(*items[k].cell);
        finish(k, &res);
        std::lock_guard<std::mutex> l(mu);
        if (o.on_done) o.on_done(k, total, res);
        run.cells[k] = std::move(res);
      }
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < jobs; ++t) threads.emplace_back(worker);
    for (auto& t : threads) t.join();
  }
  if (!o.keep_dirs) {
    std::error_code ec;
    std::filesystem::remove_all(base, ec);
  } else {
    fprintf(stderr, "fault test: cell directories kept in %s\n", base.c_str());
  }
  return run;
}

}  // namespace fault::spec
