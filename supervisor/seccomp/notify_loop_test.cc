// NotifyLoop with a fake decider, against real seccomp listeners: each test
// forks a child that installs a filter (through the public install API) and
// makes the syscalls; the parent runs the loop and observes the child from
// outside (exit status, measured time, events in the ring).
#include "supervisor/seccomp/notify_loop.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shim/engine/engine.h"
#include "supervisor/seccomp/seccomp_layer.h"

namespace fault::seccomp {
namespace {

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

struct Child {
  pid_t pid = -1;
  int listener = -1;
};

// Forks; the child installs a filter notifying `families` and runs `body`,
// exiting with its result. Returns the child and the listener.
Child ForkFiltered(uint64_t families, const std::function<int()>& body) {
  int sv[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  SeccompPlan plan{.families_mask = families, .handoff_fd = sv[1]};
  absl::StatusOr<CompiledFilter> filter = CompileSeccompPlan(plan);
  EXPECT_TRUE(filter.ok()) << filter.status();
  Child c;
  c.pid = fork();
  if (c.pid == 0) {
    close(sv[0]);
    if (InstallFilterInChild(*filter, sv[1]) != 0) _exit(100);
    _exit(body());
  }
  close(sv[1]);
  absl::StatusOr<int> listener = ReceiveListener(sv[0], absl::Seconds(5));
  close(sv[0]);
  EXPECT_TRUE(listener.ok()) << listener.status();
  c.listener = listener.ok() ? *listener : -1;
  return c;
}

// Waits at most 10 s; returns the exit code, or -signal.
int Reap(pid_t pid) {
  for (int i = 0; i < 1000; ++i) {
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    usleep(10'000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return -1000;
}

struct TableDeleter {
  void operator()(fault_table* t) const { delete t; }
};
std::unique_ptr<fault_table, TableDeleter> NewTable() {
  std::unique_ptr<fault_table, TableDeleter> t(new fault_table());
  fault::engine::InitTable(t.get(), NowNs());
  return t;
}

std::vector<fault_event> DrainEvents(fault_table* t) {
  std::vector<fault_event> out;
  fault_event ev;
  while (out.size() < 10000 && fault::engine::PopEvent(t, &ev))
    out.push_back(ev);
  return out;
}

Decision Deny(int err) {
  Decision d;
  d.kind = Decision::Kind::kDeny;
  d.err = err;
  d.rule = 0;
  d.syscall_rule = 3;
  return d;
}

Decision Delay(int64_t ns) {
  Decision d;
  d.kind = Decision::Kind::kDelay;
  d.delay_ns = ns;
  d.rule = 0;
  return d;
}

TEST(NotifyLoopTest, DenyIsASpoofedErrorReturnWithAnEvent) {
  auto table = NewTable();
  FakeDecider decider([](const SyscallContext& c) {
    return c.family == Family::kFsync ? Deny(EIO) : Decision::Continue();
  });
  NotifyLoop loop(&decider, table.get());
  Child c = ForkFiltered(FamilyBit(Family::kFsync), [] {
    int fd = open("/dev/null", O_WRONLY);
    return fsync(fd) == -1 ? errno : 0;
  });
  ASSERT_TRUE(loop.Start(c.listener, "t").ok());
  EXPECT_EQ(Reap(c.pid), EIO);
  EXPECT_TRUE(loop.WaitUntilDone(absl::Seconds(5)));
  loop.Stop();
  std::vector<fault_event> events = DrainEvents(table.get());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].layer, 2);
  EXPECT_EQ(events[0].op, FAULT_OP_FSYNC);
  EXPECT_EQ(events[0].effect, FAULT_EFFECT_DENY);
  EXPECT_EQ(events[0].value, EIO);
  EXPECT_EQ(events[0].syscall_rule, 4);
  EXPECT_EQ(events[0].pid, c.pid);
  EXPECT_STREQ(events[0].target, "/dev/null");
  EXPECT_EQ(loop.stats().denied, 1u);
  EXPECT_EQ(loop.stats().listeners_closed, 1u);
}

TEST(NotifyLoopTest, DelayIsMeasuredFromOutsideAndAnsweredWithContinue) {
  auto table = NewTable();
  FakeDecider decider([](const SyscallContext& c) {
    return c.family == Family::kFsync ? Delay(150'000'000)
                                      : Decision::Continue();
  });
  NotifyLoop loop(&decider, table.get());
  Child c = ForkFiltered(FamilyBit(Family::kFsync), [] {
    int fd = memfd_create("t", 0);  // fsync on /dev/null is EINVAL
    return fsync(fd) == 0 ? 0 : 1;
  });
  const int64_t t0 = NowNs();
  ASSERT_TRUE(loop.Start(c.listener).ok());
  EXPECT_EQ(Reap(c.pid), 0);
  const int64_t elapsed = NowNs() - t0;
  EXPECT_GE(elapsed, 150'000'000);
  EXPECT_LT(elapsed, 400'000'000);
  loop.Stop();
  std::vector<fault_event> events = DrainEvents(table.get());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].effect, FAULT_EFFECT_DELAY);
  EXPECT_EQ(events[0].value, 150'000'000);
}

TEST(NotifyLoopTest, ADelayedThreadDoesNotHoldUpOthers) {
  auto table = NewTable();
  // fd 1000 is the slow one: its fsync waits 1 s; everything else passes.
  FakeDecider decider([](const SyscallContext& c) {
    return (c.family == Family::kFsync && c.args[0] == 1000)
               ? Delay(1'000'000'000)
               : Decision::Continue();
  });
  NotifyLoop loop(&decider, table.get());
  int report[2];
  ASSERT_EQ(pipe(report), 0);
  Child c = ForkFiltered(FamilyBit(Family::kFsync), [&] {
    int fd = memfd_create("t", 0);
    dup2(fd, 1000);
    pid_t slow = fork();  // a second process under the same filter
    if (slow == 0) _exit(fsync(1000) == 0 ? 0 : 1);
    usleep(50'000);  // the slow fsync is now pending
    int64_t t0 = NowNs();
    int n = 0;
    for (; n < 200; ++n) fsync(fd);
    int64_t took = NowNs() - t0;
    (void)!write(report[1], &took, sizeof(took));
    int status;
    waitpid(slow, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
  });
  ASSERT_TRUE(loop.Start(c.listener).ok());
  EXPECT_EQ(Reap(c.pid), 0);
  int64_t fast_took = 0;
  ASSERT_EQ(read(report[0], &fast_took, sizeof(fast_took)), 8);
  close(report[0]);
  close(report[1]);
  // 200 notified fsyncs completed while the slow one waited its second.
  EXPECT_LT(fast_took, 500'000'000)
      << "fast fsyncs took " << fast_took << " ns";
  EXPECT_GE(loop.stats().received, 201u);
  EXPECT_EQ(loop.stats().delayed, 1u);
  loop.Stop();
}

TEST(NotifyLoopTest, SignalDuringDelayKeepsTheDeadlineAndOneEvent) {
  auto table = NewTable();
  FakeDecider decider([](const SyscallContext& c) {
    return c.family == Family::kFsync ? Delay(400'000'000)
                                      : Decision::Continue();
  });
  NotifyLoop loop(&decider, table.get());
  Child c = ForkFiltered(FamilyBit(Family::kFsync), [] {
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, nullptr);
    itimerval it{};
    it.it_value.tv_usec = 100'000;  // interrupts the delayed fsync
    setitimer(ITIMER_REAL, &it, nullptr);
    int fd = memfd_create("t", 0);
    int64_t t0 = NowNs();
    int r = fsync(fd);
    int64_t ms = (NowNs() - t0) / 1'000'000;
    if (r != 0) return 1;
    // 400 ms in all: the restart keeps the original deadline.
    return ms >= 390 && ms < 480 ? 0 : 2;
  });
  ASSERT_TRUE(loop.Start(c.listener).ok());
  EXPECT_EQ(Reap(c.pid), 0);
  loop.Stop();
  EXPECT_EQ(DrainEvents(table.get()).size(), 1u);
  EXPECT_EQ(loop.stats().restarted, 1u);
  EXPECT_EQ(loop.stats().delayed, 1u);
}

TEST(NotifyLoopTest, ReadsRelativePathsAndConnectAddresses) {
  auto table = NewTable();
  absl::Mutex mu;
  std::vector<std::string> seen;
  FakeDecider decider([&](const SyscallContext& c) {
    absl::MutexLock lock(&mu);
    if (c.family == Family::kOpen) seen.push_back("open " + c.path);
    if (c.family == Family::kConnect && c.addr.has_value()) {
      auto& in = reinterpret_cast<const sockaddr_in&>(*c.addr);
      seen.push_back("connect " + std::to_string(ntohs(in.sin_port)));
      return Deny(ECONNREFUSED);
    }
    return Decision::Continue();
  });
  NotifyLoop loop(&decider, table.get());
  Child c =
      ForkFiltered(FamilyBit(Family::kOpen) | FamilyBit(Family::kConnect), [] {
        if (chdir("/proc/self") != 0) return 3;
        int fd = openat(AT_FDCWD, "status", O_RDONLY);
        if (fd < 0) return 4;
        int dir = open("/dev", O_RDONLY | O_DIRECTORY);
        if (openat(dir, "null", O_RDONLY) < 0) return 5;
        int s = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(9);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return connect(s, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == -1 &&
                       errno == ECONNREFUSED
                   ? 0
                   : 6;
      });
  ASSERT_TRUE(loop.Start(c.listener).ok());
  EXPECT_EQ(Reap(c.pid), 0);
  loop.Stop();
  absl::MutexLock lock(&mu);
  EXPECT_THAT(seen, testing::IsSupersetOf({"open /dev/null", "connect 9"}));
  // /proc/self resolves to the child's own /proc/PID directory.
  EXPECT_THAT(seen, testing::Contains("open /proc/" + std::to_string(c.pid) +
                                      "/status"));
}

TEST(NotifyLoopTest, StoppedSupervisorMeansEnosysNotAHang) {
  auto table = NewTable();
  FakeDecider decider(
      [](const SyscallContext&) { return Decision::Continue(); });
  auto loop = std::make_unique<NotifyLoop>(&decider, table.get());
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  Child c = ForkFiltered(FamilyBit(Family::kFsync), [&] {
    // Without an execve the child still holds its own copy of the listener
    // (close-on-exec); drop it as execve would.
    for (int i = 3; i < 1024; ++i) {
      if (i != go[0]) close(i);
    }
    int fd = memfd_create("t", 0);
    if (fsync(fd) != 0) return 1;  // answered by the loop
    char b;
    if (read(go[0], &b, 1) != 1) return 2;
    return fsync(fd) == -1 && errno == ENOSYS ? 0
                                              : 3;  // nobody listens any more
  });
  ASSERT_TRUE(loop->Start(c.listener).ok());
  usleep(100'000);
  loop.reset();  // Stop + close the listener
  ASSERT_EQ(write(go[1], "x", 1), 1);
  EXPECT_EQ(Reap(c.pid), 0);
  close(go[0]);
  close(go[1]);
}

TEST(NotifyLoopTest, StopAnswersPendingDelays) {
  auto table = NewTable();
  FakeDecider decider([](const SyscallContext& c) {
    return c.family == Family::kFsync ? Delay(int64_t{60} * 1'000'000'000)
                                      : Decision::Continue();
  });
  NotifyLoop loop(&decider, table.get());
  Child c = ForkFiltered(FamilyBit(Family::kFsync), [] {
    int fd = memfd_create("t", 0);  // fsync on /dev/null is EINVAL
    return fsync(fd) == 0 ? 0 : 1;
  });
  ASSERT_TRUE(loop.Start(c.listener).ok());
  usleep(200'000);
  const int64_t t0 = NowNs();
  loop.Stop();
  EXPECT_EQ(Reap(c.pid), 0);
  EXPECT_LT(NowNs() - t0, 2'000'000'000);
}

TEST(NotifyLoopTest, SyncWakeupIsReported) {
  absl::StatusOr<SeccompSupport> s = ProbeSeccompSupport();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->user_notification);
  EXPECT_TRUE(s->continue_flag);
  auto table = NewTable();
  FakeDecider decider(
      [](const SyscallContext&) { return Decision::Continue(); });
  NotifyLoop loop(&decider, table.get());
  Child c = ForkFiltered(FamilyBit(Family::kFsync), [] { return 0; });
  ASSERT_TRUE(loop.Start(c.listener).ok());
  EXPECT_EQ(loop.sync_wakeup(), s->sync_wakeup);
  EXPECT_EQ(Reap(c.pid), 0);
  loop.Stop();
}

// The production decider follows a republished table: the first fsync is
// denied under the first generation, the second runs under the next one.
TEST(EngineDeciderTest, FollowsRepublishedPolicies) {
  auto table = NewTable();
  auto cfg = std::make_unique<fault_config>();
  cfg->n_rules = 1;
  cfg->rules[0].flags = FAULT_RULE_ACTIVE;
  cfg->rules[0].schedule.kind = 1;
  cfg->n_syscall_rules = 1;
  cfg->syscall_rules[0].family = static_cast<uint8_t>(Family::kFsync);
  cfg->syscall_rules[0].action = 1;
  cfg->syscall_rules[0].err = EROFS;
  cfg->families_mask = FamilyBit(Family::kFsync);
  fault::engine::Publish(table.get(), cfg.get());
  EngineDecider decider(table.get());
  NotifyLoop loop(&decider, table.get());
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  Child c = ForkFiltered(FamilyBit(Family::kFsync), [&] {
    int fd = memfd_create("t", 0);
    if (fsync(fd) != -1 || errno != EROFS) return 1;
    char b;
    if (read(go[0], &b, 1) != 1) return 2;
    return fsync(fd) == 0 ? 0 : 3;
  });
  ASSERT_TRUE(loop.Start(c.listener).ok());
  // Wait (bounded) until the first decision was made, then republish.
  for (int i = 0; i < 500 && loop.stats().denied == 0; ++i) usleep(10'000);
  ASSERT_EQ(loop.stats().denied, 1u);
  cfg->syscall_rules[0].path_glob[0] = '\0';
  cfg->n_syscall_rules = 0;
  fault::engine::Publish(table.get(), cfg.get());
  ASSERT_EQ(write(go[1], "x", 1), 1);
  EXPECT_EQ(Reap(c.pid), 0);
  loop.Stop();
  close(go[0]);
  close(go[1]);
  EXPECT_EQ(table->counters.syscall_fired[0], 1u);
  EXPECT_EQ(DrainEvents(table.get()).size(), 1u);
}

// Rules with targets apply only to calls whose destination they match: a
// connect names one, a receive or a read names none, so a rule with targets
// leaves them alone (a Unix socket, a pipe, a file), while a rule without
// targets applies to every call. Decided without a kernel.
TEST(EngineDeciderTest, RulesWithTargetsNeedAMatchingDestination) {
  auto table = NewTable();
  auto cfg = std::make_unique<fault_config>();
  cfg->n_rules = 2;
  for (int r = 0; r < 2; ++r) {
    cfg->rules[r].flags = FAULT_RULE_ACTIVE;
    cfg->rules[r].schedule.kind = 1;
  }
  // rules[0]: 127.0.0.1:8080 only; rules[1]: no targets.
  cfg->rules[0].n_targets = 1;
  cfg->rules[0].first_target = 0;
  cfg->n_targets = 1;
  fault_target& t = cfg->targets[0];
  t.kind = FAULT_TARGET_CIDR;
  t.family = AF_INET;
  t.prefix_len = 32;
  t.addr[0] = 127;
  t.addr[3] = 1;
  t.port_min = t.port_max = 8080;
  const Family targeted[] = {Family::kConnect, Family::kRecv, Family::kRead};
  for (Family f : targeted) {
    fault_syscall_rule& sr = cfg->syscall_rules[cfg->n_syscall_rules++];
    sr.family = static_cast<uint8_t>(f);
    sr.rule = 0;
    sr.action = 1;
    sr.err = ECONNRESET;
    cfg->families_mask |= FamilyBit(f);
  }
  fault_syscall_rule& fsync_rule = cfg->syscall_rules[cfg->n_syscall_rules++];
  fsync_rule.family = static_cast<uint8_t>(Family::kFsync);
  fsync_rule.rule = 1;
  fsync_rule.action = 1;
  fsync_rule.err = EIO;
  cfg->families_mask |= FamilyBit(Family::kFsync);
  fault::engine::Publish(table.get(), cfg.get());
  EngineDecider decider(table.get());

  auto call = [](Family f, int port) {
    SyscallContext c;
    c.family = f;
    if (port != 0) {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(port);
      sockaddr_storage ss{};
      memcpy(&ss, &a, sizeof(a));
      c.addr = ss;
    }
    return c;
  };
  Decision d = decider.Decide(call(Family::kConnect, 8080));
  EXPECT_EQ(d.kind, Decision::Kind::kDeny);
  EXPECT_EQ(d.err, ECONNRESET);
  EXPECT_EQ(decider.Decide(call(Family::kConnect, 9090)).kind,
            Decision::Kind::kContinue);
  EXPECT_EQ(decider.Decide(call(Family::kRecv, 0)).kind,
            Decision::Kind::kContinue);
  SyscallContext read = call(Family::kRead, 0);
  read.path = "/proc/self/stat";
  EXPECT_EQ(decider.Decide(read).kind, Decision::Kind::kContinue);
  d = decider.Decide(call(Family::kFsync, 0));
  EXPECT_EQ(d.kind, Decision::Kind::kDeny);
  EXPECT_EQ(d.err, EIO);
  EXPECT_TRUE(decider.NeedsDetail(Family::kConnect));
  EXPECT_FALSE(decider.NeedsDetail(Family::kFsync));
}

TEST(SeccompLayerTest, HandoffReportsAChildThatDiedFirst) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  close(sv[1]);
  Reap(pid);
  absl::StatusOr<int> fd = ReceiveListener(sv[0], absl::Seconds(1));
  close(sv[0]);
  EXPECT_EQ(fd.status().message(),
            "seccomp handoff: the launched program exited before sending its "
            "seccomp listener");
}

}  // namespace
}  // namespace fault::seccomp
