#include "supervisor/grpc/plugin_address.h"

#include <string>

#include "gtest/gtest.h"

namespace fault::grpc_module {
namespace {

std::string Target(const std::string& in) {
  std::string target, why;
  return PluginTarget(in, &target, &why) ? target : "error: " + why;
}

TEST(PluginTargetTest, AcceptsTheRustToolsFormsAndBareHostPort) {
  EXPECT_EQ(Target("http://127.0.0.1:50051"), "127.0.0.1:50051");
  EXPECT_EQ(Target("HTTP://localhost:50051/"), "localhost:50051");
  EXPECT_EQ(Target(" 127.0.0.1:1 "), "127.0.0.1:1");
  EXPECT_EQ(Target("[::1]:50051"), "[::1]:50051");
  EXPECT_EQ(Target("http://[::1]:65535"), "[::1]:65535");
}

TEST(PluginTargetTest, NamesWhatIsWrong) {
  EXPECT_EQ(Target(""), "error: is empty");
  EXPECT_NE(Target("https://h:1").find("https:// is not supported"), std::string::npos);
  EXPECT_NE(Target("grpc://h:1").find("has the scheme grpc://"), std::string::npos);
  EXPECT_EQ(Target("h"), "error: has no port (HOST:PORT, [IPV6]:PORT)");
  EXPECT_EQ(Target("::1:5"), "error: has no port (HOST:PORT, [IPV6]:PORT)");
  EXPECT_EQ(Target(":5"), "error: has no host");
  EXPECT_EQ(Target("http://h:1/x"), "error: has a path; a plugin is HOST:PORT");
  for (const char* bad : {"h:0", "h:65536", "h:", "h:1x", "h:99999999999"})
    EXPECT_NE(Target(bad).find("not a number from 1 to 65535"), std::string::npos) << bad;
}

}  // namespace
}  // namespace fault::grpc_module
