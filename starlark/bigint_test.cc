#include "starlark/bigint.h"

#include "gtest/gtest.h"

namespace fault::starlark {
namespace {

BigInt P(const char* s) {
  std::string_view v(s);
  bool neg = !v.empty() && v[0] == '-';
  if (neg) v.remove_prefix(1);
  auto b = BigInt::Parse(v, 10);
  EXPECT_TRUE(b.has_value()) << s;
  return neg ? b->Neg() : *b;
}

TEST(BigIntTest, ArithmeticMatchesPython) {
  BigInt a = P("123456789012345678901234567890");
  BigInt b = P("-987654321098765432109876543210");
  EXPECT_EQ(BigInt::Add(a, b).ToString(), "-864197532086419753208641975320");
  EXPECT_EQ(BigInt::Sub(a, b).ToString(), "1111111110111111111011111111100");
  EXPECT_EQ(BigInt::Mul(a, b).ToString(),
            "-121932631137021795226185032733622923332237463801111263526900");
  BigInt q, r;
  BigInt::DivMod(b, a, &q, &r);  // floored
  EXPECT_EQ(q.ToString(), "-9");
  EXPECT_EQ(r.ToString(), "123456780012345678001234567800");
  BigInt::DivMod(P("340282366920938463463374607431768211457"),
                 P("18446744073709551617"), &q, &r);
  EXPECT_EQ(q.ToString(), "18446744073709551615");
  EXPECT_EQ(r.ToString(), "2");
}

TEST(BigIntTest, BitwiseUsesTwosComplement) {
  EXPECT_EQ(BigInt::And(P("-1"), P("36893488147419103231")).ToString(),
            "36893488147419103231");
  EXPECT_EQ(BigInt::Or(P("-36893488147419103232"), P("1")).ToString(),
            "-36893488147419103231");
  EXPECT_EQ(BigInt::Xor(P("-5"), P("3")).ToString(), "-8");
  EXPECT_EQ(BigInt::Not(P("36893488147419103232")).ToString(),
            "-36893488147419103233");
  EXPECT_EQ(P("-5").Shr(1).ToString(), "-3");
  EXPECT_EQ(P("1").Shl(100).ToString(), "1267650600228229401496703205376");
}

TEST(BigIntTest, BasesAndConversions) {
  EXPECT_EQ(P("255").ToString(16), "ff");
  EXPECT_EQ(P("-255").ToString(2), "-11111111");
  EXPECT_EQ(BigInt::Parse("zz", 36)->ToString(), "1295");
  EXPECT_FALSE(BigInt::Parse("12a", 10).has_value());
  EXPECT_DOUBLE_EQ(P("9007199254740993").ToDouble(), 9007199254740992.0);
  EXPECT_EQ(BigInt::FromDouble(1e20)->ToString(), "100000000000000000000");
  int64_t v;
  EXPECT_TRUE(P("-9223372036854775808").ToInt64(&v));
  EXPECT_EQ(v, INT64_MIN);
  EXPECT_FALSE(P("9223372036854775808").ToInt64(&v));
}

}  // namespace
}  // namespace fault::starlark
