#include "supervisor/doctor/probes.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace fault::doctor {
namespace {

using ::testing::HasSubstr;

TEST(ExitCodeFor, OnlyRequiredCapabilitiesDecide) {
  std::vector<ProbeResult> results = {
      {"LD_PRELOAD of the shim", Verdict::kOk, "", true},
      {"BPF program load", Verdict::kUnavailable, "no", false},
  };
  EXPECT_EQ(ExitCodeFor(results), 0);
  results[0].verdict = Verdict::kUnavailable;
  EXPECT_EQ(ExitCodeFor(results), 1);
}

TEST(FormatReport, OneAlignedLinePerCapabilityAndAVerdict) {
  std::vector<ProbeResult> results = {
      {"a", Verdict::kOk, "fine", true},
      {"longer name", Verdict::kWarning, "slow", false},
  };
  EXPECT_EQ(FormatReport(results),
            "a            ok           fine\n"
            "longer name  warning      slow\n"
            "\n"
            "verdict: fault exec can run here\n");
}

TEST(ProbePreload, MissingShimIsUnavailableAndRequired) {
  ProbeResult r = ProbePreload("/nonexistent/libfault_shim.so");
  EXPECT_EQ(r.verdict, Verdict::kUnavailable);
  EXPECT_TRUE(r.required);
  EXPECT_THAT(r.detail, HasSubstr("not found at /nonexistent/libfault_shim.so"));
}

// This machine runs as root on a kernel with user notification (the CI
// machine's documented setup); the probe must see it.
TEST(ProbeSeccomp, UserNotificationWorksOnThisKernel) {
  std::vector<ProbeResult> r = ProbeSeccomp();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].capability, "seccomp user notification");
  EXPECT_EQ(r[0].verdict, Verdict::kOk) << r[0].detail;
  EXPECT_EQ(r[1].capability, "seccomp sync wake-up");
  EXPECT_NE(r[1].verdict, Verdict::kUnavailable) << r[1].detail;
}

}  // namespace
}  // namespace fault::doctor
