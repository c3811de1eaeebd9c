#include "supervisor/control/control_plane.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace fault::control {
namespace {

// A run that publishes what it is given, unless told to refuse.
class FakeRun : public ControlledRun {
 public:
  fault::v1::PolicySet BasePolicies() override { return base; }
  absl::StatusOr<uint64_t> Publish(const fault::v1::PolicySet& set) override {
    if (!refuse.ok()) return refuse;
    published = set;
    return ++generation;
  }
  fault::v1::StatusResponse Status() override {
    fault::v1::StatusResponse r;
    r.add_command("prog");
    r.set_pid(42);
    return r;
  }
  std::vector<fault::v1::RuleCounters> Counters() override {
    fault::v1::RuleCounters c;
    c.set_policy("base");
    c.set_matched(5);
    c.set_fired(2);
    return {c};
  }
  std::vector<std::string> CurrentNames() override {
    std::vector<std::string> out;
    for (const auto& p : published.policies()) out.push_back(p.name());
    return out;
  }

  fault::v1::PolicySet base;
  fault::v1::PolicySet published;
  absl::Status refuse;
  uint64_t generation = 1;
};

// Serves every call on a thread of its own, as the runner thread does
// when woken.
class ControlPlaneTest : public ::testing::Test {
 protected:
  ControlPlaneTest()
      : plane_([this] { wakes_++; },
               [](const HubEvent& e, fault::v1::Event* out) {
                 out->set_sequence(e.sequence);
                 out->set_policy(e.policy());
               },
               [](const std::string& n) { return n == "latency" ? 1 : -1; }) {
    run_.base.add_policies()->set_name("base");
    run_.published = run_.base;
    plane_.Published(1);
    runner_ = std::thread([this] {
      while (!stop_) {
        plane_.Serve(&run_);
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    });
  }
  ~ControlPlaneTest() override {
    stop_ = true;
    runner_.join();
  }

  grpc_module::CallResult Call(const std::string& method,
                               const google::protobuf::Message& request) {
    return plane_.Call(method, request.SerializeAsString());
  }

  FakeRun run_;
  std::atomic<int> wakes_{0};
  ControlPlane plane_;
  std::atomic<bool> stop_{false};
  std::thread runner_;
};

TEST_F(ControlPlaneTest, PutPublishesAndReturnsTheGeneration) {
  fault::v1::PutPoliciesRequest q;
  q.set_text("slow:\n  latency: 5ms\n");
  grpc_module::CallResult r = Call("PutPolicies", q);
  ASSERT_EQ(r.code, 0) << r.message;
  fault::v1::ChangeResponse change;
  ASSERT_TRUE(change.ParseFromString(r.response));
  EXPECT_EQ(change.generation(), 2u);
  EXPECT_EQ(change.policies_size(), 2);
  ASSERT_EQ(change.put_size(), 1);
  EXPECT_EQ(change.put(0), "slow");
  EXPECT_GE(wakes_.load(), 1);
  ASSERT_EQ(run_.published.policies_size(), 2);
  EXPECT_EQ(run_.published.policies(1).name(), "slow");

  fault::v1::WaitGenerationRequest w;
  w.set_generation(2);
  r = Call("WaitGeneration", w);
  EXPECT_EQ(r.code, 0) << r.message;
  w.set_generation(3);
  w.set_timeout_ns(20'000'000);
  r = Call("WaitGeneration", w);
  EXPECT_EQ(r.code, 4);  // DEADLINE_EXCEEDED
}

TEST_F(ControlPlaneTest, AnInvalidPutChangesNothingAndNamesTheField) {
  fault::v1::PutPoliciesRequest q;
  q.set_text("slow:\n  latency: -5ms\n");
  q.set_filename("p.yaml");
  grpc_module::CallResult r = Call("PutPolicies", q);
  EXPECT_EQ(r.code, 3);
  EXPECT_NE(r.message.find("p.yaml:2:"), std::string::npos) << r.message;
  EXPECT_EQ(run_.published.policies_size(), 1);
  EXPECT_EQ(run_.generation, 1u);

  // Refused by the run (the table compiler, the layers): also nothing.
  run_.refuse = absl::FailedPreconditionError(
      "the seccomp layer was set up for other families");
  q.set_text("full:\n  syscalls:\n    - fsync: deny(EIO)\n");
  r = Call("PutPolicies", q);
  EXPECT_EQ(r.code, 9);
  EXPECT_NE(r.message.find("seccomp"), std::string::npos);
  run_.refuse = absl::OkStatus();
  fault::v1::ListPoliciesResponse list;
  r = Call("ListPolicies", fault::v1::ListPoliciesRequest());
  ASSERT_TRUE(list.ParseFromString(r.response));
  EXPECT_EQ(list.policies_size(), 1);
}

TEST_F(ControlPlaneTest, DeleteClearAndGet) {
  fault::v1::DeletePolicyRequest d;
  d.set_name("nope");
  grpc_module::CallResult r = Call("DeletePolicy", d);
  EXPECT_EQ(r.code, 5);
  EXPECT_NE(r.message.find("in effect: base"), std::string::npos) << r.message;

  fault::v1::GetPolicyRequest g;
  g.set_name("base");
  r = Call("GetPolicy", g);
  ASSERT_EQ(r.code, 0);
  fault::v1::PolicyInfo info;
  ASSERT_TRUE(info.ParseFromString(r.response));
  EXPECT_EQ(info.origin(), fault::v1::POLICY_ORIGIN_COMMAND_LINE);
  EXPECT_EQ(info.counters().fired(), 2u);

  d.set_name("base");
  r = Call("DeletePolicy", d);
  ASSERT_EQ(r.code, 0) << r.message;
  EXPECT_EQ(run_.published.policies_size(), 0);
  r = Call("GetPolicy", g);
  EXPECT_EQ(r.code, 5);

  fault::v1::PutPoliciesRequest q;
  q.set_text("a:\n  latency: 1ms\nb:\n  latency: 2ms\n");
  ASSERT_EQ(Call("PutPolicies", q).code, 0);
  EXPECT_EQ(run_.published.policies_size(), 2);
  ASSERT_EQ(Call("Clear", fault::v1::ClearRequest()).code, 0);
  EXPECT_EQ(run_.published.policies_size(), 0);
}

TEST_F(ControlPlaneTest, StatusAndCounters) {
  grpc_module::CallResult r = Call("Status", fault::v1::StatusRequest());
  ASSERT_EQ(r.code, 0);
  fault::v1::StatusResponse s;
  ASSERT_TRUE(s.ParseFromString(r.response));
  EXPECT_EQ(s.pid(), 42u);
  EXPECT_EQ(s.generation(), 1u);
  r = Call("GetCounters", fault::v1::GetCountersRequest());
  fault::v1::GetCountersResponse c;
  ASSERT_TRUE(c.ParseFromString(r.response));
  ASSERT_EQ(c.counters_size(), 1);
  EXPECT_EQ(c.counters(0).matched(), 5u);
  EXPECT_EQ(Call("Bogus", fault::v1::StatusRequest()).code, 12);
}

TEST_F(ControlPlaneTest, WatchFiltersAndEnds) {
  std::string error;
  fault::v1::WatchEventsRequest q;
  q.add_effects("teleport");
  EXPECT_EQ(plane_.Watch(q.SerializeAsString(), &error), nullptr);
  EXPECT_NE(error.find("effects[0]"), std::string::npos);

  q.clear_effects();
  q.add_effects("latency");
  std::unique_ptr<grpc_module::EventSubscription> sub =
      plane_.Watch(q.SerializeAsString(), &error);
  ASSERT_NE(sub, nullptr) << error;
  auto names = std::make_shared<const std::vector<std::string>>(
      std::vector<std::string>{"p"});
  std::vector<HubEvent> events(3);
  for (HubEvent& e : events) {
    e.raw.effect = 1;
    e.rule_names = names;
  }
  events[1].raw.effect = 2;
  plane_.hub().Publish(events, 0);
  std::string bytes;
  ASSERT_TRUE(sub->Next(&bytes, 1000));
  fault::v1::WatchEventsResponse m;
  ASSERT_TRUE(m.ParseFromString(bytes));
  ASSERT_EQ(m.events_size(), 2);
  EXPECT_EQ(m.events(0).sequence(), 1u);
  EXPECT_EQ(m.events(1).sequence(), 3u);
  EXPECT_EQ(m.last_sequence(), 3u);
  // Stop waits until the stream has delivered what it holds and ended.
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    plane_.Stop();
    stopped = true;
  });
  bytes.clear();
  while (sub->Next(&bytes, 100)) bytes.clear();
  EXPECT_FALSE(stopped.load());
  sub.reset();
  stopper.join();
  // Calls after the end are refused.
  EXPECT_EQ(Call("Status", fault::v1::StatusRequest()).code, 14);
}

}  // namespace
}  // namespace fault::control
