// SeccompExecLayer driven the way `fault exec` drives it: PolicyTable +
// Spawn from supervisor/exec, the layer's hooks in the runner's order.
#include "supervisor/seccomp/seccomp_exec_layer.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shim/engine/engine.h"
#include "supervisor/exec/child_process.h"
#include "supervisor/exec/policy_table.h"

namespace fault::seccomp {
namespace {

TEST(SeccompFamiliesTest, SyscallFaultsAndPartitions) {
  fault::v1::PolicySet set;
  fault::v1::Policy* p = set.add_policies();
  p->add_syscalls()->set_family(fault::v1::SyscallFault::FAMILY_FSYNC);
  p->add_syscalls()->set_family(fault::v1::SyscallFault::FAMILY_WRITE);
  // An fsync rule brings fdatasync along (it covers both).
  const uint64_t files = FamilyBit(Family::kFsync) | FamilyBit(Family::kFdatasync) |
                         FamilyBit(Family::kWrite);
  EXPECT_EQ(SeccompFamilies(set), files);
  set.add_policies()->add_partitions()->set_a("x");
  EXPECT_EQ(SeccompFamilies(set),
            files | FamilyBit(Family::kConnect) | FamilyBit(Family::kSend));
}

fault::exec::SpawnRequest Request(const std::string& path,
                                  std::vector<std::string> argv,
                                  fault::exec::ExecLayer* layer) {
  fault::exec::SpawnRequest r;
  r.path = path;
  r.argv = std::move(argv);
  r.env = {"PATH=/usr/bin:/bin"};
  sigemptyset(&r.child_mask);
  r.layers = {layer};
  return r;
}

TEST(SeccompExecLayerTest, DeniesFsyncOfTheSpawnedProgram) {
  auto table = fault::exec::PolicyTable::Create(
      {.start_ns = fault::exec::MonotonicNowNs()});
  ASSERT_TRUE(table.ok()) << table.status();
  auto cfg = std::make_unique<fault_config>();
  cfg->n_rules = 1;
  cfg->rules[0].flags = FAULT_RULE_ACTIVE;
  cfg->rules[0].schedule.kind = 1;
  cfg->n_syscall_rules = 1;
  cfg->syscall_rules[0].family = static_cast<uint8_t>(Family::kFsync);
  cfg->syscall_rules[0].action = 1;
  cfg->syscall_rules[0].err = EIO;
  cfg->families_mask = FamilyBit(Family::kFsync);
  (*table)->Publish(*cfg);

  SeccompExecLayer layer({.families_mask = FamilyBit(Family::kFsync)});
  ASSERT_TRUE(layer.Prepare(table->get()).ok());
  char tmpl[] = "/tmp/fault-seccomp-layer-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string target =
      std::string(FAULT_SECCOMP_BIN_DIR) + "/seccomp_fsync_target";
  absl::StatusOr<pid_t> pid = fault::exec::Spawn(
      Request(target, {target, std::string(tmpl) + "/db"}, &layer));
  ASSERT_TRUE(pid.ok()) << pid.status();
  ASSERT_TRUE(layer.Started(*pid).ok());
  int status = 0;
  ASSERT_EQ(waitpid(*pid, &status, 0), *pid);
  layer.Stop();
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status),
            1);  // fsync_target: fsync ...: Input/output error
  std::vector<fault_event> events;
  (*table)->DrainEvents(&events, /*final=*/true);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].layer, 2);
  EXPECT_EQ(events[0].value, EIO);
  EXPECT_EQ((*table)->ReadCounters().syscall_fired[0], 1u);
  EXPECT_EQ(layer.stats().denied, 1u);
  unlink((std::string(tmpl) + "/db").c_str());
  rmdir(tmpl);
}

TEST(SeccompExecLayerTest, FailedExecveIsReportedNotAHang) {
  auto table = fault::exec::PolicyTable::Create(
      {.start_ns = fault::exec::MonotonicNowNs()});
  ASSERT_TRUE(table.ok());
  // write is covered: the child's report of the failed execve is a write.
  SeccompExecLayer layer({.families_mask = FamilyBit(Family::kWrite)});
  ASSERT_TRUE(layer.Prepare(table->get()).ok());
  absl::StatusOr<pid_t> pid =
      fault::exec::Spawn(Request("/nonexistent/prog", {"prog"}, &layer));
  layer.Stop();
  EXPECT_EQ(pid.status().code(), absl::StatusCode::kNotFound);
}

TEST(SeccompExecLayerTest, ItsThreadsNeverTakeProcessSignals) {
  // The runner blocks SIGCHLD/SIGTERM/... and waits for them with
  // sigtimedwait; a thread of ours with them unblocked would steal them.
  auto table = fault::exec::PolicyTable::Create(
      {.start_ns = fault::exec::MonotonicNowNs()});
  ASSERT_TRUE(table.ok());
  SeccompExecLayer layer({.families_mask = FamilyBit(Family::kFsync)});
  ASSERT_TRUE(layer.Prepare(table->get()).ok());
  const std::string target =
      std::string(FAULT_SECCOMP_BIN_DIR) + "/seccomp_fsync_target";
  absl::StatusOr<pid_t> pid = fault::exec::Spawn(
      Request(target, {target, "/proc/self/nonexistent/db"}, &layer));
  ASSERT_TRUE(pid.ok()) << pid.status();
  ASSERT_TRUE(layer.Started(*pid).ok());
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, nullptr);
  ASSERT_EQ(kill(getpid(), SIGUSR1),
            0);  // process-directed; default action: terminate
  timespec timeout{2, 0};
  EXPECT_EQ(sigtimedwait(&usr1, nullptr, &timeout), SIGUSR1);
  pthread_sigmask(SIG_UNBLOCK, &usr1, nullptr);
  waitpid(*pid, nullptr, 0);
  layer.Stop();
}

}  // namespace
}  // namespace fault::seccomp
