#include "supervisor/grpc/loader.h"

#include <cstdlib>
#include <string>

#include "gtest/gtest.h"

namespace fault::grpc_module {
namespace {

// The build puts fault-grpc.so in build/lib, and ctest runs tests from
// build/bin: the search next to the binary must find it.
TEST(GrpcModuleLoaderTest, FindsAndLoadsTheBuiltModule) {
  unsetenv("FAULT_GRPC_MODULE");
  std::string path = FindModule();
  ASSERT_FALSE(path.empty());
  EXPECT_NE(path.find("fault-grpc.so"), std::string::npos);
  absl::StatusOr<const Module*> m = Load();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)->abi_version, kAbiVersion);
  ASSERT_NE((*m)->grpc_version, nullptr);
  EXPECT_EQ(std::string((*m)->grpc_version).substr(0, 2), "1.");
}

TEST(GrpcModuleLoaderTest, AnUnreadableOverrideIsNotFound) {
  setenv("FAULT_GRPC_MODULE", "/nonexistent/fault-grpc.so", 1);
  EXPECT_EQ(FindModule(), "");
  unsetenv("FAULT_GRPC_MODULE");
}

}  // namespace
}  // namespace fault::grpc_module
