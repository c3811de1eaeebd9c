#include "shim/engine/engine.h"

#include <gtest/gtest.h>

namespace fault::engine {
namespace {
TEST(EngineSmoke, Builds) { EXPECT_TRUE(WhenFires(0, 0, 0, 1)); }
}  // namespace
}  // namespace fault::engine
