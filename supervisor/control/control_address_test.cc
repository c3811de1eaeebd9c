#include "supervisor/control/control_address.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace fault::control {
namespace {

TEST(ControlAddressTest, ParsesTheThreeForms) {
  absl::StatusOr<ControlEndpoint> e = ParseControlAddress("unix");
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(e->tcp);
  EXPECT_TRUE(e->socket_path.empty());
  e = ParseControlAddress("unix:/tmp/x/control.sock");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->GrpcAddress(), "unix:/tmp/x/control.sock");
  e = ParseControlAddress("tcp:127.0.0.1:7070");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->GrpcAddress(), "127.0.0.1:7070");
  EXPECT_EQ(e->Text(), "tcp:127.0.0.1:7070");
  e = ParseControlAddress("tcp:[::1]:0");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->host, "::1");
  EXPECT_EQ(e->GrpcAddress(), "[::1]:0");
}

TEST(ControlAddressTest, BadValuesSayWhatIsExpected) {
  for (const char* bad :
       {"http://x", "tcp:7070", "tcp:host:99999", "tcp:::1:5", "tcp:h:x"}) {
    absl::StatusOr<ControlEndpoint> e = ParseControlAddress(bad);
    ASSERT_FALSE(e.ok()) << bad;
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_NE(
      ParseControlAddress("http://x").status().message().find("unix:PATH"),
      std::string::npos);
  EXPECT_NE(ParseControlAddress("unix:/" + std::string(200, 'x'))
                .status()
                .message()
                .find("longer than"),
            std::string::npos);
}

TEST(ControlAddressTest, SocketDirectoryMustBePrivate) {
  char dir[] = "/tmp/fault-addr-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  absl::StatusOr<ControlEndpoint> e =
      ParseControlAddress(std::string("unix:") + dir + "/c.sock");
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(PrepareUnixSocket(&*e).ok());
  chmod(dir, 0755);
  absl::Status s = PrepareUnixSocket(&*e);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("open to other users (mode 0755)"),
            std::string::npos)
      << s.message();
  chmod(dir, 0700);
  std::ofstream(e->socket_path) << "x";
  s = PrepareUnixSocket(&*e);
  EXPECT_NE(s.message().find("already exists"), std::string::npos)
      << s.message();
  unlink(e->socket_path.c_str());
  rmdir(dir);
}

TEST(ControlAddressTest, UnixAloneMakesAndRemovesAPrivateDirectory) {
  absl::StatusOr<ControlEndpoint> e = ParseControlAddress("unix");
  ASSERT_TRUE(e.ok());
  ASSERT_TRUE(PrepareUnixSocket(&*e).ok());
  struct stat st;
  ASSERT_EQ(stat(e->private_dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(e->socket_path, e->private_dir + "/control.sock");
  RemoveUnixSocket(*e);
  EXPECT_NE(stat(e->private_dir.c_str(), &st), 0);
}

TEST(ControlAddressTest, TokenFiles) {
  char path[] = "/tmp/fault-token-test-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "  s3cret\n", 9), 9);
  close(fd);
  chmod(path, 0600);
  absl::StatusOr<std::string> t = ReadTokenFile(path);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, "s3cret");
  chmod(path, 0644);
  EXPECT_NE(
      ReadTokenFile(path).status().message().find("other users may read it"),
      std::string::npos);
  chmod(path, 0600);
  std::ofstream(path) << "two words\n";
  EXPECT_NE(ReadTokenFile(path).status().message().find("without spaces"),
            std::string::npos);
  std::ofstream(path) << "\n";
  EXPECT_NE(ReadTokenFile(path).status().message().find("empty"),
            std::string::npos);
  unlink(path);
  EXPECT_FALSE(ReadTokenFile(path).ok());
}

}  // namespace
}  // namespace fault::control
