#include "supervisor/scenario/scenario.h"

#include <gtest/gtest.h>

#include <string>

#include "supervisor/scenario/generate.h"
#include "supervisor/scenario/item_faults.h"
#include "supervisor/scenario/runner.h"

namespace fault::scenario {
namespace {

constexpr char kTwoDocs[] = R"(title: one
items:
- call:
    method: GET
    url: http://localhost:9090/
  context:
    upstreams: [http://localhost:9090]
    faults:
    - type: latency
      mean: 50
    - type: latency
      mean: 150.0
      period: start:10%,duration:15%
    strategy:
      mode: load
      duration: 10s
      clients: 2
      rps: 3
      retry: {attempts: 2, budget: 0.1}
      failure_budget: {max_failures: 3}
      watchdog: {max_stall: 500ms}
    slo:
    - slo_type: error
      title: few errors
      objective: 99
      threshold: 1
      errors: [transport, 5xx]
  expect:
    status: 200
---
title: two
items:
- call: {method: post, url: "http://h:1/{id}", body: "x"}
  context: {upstreams: [], faults: [{type: httperror, status_code: 503, probability: 0.5}]}
config:
  http:
    paths:
      segments: {id: "42"}
)";

TEST(ScenarioFileTest, ParsesTheSchema) {
  absl::StatusOr<std::vector<Scenario>> s = ParseScenarios(kTwoDocs, "t.yaml");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->size(), 2u);
  const Item& a = (*s)[0].items[0];
  EXPECT_EQ(a.upstreams[0], "localhost:9090");
  EXPECT_EQ(a.strategy.mode, Strategy::Mode::kLoad);
  EXPECT_EQ(a.strategy.duration_ns, 10'000'000'000);
  EXPECT_TRUE(a.strategy.retry.enabled);
  EXPECT_EQ(a.strategy.retry.attempts, 2);
  EXPECT_EQ(a.strategy.failure_budget.max_failures, 3);
  EXPECT_EQ(a.strategy.watchdog.max_stall_ns, 500'000'000);
  EXPECT_TRUE(a.slos[0].errors.status_5xx);
  EXPECT_FALSE(a.slos[0].errors.timeout);
  EXPECT_EQ(a.expect.status, 200);
  const Item& b = (*s)[1].items[0];
  EXPECT_EQ(b.call.method, "POST");
  EXPECT_EQ(b.call.url, "http://h:1/42");
  EXPECT_FALSE(b.has_strategy);
}

TEST(ScenarioFileTest, ErrorsNameFileAndLine) {
  const std::string text = R"(title: bad
items:
- call:
    method: GET
    url: localhost/
  context:
    upstreams: []
    faults:
    - type: latncy
    strategy: {mode: load, duration: 0s, clients: 1, rps: 1}
  expect: {status: 999, colour: red}
)";
  absl::StatusOr<std::vector<Scenario>> s = ParseScenarios(text, "b.yaml");
  ASSERT_FALSE(s.ok());
  const std::string m(s.status().message());
  EXPECT_NE(m.find("b.yaml:5: items[0].call.url: \"localhost/\" is not an http:// or https:// URL"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("b.yaml:9: items[0].context.faults[0].type: \"latncy\" is not a fault type"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("b.yaml:10: items[0].context.strategy.duration"), std::string::npos) << m;
  EXPECT_NE(m.find("b.yaml:11: items[0].expect.status: 999 is out of range"), std::string::npos)
      << m;
  EXPECT_NE(m.find("b.yaml:11: items[0].expect.colour: unknown key"), std::string::npos) << m;
}

TEST(ScenarioFileTest, FaultValuesAreCheckedAsFaultRunChecksThem) {
  const std::string text = R"(title: bad values
items:
- call: {method: GET, url: "http://a:1/"}
  context:
    upstreams: []
    faults:
    - type: bandwidth
      rate: 0
      unit: KBps
    - type: latency
      distribution: uniform
)";
  absl::StatusOr<std::vector<Scenario>> s = ParseScenarios(text, "v.yaml");
  ASSERT_FALSE(s.ok());
  const std::string m(s.status().message());
  EXPECT_NE(m.find("v.yaml:7: faults[0].rate:"), std::string::npos) << m;
  // The Rust defaults min = max = 20 make an empty uniform range.
  EXPECT_NE(m.find("v.yaml:10: faults[1].max:"), std::string::npos) << m;
}

TEST(ScenarioFileTest, APeriodIsCheckedWithoutALoadToo) {
  absl::StatusOr<std::vector<Scenario>> s = ParseScenarios(R"(title: p
items:
- call: {method: GET, url: "http://a:1/"}
  context:
    upstreams: []
    faults:
    - {type: blackhole, period: "begin:10%"}
)",
                                                           "p.yaml");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(std::string(s.status().message()).find("p.yaml:7: faults[0].period:"),
            std::string::npos)
      << s.status();
}

TEST(ScenarioFileTest, OldSchemaIsNamed) {
  absl::StatusOr<std::vector<Scenario>> s = ParseScenarios("title: x\nscenarios: []\n", "o.yaml");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(std::string(s.status().message()).find("scenarios: is the old schema"),
            std::string::npos)
      << s.status();
}

TEST(ItemFaultsTest, OnePolicyPerFaultWithWindows) {
  absl::StatusOr<std::vector<Scenario>> s = ParseScenarios(kTwoDocs, "t.yaml");
  ASSERT_TRUE(s.ok());
  const Item& a = (*s)[0].items[0];
  absl::StatusOr<ItemFaults> f = BuildItemFaults(a, 10'000'000'000, 0);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ(f->names.size(), 2u);
  EXPECT_EQ(f->names[0], "latency");
  EXPECT_EQ(f->names[1], "latency-2");
  ASSERT_EQ(f->windows.size(), 2u);
  EXPECT_EQ(f->windows[1].start_ns, 1'000'000'000);
  EXPECT_EQ(f->windows[1].end_ns, 2'500'000'000);
  // The repeat step adds to the mean.
  absl::StatusOr<ItemFaults> g = BuildItemFaults(a, 0, 100);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->policies.policies(0).downlink().latency().mean_ns(), 150'000'000);
}

TEST(QuantileTest, R6) {
  std::vector<double> v = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  EXPECT_DOUBLE_EQ(Quantile(v, 50), 5.5);
  EXPECT_DOUBLE_EQ(Quantile(v, 99), 10);
  EXPECT_DOUBLE_EQ(Quantile(v, 25), 2.75);
  EXPECT_DOUBLE_EQ(Quantile({}, 50), 0);
}

TEST(GenerateTest, EightTemplatesPerEndpointThatValidate) {
  const std::string spec = R"(openapi: 3.0.3
servers: [{url: "http://127.0.0.1:8080/api"}]
paths:
  /items/{id}:
    get: {operationId: getItem, parameters: [{name: id, in: path, example: 7}]}
    delete: {}
  /health:
    get: {}
)";
  absl::StatusOr<std::vector<GeneratedFile>> g = GenerateScenarios(spec, "api.yaml");
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(g->size(), 3u);
  EXPECT_EQ((*g)[0].name, "getItem.yaml");
  for (const GeneratedFile& f : *g) {
    absl::StatusOr<std::vector<Scenario>> s = ParseScenarios(f.text, f.name);
    ASSERT_TRUE(s.ok()) << f.name << ": " << s.status();
    EXPECT_EQ(s->size(), 8u);
  }
  absl::StatusOr<std::vector<Scenario>> s = ParseScenarios((*g)[0].text, "x");
  EXPECT_EQ((*s)[0].items[0].call.url, "http://127.0.0.1:8080/api/items/7");
  EXPECT_EQ((*s)[0].items[0].upstreams[0], "127.0.0.1:8080");
  EXPECT_FALSE(GenerateScenarios("openapi: 2.0\npaths: {}\n", "old.yaml").ok());
}

}  // namespace
}  // namespace fault::scenario
