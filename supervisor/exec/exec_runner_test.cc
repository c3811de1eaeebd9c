// RunExec end to end with real child processes but without the shim: any
// readable library stands in for it (the child only needs LD_PRELOAD to
// load), and a fake ExecLayer records the hooks.
#include "supervisor/exec/exec_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

namespace fault::exec {
namespace {

constexpr char kStandInShim[] = "/lib/x86_64-linux-gnu/libm.so.6";

class FakeLayer : public ExecLayer {
 public:
  explicit FakeLayer(uint64_t families) : families_(families) {
    pipe2(child_pipe_, O_CLOEXEC);
  }
  ~FakeLayer() override {
    close(child_pipe_[0]);
    close(child_pipe_[1]);
  }
  std::string name() const override { return "fake"; }
  uint64_t families_mask() const override { return families_; }
  absl::Status Prepare(PolicyTable* table) override {
    calls_ += "prepare ";
    if (!prepare_error_.empty()) return absl::UnavailableError(prepare_error_);
    n_rules_ = table->table()->config.n_rules;
    families_seen_ = table->table()->config.families_mask;
    return absl::OkStatus();
  }
  int InChild() noexcept override {
    (void)!write(child_pipe_[1], "c", 1);
    return 0;
  }
  absl::Status Started(pid_t child) override {
    calls_ += "started ";
    started_pid_ = child;
    return absl::OkStatus();
  }
  void Stop() override { calls_ += "stop "; }

  bool ChildRanHook() {
    char c = 0;
    fcntl(child_pipe_[0], F_SETFL, O_NONBLOCK);
    return read(child_pipe_[0], &c, 1) == 1 && c == 'c';
  }

  uint64_t families_;
  std::string calls_;
  std::string prepare_error_;
  uint32_t n_rules_ = 0;
  uint64_t families_seen_ = 0;
  pid_t started_pid_ = 0;
  int child_pipe_[2];
};

ExecOptions Options(std::vector<std::string> command) {
  ExecOptions o;
  o.shim_path = kStandInShim;
  o.command = std::move(command);
  return o;
}

class ExecRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kStandInShim, R_OK) != 0) GTEST_SKIP() << kStandInShim << " is missing";
    char dir[] = "/tmp/exec_runner_test.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override {
    if (!dir_.empty()) std::system(("rm -rf " + dir_).c_str());
  }
  std::string Write(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  // Runs `sleep 1` quietly under a fake layer for fsync with the policy
  // `initial`, rewritten to `reloaded` and reloaded (SIGUSR1) after 200 ms.
  // Returns the exit status; `err` gets what the runner wrote.
  int RunWithReload(const std::string& initial, const std::string& reloaded,
                    std::string* err) {
    FakeLayer layer(1u << 4);  // fsync only
    ExecOptions o = Options({"sleep", "1"});
    o.policy_files = {Write("p.yaml", initial)};
    o.layers = {&layer};
    o.reload_signal = SIGUSR1;
    o.quiet = true;
    // Block SIGUSR1 everywhere so that only the runner's sigtimedwait takes it.
    sigset_t usr1, old;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, &old);
    std::thread reloader([&] {
      usleep(200000);
      Write("p.yaml", reloaded);
      kill(getpid(), SIGUSR1);
    });
    std::ostringstream out;
    int status = RunExec(o, out);
    reloader.join();
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    *err = out.str();
    return status;
  }
  std::string dir_;
};

TEST_F(ExecRunnerTest, ExitStatusAndLayerHooksInOrder) {
  FakeLayer layer(1u << 4);
  ExecOptions o = Options({"sh", "-c", "exit 7"});
  o.policy_files = {Write("p.yaml", "disk:\n  syscalls:\n    - fsync: {deny: EIO}\n")};
  o.layers = {&layer};
  o.quiet = true;
  std::ostringstream err;
  EXPECT_EQ(RunExec(o, err), 7);
  EXPECT_EQ(err.str(), "");
  EXPECT_EQ(layer.calls_, "prepare started stop ");
  EXPECT_TRUE(layer.ChildRanHook());
  EXPECT_GT(layer.started_pid_, 0);
  EXPECT_EQ(layer.n_rules_, 1u);
  EXPECT_EQ(layer.families_seen_, 1u << 4);
}

TEST_F(ExecRunnerTest, LayerThatCannotPrepareRefusesTheRun) {
  FakeLayer layer(0);
  layer.prepare_error_ = "no seccomp here";
  std::string marker = dir_ + "/started";
  ExecOptions o = Options({"touch", marker});
  o.layers = {&layer};
  std::ostringstream err;
  EXPECT_EQ(RunExec(o, err), kExitUsage);
  EXPECT_EQ(err.str(), "fault exec: layer fake: no seccomp here\n");
  EXPECT_EQ(layer.calls_, "prepare ");
  EXPECT_NE(access(marker.c_str(), F_OK), 0);
}

TEST_F(ExecRunnerTest, DeathBySignal) {
  ExecOptions o = Options({"sh", "-c", "kill -ABRT $$"});
  o.quiet = true;
  std::ostringstream err;
  int status = RunExec(o, err);
  EXPECT_EQ(status, 128 + SIGABRT);
  EXPECT_EQ(err.str().rfind("fault: program killed by signal 6 (SIGABRT)", 0), 0u) << err.str();
}

TEST_F(ExecRunnerTest, ExpectFaultsWhenNothingFired) {
  ExecOptions o = Options({"true"});
  o.policy_files = {Write("p.yaml", "disk:\n  syscalls:\n    - fsync: {deny: EIO}\n")};
  o.expect_faults = true;
  o.seed = 3;
  std::ostringstream err;
  EXPECT_EQ(RunExec(o, err), kExitNeverFired);
  EXPECT_EQ(err.str(),
            "fault: policy \"disk\": never matched \xE2\x80\x94 check its targets\n"
            // The stand-in library is not the shim: no process attached.
            "fault:   or traffic fault could not see: no process of the run loaded the "
            "preload shim (its environment lost LD_PRELOAD or FAULT_TABLE, or it could not "
            "open the table)\n"
            "fault: 0 events, 0 dropped; seed 3 (--seed)\n"
            "fault: --expect-faults: policy \"disk\" never fired\n");
}

TEST_F(ExecRunnerTest, SelectPoliciesByUseWarnsForUnknownNames) {
  ExecOptions o = Options({"true"});
  std::string path = Write("p.yaml",
                           "a:\n  latency: 1ms\n"
                           "b:\n  latency: 2ms\n");
  o.policy_files = {path};
  o.uses = {"b", "zz", "a"};
  std::vector<std::string> warnings;
  absl::StatusOr<fault::v1::PolicySet> set = SelectPolicies(o, &warnings);
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_EQ(set->policies_size(), 2);
  EXPECT_EQ(set->policies(0).name(), "b");
  EXPECT_EQ(set->policies(1).name(), "a");
  EXPECT_EQ(warnings, std::vector<std::string>{"no policy named \"zz\" in " + path +
                                               "; running without it"});
  o.policy_files.clear();
  EXPECT_EQ(SelectPolicies(o, &warnings).status().message(),
            "--use needs --policy FILE to take the policy from");
}

TEST_F(ExecRunnerTest, SelectPoliciesRefusesHttpErrors) {
  ExecOptions o = Options({"true"});
  o.policy_files = {Write("p.yaml",
                          "slow:\n  latency: 1ms\n"
                          "maintenance:\n  http_error: {status: 503}\n")};
  std::vector<std::string> warnings;
  EXPECT_EQ(SelectPolicies(o, &warnings).status().message(),
            "policy \"maintenance\": http_error answers HTTP requests in place "
            "of the server, which only the HTTP proxy does: run it with fault "
            "run, or leave http_error out for fault exec");
  // Only the policies the run uses count.
  o.uses = {"slow"};
  absl::StatusOr<fault::v1::PolicySet> set = SelectPolicies(o, &warnings);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->policies_size(), 1);
}

// A reload that needs a syscall family the layer was not set up for is
// refused; the old policies stay.
TEST_F(ExecRunnerTest, ReloadRefusesNewSyscallFamiliesForALayer) {
  std::string err;
  EXPECT_EQ(RunWithReload("disk:\n  syscalls:\n    - fsync: {deny: EIO}\n",
                          "disk:\n  syscalls:\n    - write: {deny: ENOSPC}\n", &err),
            0);
  EXPECT_EQ(err,
            "fault: reload failed, keeping the previous policies: the fake layer was set "
            "up for other syscall families; the new policies add write (restart the run "
            "to add them)\n");
}

// With --quiet there is no summary, but a reload is still acknowledged:
// whoever sent the signal waits for that line.
TEST_F(ExecRunnerTest, QuietRunStillAcknowledgesAReload) {
  std::string out;
  const int status = RunWithReload("disk:\n  syscalls:\n    - fsync: {deny: EIO}\n",
                                   "disk:\n  syscalls:\n    - fsync: {deny: ENOSPC}\n", &out);
  EXPECT_EQ(status, 0);
  EXPECT_EQ(out.rfind("fault: reloaded 1 policy (generation ", 0), 0u) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}

}  // namespace
}  // namespace fault::exec
