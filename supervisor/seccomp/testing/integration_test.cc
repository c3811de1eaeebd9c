// The seccomp layer end to end: static programs (which the preload shim
// cannot see) run under seccomp_driver, and every fault is observed from
// outside: exit status, the program's own error text, measured time, and
// the events the driver drained from the table's ring.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace {

using ::testing::HasSubstr;

const std::string kBin = FAULT_SECCOMP_BIN_DIR;
const std::string kDriver = kBin + "/seccomp_driver";

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

struct ProgramRun {
  int status = -1;  // exit code, 128+signal, -1: timed out
  std::string out, err;
  int64_t elapsed_ns = 0;
};

// Runs argv with stdout/stderr captured; kills it after `timeout_s`.
ProgramRun RunProgram(const std::vector<std::string>& argv,
                      int timeout_s = 20) {
  int out[2], err[2];
  EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
  EXPECT_EQ(pipe2(err, O_CLOEXEC), 0);
  const int64_t t0 = NowNs();
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    std::vector<char*> args;
    for (const std::string& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  ProgramRun r;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  const int64_t deadline = t0 + int64_t{timeout_s} * 1'000'000'000;
  while (open_fds > 0 && NowNs() < deadline) {
    if (poll(fds, 2, 100) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
      char buf[4096];
      ssize_t n = read(fds[i].fd, buf, sizeof(buf));
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) close(f.fd);
  }
  int status = 0;
  bool exited = false;
  while (NowNs() < deadline + 2'000'000'000) {
    if (waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
    usleep(5000);
  }
  r.elapsed_ns = NowNs() - t0;
  if (!exited) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return r;
  }
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

class SeccompIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fault-seccomp-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { RunProgram({"/bin/rm", "-rf", dir_}); }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  std::string dir_;
};

// A listening socket on 127.0.0.1, port chosen by the kernel.
struct Listener {
  int fd = -1;
  int port = 0;
  Listener() {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
    listen(fd, 16);
    socklen_t len = sizeof(sa);
    getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    port = ntohs(sa.sin_port);
  }
  ~Listener() { close(fd); }
};

TEST_F(SeccompIntegrationTest, ConnectToTheTargetPortIsRefused) {
  Listener denied, allowed;
  const std::string events = Path("events.txt");
  ProgramRun r =
      RunProgram({kDriver, "--deny", "connect=ECONNREFUSED", "--target",
                  absl::StrCat("127.0.0.1/32:", denied.port), "--events",
                  events, "--", kBin + "/seccomp_connect_target",
                  std::to_string(denied.port), std::to_string(allowed.port)});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(r.out, absl::StrCat("connect 127.0.0.1:", denied.port,
                                ": Connection refused\n",
                                "connect 127.0.0.1:", allowed.port, ": ok\n"));
  // op 1 = connect, effect 15 = deny, value 111 = ECONNREFUSED.
  EXPECT_THAT(Lines(ReadFile(events)),
              testing::ElementsAre(testing::StartsWith(
                  absl::StrCat("layer=2 op=1 effect=15 value=111 pid="))));
  EXPECT_THAT(ReadFile(events),
              HasSubstr(absl::StrCat("target=127.0.0.1:", denied.port)));
}

TEST_F(SeccompIntegrationTest, FsyncDeniedWithEioShowsTheProgramsOwnError) {
  const std::string events = Path("events.txt");
  const std::string db = Path("db");
  ProgramRun r = RunProgram({kDriver, "--deny", "fsync=EIO", "--events", events,
                             "--", kBin + "/seccomp_fsync_target", db});
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(
      r.err, HasSubstr("fsync_target: fsync " + db + ": Input/output error\n"));
  EXPECT_EQ(r.out, "");
  // op 8 = fsync, value 5 = EIO; the event names the file.
  EXPECT_THAT(Lines(ReadFile(events)),
              testing::ElementsAre(testing::AllOf(
                  testing::StartsWith("layer=2 op=8 effect=15 value=5 pid="),
                  testing::EndsWith(" target=" + db))));
  // Without the fault the same program commits.
  ProgramRun clean = RunProgram({kDriver, "--deny", "fsync=EIO:/nonexistent/*",
                                 "--", kBin + "/seccomp_fsync_target", db});
  EXPECT_EQ(clean.status, 0) << clean.err;
  EXPECT_EQ(clean.out, "fsync_target: committed\n");
}

TEST_F(SeccompIntegrationTest, OpenOfAMatchingPathIsDeniedOthersOpen) {
  const std::string events = Path("events.txt");
  for (const char* f : {"secret.txt", "public.txt"})
    std::ofstream(Path(f)) << "x";
  ProgramRun r =
      RunProgram({kDriver, "--deny", "open=EACCES:" + dir_ + "/secret*",
                  "--events", events, "--", kBin + "/seccomp_open_target",
                  Path("secret.txt"), Path("public.txt")});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(r.out, "open " + Path("secret.txt") + ": Permission denied\nopen " +
                       Path("public.txt") + ": ok\n");
  // op 10 = open, value 13 = EACCES.
  EXPECT_THAT(Lines(ReadFile(events)),
              testing::ElementsAre(testing::AllOf(
                  testing::StartsWith("layer=2 op=10 effect=15 value=13 pid="),
                  testing::EndsWith(" target=" + Path("secret.txt")))));
}

TEST_F(SeccompIntegrationTest, WriteDelayedBy100ms) {
  const std::string events = Path("events.txt");
  ProgramRun r = RunProgram(
      {kDriver, "--delay", "write=100ms:*/slow.log", "--events", events, "--",
       kBin + "/seccomp_write_timing", Path("slow.log"), "5"});
  ASSERT_EQ(r.status, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 6u) << r.out;
  for (int i = 0; i < 5; ++i) {
    std::vector<std::string> f = absl::StrSplit(lines[i], ' ');
    ASSERT_EQ(f.size(), 4u) << lines[i];
    int64_t ns = 0;
    ASSERT_TRUE(absl::SimpleAtoi(f[2], &ns)) << lines[i];
    EXPECT_GE(ns, 100'000'000) << lines[i];
    EXPECT_LE(ns, 110'000'000) << lines[i];
  }
  EXPECT_EQ(lines[5], "failed: 0");
  std::vector<std::string> ev = Lines(ReadFile(events));
  ASSERT_EQ(ev.size(), 5u);
  // op 6 = write, effect 16 = delay, value in ns.
  for (const std::string& e : ev) {
    EXPECT_THAT(
        e, testing::StartsWith("layer=2 op=6 effect=16 value=100000000 pid="));
    EXPECT_THAT(e, testing::EndsWith(" target=" + Path("slow.log")));
  }
}

TEST_F(SeccompIntegrationTest, OneThreadDelayedOneSecondOthersKeepFlowing) {
  ProgramRun r = RunProgram({kDriver, "--delay", "write=1s:*/slow.dat", "--",
                             kBin + "/seccomp_mt_writer", Path("slow.dat"),
                             Path("fast.dat"), "3"});
  ASSERT_EQ(r.status, 0) << r.err;
  // slow_ns=N fast_writes=K fast_max_ns=M slow_ok=1
  int64_t slow = 0, fast = 0, fast_max = 0;
  ASSERT_EQ(sscanf(r.out.c_str(), "slow_ns=%ld fast_writes=%ld fast_max_ns=%ld",
                   &slow, &fast, &fast_max),
            3)
      << r.out;
  EXPECT_GE(slow, 1'000'000'000);
  EXPECT_LT(slow, 1'100'000'000);
  // Every fast write is a notification too; thousands go through while the
  // slow one waits, none of them anywhere near the 1 s.
  EXPECT_GE(fast, 1000) << r.out;
  EXPECT_LT(fast_max, 100'000'000) << r.out;
  EXPECT_THAT(r.err, HasSubstr("delayed=1 "));
  RecordProperty("fast_writes_during_slow", static_cast<int>(fast));
  RecordProperty("fast_max_us", static_cast<int>(fast_max / 1000));
}

TEST_F(SeccompIntegrationTest, KilledSupervisorDoesNotHangTheTarget) {
  // This process adopts the orphaned target, so it can reap it.
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  int out[2];
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  pid_t driver = fork();
  if (driver == 0) {
    dup2(out[1], 1);
    execl(kDriver.c_str(), kDriver.c_str(), "--delay", "fsync=1ms", "--",
          (kBin + "/seccomp_fsync_loop").c_str(), Path("f").c_str(), "2",
          nullptr);
    _exit(127);
  }
  close(out[1]);
  usleep(400'000);
  ASSERT_EQ(kill(driver, SIGKILL), 0);
  waitpid(driver, nullptr, 0);
  const int64_t killed_at = NowNs();
  std::string text;
  char buf[4096];
  pollfd p{out[0], POLLIN, 0};
  while (NowNs() - killed_at < 5'000'000'000 && poll(&p, 1, 100) >= 0) {
    if (!(p.revents & (POLLIN | POLLHUP))) continue;
    ssize_t n = read(out[0], buf, sizeof(buf));
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close(out[0]);
  // Reap the adopted target (bounded).
  for (int i = 0; i < 200 && waitpid(-1, nullptr, WNOHANG) >= 0; ++i)
    usleep(10'000);
  prctl(PR_SET_CHILD_SUBREAPER, 0);
  std::vector<std::string> lines = Lines(text);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.front(), "fsync ok");
  EXPECT_EQ(lines.back(), "done") << text;
  // After the supervisor died, the covered syscall fails with ENOSYS.
  EXPECT_THAT(lines,
              testing::Contains("fsync failed: Function not implemented"));
  EXPECT_LT(NowNs() - killed_at, 3'000'000'000);
}

TEST_F(SeccompIntegrationTest, WhenCounterDeniesEveryThirdWrite) {
  const std::string events = Path("events.txt");
  ProgramRun r = RunProgram(
      {kDriver, "--deny", "write=ENOSPC:*/w.dat", "--when", "3,0,3", "--events",
       events, "--", kBin + "/seccomp_write_timing", Path("w.dat"), "30"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("failed: 10\n"));
  EXPECT_THAT(r.out, HasSubstr("write 2: "));
  EXPECT_EQ(Lines(ReadFile(events)).size(), 10u);
  for (int i = 0; i < 30; ++i) {
    bool failed = (i + 1) % 3 == 0;
    std::string needle = absl::StrCat("write ", i, ": ");
    size_t at = r.out.find(needle);
    ASSERT_NE(at, std::string::npos);
    std::string line = r.out.substr(at, r.out.find('\n', at) - at);
    EXPECT_EQ(absl::EndsWith(line, " failed"), failed) << line;
  }
}

TEST_F(SeccompIntegrationTest, PartitionRefusesConnectsBetweenNamedPrograms) {
  // b listens on a port; a (partitioned from b) cannot reach it, and still
  // reaches a port b does not own.
  Listener other;
  int port = 0;
  {
    Listener probe;  // a free port, released for b to bind
    port = probe.port;
  }
  const std::string events = Path("events.txt");
  ProgramRun r = RunProgram({kDriver,
                             "--partition",
                             "a,b",
                             "--events",
                             events,
                             "--",
                             "--name",
                             "b",
                             kBin + "/seccomp_partition_peer",
                             "listen",
                             std::to_string(port),
                             "1500",
                             ":",
                             "--name",
                             "a",
                             kBin + "/seccomp_partition_peer",
                             "connect",
                             "500",
                             std::to_string(port),
                             std::to_string(other.port)});
  ASSERT_EQ(r.status, 0) << r.err;  // b's status
  EXPECT_EQ(r.out,
            absl::StrCat("connect ", port, ": Connection refused\nconnect ",
                         other.port, ": ok\n"));
  // op 1 = connect, effect 17 = partition, value 111 = ECONNREFUSED.
  EXPECT_THAT(ReadFile(events),
              HasSubstr(absl::StrCat("op=1 effect=17 value=111 ")));
  EXPECT_EQ(Lines(ReadFile(events)).size(), 1u);
}

TEST_F(SeccompIntegrationTest, PartitionMakesDatagramsUnreachable) {
  // b binds a UDP port; a's datagram to it fails with ENETUNREACH, its
  // datagram to a port b does not own goes out.
  int other_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(other_fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  socklen_t len = sizeof(sa);
  getsockname(other_fd, reinterpret_cast<sockaddr*>(&sa), &len);
  const int other = ntohs(sa.sin_port);
  int port = 0;
  {
    int probe = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in p{};
    p.sin_family = AF_INET;
    p.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(probe, reinterpret_cast<sockaddr*>(&p), sizeof(p));
    len = sizeof(p);
    getsockname(probe, reinterpret_cast<sockaddr*>(&p), &len);
    port = ntohs(p.sin_port);
    close(probe);
  }
  const std::string events = Path("events.txt");
  ProgramRun r = RunProgram({kDriver,
                             "--partition",
                             "a,b",
                             "--events",
                             events,
                             "--",
                             "--name",
                             "b",
                             kBin + "/seccomp_partition_peer",
                             "udprecv",
                             std::to_string(port),
                             "1500",
                             ":",
                             "--name",
                             "a",
                             kBin + "/seccomp_partition_peer",
                             "udpsend",
                             "500",
                             std::to_string(port),
                             std::to_string(other)});
  close(other_fd);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out,
            absl::StrCat("sendto ", port, ": Network is unreachable\nsendto ",
                         other, ": ok\n"));
  // op 3 = send, effect 17 = partition, value 101 = ENETUNREACH.
  EXPECT_THAT(Lines(ReadFile(events)),
              testing::ElementsAre(
                  testing::StartsWith("layer=2 op=3 effect=17 value=101 ")));
}

#ifdef FAULT_SHIM_PATH
// A dynamically linked program under both layers: the shim decides its
// writes and issues them through the stub page, which the filter allows, so
// the seccomp layer never sees them and nothing is faulted twice.
TEST_F(SeccompIntegrationTest, BothLayersDenyEveryThirdWriteExactlyOnce) {
  const std::string events = Path("events.txt");
  ProgramRun r = RunProgram(
      {kDriver, "--preload", FAULT_SHIM_PATH, "--stub-page", "--deny",
       "write=ENOSPC:*/w.dat", "--when", "3,0,3", "--events", events, "--",
       kBin + "/seccomp_write_timing_dyn", Path("w.dat"), "30"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("failed: 10\n"));
  std::vector<std::string> ev = Lines(ReadFile(events));
  ASSERT_EQ(ev.size(), 10u) << ReadFile(events);
  for (const std::string& e : ev)
    EXPECT_THAT(e, testing::StartsWith("layer=1 op=6 effect=15 value=28 "));
  // The 30 writes to w.dat left through the stub page and never reached the
  // supervisor; what it did receive (libc's internal flush of stdout at
  // exit, which bypasses the shim) it did not deny.
  EXPECT_THAT(r.err, HasSubstr(" denied=0 "));
  int received = -1;
  const size_t at = r.err.find("received=");
  ASSERT_NE(at, std::string::npos) << r.err;
  ASSERT_EQ(sscanf(r.err.c_str() + at, "received=%d", &received), 1);
  EXPECT_LT(received, 5) << r.err;
  EXPECT_THAT(r.err,
              testing::Not(HasSubstr("cannot map the raw-syscall stub")));
}

// Without the stub page the shim leaves the covered family to seccomp: still
// exactly one third, now decided by the supervisor.
TEST_F(SeccompIntegrationTest, ShimWithoutStubLeavesWritesToSeccomp) {
  const std::string events = Path("events.txt");
  ProgramRun r = RunProgram(
      {kDriver, "--preload", FAULT_SHIM_PATH, "--deny", "write=ENOSPC:*/w.dat",
       "--when", "3,0,3", "--events", events, "--",
       kBin + "/seccomp_write_timing_dyn", Path("w.dat"), "30"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("failed: 10\n"));
  std::vector<std::string> ev = Lines(ReadFile(events));
  ASSERT_EQ(ev.size(), 10u) << ReadFile(events);
  for (const std::string& e : ev)
    EXPECT_THAT(e, testing::StartsWith("layer=2 op=6 effect=15 value=28 "));
}

// Which of the writes in write_timing's report failed, as a string of 0/1.
std::string FailurePattern(const std::string& out) {
  std::string pattern;
  for (const std::string& line : Lines(out)) {
    if (!absl::StartsWith(line, "write ")) continue;
    pattern += absl::EndsWith(line, " failed") ? '1' : '0';
  }
  return pattern;
}

// The same seed gives the same decisions whether the shim (dynamic program,
// stub page) or the seccomp supervisor (static program) decides them: both
// draw from the engine's counter-based stream for (seed, rule, call).
TEST_F(SeccompIntegrationTest, SameSeedSameDecisionsThroughEitherLayer) {
  auto run = [&](const std::string& seed, bool shim) {
    std::vector<std::string> argv = {
        kDriver,  "--seed", seed, "--deny", "write=EIO:*/p.dat",
        "--prob", "300000"};
    if (shim) {
      argv.insert(argv.end(), {"--preload", FAULT_SHIM_PATH, "--stub-page"});
    }
    argv.insert(argv.end(), {"--",
                             kBin + (shim ? "/seccomp_write_timing_dyn"
                                          : "/seccomp_write_timing"),
                             Path("p.dat"), "200"});
    ProgramRun r = RunProgram(argv);
    EXPECT_EQ(r.status, 0) << r.err;
    return FailurePattern(r.out);
  };
  const std::string via_seccomp = run("7", false);
  const std::string via_shim = run("7", true);
  ASSERT_EQ(via_seccomp.size(), 200u);
  EXPECT_EQ(via_seccomp, via_shim);
  // 30% of 200: well inside a 99.9% binomial bound (60 +- 21).
  const auto failed = std::count(via_seccomp.begin(), via_seccomp.end(), '1');
  EXPECT_GT(failed, 39);
  EXPECT_LT(failed, 81);
  EXPECT_EQ(run("7", false), via_seccomp);  // reproducible
  EXPECT_NE(run("8", false), via_seccomp);  // and seed-dependent
}
#endif  // FAULT_SHIM_PATH

}  // namespace
