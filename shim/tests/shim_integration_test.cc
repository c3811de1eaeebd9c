// Integration tests of libfault_shim.so: each test writes a policy table
// into a memfd (as the supervisor would), runs shim_target with the shim
// preloaded and FAULT_TABLE_FD set, and judges from outside: the program's
// output, its timing, the bytes a peer in this process received, and the
// counters and events in the table.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "shim/engine/engine.h"

namespace {

namespace eng = fault::engine;

double NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

// The policy table in a memfd the child inherits.
class Table {
 public:
  Table() {
    fd_ = memfd_create("fault-test-table", 0);
    EXPECT_GE(fd_, 0);
    EXPECT_EQ(ftruncate(fd_, sizeof(fault_table)), 0);
    void* p = mmap(nullptr, sizeof(fault_table), PROT_READ | PROT_WRITE,
                   MAP_SHARED, fd_, 0);
    EXPECT_NE(p, MAP_FAILED);
    t_ = static_cast<fault_table*>(p);
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    eng::InitTable(t_, int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec);
    cfg_ = new fault_config;
    memset(cfg_, 0, sizeof(*cfg_));
  }
  ~Table() {
    munmap(t_, sizeof(fault_table));
    close(fd_);
    delete cfg_;
  }
  fault_rule& Rule(int i, const char* name = "p", bool active = true) {
    if (cfg_->n_rules <= static_cast<uint32_t>(i)) cfg_->n_rules = i + 1;
    fault_rule& r = cfg_->rules[i];
    strncpy(r.name, name, sizeof(r.name) - 1);
    if (active) r.flags |= FAULT_RULE_ACTIVE;
    return r;
  }
  fault_syscall_rule& Sys(int i, int rule, int family, int action, int err) {
    if (cfg_->n_syscall_rules <= static_cast<uint32_t>(i))
      cfg_->n_syscall_rules = i + 1;
    fault_syscall_rule& s = cfg_->syscall_rules[i];
    s.rule = static_cast<uint16_t>(rule);
    s.family = static_cast<uint8_t>(family);
    s.action = static_cast<uint8_t>(action);
    s.err = err;
    return s;
  }
  static fault_target Loopback(uint16_t port, uint8_t proto) {
    fault_target t{};
    t.kind = FAULT_TARGET_CIDR;
    t.family = AF_INET;
    t.prefix_len = 32;
    t.protocol = proto;
    t.addr[0] = 127;
    t.addr[3] = 1;
    t.port_min = port;
    t.port_max = port;
    return t;
  }
  void Publish() { eng::Publish(t_, cfg_); }
  fault_config* cfg() { return cfg_; }
  fault_table* t() { return t_; }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  fault_table* t_ = nullptr;
  fault_config* cfg_ = nullptr;
};

struct Result {
  int status = -1;
  std::string out, err;
  std::map<std::string, std::string> kv;
  double elapsed_ms = 0;
  double cpu_ms = 0;  // user + system time of the program
  std::string Get(const std::string& k) const {
    auto it = kv.find(k);
    return it == kv.end() ? "<missing " + k + ">" : it->second;
  }
  double Num(const std::string& k) const { return atof(Get(k).c_str()); }
};

struct RunOptions {
  bool preload = true;
  const Table* table = nullptr;
  std::vector<std::string> env;  // extra NAME=VALUE
  // Called once the first stdout line arrived; may write to the child's stdin.
  std::function<void(int stdin_fd, const std::string& out)> on_first_line;
  int timeout_ms = 20000;
};

Result RunProgram(const std::string& program,
                  const std::vector<std::string>& args, const RunOptions& o) {
  int in[2], out[2], err[2];
  EXPECT_EQ(pipe2(in, O_CLOEXEC), 0);
  EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
  EXPECT_EQ(pipe2(err, O_CLOEXEC), 0);
  std::vector<std::string> env_s;
  for (char** e = environ; *e; ++e) {
    if (strncmp(*e, "LD_PRELOAD=", 11) == 0 || strncmp(*e, "FAULT_", 6) == 0)
      continue;
    env_s.push_back(*e);
  }
  if (o.preload) env_s.push_back(std::string("LD_PRELOAD=") + FAULT_SHIM_PATH);
  if (o.table)
    env_s.push_back("FAULT_TABLE_FD=" + std::to_string(o.table->fd()));
  for (const auto& e : o.env) env_s.push_back(e);
  std::vector<char*> argv, envp;
  std::string prog = program;
  argv.push_back(prog.data());
  std::vector<std::string> a = args;
  for (auto& s : a) argv.push_back(s.data());
  argv.push_back(nullptr);
  for (auto& s : env_s) envp.push_back(s.data());
  envp.push_back(nullptr);
  double t0 = NowMs();
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  Result r;
  bool first_line = false;
  pollfd p[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0 && NowMs() - t0 < o.timeout_ms) {
    if (poll(p, 2, 100) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP))) continue;
      char buf[4096];
      ssize_t n = read(p[i].fd, buf, sizeof(buf));
      if (n <= 0) {
        close(p[i].fd);
        p[i].fd = -1;
        --open_fds;
        continue;
      }
      (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
    }
    if (!first_line && r.out.find('\n') != std::string::npos) {
      first_line = true;
      if (o.on_first_line) o.on_first_line(in[1], r.out);
    }
  }
  close(in[1]);
  for (auto& x : p)
    if (x.fd >= 0) close(x.fd);
  int st = 0;
  for (int i = 0; i < 200; ++i) {
    rusage ru{};
    if (wait4(pid, &st, WNOHANG, &ru) == pid) {
      r.cpu_ms = ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3 +
                 ru.ru_stime.tv_sec * 1e3 + ru.ru_stime.tv_usec / 1e3;
      break;
    }
    if (NowMs() - t0 > o.timeout_ms) kill(pid, SIGKILL);
    usleep(10000);
  }
  r.elapsed_ms = NowMs() - t0;
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  std::istringstream ss(r.out);
  std::string line;
  while (std::getline(ss, line)) {
    auto eq = line.find('=');
    if (eq != std::string::npos) r.kv[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return r;
}

Result RunTarget(const std::vector<std::string>& args, const RunOptions& o) {
  return RunProgram(FAULT_TARGET_PATH, args, o);
}

// A TCP listener on 127.0.0.1:0 with a behaviour per connection.
class Server {
 public:
  enum Mode { kEcho, kSilent, kSink };
  explicit Server(Mode mode) : mode_(mode) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
    socklen_t len = sizeof(sa);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
    listen(fd_, 128);
    thread_ = std::thread([this] { Loop(); });
  }
  ~Server() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  int port() const { return port_; }
  uint64_t bytes() const { return bytes_; }
  double first_ms() const { return first_ms_; }
  double last_ms() const { return last_ms_; }
  bool pattern_ok() const { return pattern_ok_; }

 private:
  void Loop() {
    std::vector<int> conns;
    const double give_up = NowMs() + 120000;
    while (!stop_ && NowMs() < give_up) {
      std::vector<pollfd> p = {{fd_, POLLIN, 0}};
      for (int c : conns) p.push_back({c, POLLIN, 0});
      if (poll(p.data(), p.size(), 50) <= 0) continue;
      if (p[0].revents & POLLIN) {
        int c = accept(fd_, nullptr, nullptr);
        if (c >= 0) conns.push_back(c);
      }
      for (size_t i = 1; i < p.size(); ++i) {
        if (!(p[i].revents & (POLLIN | POLLHUP))) continue;
        char buf[65536];
        ssize_t n = read(p[i].fd, buf, sizeof(buf));
        if (n <= 0) {
          close(p[i].fd);
          conns.erase(std::find(conns.begin(), conns.end(), p[i].fd));
          break;
        }
        if (mode_ == kEcho) {
          // MSG_NOSIGNAL: a client cut off mid-stream (a session budget)
          // must not kill the test with SIGPIPE.
          if (send(p[i].fd, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
        } else if (mode_ == kSink) {
          for (ssize_t k = 0; k < n; ++k)
            if (buf[k] != static_cast<char>(
                              (bytes_ + static_cast<uint64_t>(k)) * 31 % 251))
              pattern_ok_ = false;
          if (bytes_ == 0) first_ms_ = NowMs();
          bytes_ += static_cast<uint64_t>(n);
          last_ms_ = NowMs();
        }
      }
    }
    for (int c : conns) close(c);
  }
  Mode mode_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> bytes_{0};
  std::atomic<double> first_ms_{0}, last_ms_{0};
  std::atomic<bool> pattern_ok_{true};
  std::thread thread_;
};

// A port on which nothing listens.
int ClosedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  socklen_t len = sizeof(sa);
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  close(fd);
  return ntohs(sa.sin_port);
}

std::string TempDir() {
  char tmpl[] = "/tmp/fault-shim-test-XXXXXX";
  return mkdtemp(tmpl);
}

// ------------------------------------------------------------- passthrough ---

TEST(ShimPassthrough, NoMatchingPolicyIsExact) {
  Server echo(Server::kEcho);
  std::string dir = TempDir();
  std::vector<std::string> args = {"passthrough", dir,
                                   std::to_string(echo.port())};
  RunOptions bare;
  bare.preload = false;
  Result a = RunTarget(args, bare);
  ASSERT_EQ(a.status, 0) << a.err;
  EXPECT_EQ(a.Get("tcp_recv"), "5 echo!");
  Table t;
  RunOptions shim;
  shim.table = &t;
  Result b = RunTarget(args, shim);  // empty table
  EXPECT_EQ(b.status, 0);
  EXPECT_EQ(b.out, a.out);
  EXPECT_EQ(b.err, "");
  // A policy for another port and a path that is never used.
  fault_rule& r = t.Rule(0);
  r.n_targets = 1;
  t.cfg()->targets[0] =
      Table::Loopback(static_cast<uint16_t>(ClosedPort()), FAULT_PROTO_TCP);
  r.uplink.fixed_ns = 500'000'000;
  r.timeout_connect_ns = 1'000'000'000;
  strcpy(t.Sys(0, 0, eng::kFamilyWrite, eng::kActionDeny, ENOSPC).path_glob,
         "*.never");
  t.Publish();
  Result c = RunTarget(args, shim);
  EXPECT_EQ(c.status, 0);
  EXPECT_EQ(c.out, a.out);
  EXPECT_EQ(t.t()->counters.rule_fired[0], 0u);
  EXPECT_EQ(t.t()->ring.head, 0u);
}

// A connection no rule matches skips the shim after its first calls (the
// per-fd verdict); these check that the verdict never outlives what it was
// decided for.
TEST(ShimVerdict, RepublishedTableAppliesToACachedConnection) {
  Server echo(Server::kEcho);
  Table t;
  fault_rule& r = t.Rule(0);
  r.n_targets = 1;
  t.cfg()->targets[0] =
      Table::Loopback(static_cast<uint16_t>(ClosedPort()), FAULT_PROTO_TCP);
  r.uplink.fixed_ns = 100'000'000;
  t.Publish();
  RunOptions o;
  o.table = &t;
  o.on_first_line = [&](int stdin_fd, const std::string&) {
    t.cfg()->targets[0] =
        Table::Loopback(static_cast<uint16_t>(echo.port()), FAULT_PROTO_TCP);
    t.Publish();
    EXPECT_EQ(write(stdin_fd, "go\n", 3), 3);
  };
  Result res = RunTarget({"verdict_reload", std::to_string(echo.port())}, o);
  ASSERT_EQ(res.status, 0) << res.out << res.err;
  EXPECT_LT(res.Num("first_ms"), 2000.0);  // 50 round trips, no latency
  EXPECT_GE(res.Num("second_ms"), 300.0);  // 3 round trips, 100 ms uplink
  EXPECT_GE(t.t()->counters.rule_fired[0], 3u);
}

TEST(ShimVerdict, Dup2AndReusedNumberGetTheirOwnDecision) {
  Server other(Server::kEcho), slow(Server::kEcho);
  Table t;
  fault_rule& r = t.Rule(0);
  r.n_targets = 1;
  t.cfg()->targets[0] =
      Table::Loopback(static_cast<uint16_t>(slow.port()), FAULT_PROTO_TCP);
  r.uplink.fixed_ns = 100'000'000;
  t.Publish();
  RunOptions o;
  o.table = &t;
  Result res = RunTarget({"verdict_reuse", std::to_string(other.port()),
                          std::to_string(slow.port())},
                         o);
  ASSERT_EQ(res.status, 0) << res.out << res.err;
  EXPECT_GE(res.Num("a_ms"), 0.0);
  EXPECT_LT(res.Num("a_ms"), 1500.0);  // 20 round trips, nothing matches
  EXPECT_GE(res.Num("dup2_ms"), 300.0);
  EXPECT_EQ(res.Get("reused"), "1");
  EXPECT_GE(res.Num("reuse_ms"), 300.0);
}

// The loopback port of a sender no rule matches is still marked, so that a
// receiver whose rule matches skips its downlink link effects (traffic
// crosses the emulated link once), also when the sender's receives were
// decided first.
TEST(ShimVerdict, NonMatchingSenderStillMarksItsLoopbackPort) {
  Table t;
  fault_rule& other = t.Rule(0, "other");
  other.n_targets = 1;
  t.cfg()->targets[0] =
      Table::Loopback(static_cast<uint16_t>(ClosedPort()), FAULT_PROTO_TCP);
  other.uplink.fixed_ns = 100'000'000;
  fault_rule& recv_side = t.Rule(1, "recvside", /*active=*/false);
  recv_side.downlink.fixed_ns = 200'000'000;
  t.Publish();
  RunOptions o;
  o.table = &t;
  Result res = RunTarget({"loopback_mark", "recvside"}, o);
  ASSERT_EQ(res.status, 0) << res.out << res.err;
  EXPECT_LT(res.Num("recv_ms"), 500.0);
  // Control: without an active network rule the sender never enters the
  // shim, its port is not marked, and the receiver's latency applies.
  Table u;
  fault_rule& only = u.Rule(0, "recvside", /*active=*/false);
  only.downlink.fixed_ns = 200'000'000;
  u.Publish();
  o.table = &u;
  Result ctl = RunTarget({"loopback_mark", "recvside"}, o);
  ASSERT_EQ(ctl.status, 0) << ctl.out << ctl.err;
  EXPECT_GE(ctl.Num("recv_ms"), 1000.0);
}

TEST(ShimVerdict, FileCallsUnderANetworkPolicySeeALaterFileRule) {
  Table t;
  fault_rule& r = t.Rule(0);
  r.n_targets = 1;
  t.cfg()->targets[0] =
      Table::Loopback(static_cast<uint16_t>(ClosedPort()), FAULT_PROTO_TCP);
  r.uplink.fixed_ns = 100'000'000;
  t.Publish();
  RunOptions o;
  o.table = &t;
  o.on_first_line = [&](int stdin_fd, const std::string&) {
    strcpy(t.Sys(0, 0, eng::kFamilyRead, eng::kActionDeny, EIO).path_glob,
           "*.data");
    t.Publish();
    EXPECT_EQ(write(stdin_fd, "go\n", 3), 3);
  };
  Result res = RunTarget({"file_reload", TempDir() + "/f.data"}, o);
  ASSERT_EQ(res.status, 0) << res.out << res.err;
  EXPECT_EQ(res.Get("first"), "OK");
  EXPECT_EQ(res.Get("second"), "5 EIO");  // the writes pass, every pread fails
}

// Under a network policy, fsync and close of a file just opened pass
// straight through (a network rule cannot apply to them); fsync and close
// rules published later apply to the next file opened.
TEST(ShimVerdict, FsyncAndCloseUnderANetworkPolicySeeLaterFileRules) {
  Table t;
  fault_rule& r = t.Rule(0);
  r.n_targets = 1;
  t.cfg()->targets[0] =
      Table::Loopback(static_cast<uint16_t>(ClosedPort()), FAULT_PROTO_TCP);
  r.uplink.fixed_ns = 100'000'000;
  t.Publish();
  RunOptions o;
  o.table = &t;
  o.on_first_line = [&](int stdin_fd, const std::string&) {
    strcpy(t.Sys(0, 0, eng::kFamilyFsync, eng::kActionDeny, EIO).path_glob,
           "*.data");
    strcpy(t.Sys(1, 0, eng::kFamilyClose, eng::kActionDeny, ENOSPC).path_glob,
           "*.data");
    t.Publish();
    EXPECT_EQ(write(stdin_fd, "go\n", 3), 3);
  };
  Result res = RunTarget({"file_sync_reload", TempDir() + "/s.data"}, o);
  ASSERT_EQ(res.status, 0) << res.out << res.err;
  EXPECT_EQ(res.Get("first"), "OK,OK");
  EXPECT_EQ(res.Get("second"), "EIO,ENOSPC");
}

// Verdicts decided, dropped and decided again while the table is
// republished every millisecond and fd numbers are reused: no byte is lost
// or changed, no fault fires. (docs/shim.md, "Tests": how the same load
// was checked with TSan.)
TEST(ShimVerdict, RepublishingAndFdChurnKeepTheStreamIntact) {
  Table t;
  auto publish = [&](int i) {
    fault_rule& r = t.Rule(0);
    r.n_targets = 1;
    t.cfg()->targets[0] =
        Table::Loopback(static_cast<uint16_t>(1 + i % 2), FAULT_PROTO_TCP);
    r.uplink.fixed_ns = 100'000'000;
    t.Publish();
  };
  publish(0);
  std::atomic<bool> stop{false};
  std::thread publisher([&] {
    for (int i = 1; i < 60000 && !stop; ++i) {
      publish(i);
      usleep(1000);
    }
  });
  RunOptions o;
  o.table = &t;
  Result res = RunTarget({"verdict_churn", "20000"}, o);
  stop = true;
  publisher.join();
  ASSERT_EQ(res.status, 0) << res.out << res.err;
  EXPECT_EQ(res.Get("result"), "OK");
  EXPECT_GT(res.Num("churn"), 0.0);
  EXPECT_EQ(t.t()->counters.rule_fired[0], 0u);
}

TEST(ShimPassthrough, NoTableMeansNoShimEffects) {
  RunOptions o;  // preloaded, no FAULT_TABLE_FD
  Result r = RunTarget({"fsync", TempDir() + "/f"}, o);
  EXPECT_EQ(r.Get("fsync"), "OK");
  EXPECT_EQ(r.err, "");
}

// ----------------------------------------------------------------- connect ---

TEST(ShimConnect, TimeoutOnClosedPortAfterConfiguredTime) {
  Table t;
  int port = ClosedPort();
  fault_rule& r = t.Rule(0);
  r.n_targets = 1;
  t.cfg()->targets[0] = Table::Loopback(static_cast<uint16_t>(port), FAULT_PROTO_TCP);
  r.timeout_connect_ns = 300'000'000;
  t.Publish();
  RunOptions o;
  o.table = &t;
  Result res = RunTarget({"connect", std::to_string(port)}, o);
  EXPECT_EQ(res.Get("result"), "ETIMEDOUT");
  EXPECT_GE(res.Num("elapsed_ms"), 300.0);
  EXPECT_LE(res.Num("elapsed_ms"), 320.0);
  EXPECT_EQ(t.t()->counters.rule_fired[0], 1u);
  fault_event ev;
  ASSERT_TRUE(eng::PopEvent(t.t(), &ev));
  EXPECT_EQ(ev.op, FAULT_OP_CONNECT);
  EXPECT_EQ(ev.effect, FAULT_EFFECT_TIMEOUT);
  EXPECT_EQ(ev.layer, 1);
  EXPECT_EQ(ev.value, 300'000'000);
  EXPECT_EQ(std::string(ev.target), "127.0.0.1:" + std::to_string(port));
}

TEST(ShimConnect, NonBlockingTimeoutThroughPollAndSoError) {
  Table t;
  int port = ClosedPort();
  fault_rule& r = t.Rule(0);
  r.timeout_connect_ns = 300'000'000;
  t.Publish();
  RunOptions o;
  o.table = &t;
  Result res = RunTarget({"connect_nb", std::to_string(port)}, o);
  EXPECT_EQ(res.Get("connect"), "EINPROGRESS");
  EXPECT_EQ(res.Get("ready"), "1");
  EXPECT_GE(res.Num("ready_ms"), 299.0);
  EXPECT_LE(res.Num("ready_ms"), 330.0);
  EXPECT_EQ(res.Get("so_error"), "ETIMEDOUT");
}

TEST(ShimConnect, NonBlockingTimeoutThroughEpoll) {
  Table t;
  int port = ClosedPort();
  t.Rule(0).timeout_connect_ns = 200'000'000;
  t.Publish();
  RunOptions o;
  o.table = &t;
  Result res = RunTarget({"connect_epoll", std::to_string(port)}, o);
  EXPECT_EQ(res.Get("connect"), "EINPROGRESS");
  EXPECT_EQ(res.Get("ready"), "1");
  EXPECT_EQ(res.Get("data"), "abc");
  EXPECT_GE(res.Num("ready_ms"), 199.0);
  EXPECT_LE(res.Num("ready_ms"), 230.0);
  EXPECT_EQ(res.Get("so_error"), "ETIMEDOUT");
}

TEST(ShimConnect, NonBlockingTimeoutHidesNormalDataVariantsToo) {
  Table t;
  int port = ClosedPort();
  t.Rule(0).timeout_connect_ns = 200'000'000;
  t.Publish();
  RunOptions o;
  o.table = &t;
  Result res = RunTarget({"connect_nb_wrnorm", std::to_string(port)}, o);
  EXPECT_EQ(res.Get("ready"), "1");
  EXPECT_GE(res.Num("ready_ms"), 199.0);
  EXPECT_EQ(res.Get("so_error"), "ETIMEDOUT");
}

TEST(ShimConnect, ConnectionErrorRefused) {
  Server echo(Server::kEcho);
  Table t;
  fault_rule& r = t.Rule(0);
  r.conn_error_errno = ECONNREFUSED;
  r.conn_error_ppm = 1000000;
  t.Publish();
  RunOptions o;
  o.table = &t;
  Result res = RunTarget({"connect", std::to_string(echo.port())}, o);
  EXPECT_EQ(res.Get("result"), "ECONNREFUSED");
}

TEST(ShimConnect, SyscallDenyAppliesOnlyToTheRulesTargets) {
  Server a(Server::kEcho), b(Server::kEcho);
  Table t;
  fault_rule& r = t.Rule(0);
  r.n_targets = 1;
  t.cfg()->targets[0] =
      Table::Loopback(static_cast<uint16_t>(a.port()), FAULT_PROTO_TCP);
  t.Sys(0, 0, eng::kFamilyConnect, eng::kActionDeny, ECONNREFUSED);
  t.Publish();
  RunOptions o;
  o.table = &t;
  EXPECT_EQ(RunTarget({"connect", std::to_string(a.port())}, o).Get("result"),
            "ECONNREFUSED");
  EXPECT_EQ(RunTarget({"connect", std::to_string(b.port())}, o).Get("result"),
            "OK");
  fault_event ev;
  ASSERT_TRUE(eng::PopEvent(t.t(), &ev));
  EXPECT_EQ(ev.effect, FAULT_EFFECT_DENY);
  EXPECT_EQ(std::string(ev.target), "127.0.0.1:" + std::to_string(a.port()));
}

TEST(ShimConnect, HostnameTargetMatchesThroughResolvedAddresses) {
  Server echo(Server::kEcho);
  Table t;
  fault_rule& r = t.Rule(0);
  r.n_targets = 1;
  t.cfg()->targets[0].kind = FAULT_TARGET_HOSTNAME;
  strcpy(t.cfg()->targets[0].name, "localhost");
  r.conn_error_errno = EHOSTUNREACH;
  r.conn_error_ppm = 1000000;
  t.Publish();
  RunOptions o;
  o.table = &t;
  EXPECT_EQ(
      RunTarget({"connect_host", "localhost", std::to_string(echo.port())}, o)
          .Get("result"),
      "EHOSTUNREACH");
  // The same address without the name lookup does not match.
  EXPECT_EQ(
      RunTarget({"connect", std::to_string(echo.port())}, o).Get("result"),
      "OK");
}

// ------------------------------------------------------------------- links ---

TEST(ShimLink, LatencyPerDirectionOnRoundTrips) {
  Server echo(Server::kEcho);
  Table t;
  fault_rule& r = t.Rule(0);
  r.n_targets = 1;
  t.cfg()->targets[0] =
      Table::Loopback(static_cast<uint16_t>(echo.port()), FAULT_PROTO_TCP);
  r.uplink.distribution = FAULT_DIST_FIXED;
  r.uplink.fixed_ns = 30'000'000;
  r.downlink.distribution = FAULT_DIST_FIXED;
  r.downlink.fixed_ns = 20'000'000;
  t.Publish();
  RunOptions o;
  o.table = &t;
  Result res = RunTarget({"echo", std::to_string(echo.port()), "5"}, o);
  EXPECT_EQ(res.Get("result"), "OK");
  EXPECT_GE(res.Num("elapsed_ms"), 250.0);  // 5 x (30 + 20)
  EXPECT_LE(res.Num("elapsed_ms"), 330.0);
}

void NonBlockingLatency(const char* mode) {
  Server echo(Server::kEcho);
  Table t;
  fault_rule& r = t.Rule(0);
  r.n_targets = 1;
  t.cfg()->targets[0] =
      Table::Loopback(static_cast<uint16_t>(echo.port()), FAULT_PROTO_TCP);
  r.downlink.fixed_ns = 150'000'000;
  t.Publish();
  RunOptions o;
  o.table = &t;
  Result res = RunTarget({mode, std::to_string(echo.port())}, o);
  EXPECT_EQ(res.Get("send"), "1");
  EXPECT_EQ(res.Get("got"), "x");
  EXPECT_GE(res.Num("elapsed_ms"), 150.0);
  EXPECT_LE(res.Num("elapsed_ms"), 250.0);
  // While the answer is held back, waiting does not report it readable
  // (the first wait may, before recv has looked at the data).
  EXPECT_LE(res.Num("spurious"), 1.0) << res.out;
  // ...and does not spin while it waits.
  EXPECT_LT(res.cpu_ms, 60.0);
}

TEST(ShimLink, NonBlockingReceiveLatencyHidesReadinessInPoll) {
  NonBlockingLatency("nb_echo_poll");
}

TEST(ShimLink, NonBlockingReceiveLatencyHidesReadinessInEpoll) {
  NonBlockingLatency("nb_echo_epoll");
}

TEST(ShimLink, StaleSocketEntryFallsBackToThePlainCall) {
  Server echo(Server::kEcho);
  Table t;
  fault_rule& r = t.Rule(0);
  r.uplink.fixed_ns = 1'000'000;
  r.downlink.fixed_ns = 1'000'000;
  t.Publish();
  RunOptions o;
  o.table = &t;
  Result res = RunTarget({"stale_fd", std::to_string(echo.port())}, o);
  EXPECT_EQ(res.Get("send"), "1");
  EXPECT_EQ(res.Get("reused"), "1");
  EXPECT_EQ(res.Get("write"), "OK");
  EXPECT_EQ(res.Get("read"), "ok");
}

TEST(ShimLink, SessionBudgetCutsTheStream) {
  Server echo(Server::kEcho);
  Table t;
  fault_rule& r = t.Rule(0);
  r.n_targets = 1;
  t.cfg()->targets[0] =
      Table::Loopback(static_cast<uint16_t>(echo.port()), FAULT_PROTO_TCP);
  r.budget_max_tx = 250;
  r.budget_action = eng::kBudgetConnectionError;
  r.budget_errno = ECONNRESET;
  t.Publish();
  RunOptions o;
  o.table = &t;
  Result res = RunTarget({"budget", std::to_string(echo.port())}, o);
  EXPECT_EQ(res.Get("send0"), "100");
  EXPECT_EQ(res.Get("send1"), "100");
  EXPECT_EQ(res.Get("send2"), "50");  // what is left of the budget
  EXPECT_EQ(res.Get("send3"), "ECONNRESET");
}

TEST(ShimLink, BlackholedConnectTimesOut) {
  Server echo(Server::kEcho);
  Table t;
  fault_rule& r = t.Rule(0);
  r.n_targets = 1;
  t.cfg()->targets[0] =
      Table::Loopback(static_cast<uint16_t>(echo.port()), FAULT_PROTO_TCP);
  r.flags |= FAULT_RULE_BLACKHOLE;
  r.timeout_connect_ns = 100'000'000;
  r.timeout_recv_ns = 100'000'000;
  t.Publish();
  RunOptions o;
  o.table = &t;
  Result c = RunTarget({"connect", std::to_string(echo.port())}, o);
  EXPECT_EQ(c.Get("result"), "ETIMEDOUT");
  EXPECT_GE(c.Num("elapsed_ms"), 100.0);
}

TEST(ShimLink, RecvTimeout) {
  Server silent(Server::kSilent);
  Table t;
  t.Rule(0).timeout_recv_ns = 200'000'000;
  t.Publish();
  RunOptions o;
  o.table = &t;
  Result res = RunTarget({"recv", std::to_string(silent.port())}, o);
  EXPECT_EQ(res.Get("result"), "ETIMEDOUT");
  EXPECT_GE(res.Num("elapsed_ms"), 200.0);
  EXPECT_LE(res.Num("elapsed_ms"), 230.0);
}

// Receives numbered datagrams until `quiet_ms` pass without one.
std::set<int> ReceiveDatagrams(int fd, int quiet_ms) {
  std::set<int> got;
  double last = NowMs();
  for (int i = 0; i < 1000000 && NowMs() - last < quiet_ms; ++i) {
    pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 20) <= 0) continue;
    char buf[32];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0) continue;
    buf[n] = 0;
    got.insert(atoi(buf));
    last = NowMs();
  }
  return got;
}

std::set<int> UdpRun(uint64_t seed, int n, Table* t, int* fired) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  int big = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  socklen_t len = sizeof(sa);
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  int port = ntohs(sa.sin_port);
  memset(t->cfg(), 0, sizeof(fault_config));
  fault_rule& r = t->Rule(0);
  r.flags |= FAULT_RULE_HAS_SEED;
  r.seed = seed;
  r.n_targets = 1;
  t->cfg()->targets[0] = Table::Loopback(static_cast<uint16_t>(port), FAULT_PROTO_UDP);
  r.uplink.loss_ppm = 300000;
  t->Publish();
  memset(&t->t()->counters, 0, sizeof(fault_counters));
  std::set<int> got;
  std::thread rx([&] { got = ReceiveDatagrams(fd, 1500); });
  RunOptions o;
  o.table = t;
  Result res =
      RunTarget({"udp_send", std::to_string(port), std::to_string(n)}, o);
  rx.join();
  close(fd);
  EXPECT_EQ(res.Get("sent"),
            std::to_string(n));  // lost datagrams are reported as sent
  *fired = static_cast<int>(t->t()->counters.rule_fired[0]);
  return got;
}

TEST(ShimLink, UdpLossWithinBinomialBoundAndSeedDeterministic) {
  Table t;
  const int n = 10000;
  int fired1 = 0, fired2 = 0, fired3 = 0;
  std::set<int> a = UdpRun(1, n, &t, &fired1);
  int lost = n - static_cast<int>(a.size());
  // 30% +- 2.576 sd (99%), sd = sqrt(n p (1-p)) = 45.8
  EXPECT_NEAR(lost, 3000, 118);
  EXPECT_EQ(fired1, lost);  // every loss was counted, nothing else was lost
  std::set<int> b = UdpRun(1, n, &t, &fired2);
  EXPECT_EQ(a, b);  // the same datagrams were lost
  std::set<int> c = UdpRun(2, n, &t, &fired3);
  EXPECT_NE(a, c);
}

TEST(ShimLink, UdpDownlinkLossDiscardsReceivedDatagrams) {
  Table t;
  fault_rule& r = t.Rule(0);
  r.flags |= FAULT_RULE_HAS_SEED;
  r.seed = 3;
  r.downlink.loss_ppm = 300000;
  t.Publish();
  RunOptions o;
  o.table = &t;
  const int n = 5000;
  std::thread sender;
  o.on_first_line = [&](int, const std::string& out) {
    int port = atoi(out.substr(out.find('=') + 1).c_str());
    sender = std::thread([port] {
      int fd = socket(AF_INET, SOCK_DGRAM, 0);
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(static_cast<uint16_t>(port));
      sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      for (int i = 0; i < n; ++i) {
        sendto(fd, "d", 1, 0, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
        if (i % 64 == 63) usleep(300);
      }
      close(fd);
    });
  };
  Result res = RunTarget({"udp_recv"}, o);
  sender.join();
  int lost = n - atoi(res.Get("received").c_str());
  // sd = sqrt(5000 * 0.3 * 0.7) = 32.4; 99%: 2.576 sd
  EXPECT_NEAR(lost, 1500, 84) << res.out << res.err;
  EXPECT_EQ(static_cast<int>(t.t()->counters.rule_fired[0]), lost);
}

TEST(ShimLink, UdpDuplicatesOnSendAndReceive) {
  // Uplink: every datagram the target sends arrives twice.
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  int big = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  socklen_t len = sizeof(sa);
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  int port = ntohs(sa.sin_port);
  Table t;
  fault_rule& r = t.Rule(0);
  r.n_targets = 1;
  t.cfg()->targets[0] = Table::Loopback(static_cast<uint16_t>(port), FAULT_PROTO_UDP);
  r.uplink.duplicate_ppm = 1000000;
  t.Publish();
  int copies = 0;
  std::thread rx([&] {
    double last = NowMs();
    for (int i = 0; i < 100000 && NowMs() - last < 1000; ++i) {
      pollfd p = {fd, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      char buf[32];
      if (recv(fd, buf, sizeof(buf), 0) > 0) ++copies;
      last = NowMs();
    }
  });
  RunOptions o;
  o.table = &t;
  Result res = RunTarget({"udp_send", std::to_string(port), "500"}, o);
  rx.join();
  close(fd);
  EXPECT_EQ(res.Get("sent"), "500");
  EXPECT_EQ(copies, 1000);
  EXPECT_EQ(t.t()->counters.rule_fired[0], 500u);

  // Downlink: a duplicated datagram is received twice.
  Table d;
  fault_rule& dr = d.Rule(0);
  dr.flags |= FAULT_RULE_HAS_SEED;
  dr.seed = 5;
  dr.downlink.duplicate_ppm = 500000;
  d.Publish();
  RunOptions od;
  od.table = &d;
  const int n = 2000;
  std::thread sender;
  od.on_first_line = [&](int, const std::string& out) {
    int rport = atoi(out.substr(out.find('=') + 1).c_str());
    sender = std::thread([rport] {
      int s = socket(AF_INET, SOCK_DGRAM, 0);
      sockaddr_in to{};
      to.sin_family = AF_INET;
      to.sin_port = htons(static_cast<uint16_t>(rport));
      to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      for (int i = 0; i < n; ++i) {
        sendto(s, "d", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
        if (i % 64 == 63) usleep(300);
      }
      close(s);
    });
  };
  Result rr = RunTarget({"udp_recv"}, od);
  sender.join();
  int dups = atoi(rr.Get("received").c_str()) - n;
  EXPECT_EQ(dups, static_cast<int>(d.t()->counters.rule_fired[0]));
  // sd = sqrt(2000 * 0.25) = 22.4; 99%: 58
  EXPECT_NEAR(dups, 1000, 58) << rr.out << rr.err;
}

TEST(ShimLink, RateEightMegabitWithinThreePercentIntact) {
  Server sink(Server::kSink);
  Table t;
  fault_rule& r = t.Rule(0);
  r.n_targets = 1;
  t.cfg()->targets[0] =
      Table::Loopback(static_cast<uint16_t>(sink.port()), FAULT_PROTO_TCP);
  r.uplink.rate_bps = 8'000'000;
  r.uplink.rate_burst_bytes = 10000;
  t.Publish();
  RunOptions o;
  o.table = &t;
  o.timeout_ms = 30000;
  const long bytes = 5'000'000;  // 5 s at 8 Mbit/s
  Result res = RunTarget(
      {"tcp_send", std::to_string(sink.port()), std::to_string(bytes)}, o);
  ASSERT_EQ(res.Get("sent"), std::to_string(bytes))
      << "status " << res.status << " out " << res.out << " err " << res.err;
  for (int i = 0; i < 100 && sink.bytes() < static_cast<uint64_t>(bytes); ++i)
    usleep(20000);
  ASSERT_EQ(sink.bytes(), static_cast<uint64_t>(bytes));
  EXPECT_TRUE(sink.pattern_ok());
  double secs = (sink.last_ms() - sink.first_ms()) / 1e3;
  double mbps =
      (bytes - 10000) * 8 / secs / 1e6;  // the first bucket leaves at once
  EXPECT_NEAR(mbps, 8.0, 8.0 * 0.03) << "over " << secs << " s";
}

// ------------------------------------------------------------------- files ---

TEST(ShimFiles, FsyncDeniedWithEio) {
  Table t;
  t.Rule(0);
  t.Sys(0, 0, eng::kFamilyFsync, eng::kActionDeny, EIO);
  t.Publish();
  RunOptions o;
  o.table = &t;
  Result res = RunTarget({"fsync", TempDir() + "/data.db"}, o);
  EXPECT_EQ(res.Get("write"), "OK");
  EXPECT_EQ(res.Get("fsync"), "EIO");
  EXPECT_EQ(res.Get("fdatasync"), "EIO");  // fsync rules cover fdatasync
  EXPECT_EQ(t.t()->counters.syscall_fired[0], 2u);
  fault_event ev;
  ASSERT_TRUE(eng::PopEvent(t.t(), &ev));
  EXPECT_EQ(ev.op, FAULT_OP_FSYNC);
  EXPECT_EQ(ev.effect, FAULT_EFFECT_DENY);
  EXPECT_EQ(ev.value, EIO);
  EXPECT_EQ(ev.syscall_rule, 1);
  EXPECT_NE(std::string(ev.target).find("data.db"), std::string::npos);
}

TEST(ShimFiles, WriteDeniedOnlyForMatchingGlob) {
  Table t;
  t.Rule(0);
  strcpy(t.Sys(0, 0, eng::kFamilyWrite, eng::kActionDeny, ENOSPC).path_glob,
         "*.db-journal");
  t.Publish();
  RunOptions o;
  o.table = &t;
  std::string dir = TempDir();
  Result j = RunTarget({"write", dir + "/x.db-journal"}, o);
  EXPECT_EQ(j.Get("open"), "OK");
  EXPECT_EQ(j.Get("write"), "ENOSPC");
  EXPECT_EQ(j.Get("writev"), "ENOSPC");
  EXPECT_EQ(j.Get("pwrite"), "ENOSPC");
  Result d = RunTarget({"write", dir + "/x.db"}, o);
  EXPECT_EQ(d.Get("write"), "OK");
  EXPECT_EQ(d.Get("writev"), "OK");
  EXPECT_EQ(d.Get("pwrite"), "OK");
}

TEST(ShimFiles, WhenCounterPicksTheSecondCall) {
  Table t;
  t.Rule(0);
  fault_syscall_rule& s =
      t.Sys(0, 0, eng::kFamilyWrite, eng::kActionDeny, ENOSPC);
  s.when_first = 2;
  s.when_last = 2;
  t.Publish();
  RunOptions o;
  o.table = &t;
  Result r = RunTarget({"write", TempDir() + "/w"}, o);
  EXPECT_EQ(r.Get("write"), "OK");
  EXPECT_EQ(r.Get("writev"), "ENOSPC");
  EXPECT_EQ(r.Get("pwrite"), "OK");
}

TEST(ShimFiles, OpenDeniedByPath) {
  Table t;
  t.Rule(0);
  std::string dir = TempDir();
  strcpy(t.Sys(0, 0, eng::kFamilyOpen, eng::kActionDeny, EACCES).path_glob,
         (dir + "/*").c_str());
  t.Publish();
  RunOptions o;
  o.table = &t;
  EXPECT_EQ(RunTarget({"write", dir + "/f"}, o).Get("open"), "EACCES");
  EXPECT_EQ(RunTarget({"write", TempDir() + "/f"}, o).Get("open"), "OK");
}

TEST(ShimFiles, StdioFilesAreMatchedByTheirOwnPath) {
  Table t;
  t.Rule(0);
  strcpy(t.Sys(0, 0, eng::kFamilyFsync, eng::kActionDeny, EIO).path_glob, "*.journal");
  t.Publish();
  RunOptions o;
  o.table = &t;
  Result r = RunTarget({"stdio_fsync", TempDir()}, o);
  EXPECT_EQ(r.Get("first"), "EIO");
  EXPECT_EQ(r.Get("second"), "OK");  // same fd number, another file
}

TEST(ShimFiles, ReloadTakesEffectOnNextCall) {
  Table t;
  t.Publish();
  RunOptions o;
  o.table = &t;
  o.on_first_line = [&](int stdin_fd, const std::string&) {
    t.Rule(0);
    t.Sys(0, 0, eng::kFamilyFsync, eng::kActionDeny, EIO);
    t.Publish();
    EXPECT_EQ(write(stdin_fd, "go\n", 3), 3);
  };
  Result r = RunTarget({"reload", TempDir() + "/r"}, o);
  EXPECT_EQ(r.Get("first"), "OK");
  EXPECT_EQ(r.Get("second"), "EIO");
}

// -------------------------------------------------------------------- dns ---

TEST(ShimDns, NxdomainTimeoutAndDelay) {
  Table t;
  fault_rule& r = t.Rule(0);
  r.n_targets = 1;
  t.cfg()->targets[0].kind = FAULT_TARGET_HOSTNAME;
  strcpy(t.cfg()->targets[0].name, "localhost");
  r.dns_nxdomain_ppm = 1000000;
  t.Publish();
  RunOptions o;
  o.table = &t;
  Result a = RunTarget({"dns", "localhost"}, o);
  EXPECT_EQ(a.Get("getaddrinfo"), "EAI_NONAME");
  EXPECT_EQ(a.Get("gethostbyname"), "HOST_NOT_FOUND");
  Result other = RunTarget({"dns", "127.0.0.1"}, o);
  EXPECT_EQ(other.Get("getaddrinfo"), "OK");
  r.dns_nxdomain_ppm = 0;
  r.dns_timeout_ppm = 1000000;
  r.dns_delay_ns = 200'000'000;
  t.Publish();
  Result b = RunTarget({"dns", "localhost"}, o);
  EXPECT_EQ(b.Get("getaddrinfo"), "EAI_AGAIN");
  EXPECT_EQ(b.Get("gethostbyname"), "TRY_AGAIN");
  EXPECT_GE(b.Num("elapsed_ms"), 200.0);
}

// ------------------------------------------------------------------ scopes ---

TEST(ShimScope, OnlyTheScopedThreadSeesTheFaults) {
  Server echo(Server::kEcho);
  Table t;
  fault_rule& r = t.Rule(0, "flaky", /*active=*/false);
  r.conn_error_errno = ECONNREFUSED;
  r.conn_error_ppm = 1000000;
  t.Publish();
  RunOptions o;
  o.table = &t;
  Result res = RunTarget({"scope", "flaky", std::to_string(echo.port())}, o);
  EXPECT_EQ(res.Get("active"), "1");
  EXPECT_EQ(res.Get("in_scope"), "ECONNREFUSED");
  EXPECT_EQ(res.Get("outside"), "OK");
}

TEST(ShimScope, UnknownNameWarnsOnceAndAppliesNothing) {
  Server echo(Server::kEcho);
  Table t;
  t.Publish();
  RunOptions o;
  o.table = &t;
  Result res = RunTarget({"scope", "nope", std::to_string(echo.port())}, o);
  EXPECT_EQ(res.Get("active"), "0");
  EXPECT_EQ(res.Get("in_scope"), "OK");
  EXPECT_EQ(res.err,
            "fault: warning: fault_scope_push(\"nope\"): no policy with that "
            "name is loaded; "
            "the scope applies no faults\n");
}

TEST(ShimScope, WithoutShimTheWrapperIsANoOpThatSaysSo) {
  Server echo(Server::kEcho);
  RunOptions o;
  o.preload = false;
  Result res = RunTarget({"scope", "flaky", std::to_string(echo.port())}, o);
  EXPECT_EQ(res.Get("active"), "0");
  EXPECT_EQ(res.Get("in_scope"), "OK");
  EXPECT_EQ(res.err,
            "fault: ScopedPolicy(\"flaky\") has no effect: libfault_shim.so is "
            "not loaded "
            "(run the program under `fault exec`)\n");
}

// --------------------------------------------------------- honesty, stubs ---

TEST(ShimWarnings, UnimplementedEffectIsNamedOnce) {
  Table t;
  fault_rule& r = t.Rule(0);
  r.uplink.reorder_ppm = 1000;
  r.mutation_kind = 1;              // truncate
  r.downlink.duplicate_ppm = 1000;  // implemented: no warning
  t.Publish();
  RunOptions o;
  o.table = &t;
  Result res = RunTarget({"fsync", TempDir() + "/f"}, o);
  EXPECT_EQ(res.err,
            "fault: warning: the loaded policy uses packet_reorder, which the preload shim "
            "does not implement; it is not applied\n"
            "fault: warning: the loaded policy uses payload_mutation, which the preload shim "
            "does not implement; it is not applied\n");
}

TEST(ShimStub, MappedAtTheReservedPageAndUsedForCoveredFamilies) {
  Table t;
  t.Rule(0);
  t.Sys(0, 0, eng::kFamilyFsync, eng::kActionDeny, EIO);
  t.cfg()->families_mask = eng::FamilyBit(eng::kFamilyFsync);
  t.Publish();
  RunOptions o;
  o.table = &t;
  o.env = {"FAULT_STUB_PAGE=0x7e5500000000"};
  Result m = RunTarget({"maps"}, o);
  EXPECT_EQ(m.Get("anon_rx"), "7e5500000000");
  EXPECT_EQ(m.err, "");
  Result f = RunTarget({"fsync", TempDir() + "/f"}, o);
  EXPECT_EQ(f.Get("fsync"),
            "EIO");  // the shim applies it, then goes through the stub
  EXPECT_EQ(f.Get("write"), "OK");
}

TEST(ShimStub, UnmappableStubLeavesCoveredFamiliesToSeccomp) {
  Table t;
  t.Rule(0);
  t.Sys(0, 0, eng::kFamilyFsync, eng::kActionDeny, EIO);
  t.Sys(1, 0, eng::kFamilyWrite, eng::kActionDeny, ENOSPC);
  t.cfg()->families_mask = eng::FamilyBit(eng::kFamilyFsync);
  t.Publish();
  RunOptions o;
  o.table = &t;
  o.env = {"FAULT_STUB_PAGE=0xffffffffff600000"};  // beyond user space
  Result f = RunTarget({"fsync", TempDir() + "/f"}, o);
  EXPECT_EQ(f.Get("fsync"), "OK");      // left to the (absent) seccomp layer
  EXPECT_EQ(f.Get("write"), "ENOSPC");  // not covered: still the shim's
  EXPECT_EQ(
      f.err,
      "fault: cannot map the raw-syscall stub page at "
      "FAULT_STUB_PAGE=0xffffffffff600000; the shim "
      "leaves the seccomp-covered syscall families to the seccomp layer\n");
}

// ------------------------------------------------------- real programs ---

TEST(ShimPrograms, Sqlite3FsyncDeniedIsDiskIoError) {
  Table t;
  t.Rule(0);
  t.Sys(0, 0, eng::kFamilyFsync, eng::kActionDeny, EIO);
  t.Publish();
  RunOptions o;
  o.table = &t;
  std::string db = TempDir() + "/t.db";
  Result r = RunProgram("/usr/bin/sqlite3",
                        {db, "create table a(x); insert into a values(1);"}, o);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("disk I/O error"), std::string::npos) << r.err;
}

TEST(ShimPrograms, Sqlite3JournalWriteDeniedIsFullDisk) {
  Table t;
  t.Rule(0);
  strcpy(t.Sys(0, 0, eng::kFamilyWrite, eng::kActionDeny, ENOSPC).path_glob,
         "*.db-journal");
  t.Publish();
  RunOptions o;
  o.table = &t;
  std::string db = TempDir() + "/t.db";
  Result r = RunProgram("/usr/bin/sqlite3",
                        {db, "create table a(x); insert into a values(1);"}, o);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("database or disk is full"), std::string::npos) << r.err;
}

// Everyday programs run unchanged under an active policy that matches
// nothing they do (the policy still forces the slow paths: net and file
// rules exist).
TEST(ShimPrograms, CommonToolsRunUnchanged) {
  Table t;
  fault_rule& r = t.Rule(0);
  r.n_targets = 1;
  t.cfg()->targets[0] = Table::Loopback(static_cast<uint16_t>(ClosedPort()), FAULT_PROTO_TCP);
  r.uplink.fixed_ns = 1'000'000'000;
  r.downlink.loss_ppm = 1000000;
  strcpy(t.Sys(0, 0, eng::kFamilyWrite, eng::kActionDeny, ENOSPC).path_glob, "*.never");
  strcpy(t.Sys(1, 0, eng::kFamilyOpen, eng::kActionDeny, EACCES).path_glob, "/never/*");
  t.Publish();
  std::string dir = TempDir();
  const std::vector<std::vector<std::string>> cmds = {
      {"/bin/sh", "-c", "echo hello | tr a-z A-Z; ls / | head -3; cat /etc/hostname >/dev/null"},
      {"/usr/bin/python3", "-c",
       "import json,socket,sqlite3,threading,subprocess\n"
       "c=sqlite3.connect('" + dir + "/p.db'); c.execute('create table t(x)');\n"
       "c.execute('insert into t values(1)'); c.commit()\n"
       "a,b=socket.socketpair(); a.sendall(b'x'*100000); a.close()\n"
       "n=0\n"
       "while True:\n"
       "  d=b.recv(65536)\n"
       "  if not d: break\n"
       "  n+=len(d)\n"
       "print(json.dumps({'rows':c.execute('select count(*) from t').fetchone()[0],'n':n}))\n"
       "print(subprocess.run(['echo','sub'],capture_output=True).stdout)\n"},
      {"/usr/bin/sqlite3", dir + "/s.db", "create table t(x); insert into t values(42); select * from t;"},
      {"/usr/bin/curl", "--version"},
  };
  for (const auto& cmd : cmds) {
    std::vector<std::string> args(cmd.begin() + 1, cmd.end());
    RunOptions bare;
    bare.preload = false;
    Result a = RunProgram(cmd[0], args, bare);
    unlink((dir + "/p.db").c_str());
    unlink((dir + "/s.db").c_str());
    RunOptions o;
    o.table = &t;
    Result b = RunProgram(cmd[0], args, o);
    unlink((dir + "/p.db").c_str());
    unlink((dir + "/s.db").c_str());
    EXPECT_EQ(a.status, 0) << cmd[0] << a.err;
    EXPECT_EQ(b.status, a.status) << cmd[0] << b.err;
    EXPECT_EQ(b.out, a.out) << cmd[0];
    EXPECT_EQ(b.err, a.err) << cmd[0];
  }
  EXPECT_EQ(t.t()->counters.rule_fired[0], 0u);
}

// A TLS client's ClientHello names the server: an sni target matches that
// connection (python's ssl -> OpenSSL -> libc send).
TEST(ShimPrograms, SniTargetMatchesTlsConnections) {
  Server sink(Server::kSink);
  Table t;
  fault_rule& r = t.Rule(0);
  r.n_targets = 1;
  t.cfg()->targets[0].kind = FAULT_TARGET_SNI;
  strcpy(t.cfg()->targets[0].name, "*.example.test");
  r.conn_error_errno = ECONNRESET;
  r.conn_error_ppm = 1000000;
  t.Publish();
  RunOptions o;
  o.table = &t;
  auto script = [&](const std::string& host) {
    return "import socket,ssl\n"
           "s=socket.create_connection(('127.0.0.1'," + std::to_string(sink.port()) + "))\n"
           "s.settimeout(2)\n"
           "ctx=ssl.create_default_context()\n"
           "try:\n"
           "  ctx.wrap_socket(s,server_hostname='" + host + "')\n"
           "except ConnectionResetError: print('result=reset')\n"
           "except Exception as e: print('result=other', type(e).__name__)\n";
  };
  Result a = RunProgram("/usr/bin/python3", {"-c", script("api.example.test")}, o);
  EXPECT_EQ(a.Get("result"), "reset") << a.err;
  Result b = RunProgram("/usr/bin/python3", {"-c", script("api.other.test")}, o);
  EXPECT_EQ(b.Get("result").substr(0, 5), "other") << b.err;
  EXPECT_EQ(t.t()->counters.rule_fired[0], 1u);
}

TEST(ShimPrograms, ForkedChildKeepsThePolicy) {
  Table t;
  t.Rule(0);
  t.Sys(0, 0, eng::kFamilyFsync, eng::kActionDeny, EIO);
  t.Publish();
  RunOptions o;
  o.table = &t;
  Result r = RunTarget({"fork_fsync", TempDir() + "/f"}, o);
  EXPECT_EQ(r.Get("child_fsync"), "EIO");
  EXPECT_EQ(r.Get("parent_fsync"), "EIO");
  EXPECT_EQ(t.t()->counters.syscall_fired[0], 2u);
}

TEST(ShimPrograms, ExecedChildrenKeepThePolicy) {
  Table t;
  t.Rule(0);
  t.Sys(0, 0, eng::kFamilyFsync, eng::kActionDeny, EIO);
  t.Publish();
  RunOptions o;
  o.table = &t;
  std::string cmd =
      std::string(FAULT_TARGET_PATH) + " fsync " + TempDir() + "/f";
  Result r = RunProgram("/bin/sh", {"-c", cmd}, o);
  EXPECT_EQ(r.Get("fsync"), "EIO");
}

std::string PythonUdpScript(int port) {
  // Sender and receiver in one python process.
  return "import socket\n"
         "r=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
         "r.setsockopt(socket.SOL_SOCKET,socket.SO_RCVBUF,1<<23)\n"
         "r.bind(('127.0.0.1'," +
         std::to_string(port) +
         "))\n"
         "r.setblocking(False)\n"
         "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
         "got=0\n"
         "for i in range(10000):\n"
         "  s.sendto(b'%d'%i,('127.0.0.1'," +
         std::to_string(port) +
         "))\n"
         "  try:\n"
         "    while True:\n"
         "      r.recv(64,socket.MSG_DONTWAIT); got+=1\n"
         "  except BlockingIOError: pass\n"
         "r.settimeout(0.5)\n"
         "try:\n"
         "  while True: r.recv(64); got+=1\n"
         "except socket.timeout: pass\n"
         "print('received=%d'%got)\n";
}

// Loss on both directions (as a policy-wide `packet_loss` compiles), sender
// and receiver in one program: each datagram crosses the emulated link once.
TEST(ShimPrograms, PythonUdpLossBothDirectionsCountsOnce) {
  int port = ClosedPort();
  Table t;
  fault_rule& rule = t.Rule(0);
  rule.flags |= FAULT_RULE_HAS_SEED;
  rule.seed = 1;
  rule.uplink.loss_ppm = 300000;
  rule.downlink.loss_ppm = 300000;
  t.Publish();
  RunOptions o;
  o.table = &t;
  Result a = RunProgram("/usr/bin/python3", {"-c", PythonUdpScript(port)}, o);
  int lost = 10000 - atoi(a.Get("received").c_str());
  EXPECT_NEAR(lost, 3000, 118) << a.out << a.err;
}

TEST(ShimPrograms, PythonUdpLossSeeded) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  socklen_t len = sizeof(sa);
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  int port = ntohs(sa.sin_port);
  close(fd);
  // Sender and receiver in one python process: loss applies where the
  // datagram leaves (uplink), so the receiver sees the configured rate.
  std::string script =
      "import socket\n"
      "r=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
      "r.setsockopt(socket.SOL_SOCKET,socket.SO_RCVBUF,1<<23)\n"
      "r.bind(('127.0.0.1'," +
      std::to_string(port) +
      "))\n"
      "r.setblocking(False)\n"
      "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
      "got=0\n"
      "for i in range(10000):\n"
      "  s.sendto(b'%d'%i,('127.0.0.1'," +
      std::to_string(port) +
      "))\n"
      "  try:\n"
      "    while True:\n"
      "      r.recv(64,socket.MSG_DONTWAIT); got+=1\n"
      "  except BlockingIOError: pass\n"
      "r.settimeout(0.5)\n"
      "try:\n"
      "  while True: r.recv(64); got+=1\n"
      "except socket.timeout: pass\n"
      "print('received=%d'%got)\n";
  Table t;
  fault_rule& rule = t.Rule(0);
  rule.flags |= FAULT_RULE_HAS_SEED;
  rule.seed = 1;
  rule.n_targets = 1;
  t.cfg()->targets[0] =
      Table::Loopback(static_cast<uint16_t>(port), FAULT_PROTO_UDP);
  rule.uplink.loss_ppm = 300000;
  t.Publish();
  RunOptions o;
  o.table = &t;
  Result a = RunProgram("/usr/bin/python3", {"-c", script}, o);
  int lost = 10000 - atoi(a.Get("received").c_str());
  EXPECT_NEAR(lost, 3000, 118) << a.out << a.err;
  memset(&t.t()->counters, 0, sizeof(fault_counters));
  Result b = RunProgram("/usr/bin/python3", {"-c", script}, o);
  EXPECT_EQ(a.Get("received"), b.Get("received"));
}

TEST(ShimPrograms, CurlLatencyAndNxdomain) {
  // A one-shot HTTP responder.
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  socklen_t len = sizeof(sa);
  getsockname(lfd, reinterpret_cast<sockaddr*>(&sa), &len);
  listen(lfd, 8);
  int port = ntohs(sa.sin_port);
  std::atomic<bool> stop{false};
  std::thread http([&] {
    for (int i = 0; i < 1000 && !stop; ++i) {
      pollfd p = {lfd, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int c = accept(lfd, nullptr, nullptr);
      char buf[4096];
      ssize_t n = read(c, buf, sizeof(buf));
      (void)n;
      const char* resp =
          "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
      if (write(c, resp, strlen(resp)) < 0) break;
      close(c);
    }
  });
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/";
  RunOptions bare;
  bare.preload = false;
  Result base =
      RunProgram("/usr/bin/curl", {"-sS", "-o", "/dev/null", url}, bare);
  ASSERT_EQ(base.status, 0) << base.err;
  Table t;
  fault_rule& r = t.Rule(0);
  r.uplink.fixed_ns = 200'000'000;
  r.downlink.fixed_ns = 200'000'000;
  t.Publish();
  RunOptions o;
  o.table = &t;
  Result slow = RunProgram("/usr/bin/curl", {"-sS", "-o", "/dev/null", url}, o);
  EXPECT_EQ(slow.status, 0) << slow.err;
  // connect: one round trip (400 ms), request 200 ms, response 200 ms: at
  // least 800 ms in all, whatever the bare run took (a loaded machine can
  // slow the bare run by tens of milliseconds, so the difference of the two
  // is no lower bound).
  EXPECT_GE(slow.elapsed_ms, 790.0);
  EXPECT_GE(slow.elapsed_ms - base.elapsed_ms, 600.0);
  // A name /etc/hosts resolves (curl answers "localhost" itself).
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  std::string named =
      "http://" + std::string(host) + ":" + std::to_string(port) + "/";
  Result named_ok =
      RunProgram("/usr/bin/curl", {"-sS", "-o", "/dev/null", named}, bare);
  EXPECT_EQ(named_ok.status, 0) << named_ok.err;
  Table d;
  fault_rule& dr = d.Rule(0);
  dr.n_targets = 1;
  d.cfg()->targets[0].kind = FAULT_TARGET_HOSTNAME;
  strcpy(d.cfg()->targets[0].name, host);
  dr.dns_nxdomain_ppm = 1000000;
  d.Publish();
  o.table = &d;
  Result nx = RunProgram("/usr/bin/curl", {"-sS", "-o", "/dev/null", named}, o);
  EXPECT_EQ(nx.status, 6) << nx.err;  // CURLE_COULDNT_RESOLVE_HOST
  stop = true;
  http.join();
  close(lfd);
}

}  // namespace
