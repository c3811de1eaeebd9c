#include "supervisor/cli/input_file.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace fault::cli {
namespace {

class InputFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/input_file_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + dir_ + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }
  std::string Write(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  std::string dir_;
};

TEST_F(InputFileTest, ReadsARegularFile) {
  std::string path = Write("p.yaml", "p: {latency: 1ms}\n");
  absl::StatusOr<std::string> text = ReadInputFile(path, 1024, "policy files");
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "p: {latency: 1ms}\n");
  path = Write("empty.yaml", "");
  text = ReadInputFile(path, 1024, "policy files");
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "");
}

TEST_F(InputFileTest, ExactlyTheLimitIsFineOneMoreByteIsNot) {
  std::string path = Write("big.yaml", std::string(2048, 'x'));
  EXPECT_TRUE(ReadInputFile(path, 2048, "policy files").ok());
  absl::StatusOr<std::string> text = ReadInputFile(path, 2047, "policy files");
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(
      text.status().message(),
      path + ": too large (2048 bytes; policy files are at most 2047 bytes)");
  text = ReadInputFile(path, 1024, "spec files");
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().message(),
            path + ": too large (2048 bytes; spec files are at most 1 KiB)");
}

TEST_F(InputFileTest, DevZeroIsRefusedBeforeReading) {
  auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::string> text =
      ReadInputFile("/dev/zero", kMaxPolicyBytes, "policy files");
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().message(),
            "/dev/zero: cannot read: a character device, not a regular file");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

TEST_F(InputFileTest, DirectoryFifoAndSocketAreRefused) {
  absl::StatusOr<std::string> text = ReadInputFile(dir_, 1024, "policy files");
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().message(),
            dir_ + ": cannot read: a directory, not a regular file");

  // Opening a FIFO without a writer must not block.
  std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  text = ReadInputFile(fifo, 1024, "policy files");
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().message(),
            fifo + ": cannot read: a FIFO, not a regular file");
}

TEST_F(InputFileTest, MissingFileSaysWhy) {
  absl::StatusOr<std::string> text =
      ReadInputFile(dir_ + "/absent.yaml", 1024, "policy files");
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().message(),
            dir_ + "/absent.yaml: cannot read: No such file or directory");
}

TEST_F(InputFileTest, LimitsAreTheDocumentedOnes) {
  EXPECT_EQ(kMaxPolicyBytes, 1u << 20);
  EXPECT_EQ(kMaxScriptBytes, 4u << 20);
}

}  // namespace
}  // namespace fault::cli
