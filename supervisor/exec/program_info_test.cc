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
