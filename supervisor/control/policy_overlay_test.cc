#include "supervisor/control/policy_overlay.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace fault::control {
namespace {

fault::v1::Policy Named(const std::string& name,
                        int64_t latency_ns = 1'000'000) {
  fault::v1::Policy p;
  p.set_name(name);
  p.mutable_link()->mutable_latency()->set_distribution(
      fault::v1::Latency::DISTRIBUTION_FIXED);
  p.mutable_link()->mutable_latency()->set_fixed_ns(latency_ns);
  return p;
}

fault::v1::PolicySet SetOf(std::vector<fault::v1::Policy> ps) {
  fault::v1::PolicySet s;
  for (auto& p : ps) *s.add_policies() = p;
  return s;
}

std::vector<std::string> Names(const fault::v1::PolicySet& s) {
  std::vector<std::string> out;
  for (const auto& p : s.policies()) out.push_back(p.name());
  return out;
}

TEST(PolicyOverlayTest, PutReplacesInPlaceAndAppendsNew) {
  PolicyOverlay o;
  o.Put(SetOf({Named("b", 5), Named("c")}));
  std::vector<fault::v1::PolicyOrigin> origins;
  fault::v1::PolicySet out = o.Apply(SetOf({Named("a"), Named("b")}), &origins);
  EXPECT_EQ(Names(out), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(out.policies(1).link().latency().fixed_ns(), 5);
  EXPECT_EQ(origins, (std::vector<fault::v1::PolicyOrigin>{
                         fault::v1::POLICY_ORIGIN_COMMAND_LINE,
                         fault::v1::POLICY_ORIGIN_CONTROL,
                         fault::v1::POLICY_ORIGIN_CONTROL}));
}

TEST(PolicyOverlayTest, DeleteAndClearApplyInOrderAndSurviveANewBase) {
  PolicyOverlay o;
  o.Delete("a");
  o.Put(SetOf({Named("x")}));
  EXPECT_EQ(Names(o.Apply(SetOf({Named("a"), Named("b")}))),
            (std::vector<std::string>{"b", "x"}));
  // A reload brings other files: the same changes apply to them.
  EXPECT_EQ(Names(o.Apply(SetOf({Named("a"), Named("z")}))),
            (std::vector<std::string>{"z", "x"}));
  o.Clear();
  EXPECT_TRUE(o.Apply(SetOf({Named("a")})).policies().empty());
  o.Put(SetOf({Named("y")}));
  EXPECT_EQ(Names(o.Apply(SetOf({Named("a")}))),
            (std::vector<std::string>{"y"}));
}

TEST(DecodePutTest, TextIsParsedAsAPolicyFileWithItsName) {
  fault::v1::PutPoliciesRequest q;
  q.set_text("slow:\n  latency: 20ms\n");
  q.set_filename("slow.yaml");
  absl::StatusOr<fault::v1::PolicySet> set = DecodePut(q);
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_EQ(set->policies_size(), 1);
  EXPECT_EQ(set->policies(0).name(), "slow");
  EXPECT_EQ(set->policies(0).link().latency().fixed_ns(), 20'000'000);
}

TEST(DecodePutTest, BadTextNamesFileLineAndField) {
  fault::v1::PutPoliciesRequest q;
  q.set_text("slow:\n  latency: 20 parsecs\n");
  q.set_filename("slow.yaml");
  absl::StatusOr<fault::v1::PolicySet> set = DecodePut(q);
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(set.status().message().find("slow.yaml:2:"), std::string::npos)
      << set.status().message();
  EXPECT_NE(set.status().message().find("latency"), std::string::npos);
}

TEST(DecodePutTest, CanonicalPoliciesAreValidatedWithTheirIndex) {
  fault::v1::PutPoliciesRequest q;
  *q.mutable_policies()->add_policies() = Named("ok");
  fault::v1::Policy bad = Named("bad");
  bad.add_targets()->set_hostname("db.example");
  bad.mutable_targets(0)->set_cidr("10.0.0.0/8");
  *q.mutable_policies()->add_policies() = bad;
  absl::StatusOr<fault::v1::PolicySet> set = DecodePut(q);
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(set.status().message().find("policies[1]"), std::string::npos)
      << set.status().message();
  EXPECT_NE(set.status().message().find("targets"), std::string::npos)
      << set.status().message();
}

TEST(DecodePutTest, NamesArePresentAndUniqueAndTheRequestNotEmpty) {
  fault::v1::PutPoliciesRequest q;
  *q.mutable_policies()->add_policies() = Named("");
  *q.mutable_policies()->add_policies() = Named("a");
  *q.mutable_policies()->add_policies() = Named("a");
  absl::StatusOr<fault::v1::PolicySet> set = DecodePut(q);
  ASSERT_FALSE(set.ok());
  EXPECT_NE(set.status().message().find("policies[0]: name:"),
            std::string::npos);
  EXPECT_NE(
      set.status().message().find("policies[2]: name: \"a\" is given twice"),
      std::string::npos);
  EXPECT_FALSE(DecodePut(fault::v1::PutPoliciesRequest()).ok());
  fault::v1::PutPoliciesRequest empty;
  empty.mutable_policies();
  EXPECT_FALSE(DecodePut(empty).ok());
}

}  // namespace
}  // namespace fault::control
