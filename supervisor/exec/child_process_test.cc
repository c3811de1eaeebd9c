#include "supervisor/exec/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace fault::exec {
namespace {

TEST(ChildProcessTest, EnvironmentPrependsShimAndAddsTable) {
  // An outer run's variables are replaced; the inherited-fd one is dropped.
  const char* env[] = {"PATH=/bin",         "LD_PRELOAD=/a.so:/b.so",
                       "FAULT_TABLE_FD=99", "FAULT_TABLE=/proc/1/fd/9",
                       "HOME=/root",        nullptr};
  std::vector<std::string> out = BuildChildEnvironment(
      const_cast<char* const*>(env), "/x/libfault_shim.so", "/proc/42/fd/5",
      0x7e0000000000ull);
  EXPECT_EQ(out, (std::vector<std::string>{
                     "PATH=/bin", "LD_PRELOAD=/x/libfault_shim.so:/a.so:/b.so",
                     "HOME=/root", "FAULT_TABLE=/proc/42/fd/5",
                     "FAULT_STUB_PAGE=0x7e0000000000"}));
}

TEST(ChildProcessTest, EnvironmentWithoutPreload) {
  const char* env[] = {"A=1", "LD_PRELOAD=", nullptr};
  std::vector<std::string> out = BuildChildEnvironment(
      const_cast<char* const*>(env), "/s.so", "/proc/1/fd/3", 0x1000);
  EXPECT_EQ(out, (std::vector<std::string>{"A=1", "LD_PRELOAD=/s.so",
                                           "FAULT_TABLE=/proc/1/fd/3",
                                           "FAULT_STUB_PAGE=0x1000"}));
  const char* none[] = {nullptr};
  out = BuildChildEnvironment(const_cast<char* const*>(none), "/s.so", "/t",
                              0x1000);
  EXPECT_EQ(out[0], "LD_PRELOAD=/s.so");
}

TEST(ChildProcessTest, EnvironmentWithoutTheShimLayer) {
  const char* env[] = {"LD_PRELOAD=/a.so", "B=2", nullptr};
  std::vector<std::string> out = BuildChildEnvironment(
      const_cast<char* const*>(env), "", "/proc/1/fd/4", 0x1000);
  EXPECT_EQ(out, (std::vector<std::string>{"LD_PRELOAD=/a.so", "B=2",
                                           "FAULT_TABLE=/proc/1/fd/4",
                                           "FAULT_STUB_PAGE=0x1000"}));
}

TEST(ChildProcessTest, ResolveProgramLikeExecvp) {
  EXPECT_EQ(*ResolveProgram("sh", "/nonexistent:/bin:/usr/bin"), "/bin/sh");
  EXPECT_EQ(*ResolveProgram("./relative", "/bin"), "./relative");
  absl::StatusOr<std::string> missing = ResolveProgram("no-such-program-x", "/bin");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "no-such-program-x: command not found");
}

TEST(ChildProcessTest, SpawnReportsExecFailure) {
  SpawnRequest r;
  r.path = "/nonexistent/prog";
  r.argv = {"prog"};
  sigemptyset(&r.child_mask);
  absl::StatusOr<pid_t> pid = Spawn(r);
  ASSERT_FALSE(pid.ok());
  EXPECT_EQ(pid.status().message(),
            "cannot run /nonexistent/prog (execve): No such file or directory");
}

TEST(ChildProcessTest, SpawnPassesArgvEnvAndFd) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  SpawnRequest r;
  r.path = "/bin/sh";
  r.argv = {"sh", "-c", "test \"$X\" = 1 && echo hi >&$FD"};
  r.env = {"X=1", "FD=" + std::to_string(fds[1])};
  r.inherit_fd = fds[1];
  sigemptyset(&r.child_mask);
  absl::StatusOr<pid_t> pid = Spawn(r);
  ASSERT_TRUE(pid.ok()) << pid.status();
  int status = 0;
  ASSERT_EQ(waitpid(*pid, &status, 0), *pid);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  close(fds[1]);
  char buf[8] = {};
  EXPECT_EQ(read(fds[0], buf, sizeof(buf)), 3);
  EXPECT_STREQ(buf, "hi\n");
  close(fds[0]);
}

TEST(ChildProcessTest, SignalNames) {
  EXPECT_EQ(SignalName(SIGSEGV), "SIGSEGV");
  EXPECT_EQ(SignalFromName("SIGHUP"), SIGHUP);
  EXPECT_EQ(SignalFromName("hup"), SIGHUP);
  EXPECT_EQ(SignalFromName("10"), 10);
  EXPECT_EQ(SignalFromName("SIGNOPE"), 0);
}

}  // namespace
}  // namespace fault::exec
