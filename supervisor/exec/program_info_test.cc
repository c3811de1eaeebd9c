#include "supervisor/exec/program_info.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

namespace fault::exec {
namespace {

std::string TempFile(const std::string& contents, mode_t mode) {
  char path[] = "/tmp/fault_program_info_XXXXXX";
  int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, contents.data(), contents.size()), static_cast<ssize_t>(contents.size()));
  fchmod(fd, mode);
  close(fd);
  return path;
}

TEST(ResolveProgram, SearchesPathLikeExecvp) {
  absl::StatusOr<std::string> sh = ResolveProgram("sh", "/nonexistent:/bin:/usr/bin");
  ASSERT_TRUE(sh.ok()) << sh.status();
  EXPECT_EQ(*sh, "/bin/sh");
}

TEST(ResolveProgram, NamesWithASlashAreTakenAsIs) {
  EXPECT_EQ(*ResolveProgram("/bin/sh", ""), "/bin/sh");
  absl::StatusOr<std::string> missing = ResolveProgram("./no-such-program", "/bin");
  EXPECT_EQ(missing.status().message(), "./no-such-program: not an executable file");
}

TEST(ResolveProgram, UnknownCommand) {
  absl::StatusOr<std::string> r = ResolveProgram("no-such-program-here", "/bin:/usr/bin");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(), "no-such-program-here: command not found in PATH");
}

TEST(ProgramLinkage, DynamicProgramHasAnInterpreter) {
  EXPECT_EQ(*ProgramLinkage("/bin/sh"), Linkage::kDynamic);
}

TEST(ProgramLinkage, ScriptsAreRecognised) {
  std::string path = TempFile("#!/bin/sh\nexit 0\n", 0755);
  EXPECT_EQ(*ProgramLinkage(path), Linkage::kScript);
  unlink(path.c_str());
}

TEST(ProgramLinkage, StaticProgramHasNone) {
  // The test build links this static target (tests/targets/seccomp).
  std::string path = std::string(FAULT_TEST_BIN_DIR) + "/seccomp_fsync_target";
  if (access(path.c_str(), X_OK) != 0) GTEST_SKIP() << path << " not built";
  EXPECT_EQ(*ProgramLinkage(path), Linkage::kStatic);
}

TEST(ProgramLinkage, OtherFilesAreRefused) {
  std::string path = TempFile("hello", 0644);
  absl::StatusOr<Linkage> r = ProgramLinkage(path);
  EXPECT_EQ(r.status().message(), path + ": not an ELF file or script");
  unlink(path.c_str());
}

TEST(ExecPrivileges, SetUserIdAndSetGroupIdBits) {
  std::string path = TempFile("#!/bin/sh\n", 06755);
  absl::StatusOr<ExecPrivileges> p = ReadExecPrivileges(path);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->setuid);
  EXPECT_TRUE(p->setgid);
  EXPECT_EQ(p->owner, geteuid());
  EXPECT_FALSE(p->file_capabilities);
  if (p->nosuid_mount) GTEST_SKIP() << "/tmp is mounted nosuid";
  // Another user would lose the owner's uid and the group's gid...
  EXPECT_EQ(PrivilegesLostUnderNoNewPrivs(*p, p->owner + 1, p->group + 1),
            "is set-user-ID (owner uid " + std::to_string(p->owner) +
                ") and is set-group-ID (group gid " + std::to_string(p->group) +
                ")");
  // ...the owner loses nothing.
  EXPECT_EQ(PrivilegesLostUnderNoNewPrivs(*p, p->owner, p->group), "");
  unlink(path.c_str());

  // Set-group-ID without group execute is mandatory locking, not a gid.
  path = TempFile("#!/bin/sh\n", 02745);
  p = ReadExecPrivileges(path);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_FALSE(p->setuid);
  EXPECT_FALSE(p->setgid);
  EXPECT_EQ(PrivilegesLostUnderNoNewPrivs(*p, p->owner + 1, p->group + 1), "");
  unlink(path.c_str());

  path = TempFile("#!/bin/sh\n", 0755);
  p = ReadExecPrivileges(path);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(PrivilegesLostUnderNoNewPrivs(*p, 12345, 12345), "");
  unlink(path.c_str());
}

TEST(ExecPrivileges, FileCapabilitiesMatterToAnyoneButRoot) {
  ExecPrivileges p;
  p.file_capabilities = true;
  EXPECT_EQ(PrivilegesLostUnderNoNewPrivs(p, 1000, 1000), "has file capabilities");
  EXPECT_EQ(PrivilegesLostUnderNoNewPrivs(p, 0, 0), "");
  p.nosuid_mount = true;  // the kernel ignores them there anyway
  EXPECT_EQ(PrivilegesLostUnderNoNewPrivs(p, 1000, 1000), "");
}

TEST(ExecPrivileges, ReadsTheCapabilityAttribute) {
  // A real file capability, set with setcap(8) (needs CAP_SETFCAP).
  std::string path = TempFile("#!/bin/sh\n", 0755);
  std::string cmd = "setcap cap_net_raw+ep " + path + " 2>/dev/null";
  if (access("/usr/sbin/setcap", X_OK) != 0 || std::system(cmd.c_str()) != 0) {
    unlink(path.c_str());
    GTEST_SKIP() << "setcap is missing or not permitted here";
  }
  absl::StatusOr<ExecPrivileges> p = ReadExecPrivileges(path);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->file_capabilities);
  EXPECT_FALSE(p->setuid);
  unlink(path.c_str());
}

TEST(ExecPrivileges, PingWhereItHasCapabilities) {
  for (const char* ping : {"/usr/bin/ping", "/bin/ping"}) {
    if (access(ping, X_OK) != 0) continue;
    absl::StatusOr<ExecPrivileges> p = ReadExecPrivileges(ping);
    ASSERT_TRUE(p.ok()) << p.status();
    if (!p->file_capabilities && !p->setuid) {
      GTEST_SKIP() << ping << " has neither file capabilities nor set-user-ID";
    }
    EXPECT_NE(PrivilegesLostUnderNoNewPrivs(*p, 1000, 1000), "");
    return;
  }
  GTEST_SKIP() << "no ping installed";
}

TEST(ExecPrivileges, MissingFile) {
  EXPECT_FALSE(ReadExecPrivileges("/nonexistent/program").ok());
}

TEST(NeededLibraries, DynamicProgramNamesLibc) {
  absl::StatusOr<std::vector<std::string>> needed = NeededLibraries("/bin/sh");
  ASSERT_TRUE(needed.ok()) << needed.status();
  EXPECT_NE(std::find(needed->begin(), needed->end(), "libc.so.6"), needed->end());
  EXPECT_FALSE(NeedsLiburing("/bin/sh"));
}

TEST(NeededLibraries, StaticProgramsAndScriptsNeedNone) {
  std::string script = TempFile("#!/bin/sh\nexit 0\n", 0755);
  EXPECT_TRUE(NeededLibraries(script)->empty());
  unlink(script.c_str());
  std::string path = std::string(FAULT_TEST_BIN_DIR) + "/seccomp_fsync_target";
  if (access(path.c_str(), X_OK) != 0) GTEST_SKIP() << path << " not built";
  absl::StatusOr<std::vector<std::string>> needed = NeededLibraries(path);
  ASSERT_TRUE(needed.ok()) << needed.status();
  EXPECT_TRUE(needed->empty());
}

TEST(NeededLibraries, UringClientNeedsLiburing) {
  std::string path = std::string(FAULT_TEST_BIN_DIR) + "/fault_target_uring_client";
  if (access(path.c_str(), X_OK) != 0) GTEST_SKIP() << path << " not built";
  EXPECT_TRUE(NeedsLiburing(path));
}

TEST(NeededLibraries, OtherFilesAreRefused) {
  std::string path = TempFile("hello", 0644);
  EXPECT_EQ(NeededLibraries(path).status().message(), path + ": not an ELF file or script");
  EXPECT_FALSE(NeedsLiburing(path));
  unlink(path.c_str());
  std::string elf = TempFile(std::string("\x7f" "ELF\x02\x01\x01", 7), 0644);
  EXPECT_FALSE(NeededLibraries(elf).ok());  // truncated header
  unlink(elf.c_str());
}

}  // namespace
}  // namespace fault::exec
