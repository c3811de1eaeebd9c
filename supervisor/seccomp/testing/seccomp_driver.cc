// seccomp_driver: runs one program under the seccomp layer alone, with a
// policy table it writes itself, for integration tests and benchmarks of the
// layer independent of `fault exec`.
//
//   seccomp_driver --deny fsync=EIO --events ev.txt -- ./fsync_target db
//   seccomp_driver --delay write=100ms:*.log --when 3,0,3 -- ./prog
//   seccomp_driver --deny connect=ECONNREFUSED --target 127.0.0.1/32:8080 --
//   ./client seccomp_driver --partition a,b --name b -- ./server : --name a --
//   ./client
//
// Each --deny/--delay adds one syscall rule (FAMILY=ERRNO|DURATION[:GLOB]);
// --when FIRST,LAST,STEP and --prob PPM apply to the rule before them.
// Programs are separated by ':' (each may have --name NAME first); all share
// one table and one NotifyLoop. Exit status: the first program's.
// Events are written one per line:
//   layer=2 op=8 effect=15 value=5 pid=123 target=/tmp/db
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "shim/engine/engine.h"
#include "supervisor/policy/units.h"
#include "supervisor/seccomp/seccomp_layer.h"

extern char** environ;

namespace fault::seccomp {
namespace {

int64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

int Fail(const std::string& msg) {
  fprintf(stderr, "seccomp_driver: %s\n", msg.c_str());
  return 2;
}

// FAMILY=VALUE[:GLOB]
bool SplitRule(const std::string& spec, std::string* family, std::string* value,
               std::string* glob) {
  size_t eq = spec.find('=');
  if (eq == std::string::npos) return false;
  *family = spec.substr(0, eq);
  std::string rest = spec.substr(eq + 1);
  size_t colon = rest.find(':');
  *value = rest.substr(0, colon);
  *glob = colon == std::string::npos ? "" : rest.substr(colon + 1);
  return true;
}

struct Program {
  std::string name;
  std::vector<std::string> argv;
};

}  // namespace

int DriverMain(int argc, char** argv) {
  // Split the command line at "--": options, then programs separated by ':'.
  int dashdash = -1;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--") {
      dashdash = i;
      break;
    }
  }
  if (dashdash < 0 || dashdash + 1 >= argc)
    return Fail("usage: seccomp_driver [options] -- PROGRAM ARGS...");

  std::vector<std::string> ordered;  // --deny/--delay/--when/--prob in order
  std::string events_path, preload, target, partition;
  bool stub = false, no_sync = false;
  uint64_t seed = 1;
  uint64_t extra_families = 0;
  CLI::App app("seccomp_driver");
  app.add_option("--events", events_path);
  app.add_option("--preload", preload, "LD_PRELOAD this shim with the table");
  app.add_flag("--stub-page", stub, "reserve the shim's raw-syscall stub page");
  app.add_option("--target", target, "CIDR:PORT the policy applies to");
  app.add_option("--partition", partition, "A,B");
  app.add_option("--seed", seed);
  app.add_option("--notify-families", extra_families,
                 "extra families mask to notify");
  app.add_flag("--no-sync-wakeup", no_sync);
  // --deny/--delay/--when/--prob are order-sensitive: read below, in order.
  std::vector<std::string> ignored[4];
  app.add_option("--deny", ignored[0]);
  app.add_option("--delay", ignored[1]);
  app.add_option("--when", ignored[2]);
  app.add_option("--prob", ignored[3]);
  // Keep the relative order of --deny/--delay/--when/--prob as typed.
  ordered.clear();
  for (int i = 1; i + 1 < dashdash; ++i) {
    std::string a = argv[i];
    if (a == "--deny" || a == "--delay" || a == "--when" || a == "--prob") {
      ordered.push_back(a + " " + argv[i + 1]);
    }
  }
  try {
    app.parse(dashdash, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  std::vector<std::string> keep = ordered;

  std::vector<Program> programs(1);
  for (int i = dashdash + 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == ":") {
      programs.emplace_back();
    } else if (a == "--name" && programs.back().argv.empty() && i + 1 < argc) {
      programs.back().name = argv[++i];
    } else {
      programs.back().argv.push_back(a);
    }
  }

  // The table, in a memfd so a preloaded shim can map it too.
  int table_fd = memfd_create("fault-table", MFD_CLOEXEC);
  if (table_fd < 0 || ftruncate(table_fd, sizeof(fault_table)) != 0)
    return Fail("memfd");
  auto* table = static_cast<fault_table*>(mmap(nullptr, sizeof(fault_table),
                                               PROT_READ | PROT_WRITE,
                                               MAP_SHARED, table_fd, 0));
  if (table == MAP_FAILED) return Fail("mmap");
  fault::engine::InitTable(table, MonoNs());
  const uint64_t stub_page = stub ? 0x7e0000000000ULL : 0;
  table->stub_page = stub_page;
  table->supervisor_pid = static_cast<uint32_t>(getpid());

  auto cfg_owner = std::make_unique<fault_config>();
  fault_config* cfg = cfg_owner.get();
  cfg->n_rules = 1;
  fault_rule& rule = cfg->rules[0];
  snprintf(rule.name, sizeof(rule.name), "driver");
  rule.flags = FAULT_RULE_ACTIVE | FAULT_RULE_HAS_SEED;
  rule.seed = seed;
  rule.schedule.kind = 1;
  if (!target.empty()) {
    // 127.0.0.1/32:8080
    size_t slash = target.find('/'), colon = target.rfind(':');
    if (slash == std::string::npos || colon == std::string::npos)
      return Fail("--target CIDR:PORT");
    fault_target& t = cfg->targets[0];
    t.kind = FAULT_TARGET_CIDR;
    t.family = AF_INET;
    inet_pton(AF_INET, target.substr(0, slash).c_str(), t.addr);
    int prefix = 32, port = 0;
    if (!absl::SimpleAtoi(target.substr(slash + 1, colon - slash - 1),
                          &prefix) ||
        !absl::SimpleAtoi(target.substr(colon + 1), &port)) {
      return Fail("--target CIDR:PORT");
    }
    t.prefix_len = static_cast<uint8_t>(prefix);
    t.port_min = t.port_max = static_cast<uint16_t>(port);
    rule.n_targets = 1;
    cfg->n_targets = 1;
  }
  uint64_t families = extra_families;
  for (const std::string& item : keep) {
    std::string opt = item.substr(0, item.find(' '));
    std::string val = item.substr(item.find(' ') + 1);
    if (opt == "--deny" || opt == "--delay") {
      std::string fam, value, glob;
      if (!SplitRule(val, &fam, &value, &glob))
        return Fail(opt + " " + val + ": want FAMILY=VALUE[:GLOB]");
      absl::StatusOr<Family> f = ParseFamily(fam);
      if (!f.ok()) return Fail(std::string(f.status().message()));
      if (cfg->n_syscall_rules >= FAULT_MAX_SYSCALL_RULES)
        return Fail("too many rules");
      fault_syscall_rule& sr = cfg->syscall_rules[cfg->n_syscall_rules++];
      sr.rule = 0;
      sr.family = static_cast<uint8_t>(*f);
      sr.probability_ppm = 1'000'000;
      snprintf(sr.path_glob, sizeof(sr.path_glob), "%s", glob.c_str());
      if (opt == "--deny") {
        absl::StatusOr<int> err = fault::policy::ErrnoFromName(value);
        if (!err.ok()) return Fail(std::string(err.status().message()));
        sr.action = 1;
        sr.err = *err;
      } else {
        absl::StatusOr<int64_t> d = fault::policy::ParseDuration(value);
        if (!d.ok()) return Fail(std::string(d.status().message()));
        sr.action = 2;
        sr.delay_ns = *d;
      }
      families |= FamilyBit(*f);
    } else if (cfg->n_syscall_rules == 0) {
      return Fail(opt + " must follow a --deny or --delay");
    } else if (opt == "--when") {
      fault_syscall_rule& sr = cfg->syscall_rules[cfg->n_syscall_rules - 1];
      std::vector<std::string> p = absl::StrSplit(val, ',');
      if (p.size() != 3 || !absl::SimpleAtoi(p[0], &sr.when_first) ||
          !absl::SimpleAtoi(p[1], &sr.when_last) ||
          !absl::SimpleAtoi(p[2], &sr.when_step)) {
        return Fail("--when FIRST,LAST,STEP");
      }
    } else if (opt == "--prob") {
      fault_syscall_rule& sr = cfg->syscall_rules[cfg->n_syscall_rules - 1];
      if (!absl::SimpleAtoi(val, &sr.probability_ppm))
        return Fail("--prob PPM");
    }
  }
  if (!partition.empty()) {
    std::vector<std::string> ab = absl::StrSplit(partition, ',');
    if (ab.size() != 2) return Fail("--partition A,B");
    fault_partition& p = cfg->partitions[cfg->n_partitions++];
    snprintf(p.a, sizeof(p.a), "%s", ab[0].c_str());
    snprintf(p.b, sizeof(p.b), "%s", ab[1].c_str());
    p.rule = 0;
    families |= FamilyBit(Family::kConnect) | FamilyBit(Family::kSend);
  }
  cfg->families_mask = families;
  fault::engine::Publish(table, cfg);

  PartitionMap partitions;
  EngineDecider decider(table, &partitions);
  NotifyLoop::Options loop_options;
  loop_options.sync_wakeup = !no_sync;
  NotifyLoop loop(&decider, table, loop_options);

  std::vector<pid_t> pids;
  for (const Program& prog : programs) {
    if (prog.argv.empty()) return Fail("empty program");
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
      return Fail("socketpair");
    SeccompPlan plan{
        .families_mask = families, .stub_page = stub_page, .handoff_fd = sv[1]};
    absl::StatusOr<CompiledFilter> filter = CompileSeccompPlan(plan);
    if (!filter.ok()) return Fail(std::string(filter.status().message()));
    std::vector<std::string> env_store;
    for (char** e = environ; *e != nullptr; ++e) env_store.push_back(*e);
    if (!preload.empty()) {
      env_store.push_back("LD_PRELOAD=" + preload);
      env_store.push_back(std::string(FAULT_ENV_TABLE_FD) + "=" +
                          std::to_string(table_fd));
      if (stub_page != 0) {
        char hex[32];
        snprintf(hex, sizeof(hex), "%llx",
                 static_cast<unsigned long long>(stub_page));
        env_store.push_back(std::string(FAULT_ENV_STUB_PAGE) + "=" + hex);
      }
    }
    std::vector<char*> envp, args;
    for (std::string& s : env_store) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::vector<std::string> argv_store = prog.argv;
    for (std::string& s : argv_store) args.push_back(s.data());
    args.push_back(nullptr);

    pid_t pid = fork();
    if (pid < 0) return Fail("fork");
    if (pid == 0) {
      if (!preload.empty()) fcntl(table_fd, F_SETFD, 0);
      if (InstallFilterInChild(*filter, sv[1]) != 0) _exit(126);
      execve(args[0], args.data(), envp.data());
      _exit(127);
    }
    close(sv[1]);
    absl::StatusOr<int> listener = ReceiveListener(sv[0], absl::Seconds(10));
    close(sv[0]);
    if (!listener.ok()) return Fail(std::string(listener.status().message()));
    if (!prog.name.empty()) partitions.Register(prog.name, pid);
    if (absl::Status s = loop.AddListener(*listener, prog.name); !s.ok()) {
      return Fail(std::string(s.message()));
    }
    if (pids.empty()) {
      if (absl::Status s = loop.Start(); !s.ok())
        return Fail(std::string(s.message()));
    }
    pids.push_back(pid);
  }

  int first_status = 0;
  for (size_t i = 0; i < pids.size(); ++i) {
    int status = 0;
    while (waitpid(pids[i], &status, 0) < 0 && errno == EINTR) {
    }
    if (i == 0) first_status = status;
  }
  loop.WaitUntilDone(absl::Seconds(2));
  loop.Stop();

  if (!events_path.empty()) {
    std::ofstream out(events_path);
    fault_event ev;
    while (fault::engine::PopEvent(table, &ev)) {
      out << "layer=" << int{ev.layer} << " op=" << ev.op
          << " effect=" << ev.effect << " value=" << ev.value
          << " pid=" << ev.pid << " target=" << ev.target << "\n";
    }
  }
  NotifyStats st = loop.stats();
  fprintf(stderr,
          "seccomp_driver: received=%llu denied=%llu delayed=%llu "
          "restarted=%llu stale=%llu "
          "sync_wakeup=%d syscall_fired=%llu\n",
          (unsigned long long)st.received, (unsigned long long)st.denied,
          (unsigned long long)st.delayed, (unsigned long long)st.restarted,
          (unsigned long long)st.stale, loop.sync_wakeup() ? 1 : 0,
          (unsigned long long)table->counters.syscall_fired[0]);
  if (WIFSIGNALED(first_status)) return 128 + WTERMSIG(first_status);
  return WEXITSTATUS(first_status);
}

}  // namespace fault::seccomp

int main(int argc, char** argv) {
  return fault::seccomp::DriverMain(argc, argv);
}
