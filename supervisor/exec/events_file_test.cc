#include "supervisor/exec/events_file.h"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace fault::exec {
namespace {

std::string TempPath() {
  char tmpl[] = "/tmp/events_file_test.XXXXXX";
  int fd = mkstemp(tmpl);
  if (fd >= 0) close(fd);
  return tmpl;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> Lines(int n, char c = 'x') {
  std::vector<std::string> out;
  // 30 bytes each, newline included.
  for (int i = 0; i < n; ++i) out.push_back(std::string(29, c) + "\n");
  return out;
}

TEST(EventsFileTest, WritesWholeLines) {
  std::string path = TempPath();
  absl::StatusOr<EventsFile> f = EventsFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  f->Append(Lines(2));
  f->Append({});
  f->Append(Lines(1, 'y'));
  f->Close();
  EXPECT_FALSE(f->failed());
  EXPECT_EQ(f->written(), 3u);
  EXPECT_EQ(f->lost(), 0u);
  EXPECT_EQ(Slurp(path), Lines(2)[0] + Lines(2)[1] + Lines(1, 'y')[0]);
  unlink(path.c_str());
}

TEST(EventsFileTest, DevFullLosesEveryEventAndSaysWhy) {
  absl::StatusOr<EventsFile> f = EventsFile::Open("/dev/full");
  ASSERT_TRUE(f.ok()) << f.status();
  f->Append(Lines(3));
  EXPECT_TRUE(f->failed());
  EXPECT_EQ(f->error(), "write: No space left on device");
  f->Append(Lines(2));  // nothing more is tried; all of it counts
  f->Close();
  EXPECT_EQ(f->written(), 0u);
  EXPECT_EQ(f->lost(), 5u);
  EXPECT_FALSE(f->close_failed());
}

// Runs in the death-test child: exits 0 when the counts are right.
[[noreturn]] void FillUpAndCount(const std::string& path) {
  signal(SIGXFSZ, SIG_IGN);
  rlimit lim{100, 100};
  setrlimit(RLIMIT_FSIZE, &lim);
  absl::StatusOr<EventsFile> f = EventsFile::Open(path);
  if (!f.ok()) _exit(10);
  f->Append(Lines(2));  // 60 bytes
  if (f->failed()) _exit(11);
  f->Append(Lines(3));  // 90 more: one fits, the next is cut at 100
  f->Close();
  if (!f->failed()) _exit(12);
  if (f->written() != 3 || f->lost() != 2) _exit(13);
  if (f->error() != "write: File too large") _exit(14);
  _exit(0);
}

// A disk that fills in the middle of a batch: the lines the kernel took in
// full count as written, the cut-off one is truncated away and counted lost
// with the rest. RLIMIT_FSIZE stands in for the full disk (write() returns
// what fits, then EFBIG), in a child so the limit stays there.
TEST(EventsFileTest, ShortWriteCountsExactlyAndLeavesWholeLines) {
  std::string path = TempPath();
  EXPECT_EXIT(FillUpAndCount(path), ::testing::ExitedWithCode(0), "");
  EXPECT_EQ(Slurp(path).size(), 90u);  // three whole lines, no fragment
  unlink(path.c_str());
}

TEST(EventsFileTest, OpenErrorSaysWhy) {
  absl::StatusOr<EventsFile> f = EventsFile::Open("/nonexistent-dir/e.jsonl");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().message(), "No such file or directory");
}

}  // namespace
}  // namespace fault::exec
