#include "supervisor/spec/runner.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "supervisor/policy/loader.h"
#include "supervisor/policy/units.h"
#include "supervisor/spec/builtins.h"

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

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

bool PortAccepts(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
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

std::string Substitute(const std::string& s, const ServiceDef& svc) {
  std::vector<std::pair<std::string, std::string>> reps = {
      {"{dir}", svc.current_dir}};
  for (auto& [name, port] : svc.current_ports)
    reps.emplace_back(absl::StrCat("{", name, "}"), absl::StrCat(port));
  return absl::StrReplaceAll(s, reps);
}

bool SeccompLayerAvailable(const std::string& fault_binary) {
  auto pid = Spawn({fault_binary, "exec", "--layer", "seccomp", "--quiet", "--",
                    "/bin/true"},
                   {}, "");
  if (!pid.ok()) return false;
  Proc p{*pid};
  absl::Time until = absl::Now() + absl::Seconds(10);
  while (!Reap(&p, false) && absl::Now() < until)
    absl::SleepFor(absl::Milliseconds(10));
  if (!p.exited) {
    Stop(&p, absl::Seconds(1));
    return false;
  }
  return WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0;
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

class CellRunner {
 public:
  CellRunner(Spec& spec, const RunOptions& o, const std::string& dir,
             bool seccomp)
      : spec_(spec), o_(o), dir_(dir), seccomp_(seccomp) {}

  CellResult Run(const Cell& cell) {
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
    std::vector<Proc> procs(spec_.services.size());
    std::string message = StartAndRun(cell, deadline, timeout_msg, &procs, &r);
    for (auto& p : procs) Stop(&p, o_.stop_grace);
    // Events of every service, in service order.
    std::vector<int> target_events(spec_.services.size(), 0);
    for (size_t i = 0; i < spec_.services.size(); ++i) {
      const auto& svc = spec_.services[i];
      std::ifstream f(absl::StrCat(dir_, "/", svc->name, ".events.jsonl"));
      std::string line;
      while (std::getline(f, line)) {
        nlohmann::json e = nlohmann::json::parse(line, nullptr, false);
        if (e.is_discarded()) continue;
        e["service"] = svc->name;
        r.events.push_back(std::move(e));
        target_events[i]++;
      }
      std::string log =
          ReadFile(absl::StrCat(dir_, "/", svc->name, ".log"), 64 << 10);
      if (!log.empty())
        absl::StrAppend(&r.output, "--- service ", svc->name, " ---\n", log,
                        log.back() == '\n' ? "" : "\n");
    }
    if (message.empty() && cell.fault && cell.fault->expect_events) {
      int fired = 0;
      std::vector<std::string> names;
      for (size_t i = 0; i < spec_.services.size(); ++i) {
        for (auto& t : cell.fault->targets) {
          if (t == spec_.services[i]) {
            fired += target_events[i];
            names.push_back(absl::StrCat("\"", t->name, "\""));
          }
        }
      }
      // One fault exec ran every service: its events are all the cell's.
      if (grouped_) fired = target_events[0];
      if (fired == 0)
        message = absl::StrCat(
            "fault \"", cell.fault->name,
            "\" never fired (no fault events from ", absl::StrJoin(names, ", "),
            "): the scenario did not reach it; if that is expected, give "
            "fault_assumption(..., expect_events=False)");
    }
    r.passed = message.empty();
    r.message = message;
    r.seconds = absl::ToDoubleSeconds(absl::Now() - start);
    return r;
  }

 private:
  // Returns the failure message, or "" when the cell passed.
  std::string StartAndRun(const Cell& cell, absl::Time deadline,
                          const std::string& timeout_msg,
                          std::vector<Proc>* procs, CellResult* r) {
    std::string policy_file = absl::StrCat(dir_, "/policy.yaml");
    if (cell.fault) {
      fault::v1::PolicySet set;
      *set.add_policies() = cell.fault->policy;
      r->policy_yaml = fault::policy::FormatPolicySet(set);
      std::ofstream(policy_file) << r->policy_yaml;
    }
    for (auto& svc : spec_.services) {
      svc->current_ports.clear();
      for (auto& [name, port] : svc->ports)
        svc->current_ports[name] = port == 0 ? FreePort() : port;
      svc->current_dir = absl::StrCat(dir_, "/", svc->name);
      mkdir(svc->current_dir.c_str(), 0755);
    }
    // A partition needs both programs under one supervisor: then every
    // service of the cell runs under one `fault exec`, the first as its
    // program and the others as --with companions.
    grouped_ = cell.fault && cell.fault->policy.partitions_size() > 0;
    if (grouped_) {
      if (!seccomp_)
        return absl::StrCat("fault \"", cell.fault->name,
                            "\" has a partition, which needs the seccomp layer of "
                            "`fault exec`; this machine or build has none");
      std::string error = StartGroup(policy_file, procs);
      if (!error.empty()) return error;
    } else {
      for (size_t i = 0; i < spec_.services.size(); ++i) {
        const auto& svc = spec_.services[i];
        bool targeted = false;
        if (cell.fault)
          for (auto& t : cell.fault->targets) targeted |= t == svc;
        std::vector<std::string> argv = {
            o_.fault_binary,
            "exec",
            "--quiet",
            "--seed",
            absl::StrCat(o_.seed),
            "--events",
            absl::StrCat(dir_, "/", svc->name, ".events.jsonl")};
        if (targeted) {
          if (svc->static_binary && !seccomp_)
            return absl::StrCat(
                "service \"", svc->name,
                "\" is a static binary and this build's `fault exec` has no "
                "seccomp layer (--layer seccomp): the faults of \"",
                cell.fault->name, "\" cannot reach it");
          argv.insert(argv.end(), {"--policy", policy_file});
        }
        if (svc->static_binary && seccomp_)
          argv.insert(argv.end(), {"--layer", "seccomp"});
        argv.push_back("--");
        for (auto& a : svc->command) argv.push_back(Substitute(a, *svc));
        std::vector<std::pair<std::string, std::string>> env;
        for (auto& [k, v] : svc->env) env.emplace_back(k, Substitute(v, *svc));
        auto pid = Spawn(argv, env, absl::StrCat(dir_, "/", svc->name, ".log"));
        if (!pid.ok())
          return absl::StrCat("service \"", svc->name,
                              "\": ", pid.status().message());
        (*procs)[i].pid = *pid;
      }
    }
    // Readiness, in definition order.
    for (size_t i = 0; i < spec_.services.size(); ++i) {
      const auto& svc = spec_.services[i];
      absl::Time until = std::min(deadline, absl::Now() + svc->ready_timeout);
      Proc& proc = (*procs)[grouped_ ? 0 : i];
      for (int attempt = 0;; ++attempt) {
        if (Reap(&proc, false)) {
          std::string log = ReadFile(absl::StrCat(
              dir_, "/", spec_.services[grouped_ ? 0 : i]->name, ".log"));
          return absl::StrCat("service \"", svc->name, "\" exited (",
                              DescribeStatus(proc.status),
                              ") before it was ready", log.empty() ? "" : ":\n",
                              Tail(log, 10));
        }
        if (IsReady(*svc, until)) break;
        if (absl::Now() >= until) {
          if (until == deadline) return timeout_msg;
          return absl::StrCat(
              "service \"", svc->name, "\" was not ready after ",
              fault::policy::FormatDuration(
                  absl::ToInt64Nanoseconds(svc->ready_timeout)),
              svc->ready_port.empty()
                  ? " (ready command)"
                  : absl::StrCat(" (port ", svc->ready_port, " ",
                                 svc->current_ports[svc->ready_port], ")"));
        }
        absl::SleepFor(absl::Milliseconds(attempt < 20 ? 20 : 100));
      }
    }
    // The scenario, then its expectation.
    CellContext ctx{deadline, timeout_msg};
    ScopedCell scoped(&ctx);
    sl::Thread th;
    th.name = cell.name();
    th.print = [r](sl::Thread&, const std::string& s) {
      absl::StrAppend(&r->output, s, "\n");
    };
    Watchdog dog(&th, deadline, timeout_msg);
    absl::StatusOr<Value> result = sl::Call(th, cell.scenario->run, {});
    auto timed_out = [&](const absl::Status& st) {
      return absl::Now() >= deadline ||
             std::string(st.message()).find(timeout_msg) != std::string::npos;
    };
    // The expectation: the cell's override, else the scenario's check. A
    // run that failed fails the cell, except that an override sees it as
    // scenario_error(error = "...") and may expect it.
    const bool is_override = !cell.check.IsNull();
    Value check = is_override ? cell.check : cell.scenario->check;
    if (!result.ok()) {
      if (timed_out(result.status()))
        return absl::StrCat(timeout_msg, "\n", result.status().message());
      if (!is_override) return std::string(result.status().message());
    }
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

  // Starts every service under one `fault exec` (--with for all but the
  // first); its events and output go to the first service's files.
  std::string StartGroup(const std::string& policy_file, std::vector<Proc>* procs) {
    const auto& first = spec_.services[0];
    std::vector<std::string> argv = {
        o_.fault_binary, "exec",   "--quiet", "--seed", absl::StrCat(o_.seed),
        "--events",      absl::StrCat(dir_, "/", first->name, ".events.jsonl"),
        "--policy",      policy_file};
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
    for (size_t i = 1; i < spec_.services.size(); ++i) {
      const auto& svc = spec_.services[i];
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
    (*procs)[0].pid = *pid;
    return "";
  }

  bool IsReady(ServiceDef& svc, absl::Time until) {
    if (!svc.ready_port.empty())
      return PortAccepts(svc.current_ports[svc.ready_port]);
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

  Spec& spec_;
  const RunOptions& o_;
  std::string dir_;
  bool grouped_ = false;  // this cell's services run under one fault exec
  bool seccomp_;
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

RunResult RunSpec(Spec& spec, const RunOptions& o) {
  RunResult run;
  run.spec = spec.path;
  run.seed = o.seed;
  std::vector<const Cell*> cells;
  for (const Cell& c : spec.cells)
    if (o.filter.empty() || fnmatch(o.filter.c_str(), c.name().c_str(), 0) == 0)
      cells.push_back(&c);
  bool need_seccomp = false;
  for (auto& s : spec.services) need_seccomp |= s->static_binary;
  bool seccomp = need_seccomp && SeccompLayerAvailable(o.fault_binary);
  const char* tmp = getenv("TMPDIR");
  std::string base =
      absl::StrCat(tmp && *tmp ? tmp : "/tmp", "/fault-test-XXXXXX");
  if (mkdtemp(base.data()) == nullptr) {
    for (const Cell* c : cells) {
      CellResult r;
      r.scenario = c->scenario->name;
      r.fault = c->fault ? c->fault->name : "none";
      r.message = absl::StrCat("cannot create a directory under ",
                               tmp ? tmp : "/tmp", ": ", strerror(errno));
      run.cells.push_back(r);
    }
    return run;
  }
  int total = static_cast<int>(cells.size());
  for (int i = 0; i < total; ++i) {
    const Cell& c = *cells[i];
    std::string dir =
        absl::StrCat(base, "/", i + 1, "-", Sanitize(c.scenario->name), "-",
                     Sanitize(c.fault ? c.fault->name : "none"));
    mkdir(dir.c_str(), 0755);
    if (o.on_start) o.on_start(i, total, c.name());
    CellRunner runner(spec, o, dir, seccomp);
    CellResult r = runner.Run(c);
    if (o.on_done) o.on_done(i, total, r);
    run.cells.push_back(std::move(r));
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
