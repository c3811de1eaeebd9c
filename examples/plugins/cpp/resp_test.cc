#include "resp.h"

#include <string>

#include "gtest/gtest.h"

namespace redis_upper {
namespace {

std::string Upper(const std::string& in, bool* complete = nullptr) {
  std::string out;
  bool ok = UpperBulkStrings(in, &out);
  if (complete != nullptr) *complete = ok;
  return out;
}

TEST(RespTest, BulkStringsOnly) {
  EXPECT_EQ(Upper("$5\r\nhello\r\n"), "$5\r\nHELLO\r\n");
  EXPECT_EQ(Upper("+ok\r\n"), "+ok\r\n");
  EXPECT_EQ(Upper("-ERR bad\r\n:42\r\n"), "-ERR bad\r\n:42\r\n");
  EXPECT_EQ(Upper("$-1\r\n"), "$-1\r\n");
}

TEST(RespTest, NestedAggregates) {
  EXPECT_EQ(Upper("*2\r\n$1\r\na\r\n*1\r\n$2\r\nbc\r\n"), "*2\r\n$1\r\nA\r\n*1\r\n$2\r\nBC\r\n");
  EXPECT_EQ(Upper("%1\r\n$1\r\nk\r\n$1\r\nv\r\n"), "%1\r\n$1\r\nK\r\n$1\r\nV\r\n");
}

TEST(RespTest, BinarySafeLengths) {
  // A bulk string holding \r\n is read by its length, not by lines.
  EXPECT_EQ(Upper(std::string("$4\r\na\r\nb\r\n", 10)), std::string("$4\r\nA\r\nB\r\n", 10));
}

TEST(RespTest, IncompleteRepliesAreLeftAlone) {
  bool complete = true;
  EXPECT_EQ(Upper("$10\r\nhello", &complete), "$10\r\nhello");
  EXPECT_FALSE(complete);
  EXPECT_EQ(Upper("*2\r\n$1\r\na\r\n", &complete), "*2\r\n$1\r\na\r\n");
  EXPECT_FALSE(complete);
  EXPECT_EQ(Upper("hello world", &complete), "hello world");
  EXPECT_FALSE(complete);
}

}  // namespace
}  // namespace redis_upper
