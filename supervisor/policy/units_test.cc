#include "supervisor/policy/units.h"

#include <cerrno>
#include <cstdint>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fault::policy {
namespace {

template <typename T>
std::string ErrorOf(const absl::StatusOr<T>& result) {
  if (result.ok()) return "<ok>";
  return std::string(result.status().message());
}

TEST(ParseDurationTest, AcceptsEveryUnit) {
  EXPECT_EQ(*ParseDuration("0"), 0);
  EXPECT_EQ(*ParseDuration("0s"), 0);
  EXPECT_EQ(*ParseDuration("15ns"), 15);
  EXPECT_EQ(*ParseDuration("250us"), 250'000);
  EXPECT_EQ(*ParseDuration("250µs"), 250'000);
  EXPECT_EQ(*ParseDuration("7ms"), 7'000'000);
  EXPECT_EQ(*ParseDuration("1.5s"), 1'500'000'000);
  EXPECT_EQ(*ParseDuration(".5s"), 500'000'000);
  EXPECT_EQ(*ParseDuration("2m"), 120'000'000'000);
  EXPECT_EQ(*ParseDuration("1h"), 3'600'000'000'000);
  EXPECT_EQ(*ParseDuration("1m30s"), 90'000'000'000);
  EXPECT_EQ(*ParseDuration("0.000000001s"), 1);
  EXPECT_EQ(*ParseDuration("2562047h"), 2562047LL * 3'600'000'000'000);
}

TEST(ParseDurationTest, RejectsWithReason) {
  EXPECT_EQ(ErrorOf(ParseDuration("7 ms")),
            "\"7 ms\" is not a duration: unknown unit \" ms\" (use ns, us, ms, "
            "s, m or h)");
  EXPECT_EQ(
      ErrorOf(ParseDuration("5")),
      "\"5\" is not a duration: missing unit (use ns, us, ms, s, m or h)");
  EXPECT_EQ(ErrorOf(ParseDuration("-5ms")),
            "\"-5ms\" is not a duration: negative durations are not allowed");
  EXPECT_EQ(ErrorOf(ParseDuration("")), "\"\" is not a duration: empty value");
  EXPECT_EQ(ErrorOf(ParseDuration("ms")),
            "\"ms\" is not a duration: expected a number at \"ms\"");
  EXPECT_EQ(ErrorOf(ParseDuration("1.s")),
            "\"1.s\" is not a duration: expected a number at \"1.s\"");
  EXPECT_EQ(
      ErrorOf(ParseDuration("5MS")),
      "\"5MS\" is not a duration: unknown unit \"MS\" (use ns, us, ms, s, "
      "m or h)");
  EXPECT_EQ(ErrorOf(ParseDuration("1.5ns")),
            "\"1.5ns\" is not a duration: not a whole number of nanoseconds");
  EXPECT_EQ(ErrorOf(ParseDuration("2562048h")),
            "\"2562048h\" is not a duration: too large (at most 2562047h)");
  EXPECT_EQ(ErrorOf(ParseDuration("99999999999999999999999999999999s")),
            "\"99999999999999999999999999999999s\" is not a duration: too many "
            "digits");
  EXPECT_EQ(ErrorOf(ParseDuration("2000000h2000000h")),
            "\"2000000h2000000h\" is not a duration: too large (at most "
            "2562047h)");
  EXPECT_EQ(ErrorOf(ParseDuration("1s\n")),
            "\"1s\\x0a\" is not a duration: unknown unit \"s\\x0a\" (use ns, "
            "us, ms, s, m or h)");
}

TEST(ParseProbabilityTest, AcceptsPercentPpmAndFractions) {
  EXPECT_EQ(*ParseProbability("0"), 0u);
  EXPECT_EQ(*ParseProbability("0%"), 0u);
  EXPECT_EQ(*ParseProbability("1%"), 10'000u);
  EXPECT_EQ(*ParseProbability("0.2%"), 2'000u);
  EXPECT_EQ(*ParseProbability("0.0001%"), 1u);
  EXPECT_EQ(*ParseProbability("100%"), 1'000'000u);
  EXPECT_EQ(*ParseProbability("250ppm"), 250u);
  EXPECT_EQ(*ParseProbability("250PPM"), 250u);
  EXPECT_EQ(*ParseProbability("1000000ppm"), 1'000'000u);
  EXPECT_EQ(*ParseProbability("0.5"), 500'000u);
  EXPECT_EQ(*ParseProbability("1"), 1'000'000u);
  EXPECT_EQ(*ParseProbability("0.000001"), 1u);
}

TEST(ParseProbabilityTest, RejectsWithReason) {
  EXPECT_EQ(ErrorOf(ParseProbability("150%")),
            "\"150%\" is not a probability: above 100%");
  EXPECT_EQ(ErrorOf(ParseProbability("1000001ppm")),
            "\"1000001ppm\" is not a probability: above 1000000ppm (100%)");
  EXPECT_EQ(
      ErrorOf(ParseProbability("5")),
      "\"5\" is not a probability: a plain number is a fraction between 0 "
      "and 1 (write \"50%\" for a percentage)");
  EXPECT_EQ(ErrorOf(ParseProbability("-1%")),
            "\"-1%\" is not a probability: negative probabilities are not "
            "allowed");
  EXPECT_EQ(ErrorOf(ParseProbability("0.00001%")),
            "\"0.00001%\" is not a probability: finer than 1ppm (0.0001%)");
  EXPECT_EQ(ErrorOf(ParseProbability("1.5ppm")),
            "\"1.5ppm\" is not a probability: not a whole number of ppm");
  EXPECT_EQ(ErrorOf(ParseProbability("0.0000001")),
            "\"0.0000001\" is not a probability: finer than 1ppm");
  EXPECT_EQ(ErrorOf(ParseProbability("1 %")),
            "\"1 %\" is not a probability: unknown unit \" %\" (use %, ppm, or "
            "a fraction between 0 and 1)");
  EXPECT_EQ(ErrorOf(ParseProbability("half")),
            "\"half\" is not a probability: expected a number with % or ppm, "
            "or a fraction between 0 and 1");
  EXPECT_EQ(ErrorOf(ParseProbability("")),
            "\"\" is not a probability: empty value");
}

TEST(ParseRateTest, AcceptsDecimalSiUnits) {
  EXPECT_EQ(*ParseRate("0"), 0u);
  EXPECT_EQ(*ParseRate("500bps"), 500u);
  EXPECT_EQ(*ParseRate("64kbps"), 64'000u);
  EXPECT_EQ(*ParseRate("1mbps"), 1'000'000u);
  EXPECT_EQ(*ParseRate("10Mbps"), 10'000'000u);
  EXPECT_EQ(*ParseRate("1.5gbps"), 1'500'000'000u);
}

TEST(ParseRateTest, RejectsWithReason) {
  EXPECT_EQ(ErrorOf(ParseRate("10")),
            "\"10\" is not a rate: missing unit (use bps, kbps, mbps or gbps)");
  EXPECT_EQ(ErrorOf(ParseRate("10mb")),
            "\"10mb\" is not a rate: unknown unit \"mb\" (use bps, kbps, mbps "
            "or gbps)");
  EXPECT_EQ(ErrorOf(ParseRate("-1mbps")),
            "\"-1mbps\" is not a rate: negative rates are not allowed");
  EXPECT_EQ(ErrorOf(ParseRate("1.5bps")),
            "\"1.5bps\" is not a rate: not a whole number of bits per second");
  EXPECT_EQ(ErrorOf(ParseRate("20000000000gbps")),
            "\"20000000000gbps\" is not a rate: too large");
  EXPECT_EQ(ErrorOf(ParseRate("fast")),
            "\"fast\" is not a rate: expected a number followed by a unit");
}

TEST(ParseSizeTest, AcceptsBinaryUnits) {
  EXPECT_EQ(*ParseSize("0"), 0u);
  EXPECT_EQ(*ParseSize("512"), 512u);
  EXPECT_EQ(*ParseSize("512b"), 512u);
  EXPECT_EQ(*ParseSize("16kb"), 16u * 1024);
  EXPECT_EQ(*ParseSize("1mb"), 1u << 20);
  EXPECT_EQ(*ParseSize("2GB"), 2ull << 30);
  EXPECT_EQ(*ParseSize("1.5kb"), 1536u);
  EXPECT_EQ(*ParseSize("4KiB"), 4096u);
}

TEST(ParseSizeTest, RejectsWithReason) {
  EXPECT_EQ(ErrorOf(ParseSize("1tb")),
            "\"1tb\" is not a size: unknown unit \"tb\" (use b, kb, mb or gb)");
  EXPECT_EQ(ErrorOf(ParseSize("-1kb")),
            "\"-1kb\" is not a size: negative sizes are not allowed");
  EXPECT_EQ(ErrorOf(ParseSize("0.1kb")),
            "\"0.1kb\" is not a size: not a whole number of bytes");
  EXPECT_EQ(ErrorOf(ParseSize("99999999999gb")),
            "\"99999999999gb\" is not a size: too large");
  EXPECT_EQ(ErrorOf(ParseSize("")), "\"\" is not a size: empty value");
}

TEST(ErrnoTest, NamesAndNumbers) {
  EXPECT_EQ(*ErrnoFromName("ENOSPC"), ENOSPC);
  EXPECT_EQ(*ErrnoFromName("EIO"), EIO);
  EXPECT_EQ(*ErrnoFromName("ECONNREFUSED"), ECONNREFUSED);
  EXPECT_EQ(*ErrnoFromName("EHWPOISON"), EHWPOISON);
  EXPECT_EQ(*ErrnoFromName("EWOULDBLOCK"), EAGAIN);
  EXPECT_EQ(*ErrnoFromName("ENOTSUP"), EOPNOTSUPP);
  EXPECT_EQ(ErrnoName(ENOSPC), "ENOSPC");
  EXPECT_EQ(ErrnoName(EAGAIN), "EAGAIN");
  EXPECT_EQ(ErrnoName(EDEADLK), "EDEADLK");
  EXPECT_EQ(ErrnoName(0), "");
  EXPECT_EQ(ErrnoName(9999), "");
  // Every number 1..133 has a name and round-trips.
  for (int e = 1; e <= 133; ++e) {
    if (e == 41 || e == 58) continue;  // unused on Linux
    ASSERT_FALSE(ErrnoName(e).empty()) << e;
    EXPECT_EQ(*ErrnoFromName(ErrnoName(e)), e);
  }
}

TEST(ErrnoTest, RejectsUnknownNames) {
  EXPECT_EQ(ErrorOf(ErrnoFromName("ENOPE")),
            "\"ENOPE\" is not an errno name (e.g. ENOSPC, EIO, ECONNREFUSED)");
  EXPECT_EQ(ErrorOf(ErrnoFromName("enospc")),
            "\"enospc\" is not an errno name (errno names are upper case: "
            "ENOSPC)");
  EXPECT_EQ(ErrorOf(ErrnoFromName("")),
            "\"\" is not an errno name (e.g. ENOSPC, EIO, ECONNREFUSED)");
}

TEST(FormatTest, DurationsRoundTrip) {
  EXPECT_EQ(FormatDuration(0), "0");
  EXPECT_EQ(FormatDuration(7'000'000), "7ms");
  EXPECT_EQ(FormatDuration(1'500'000'000), "1.5s");
  EXPECT_EQ(FormatDuration(90'000'000'000), "90s");
  EXPECT_EQ(FormatDuration(120'000'000'000), "2m");
  EXPECT_EQ(FormatDuration(7'200'000'000'000), "2h");
  EXPECT_EQ(FormatDuration(1'234), "1.234us");
  EXPECT_EQ(FormatDuration(1'234'567), "1234.567us");
  EXPECT_EQ(FormatDuration(17), "17ns");
  for (int64_t ns :
       {int64_t{1}, int64_t{999}, int64_t{1'001}, int64_t{123'456'789},
        int64_t{3'600'000'000'001}, int64_t{9'223'372'036'854'775'807}}) {
    EXPECT_EQ(*ParseDuration(FormatDuration(ns)), ns) << ns;
  }
}

TEST(FormatTest, ProbabilitiesRoundTrip) {
  EXPECT_EQ(FormatProbability(0), "0%");
  EXPECT_EQ(FormatProbability(2'000), "0.2%");
  EXPECT_EQ(FormatProbability(10'000), "1%");
  EXPECT_EQ(FormatProbability(1'000'000), "100%");
  EXPECT_EQ(FormatProbability(100), "0.01%");
  EXPECT_EQ(FormatProbability(250), "250ppm");
  for (uint32_t ppm : {1u, 99u, 100u, 12'345u, 999'999u, 1'000'000u}) {
    EXPECT_EQ(*ParseProbability(FormatProbability(ppm)), ppm) << ppm;
  }
}

TEST(FormatTest, RatesAndSizesRoundTrip) {
  EXPECT_EQ(FormatRate(1'000'000), "1mbps");
  EXPECT_EQ(FormatRate(1'500'000), "1.5mbps");
  EXPECT_EQ(FormatRate(2'000'000'000), "2gbps");
  EXPECT_EQ(FormatRate(999), "999bps");
  EXPECT_EQ(FormatRate(0), "0bps");
  EXPECT_EQ(FormatSize(16 * 1024), "16kb");
  EXPECT_EQ(FormatSize(1536), "1.5kb");
  EXPECT_EQ(FormatSize(1u << 20), "1mb");
  EXPECT_EQ(FormatSize(1000), "1000b");
  EXPECT_EQ(FormatSize(0), "0b");
  for (uint64_t v : {1ull, 1000ull, 1001ull, 123'456'789ull, 1ull << 40}) {
    EXPECT_EQ(*ParseRate(FormatRate(v)), v) << v;
    EXPECT_EQ(*ParseSize(FormatSize(v)), v) << v;
  }
}

}  // namespace
}  // namespace fault::policy
