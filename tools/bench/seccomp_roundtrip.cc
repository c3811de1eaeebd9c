// The cost of one notified syscall: the same workload (a child calling
// close(-1) in a loop; close is covered, the call itself is nearly free) in
// one run, answered by
//   bare        no filter at all
//   minimal     a tight SECCOMP_IOCTL_NOTIF_RECV / SEND(CONTINUE) loop
//   notifyloop  fault's NotifyLoop + EngineDecider over a policy table with
//               a close rule that matches every call and never fires
//   notifyloop-empty   NotifyLoop over a table with no rule for close
//   strace      strace -f --seccomp-bpf -e inject=close:error=EBADF:when=N+
//               (ptrace stops instead of notifications), if strace exists
// Prints a Markdown table of ns per call and the ratio to `minimal`.
//
// Usage: seccomp_roundtrip [--iterations N] [--repeat R]
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "shim/engine/engine.h"
#include "supervisor/seccomp/seccomp_abi.h"
#include "supervisor/seccomp/seccomp_layer.h"

namespace fault::seccomp {
namespace {

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// The measured loop; runs in the child. Reports ns per call on `report`.
[[noreturn]] void Workload(int report, int iterations) {
  const int64_t t0 = NowNs();
  for (int i = 0; i < iterations; ++i) syscall(SYS_close, -1);
  const int64_t per = (NowNs() - t0) / iterations;
  (void)!write(report, &per, sizeof(per));
  _exit(0);
}

enum class Responder { kNone, kMinimal, kNotifyLoop, kNotifyLoopEmpty };

int64_t RunCase(Responder how, int iterations) {
  int report[2];
  if (pipe(report) != 0) return -1;
  int sv[2];
  socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv);
  absl::StatusOr<CompiledFilter> filter = CompileSeccompPlan(
      {.families_mask = FamilyBit(Family::kClose), .handoff_fd = sv[1]});
  if (!filter.ok()) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(report[0]);
    close(sv[0]);
    if (how != Responder::kNone && InstallFilterInChild(*filter, sv[1]) != 0)
      _exit(1);
    Workload(report[1], iterations);
  }
  close(report[1]);
  close(sv[1]);

  std::unique_ptr<fault_table> table;
  std::unique_ptr<EngineDecider> decider;
  std::unique_ptr<NotifyLoop> loop;
  std::thread minimal;
  if (how != Responder::kNone) {
    absl::StatusOr<int> listener = ReceiveListener(sv[0]);
    if (!listener.ok()) return -1;
    if (how == Responder::kMinimal) {
      minimal = std::thread([fd = *listener, iterations] {
        uint64_t flags = SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP;
        ioctl(fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, flags);
        for (int i = 0; i < iterations; ++i) {
          seccomp_notif req;
          memset(&req, 0, sizeof(req));
          if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) break;
          seccomp_notif_resp resp{};
          resp.id = req.id;
          resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
          ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
        }
        close(fd);
      });
    } else {
      table.reset(new fault_table());
      fault::engine::InitTable(table.get(), NowNs());
      auto cfg = std::make_unique<fault_config>();
      cfg->n_rules = 1;
      cfg->rules[0].flags = FAULT_RULE_ACTIVE | FAULT_RULE_HAS_SEED;
      cfg->rules[0].schedule.kind = 1;
      cfg->families_mask = FamilyBit(Family::kClose);
      if (how == Responder::kNotifyLoop) {
        // Matches every close, fires on call number 2^62 only.
        cfg->n_syscall_rules = 1;
        fault_syscall_rule& sr = cfg->syscall_rules[0];
        sr.family = static_cast<uint8_t>(Family::kClose);
        sr.action = 1;
        sr.err = EIO;
        sr.when_first = sr.when_last = uint64_t{1} << 62;
      } else {
        // A rule for another family only.
        cfg->n_syscall_rules = 1;
        cfg->syscall_rules[0].family = static_cast<uint8_t>(Family::kFsync);
        cfg->syscall_rules[0].action = 1;
        cfg->syscall_rules[0].err = EIO;
      }
      fault::engine::Publish(table.get(), cfg.get());
      decider = std::make_unique<EngineDecider>(table.get());
      loop = std::make_unique<NotifyLoop>(decider.get(), table.get());
      if (!loop->Start(*listener).ok()) return -1;
    }
  }
  close(sv[0]);
  int64_t per = -1;
  if (read(report[0], &per, sizeof(per)) != sizeof(per)) per = -1;
  close(report[0]);
  waitpid(pid, nullptr, 0);
  if (minimal.joinable()) minimal.join();
  if (loop) {
    loop->WaitUntilDone(absl::Seconds(2));
    loop->Stop();
  }
  return per;
}

int64_t RunStrace(int iterations) {
  if (access("/usr/bin/strace", X_OK) != 0) return -1;
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return -1;
  self[n] = 0;
  int report[2];
  if (pipe(report) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(report[0]);
    std::string fd = std::to_string(report[1]);
    std::string iters = std::to_string(iterations);
    // The injection never fires (when= beyond the run): every close is a
    // ptrace stop that strace lets through, as our notifications do.
    std::string inject =
        "inject=close:error=EBADF:when=" + std::to_string(iterations * 10) +
        "+";
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 2);
    execl("/usr/bin/strace", "strace", "-f", "-qq", "--seccomp-bpf", "-e",
          "trace=close", "-e", inject.c_str(), "-o", "/dev/null", self,
          "--workload", fd.c_str(), iters.c_str(), nullptr);
    _exit(127);
  }
  close(report[1]);
  int64_t per = -1;
  if (read(report[0], &per, sizeof(per)) != sizeof(per)) per = -1;
  close(report[0]);
  waitpid(pid, nullptr, 0);
  return per;
}

int64_t Median(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? -1 : v[v.size() / 2];
}

int Main(int argc, char** argv) {
  int iterations = 50'000;
  int repeat = 5;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--workload" && i + 2 < argc)
      Workload(atoi(argv[i + 1]), atoi(argv[i + 2]));
    if (a == "--iterations" && i + 1 < argc) iterations = atoi(argv[++i]);
    if (a == "--repeat" && i + 1 < argc) repeat = atoi(argv[++i]);
  }
  struct Case {
    const char* name;
    const char* what;
    std::vector<int64_t> ns;
  };
  std::vector<Case> cases = {
      {"bare", "no filter", {}},
      {"minimal", "tight RECV/SEND(CONTINUE) loop", {}},
      {"notifyloop",
       "NotifyLoop + engine, close rule matching, not firing",
       {}},
      {"notifyloop-empty", "NotifyLoop + engine, no rule for close", {}},
      {"strace", "strace -f --seccomp-bpf -e inject=close:...", {}},
  };
  // Interleaved so that drift in machine load hits every case alike.
  for (int r = 0; r < repeat; ++r) {
    cases[0].ns.push_back(RunCase(Responder::kNone, iterations));
    cases[1].ns.push_back(RunCase(Responder::kMinimal, iterations));
    cases[2].ns.push_back(RunCase(Responder::kNotifyLoop, iterations));
    cases[3].ns.push_back(RunCase(Responder::kNotifyLoopEmpty, iterations));
    cases[4].ns.push_back(RunStrace(iterations / 5));
  }
  const int64_t minimal = Median(cases[1].ns);
  printf(
      "| case | what | ns per close(-1) (median of %d) | ratio to minimal |\n",
      repeat);
  printf("|---|---|---:|---:|\n");
  for (const Case& c : cases) {
    int64_t m = Median(c.ns);
    if (m < 0) {
      printf("| %s | %s | n/a | n/a |\n", c.name, c.what);
      continue;
    }
    printf("| %s | %s | %lld | %.2fx |\n", c.name, c.what,
           static_cast<long long>(m),
           minimal > 0 ? static_cast<double>(m) / static_cast<double>(minimal)
                       : 0.0);
  }
  const int64_t ours = Median(cases[2].ns);
  printf("\nNotifyLoop / minimal responder: %.2fx (goal <= 1.50x)\n",
         static_cast<double>(ours) / static_cast<double>(minimal));
  return 0;
}

}  // namespace
}  // namespace fault::seccomp

int main(int argc, char** argv) { return fault::seccomp::Main(argc, argv); }
