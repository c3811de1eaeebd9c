#include "supervisor/spec/fault_set.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"

namespace fault::spec {
namespace {

TEST(FaultSetTest, SyscallRuleBecomesPolicy) {
  FaultSet s;
  ASSERT_TRUE(
      s.SetSyscallRules(
           "write",
           {{{"deny", "ENOSPC"}, {"path", "*.db"}, {"probability", "50%"}}},
           "disk")
          .ok());
  absl::StatusOr<fault::v1::Policy> p = ToPolicy("disk", s, "a.star:3:5");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->name(), "disk");
  ASSERT_EQ(p->syscalls_size(), 1);
  EXPECT_EQ(p->syscalls(0).path_glob(), "*.db");
  EXPECT_EQ(p->syscalls(0).family(), fault::v1::SyscallFault::FAMILY_WRITE);
  EXPECT_EQ(p->syscalls(0).errno_name(), "ENOSPC");
  EXPECT_EQ(p->syscalls(0).probability_ppm(), 500000u);
}

TEST(FaultSetTest, NetworkFieldsUseCanonicalUnits) {
  FaultSet s;
  ASSERT_TRUE(s.SetField("latency", "150ms", "slow").ok());
  ASSERT_TRUE(s.SetField("packet_loss", "1%", "slow").ok());
  ASSERT_TRUE(s.SetField("dns.nxdomain", "100%", "slow").ok());
  ASSERT_TRUE(
      s.SetTargets(nlohmann::json::array({{{"hostname", "db.internal"}}}),
                   "slow")
          .ok());
  absl::StatusOr<fault::v1::Policy> p = ToPolicy("slow", s, "a.star:1:1");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->link().latency().fixed_ns(), 150'000'000);
  EXPECT_EQ(p->link().packet_loss_ppm(), 10'000u);
  EXPECT_EQ(p->dns().nxdomain_ppm(), 1'000'000u);
}

TEST(FaultSetTest, DirectionalBlackholeAndPerOperation) {
  FaultSet s;
  ASSERT_TRUE(s.SetField("blackhole", true, "hole").ok());
  ASSERT_TRUE(s.SetField("blackhole_direction", "downlink", "hole").ok());
  ASSERT_TRUE(s.SetField("per_operation", true, "hole").ok());
  absl::StatusOr<fault::v1::Policy> p = ToPolicy("hole", s, "a.star:1:1");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->blackhole());
  EXPECT_EQ(p->blackhole_direction(), fault::v1::DIRECTION_DOWNLINK);
  EXPECT_TRUE(p->per_operation());
  EXPECT_EQ(EffectFieldPath("blackhole_direction"), "blackhole_direction");
  // http_error is the HTTP proxy's, which `fault test` does not run.
  EXPECT_EQ(EffectFieldPath("http_error"), std::nullopt);
}

TEST(FaultSetTest, ParserErrorsNameTheSpecPosition) {
  FaultSet s;
  ASSERT_TRUE(s.SetField("packet_loss", "150%", "lossy").ok());
  absl::StatusOr<fault::v1::Policy> p = ToPolicy("lossy", s, "spec.star:4:7");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message(),
            "spec.star:4:7: \"lossy\": packet_loss: \"150%\" is not a "
            "probability: above 100%");
}

TEST(FaultSetTest, ModelRulesApply) {
  FaultSet s;
  ASSERT_TRUE(s.SetField("dns.nxdomain", "50%", "d").ok());
  ASSERT_TRUE(
      s.SetTargets(nlohmann::json::array({"tcp://127.0.0.1:80"}), "d").ok());
  absl::StatusOr<fault::v1::Policy> p = ToPolicy("d", s, "s.star:2:2");
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(absl::StartsWith(p.status().message(), "s.star:2:2: \"d\": "))
      << p.status();
}

TEST(FaultSetTest, MergeCombinesDifferentFields) {
  FaultSet a, b, both;
  ASSERT_TRUE(a.SetField("latency", "50ms", "a").ok());
  ASSERT_TRUE(a.SetField("dns.delay", "1s", "a").ok());
  ASSERT_TRUE(b.SetField("dns.nxdomain", "10%", "b").ok());
  ASSERT_TRUE(b.SetSyscallRules("fsync", {{{"deny", "EIO"}}}, "b").ok());
  ASSERT_TRUE(Merge(&both, a).ok());
  ASSERT_TRUE(Merge(&both, b).ok());
  EXPECT_EQ(
      both.ToJson().dump(),
      R"({"dns":{"delay":"1s","nxdomain":"10%"},"latency":"50ms","syscalls":[{"fsync":{"deny":"EIO"}}]})");
}

TEST(FaultSetTest, SameValueTwiceIsNotAConflict) {
  FaultSet a, b, both;
  ASSERT_TRUE(a.SetField("latency", "50ms", "a").ok());
  ASSERT_TRUE(b.SetField("latency", "50ms", "b").ok());
  ASSERT_TRUE(Merge(&both, a).ok());
  EXPECT_TRUE(Merge(&both, b).ok());
}

TEST(FaultSetTest, DifferentValuesConflict) {
  FaultSet a, b, both;
  ASSERT_TRUE(a.SetField("latency", "50ms", "a").ok());
  ASSERT_TRUE(b.SetField("latency", "100ms", "b").ok());
  ASSERT_TRUE(Merge(&both, a).ok());
  absl::Status st = Merge(&both, b);
  EXPECT_EQ(st.message(),
            "latency is set twice differently: \"50ms\" by \"a\" and \"100ms\" "
            "by \"b\"");
}

TEST(FaultSetTest, DnsPartsConflictSeparately) {
  FaultSet s;
  ASSERT_TRUE(s.SetField("dns", {{"delay", "1s"}}, "a").ok());
  absl::Status st = s.SetField("dns.delay", "2s", "b");
  EXPECT_EQ(st.message(),
            "dns.delay is set twice differently: \"1s\" by \"a\" and \"2s\" by "
            "\"b\"");
}

TEST(FaultSetTest, SyscallFamilyConflict) {
  FaultSet a, b, both;
  ASSERT_TRUE(a.SetSyscallRules("write", {{{"deny", "EIO"}}}, "a").ok());
  ASSERT_TRUE(b.SetSyscallRules("write", {{{"deny", "ENOSPC"}}}, "b").ok());
  ASSERT_TRUE(Merge(&both, a).ok());
  EXPECT_EQ(Merge(&both, b).message(),
            "write is set twice differently: [{\"deny\":\"EIO\"}] by \"a\" and "
            "[{\"deny\":\"ENOSPC\"}] by \"b\"");
}

TEST(FaultSetTest, OpenatIsOpen) {
  FaultSet a;
  ASSERT_TRUE(a.SetSyscallRules("openat", {{{"deny", "EACCES"}}}, "a").ok());
  EXPECT_FALSE(a.SetSyscallRules("open", {{{"deny", "EPERM"}}}, "b").ok());
}

TEST(FaultSetTest, IoUringIsAFamily) {
  EXPECT_TRUE(IsSyscallFamily("io_uring"));
  FaultSet s;
  ASSERT_TRUE(s.SetSyscallRules("io_uring", {{{"deny", "ENOSYS"}}}, "no_ring").ok());
  absl::StatusOr<fault::v1::Policy> p = ToPolicy("no_ring", s, "a.star:3:5");
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->syscalls_size(), 1);
  EXPECT_EQ(p->syscalls(0).family(), fault::v1::SyscallFault::FAMILY_IO_URING);
  EXPECT_EQ(p->syscalls(0).errno_name(), "ENOSYS");
}

TEST(FaultSetTest, TargetsConflict) {
  FaultSet a;
  ASSERT_TRUE(a.SetTargets(nlohmann::json::array({"tcp://:80"}), "a").ok());
  EXPECT_FALSE(a.SetTargets(nlohmann::json::array({"tcp://:81"}), "b").ok());
  EXPECT_TRUE(a.SetTargets(nlohmann::json::array({"tcp://:80"}), "c").ok());
}

TEST(FaultSetTest, EffectsFaultExecDoesNotApply) {
  EXPECT_NE(NotAppliedByExec("packet_reorder"), "");
  EXPECT_NE(NotAppliedByExec("uplink.packet_reorder"), "");
  EXPECT_NE(NotAppliedByExec("downlink.packet_reorder"), "");
  EXPECT_NE(NotAppliedByExec("payload_mutation"), "");
  EXPECT_EQ(NotAppliedByExec("packet_duplicate"), "");
  EXPECT_EQ(NotAppliedByExec("rate"), "");
  EXPECT_EQ(NotAppliedByExec("uplink.latency"), "");
}

TEST(FaultSetTest, FamiliesTargetsCanNarrow) {
  for (const char* f : {"connect", "send", "recv"})
    EXPECT_EQ(TargetsCannotNarrow(f), "") << f;
  for (const char* f :
       {"open", "openat", "read", "write", "fsync", "fdatasync", "close",
        "unlink", "rename", "mkdir", "ftruncate", "accept", "io_uring"})
    EXPECT_NE(TargetsCannotNarrow(f), "") << f;
  EXPECT_TRUE(absl::StrContains(TargetsCannotNarrow("write"), "use send="));
  EXPECT_TRUE(
      absl::StrContains(TargetsCannotNarrow("io_uring"), "would never apply"));
}

TEST(FaultSetTest, KeywordHelpers) {
  EXPECT_TRUE(IsSyscallFamily("fsync"));
  EXPECT_FALSE(IsSyscallFamily("latency"));
  EXPECT_EQ(EffectFieldPath("dns_nxdomain"), "dns.nxdomain");
  EXPECT_EQ(EffectFieldPath("connect_timeout"), "timeout.connect");
  EXPECT_EQ(EffectFieldPath("fsync"), std::nullopt);
  EXPECT_EQ(SuggestKeyword("latncy", AssumptionKeywords()), "latency");
  EXPECT_EQ(SuggestKeyword("zzzzzzzz", AssumptionKeywords()), "");
}

}  // namespace
}  // namespace fault::spec
