#include "supervisor/seccomp/partition.h"

#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fault::seccomp {
namespace {

TEST(PartitionMapTest, ListeningInodesParsesProcNetTcp) {
  const char* text =
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when "
      "retrnsmt   uid  "
      "timeout inode\n"
      "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 "
      "00000000     0    "
      "    0 4242 1 0000000000000000 100 0 0 10 0\n"
      "   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 "
      "00000000     0    "
      "    0 4343 1 0000000000000000 20 4 30 10 -1\n"
      "   2: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 "
      "00000000     0    "
      "    0 4444 1 0000000000000000 100 0 0 10 0\n";
  // Port 8080 = 0x1F90: only the listening socket, not the established one.
  EXPECT_THAT(PartitionMap::ListeningInodes(text, 8080),
              testing::ElementsAre(4242));
  EXPECT_THAT(PartitionMap::ListeningInodes(text, 22),
              testing::ElementsAre(4444));
  EXPECT_THAT(PartitionMap::ListeningInodes(text, 9), testing::IsEmpty());
}

TEST(PartitionMapTest, ProcessTreeIncludesTheRoot) {
  EXPECT_THAT(PartitionMap::ProcessTree(getpid()), testing::Contains(getpid()));
}

TEST(PartitionMapTest, UnknownProgramListensNowhere) {
  PartitionMap map;
  map.Register("b", getpid());
  EXPECT_EQ(map.RootPid("b"), getpid());
  EXPECT_EQ(map.RootPid("a"), 0);
  EXPECT_FALSE(map.ProgramListens("a", 80));
}

}  // namespace
}  // namespace fault::seccomp
