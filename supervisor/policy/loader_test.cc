#include "supervisor/policy/loader.h"

#include <google/protobuf/text_format.h>
#include <google/protobuf/util/message_differencer.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "supervisor/policy/parser.h"

#ifndef FAULT_EXAMPLES_DIR
#error "FAULT_EXAMPLES_DIR must point at examples/policies"
#endif

namespace fault::policy {
namespace {

using fault::v1::Policy;
using fault::v1::PolicySet;
using google::protobuf::util::MessageDifferencer;

// The error text of parsing `text` as "p.yaml", or "<ok>".
std::string Errors(const std::string& text,
                   const std::string& file = "p.yaml") {
  absl::StatusOr<PolicySet> set = ParsePolicyText(text, file);
  if (set.ok()) return "<ok>";
  return std::string(set.status().message());
}

Policy One(const std::string& text) {
  absl::StatusOr<PolicySet> set = ParsePolicyText(text, "p.yaml");
  EXPECT_TRUE(set.ok()) << set.status();
  if (!set.ok() || set->policies_size() != 1) return Policy();
  return set->policies(0);
}

Policy FromText(const std::string& textproto) {
  Policy p;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(textproto, &p))
      << textproto;
  return p;
}

void ClearSources(PolicySet* set) {
  for (auto& p : *set->mutable_policies()) {
    for (auto& t : *p.mutable_targets()) t.clear_source();
  }
}

// --- The issue example and the example files --------------------------------

TEST(PolicyFileTest, SpikeExampleParsesToTheCanonicalProto) {
  const std::string dir = FAULT_EXAMPLES_DIR;
  absl::StatusOr<PolicySet> set = LoadPolicyFiles({dir + "/spike.json"});
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_EQ(set->policies_size(), 1);
  const Policy expected = FromText(R"pb(
    name: "policy_name"
    link {
      latency { distribution: DISTRIBUTION_FIXED fixed_ns: 7000000 }
      jitter_ns: 3000000
      packet_loss_ppm: 2000
      burst_loss: 2
      rate { rate_bps: 1000000 }
    }
    timeout { connect_ns: 9000000 recv_ns: 9000000 }
    targets {
      protocol: PROTOCOL_TCP
      cidr: "10.0.0.0/8"
      priority: 10
      source: "tcp://10.0.0.0/8"
    }
    targets {
      protocol: PROTOCOL_TCP
      cidr: "127.0.0.1/32"
      port_min: 9000
      port_max: 9000
      priority: 100
      source: "tcp://127.0.0.1:9000"
    }
    schedule { kind: KIND_SPIKE every_ns: 30000000000 duration_ns: 5000000000 }
  )pb");
  std::string diff;
  MessageDifferencer d;
  d.ReportDifferencesToString(&diff);
  EXPECT_TRUE(d.Compare(expected, set->policies(0))) << diff;

  // The YAML twin differs only in its name.
  absl::StatusOr<PolicySet> yaml = LoadPolicyFiles({dir + "/spike.yaml"});
  ASSERT_TRUE(yaml.ok()) << yaml.status();
  Policy renamed = yaml->policies(0);
  EXPECT_EQ(renamed.name(), "spike");
  renamed.set_name("policy_name");
  EXPECT_TRUE(MessageDifferencer::Equals(expected, renamed))
      << renamed.DebugString();
}

TEST(PolicyFileTest, EveryExampleLoadsAndShowRoundTrips) {
  int files = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(FAULT_EXAMPLES_DIR)) {
    ++files;
    const std::string path = entry.path().string();
    absl::StatusOr<PolicySet> set = LoadPolicyFiles({path});
    ASSERT_TRUE(set.ok()) << path << ": " << set.status();
    const std::string canonical = FormatPolicySet(*set);
    absl::StatusOr<PolicySet> again =
        ParsePolicyText(canonical, "canonical.yaml");
    ASSERT_TRUE(again.ok()) << canonical << again.status();
    PolicySet a = *set, b = *again;
    ClearSources(&a);
    ClearSources(&b);
    std::string diff;
    MessageDifferencer d;
    d.ReportDifferencesToString(&diff);
    EXPECT_TRUE(d.Compare(a, b)) << path << "\n" << canonical << diff;
    EXPECT_EQ(FormatPolicySet(*again), canonical) << path;
  }
  EXPECT_GE(files, 7);
}

TEST(PolicyFileTest, ShowPrintsCanonicalUnits) {
  absl::StatusOr<PolicySet> set = ParsePolicyText(
      "p: {latency: 0.25s, packet_loss: 0.5, rate: 1500kbps, "
      "half_open: {after: 16384}}",
      "p.yaml");
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(FormatPolicySet(*set),
            "p:\n"
            "  latency: 250ms\n"
            "  packet_loss: 50%\n"
            "  rate: 1.5mbps\n"
            "  half_open:\n"
            "    after: 16kb\n");
}

TEST(PolicyFileTest, ShowPrintsTheNewFieldsCanonically) {
  absl::StatusOr<PolicySet> set = ParsePolicyText(
      "p: {http_error: {prob: 0.5, status: 503, body: \"down: try later\"}, "
      "per_operation: true, latency: 1ms}\n"
      "q: {blackhole_direction: uplink, blackhole: true}\n"
      "r: {http_error: {status: 418}, per_operation: false}\n",
      "p.yaml");
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(FormatPolicySet(*set),
            "p:\n"
            "  latency: 1ms\n"
            "  per_operation: true\n"
            "  http_error:\n"
            "    status: 503\n"
            "    body: \"down: try later\"\n"
            "    probability: 50%\n"
            "q:\n"
            "  blackhole: true\n"
            "  blackhole_direction: uplink\n"
            "r:\n"
            "  http_error:\n"
            "    status: 418\n");
}

TEST(PolicyFileTest, ProtocolFaultsParseAndShow) {
  absl::StatusOr<PolicySet> set = ParsePolicyText(
      "p:\n"
      "  http_faults:\n"
      "    - {route: \"POST /orders/*\", status: 503, body: later, prob: 50%}\n"
      "    - {route: /health, drop: true}\n"
      "    - {route: \"GET /slow\", delay: 250ms}\n"
      "  redis_faults:\n"
      "    - {command: [set, Del], key: \"user:*\", error: \"-READONLY replica\"}\n"
      "    - {command: get, key: \"slow:*\", delay: 40ms}\n"
      "  postgres_faults:\n"
      "    - {query: \"insert *\", sqlstate: \"40001\", message: busy}\n"
      "    - {query: \"select *\", delay: 1s, probability: 10%}\n",
      "p.yaml");
  ASSERT_TRUE(set.ok()) << set.status();
  const Policy& p = set->policies(0);
  ASSERT_EQ(p.http_faults_size(), 3);
  EXPECT_EQ(p.http_faults(2).delay_ns(), 250'000'000);
  EXPECT_EQ(p.http_faults(0).method(), "POST");
  EXPECT_EQ(p.http_faults(0).path(), "/orders/*");
  EXPECT_EQ(p.http_faults(0).probability_ppm(), 500'000u);
  EXPECT_TRUE(p.http_faults(1).drop());
  EXPECT_EQ(p.http_faults(1).method(), "");
  ASSERT_EQ(p.redis_faults_size(), 2);
  EXPECT_EQ(p.redis_faults(1).delay_ns(), 40'000'000);
  EXPECT_EQ(p.redis_faults(1).commands(0), "GET");
  ASSERT_EQ(p.postgres_faults_size(), 2);
  EXPECT_EQ(p.postgres_faults(1).delay_ns(), 1'000'000'000);
  EXPECT_EQ(p.redis_faults(0).commands_size(), 2);
  EXPECT_EQ(p.redis_faults(0).commands(1), "DEL");
  EXPECT_EQ(p.redis_faults(0).error(), "READONLY replica");
  EXPECT_EQ(p.postgres_faults(0).sqlstate(), "40001");
  EXPECT_EQ(FormatPolicySet(*set),
            "p:\n"
            "  http_faults:\n"
            "    - route: POST /orders/*\n"
            "      status: 503\n"
            "      body: later\n"
            "      probability: 50%\n"
            "    - route: /health\n"
            "      drop: true\n"
            "    - route: GET /slow\n"
            "      delay: 250ms\n"
            "  redis_faults:\n"
            "    - command: [SET, DEL]\n"
            "      key: user:*\n"
            "      error: READONLY replica\n"
            "    - command: GET\n"
            "      key: slow:*\n"
            "      delay: 40ms\n"
            "  postgres_faults:\n"
            "    - query: insert *\n"
            "      sqlstate: 40001\n"
            "      message: busy\n"
            "    - query: select *\n"
            "      delay: 1s\n"
            "      probability: 10%\n");
  // What show prints parses back to the same policies.
  absl::StatusOr<PolicySet> again = ParsePolicyText(FormatPolicySet(*set), "again.yaml");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->DebugString(), set->DebugString());
}

TEST(PolicyFileTest, ProtocolFaultErrorsNameTheItem) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"p: {http_faults: [{route: \"GET /a\", status: 700}]}\n",
       "p.yaml:1:45: policy \"p\": http_faults[0].status: \"700\" is not an HTTP status: above 599"},
      {"p: {http_faults: [{route: \"get /a\", status: 500}]}\n",
       "p.yaml:1:27: policy \"p\": http_faults[0].route: \"get /a\": the method \"get\" is not an "
       "HTTP method in upper case (or *)"},
      {"p: {http_faults: [{route: /a}]}\n",
       "policy \"p\": http_faults[0]: needs status (100..599), drop: true or delay"},
      {"p: {http_faults: [{route: /a, status: 500, drop: true}]}\n",
       "policy \"p\": http_faults[0]: give one of status, drop: true and delay"},
      {"p: {http_faults: [{route: /a, delay: -1s}]}\n", "http_faults[0].delay"},
      {"p: {redis_faults: [{command: SET}]}\n",
       "policy \"p\": redis_faults[0]: needs error"},
      {"p: {redis_faults: [{command: GET, error: x, delay: 1s}]}\n",
       "policy \"p\": redis_faults[0]: give one of error, drop: true and delay"},
      {"p: {redis_faults: [{command: GET, delay: -1s}]}\n", "redis_faults[0].delay"},
      {"p: {postgres_faults: [{query: \"*\", drop: true, delay: 1s}]}\n",
       "policy \"p\": postgres_faults[0]: give one of sqlstate and message, drop: true and "
       "delay"},
      {"p: {postgres_faults: [{query: \"*\"}]}\n",
       "policy \"p\": postgres_faults[0]: needs sqlstate and message (an ErrorResponse), "
       "drop: true or delay"},
      {"p: {redis_faults: [{command: \"S-T\", error: x}]}\n",
       "redis_faults[0].command: \"S-T\" is not a Redis command name"},
      {"p: {postgres_faults: [{query: \"*\", sqlstate: \"4001\", message: m}]}\n",
       "postgres_faults[0].sqlstate: \"4001\" is not a SQLSTATE"},
      {"p: {postgres_faults: [{sqlstate: \"40001\", message: m}]}\n",
       "postgres_faults[0]: needs query"},
      {"p: {postgres_faults: []}\n", "postgres_faults: empty list"},
      {"p: {targets: [\"udp://127.0.0.1:53\"], redis_faults: [{error: x}]}\n",
       "redis_faults: protocol faults need tcp:// or any:// targets"},
  };
  for (const auto& [text, want] : cases) {
    absl::StatusOr<PolicySet> set = ParsePolicyText(text, "p.yaml");
    ASSERT_FALSE(set.ok()) << text;
    EXPECT_NE(set.status().message().find(want), std::string::npos)
        << text << "\n" << set.status().message();
  }
}

// Bodies are free text: whatever a file can hold prints back as a string
// that reads the same.
TEST(PolicyFileTest, HttpErrorBodiesRoundTrip) {
  const std::vector<std::string> bodies = {
      "plain",
      " leading and trailing spaces ",
      "two\nlines\n",
      "tab\there",
      "{\"json\": [1, 2]}",
      "- a list item",
      "# not a comment",
      "key: value",
      "null",
      "~",
      "true",
      "503",
      "'single' \"double\" \\backslash",
      "*alias &anchor !tag %directive @at `tick` |pipe >fold",
      "caf\u00e9 \u65e5\u672c \U0001F600",
      "\u0085next line\u2028line sep",
      "\r\ncrlf",
      "\x01\x7f control",
      std::string("nul\0byte", 8),
  };
  for (const std::string& body : bodies) {
    PolicySet set;
    Policy* p = set.add_policies();
    p->set_name("p");
    p->mutable_http_error()->set_status(503);
    p->mutable_http_error()->set_body(body);
    p->mutable_http_error()->set_probability_ppm(1'000'000);
    const std::string text = FormatPolicySet(set);
    absl::StatusOr<PolicySet> again = ParsePolicyText(text, "show.yaml");
    ASSERT_TRUE(again.ok()) << text << again.status();
    ASSERT_EQ(again->policies_size(), 1);
    EXPECT_EQ(again->policies(0).http_error().body(), body) << text;
  }
}

TEST(PolicyFileTest, JsonAndYamlGiveTheSameProto) {
  const Policy a = One(
      "{\"p\": {\"latency\": {\"distribution\": \"uniform\", \"min\": \"1ms\", "
      "\"max\": \"5ms\"}, \"syscalls\": [{\"write\": \"deny(ENOSPC)\"}]}}");
  const Policy b =
      One("p:\n"
          "  latency:\n"
          "    distribution: uniform\n"
          "    min: 1ms\n"
          "    max: 5ms\n"
          "  syscalls:\n"
          "    write: {deny: ENOSPC}\n");
  EXPECT_TRUE(MessageDifferencer::Equals(a, b))
      << a.DebugString() << b.DebugString();
  EXPECT_EQ(a.link().latency().min_ns(), 1'000'000);
  EXPECT_EQ(a.syscalls(0).errno_name(), "ENOSPC");
}

// --- Accepted forms ---------------------------------------------------------

TEST(PolicyFileTest, LatencyDistributions) {
  EXPECT_EQ(
      One("p: {latency: {distribution: normal, mean: 10ms, stddev: 2ms}}")
          .link()
          .latency()
          .DebugString(),
      FromText("link { latency { distribution: DISTRIBUTION_NORMAL mean_ns: "
               "10000000 stddev_ns: 2000000 } }")
          .link()
          .latency()
          .DebugString());
  const Policy pareto =
      One("p: {latency: {distribution: pareto, shape: 1.5, scale: 3ms}}");
  EXPECT_EQ(pareto.link().latency().distribution(),
            fault::v1::Latency::DISTRIBUTION_PARETO);
  EXPECT_DOUBLE_EQ(pareto.link().latency().shape(), 1.5);
  EXPECT_EQ(pareto.link().latency().scale_ns(), 3'000'000);
  const Policy fixed = One("p: {latency: {distribution: fixed, value: 4ms}}");
  EXPECT_EQ(fixed.link().latency().fixed_ns(), 4'000'000);
}

TEST(PolicyFileTest, EffectForms) {
  const Policy p =
      One("p:\n"
          "  burst_loss: 2\n"
          "  packet_loss: 250ppm\n"
          "  rate: {rate: 1gbps, burst: 1mb}\n"
          "  connection_error: refused\n"
          "  half_open: {after: 5s}\n"
          "  packet_duplicate: {prob: 1%}\n"
          "  dns: {timeout: 5%}\n"
          "  partition: [a, b]\n"
          "  session_budget: {max_ops: 3, action: connection_error}\n"
          "  payload_mutation: {kind: corrupt_bytes, every_n: 10}\n"
          "  seed: 18446744073709551615\n");
  EXPECT_EQ(p.link().burst_loss(), 2u);
  EXPECT_EQ(p.link().packet_loss_ppm(), 250u);
  EXPECT_EQ(p.link().rate().rate_bps(), 1'000'000'000u);
  EXPECT_EQ(p.link().rate().burst_bytes(), 1u << 20);
  EXPECT_EQ(p.connection_error().kind(),
            fault::v1::ConnectionError::KIND_REFUSED);
  EXPECT_EQ(p.connection_error().probability_ppm(), 1'000'000u);
  EXPECT_EQ(p.half_open().after_ns(), 5'000'000'000);
  EXPECT_EQ(p.link().packet_duplicate().probability_ppm(), 10'000u);
  EXPECT_EQ(p.dns().timeout_ppm(), 50'000u);
  ASSERT_EQ(p.partitions_size(), 1);
  EXPECT_EQ(p.partitions(0).b(), "b");
  EXPECT_EQ(p.session_budget().action(),
            fault::v1::SessionBudget::ACTION_CONNECTION_ERROR);
  EXPECT_EQ(p.payload_mutation().every_n(), 10u);
  EXPECT_EQ(p.payload_mutation().probability_ppm(), 0u);
  EXPECT_EQ(p.payload_mutation().count(), 1u);
  EXPECT_EQ(p.seed(), 18446744073709551615ull);
}

TEST(PolicyFileTest, DirectionalBlackholePerOperationAndHttpError) {
  const Policy p = One(
      "p:\n"
      "  blackhole: true\n"
      "  blackhole_direction: downlink\n"
      "  per_operation: true\n"
      "  http_error: {status: 503, body: \"try later\", probability: 50%}\n");
  EXPECT_TRUE(p.blackhole());
  EXPECT_EQ(p.blackhole_direction(), fault::v1::DIRECTION_DOWNLINK);
  EXPECT_TRUE(p.per_operation());
  EXPECT_TRUE(MessageDifferencer::Equals(
      p.http_error(), FromText("http_error { status: 503 body: \"try later\" "
                               "probability_ppm: 500000 }")
                          .http_error()))
      << p.http_error().DebugString();
  // probability (or prob) defaults to 100%; the body to none.
  const Policy q = One("p: {http_error: {status: 429}}");
  EXPECT_EQ(q.http_error().status(), 429u);
  EXPECT_EQ(q.http_error().body(), "");
  EXPECT_EQ(q.http_error().probability_ppm(), 1'000'000u);
  EXPECT_EQ(One("p: {http_error: {status: \"500\", prob: 250ppm}}")
                .http_error()
                .probability_ppm(),
            250u);
  EXPECT_EQ(One("p: {blackhole: true, blackhole_direction: uplink}")
                .blackhole_direction(),
            fault::v1::DIRECTION_UPLINK);
  EXPECT_EQ(One("p: {blackhole: true, blackhole_direction: both}")
                .blackhole_direction(),
            fault::v1::DIRECTION_BOTH);
  EXPECT_FALSE(One("p: {latency: 1ms, per_operation: false}").per_operation());
  // The largest body.
  EXPECT_EQ(One("p: {http_error: {status: 502, body: \"" +
                std::string(4096, 'x') + "\"}}")
                .http_error()
                .body()
                .size(),
            4096u);
}

TEST(PolicyFileTest, SyscallForms) {
  const Policy p =
      One("p:\n"
          "  syscalls:\n"
          "    - write: 'deny(\"ENOSPC\", path=\"*.db-journal\", "
          "probability=\"50%\", "
          "when=\"3+\")'\n"
          "    - openat: {deny: EACCES, path: /data/*}\n"
          "    - fsync: delay(200ms)\n"
          "    - read: {delay: 1ms, when: 2..10+3}\n"
          "    - recv: {deny: EWOULDBLOCK, prob: 1%}\n");
  ASSERT_EQ(p.syscalls_size(), 5);
  EXPECT_TRUE(MessageDifferencer::Equals(
      p.syscalls(0),
      FromText(
          "syscalls { family: FAMILY_WRITE action: ACTION_DENY errno_name: "
          "\"ENOSPC\" probability_ppm: 500000 path_glob: \"*.db-journal\" "
          "when { first: 3 last: 0 step: 1 } }")
          .syscalls(0)))
      << p.syscalls(0).DebugString();
  EXPECT_EQ(p.syscalls(1).family(), fault::v1::SyscallFault::FAMILY_OPEN);
  EXPECT_EQ(p.syscalls(1).path_glob(), "/data/*");
  EXPECT_EQ(p.syscalls(2).action(), fault::v1::SyscallFault::ACTION_DELAY);
  EXPECT_EQ(p.syscalls(2).delay_ns(), 200'000'000);
  EXPECT_EQ(p.syscalls(2).probability_ppm(), 1'000'000u);
  EXPECT_EQ(p.syscalls(3).when().first(), 2u);
  EXPECT_EQ(p.syscalls(3).when().last(), 10u);
  EXPECT_EQ(p.syscalls(3).when().step(), 3u);
  EXPECT_EQ(p.syscalls(4).errno_name(), "EAGAIN");
}

TEST(PolicyFileTest, WhenGrammar) {
  auto when = [](const std::string& w) {
    const Policy p =
        One("p: {syscalls: [{write: {deny: EIO, when: \"" + w + "\"}}]}");
    const auto& x = p.syscalls(0).when();
    return std::to_string(x.first()) + "," + std::to_string(x.last()) + "," +
           std::to_string(x.step());
  };
  EXPECT_EQ(when("3"), "3,3,1");
  EXPECT_EQ(when("3+"), "3,0,1");
  EXPECT_EQ(when("3+2"), "3,0,2");
  EXPECT_EQ(when("2..5"), "2,5,1");
  EXPECT_EQ(when("2..10+3"), "2,10,3");
  EXPECT_EQ(when("5..5+2"), "5,5,2");
  // The canonical form reads back the same counter (found by the fuzzer:
  // 5..5+2 used to print as 5+2, an unbounded counter).
  for (const std::string w : {"3", "3+", "3+2", "2..5", "2..10+3", "5..5+2"}) {
    fault::v1::When parsed =
        One("p: {syscalls: [{write: {deny: EIO, when: \"" + w + "\"}}]}")
            .syscalls(0)
            .when();
    EXPECT_EQ(internal::FormatWhen(parsed), w);
  }
  EXPECT_EQ(
      Errors("p: {syscalls: [{write: {deny: EIO, when: 0}}]}"),
      "p.yaml:1:42: policy \"p\": syscalls[0].write.when: \"0\" is not a when "
      "counter: calls are counted from 1 (use N, N+, N+STEP, FIRST..LAST or "
      "FIRST..LAST+STEP)");
  EXPECT_EQ(
      Errors("p: {syscalls: [{write: {deny: EIO, when: 5..2}}]}"),
      "p.yaml:1:42: policy \"p\": syscalls[0].write.when: \"5..2\" is not a "
      "when counter: range 5..2 is reversed (use N, N+, N+STEP, FIRST..LAST or "
      "FIRST..LAST+STEP)");
  EXPECT_EQ(
      Errors("p: {syscalls: [{write: {deny: EIO, when: 3x}}]}"),
      "p.yaml:1:42: policy \"p\": syscalls[0].write.when: \"3x\" is not a when "
      "counter: unexpected \"x\" (use N, N+, N+STEP, FIRST..LAST or "
      "FIRST..LAST+STEP)");
}

TEST(PolicyFileTest, TargetForms) {
  const Policy p =
      One("p:\n"
          "  latency: 1ms\n"
          "  targets:\n"
          "    - tcp://[::1]:8080\n"
          "    - {target: \"udp://10.1.0.0/16:5000-5010\", priority: -3}\n"
          "    - {hostname: API.Example.com}\n"
          "    - {target: \"tcp://:443\", sni: \"*.example.com\"}\n"
          "    - {sni: \"*.example.org\"}\n"
          "    - any://\n"
          "    - tcp://api.example.com:443\n"
          "    - {target: \"any://[fd00::/8]\"}\n");
  ASSERT_EQ(p.targets_size(), 8);
  EXPECT_EQ(p.targets(0).cidr(), "::1/128");
  EXPECT_EQ(p.targets(0).port_min(), 8080u);
  EXPECT_EQ(p.targets(1).protocol(), fault::v1::PROTOCOL_UDP);
  EXPECT_EQ(p.targets(1).cidr(), "10.1.0.0/16");
  EXPECT_EQ(p.targets(1).port_min(), 5000u);
  EXPECT_EQ(p.targets(1).port_max(), 5010u);
  EXPECT_EQ(p.targets(1).priority(), -3);
  EXPECT_EQ(p.targets(2).hostname(), "api.example.com");
  EXPECT_EQ(p.targets(2).protocol(), fault::v1::PROTOCOL_ANY);
  EXPECT_EQ(p.targets(3).sni(), "*.example.com");
  EXPECT_EQ(p.targets(3).port_min(), 443u);
  EXPECT_EQ(p.targets(4).protocol(), fault::v1::PROTOCOL_TCP);
  EXPECT_EQ(p.targets(5).protocol(), fault::v1::PROTOCOL_ANY);
  EXPECT_EQ(p.targets(5).cidr(), "");
  EXPECT_EQ(p.targets(6).hostname(), "api.example.com");
  EXPECT_EQ(p.targets(6).port_min(), 443u);
  EXPECT_EQ(p.targets(7).cidr(), "fd00::/8");
}

TEST(PolicyFileTest, ScheduleForms) {
  EXPECT_EQ(One("p: {latency: 1ms, schedule: {kind: ramp, duration: 30s}}")
                .schedule()
                .ramp_ns(),
            30'000'000'000);
  const Policy f =
      One("p: {latency: 1ms, schedule: {kind: flapping, on: 1s, off: 2s}}");
  EXPECT_EQ(f.schedule().on_ns(), 1'000'000'000);
  EXPECT_EQ(f.schedule().off_ns(), 2'000'000'000);
  const Policy i =
      One("p: {latency: 1ms, schedule: {kind: intervals, run_duration: 1m, "
          "intervals: "
          "\"start:10%,duration:50%;start:75%,duration:20%\"}}");
  ASSERT_EQ(i.schedule().intervals_size(), 2);
  EXPECT_EQ(i.schedule().intervals(1).start_ppm(), 750'000u);
  EXPECT_EQ(i.schedule().intervals(1).duration_ppm(), 200'000u);
  const Policy abs =
      One("p: {latency: 1ms, schedule: {kind: intervals, intervals: "
          "\"start:5s,duration:10s\"}}");
  EXPECT_EQ(abs.schedule().intervals(0).start_ns(), 5'000'000'000);
  EXPECT_EQ(
      One("p: {latency: 1ms, schedule: {kind: always}}").schedule().kind(),
      fault::v1::Schedule::KIND_ALWAYS);
}

// --- Syntax errors ----------------------------------------------------------

TEST(PolicyFileErrorTest, JsonSyntaxErrorsHaveLineAndColumn) {
  EXPECT_EQ(
      Errors("{\"a\": {\"latency\": \"7ms\",}}", "a.json"),
      "a.json:1:25: syntax error while parsing object key - unexpected '}'; "
      "expected string literal");
  EXPECT_EQ(
      Errors("{\"a\": {\n  \"latency\": 7ms}}", "a.json"),
      "a.json:2:15: syntax error while parsing object - invalid literal; last "
      "read: '7m'; expected '}'");
  // Detected by content, whatever the extension.
  EXPECT_EQ(
      Errors("  {\"a\": 1", "a.conf"),
      "a.conf:1:10: syntax error while parsing object - unexpected end of "
      "input; expected '}'");
}

TEST(PolicyFileErrorTest, YamlSyntaxAndShape) {
  EXPECT_EQ(Errors("a:\n  latency: [1\n"),
            "p.yaml:3:1: end of sequence flow not found");
  EXPECT_EQ(Errors(""), "p.yaml: no policies (the file is empty)");
  EXPECT_EQ(Errors("# nothing\n"), "p.yaml: no policies (the file is empty)");
  EXPECT_EQ(Errors("[1, 2]"),
            "p.yaml:1:1: the root must be a map from policy name to policy, "
            "got a list");
  EXPECT_EQ(Errors("{}"), "p.yaml:1:1: no policies (the root map is empty)");
  EXPECT_EQ(
      Errors("a: {latency: 1ms}\n---\nb: {latency: 1ms}\n"),
      "p.yaml:2:1: more than one YAML document (put every policy under one "
      "root map)");
  EXPECT_EQ(Errors("---\na: {latency: 1ms}\n"), "<ok>");
  EXPECT_EQ(
      Errors(
          "a: {syscalls: {write: {deny: EIO, path: \"/d\xc3\xa9j\xe0/x\"}}}"),
      "p.yaml:1:46: not UTF-8 text (policy files are UTF-8)");
  EXPECT_EQ(Errors("a: {syscalls: {write: {deny: EIO, path: "
                   "\"/d\xc3\xa9j\xc3\xa0/x\"}}}"),
            "<ok>");
  EXPECT_EQ(Errors(", path: \"x\": ,,}"),
            "p.yaml: no policies (the text is not a YAML map; check for a "
            "stray \",\", "
            "\"]\" or \"}\")");
  EXPECT_EQ(Errors("\"a b\": {latency: 1ms}"),
            "p.yaml:1:1: policy name \"a b\" has an unexpected character (use "
            "letters, digits, '_', '-' and '.')");
  EXPECT_EQ(Errors(std::string(64, 'x') + ": {latency: 1ms}"),
            "p.yaml:1:1: policy name \"" + std::string(64, 'x') +
                "\" is longer than 63 bytes");
}

TEST(PolicyFileErrorTest, UnknownFieldsSuggest) {
  EXPECT_EQ(Errors("p: {latncy: 1ms}"),
            "p.yaml:1:5: policy \"p\": unknown field \"latncy\" (did you mean "
            "\"latency\"?)");
  EXPECT_EQ(
      Errors("p: {timeout: {conect: 1s}}"),
      "p.yaml:1:15: policy \"p\": timeout: unknown field \"conect\" (did you "
      "mean \"connect\"?)");
  EXPECT_EQ(
      Errors("p: {dns: {zzz: 1s}}"),
      "p.yaml:1:11: policy \"p\": dns: unknown field \"zzz\" (known fields: "
      "delay, timeout, nxdomain)");
  EXPECT_EQ(Errors("p: {latency: 1ms, latency: 2ms}"),
            "p.yaml:1:19: policy \"p\": latency: given more than once");
  EXPECT_EQ(Errors("p: {packet_duplicate: {prob: 1%, probability: 2%}}"),
            "p.yaml:1:34: policy \"p\": packet_duplicate.prob: given twice (as "
            "\"prob\" and \"probability\")");
  EXPECT_EQ(Errors("p: {blackhole: true, blackhole_directon: uplink}"),
            "p.yaml:1:22: policy \"p\": unknown field \"blackhole_directon\" "
            "(did you mean \"blackhole_direction\"?)");
  EXPECT_EQ(Errors("p: {per_operaton: true, latency: 1ms}"),
            "p.yaml:1:5: policy \"p\": unknown field \"per_operaton\" (did you "
            "mean "
            "\"per_operation\"?)");
  EXPECT_EQ(Errors("p: {http_eror: {status: 503}}"),
            "p.yaml:1:5: policy \"p\": unknown field \"http_eror\" (did you "
            "mean \"http_error\"?)");
  EXPECT_EQ(Errors("p: {http_error: {status: 503, bdy: x}}"),
            "p.yaml:1:31: policy \"p\": http_error: unknown field \"bdy\" (did "
            "you mean \"body\"?)");
  EXPECT_EQ(Errors("p: {http_error: {status: 503, zzz: 1}}"),
            "p.yaml:1:31: policy \"p\": http_error: unknown field \"zzz\" "
            "(known fields: status, body, probability)");
  EXPECT_EQ(Errors("p: {syscalls: [{wirte: deny(EIO)}]}"),
            "p.yaml:1:17: policy \"p\": syscalls[0]: unknown syscall family "
            "\"wirte\" (did you mean \"write\"?)");
}

TEST(PolicyFileErrorTest, ValueErrorsNameFileLineFieldValueAndWhy) {
  EXPECT_EQ(Errors("# slow link\n"
                   "slow_link:\n"
                   "  jitter: 3ms\n"
                   "  latency: \"7 ms\"\n",
                   "slow.yaml"),
            "slow.yaml:4:12: policy \"slow_link\": latency: \"7 ms\" is not a "
            "duration: unknown unit \" ms\" (use ns, us, ms, s, m or h)");
  EXPECT_EQ(
      Errors("p: {packet_loss: 150%}"),
      "p.yaml:1:18: policy \"p\": packet_loss: \"150%\" is not a probability: "
      "above 100%");
  EXPECT_EQ(
      Errors("p: {rate: 10mb}"),
      "p.yaml:1:11: policy \"p\": rate: \"10mb\" is not a rate: unknown unit "
      "\"mb\" (use bps, kbps, mbps or gbps)");
  EXPECT_EQ(
      Errors("p: {burst_loss: two, packet_loss: 1%}"),
      "p.yaml:1:17: policy \"p\": burst_loss: \"two\" is not a packet count: "
      "expected a whole number");
  EXPECT_EQ(Errors("p: {blackhole: yes}"),
            "p.yaml:1:16: policy \"p\": blackhole: \"yes\" is not a boolean: "
            "use true "
            "or false");
  EXPECT_EQ(Errors("p: {timeout: 9ms}"),
            "p.yaml:1:14: policy \"p\": timeout: expected a map, got \"9ms\"");
  EXPECT_EQ(Errors("p: {latency: [1ms]}"),
            "p.yaml:1:14: policy \"p\": latency: expected a map, got a list");
  EXPECT_EQ(Errors("p: {jitter: }"),
            "p.yaml:1:13: policy \"p\": jitter: missing value");
  EXPECT_EQ(
      Errors("p: {latency: {min: 1ms}}"),
      "p.yaml:1:14: policy \"p\": latency: distribution is required (fixed, "
      "uniform, normal, pareto or pareto_normal)");
  EXPECT_EQ(
      Errors("p: {latency: {distribution: gauss}}"),
      "p.yaml:1:29: policy \"p\": latency.distribution: unknown distribution "
      "\"gauss\" (use fixed, uniform, normal, pareto or pareto_normal)");
  EXPECT_EQ(Errors("p: {latency: {distribution: uniform, min: 1ms}}"),
            "p.yaml:1:14: policy \"p\": latency: uniform latency needs max");
  EXPECT_EQ(
      Errors("p: {latency: {distribution: normal, mean: 1ms, stddev: 1ms, "
             "min: 1ms}}"),
      "p.yaml:1:66: policy \"p\": latency.min: min does not apply to normal "
      "latency (it takes mean and stddev)");
  EXPECT_EQ(
      Errors("p: {connection_error: {kind: rst}}"),
      "p.yaml:1:30: policy \"p\": connection_error.kind: unknown connection "
      "error kind \"rst\" (use reset, refused or unreachable)");
  EXPECT_EQ(Errors("p: {half_open: {after: soon}}"),
            "p.yaml:1:24: policy \"p\": half_open.after: \"soon\" is neither a "
            "duration (e.g. 5s) nor a size (e.g. 16kb)");
  EXPECT_EQ(
      Errors("p: {syscalls: [{write: \"deny(ENOSPC\"}]}"),
      "p.yaml:1:24: policy \"p\": syscalls[0].write: \"deny(ENOSPC\" is not a "
      "syscall fault: expected \",\" or \")\"");
  EXPECT_EQ(
      Errors("p: {syscalls: [{write: \"fail(EIO)\"}]}"),
      "p.yaml:1:24: policy \"p\": syscalls[0].write: \"fail(EIO)\" is not a "
      "syscall fault: unknown action \"fail\" (use deny(ERRNO) or "
      "delay(DURATION))");
  EXPECT_EQ(
      Errors("p: {syscalls: [{write: {deny: EIO, delay: 1ms}}]}"),
      "p.yaml:1:24: policy \"p\": syscalls[0].write: deny and delay cannot be "
      "combined in one rule (write two rules)");
  // A problem inside the call form points at the string.
  EXPECT_EQ(Errors("p: {syscalls: [{write: \"deny(EIO, prob=2)\"}]}"),
            "p.yaml:1:24: policy \"p\": syscalls[0].write.probability: \"2\" "
            "is not a "
            "probability: a plain number is a fraction between 0 and 1 (write "
            "\"50%\" "
            "for a percentage)");
  EXPECT_EQ(Errors("p: {schedule: {kind: spike, every: 30s}, latency: 1ms}"),
            "p.yaml:1:15: policy \"p\": schedule: spike needs duration");
  EXPECT_EQ(
      Errors(
          "p: {schedule: {kind: ramp, duration: 1s, every: 2s}, latency: 1ms}"),
      "p.yaml:1:49: policy \"p\": schedule.every: every does not apply to a "
      "ramp schedule (it takes duration)");
  EXPECT_EQ(Errors("p: {schedule: {kind: intervals, intervals: "
                   "\"start:10%,duration:5s\"}, "
                   "latency: 1ms}"),
            "p.yaml:1:44: policy \"p\": schedule.intervals: "
            "\"start:10%,duration:5s\" "
            "is not an interval list: mixes percentages and durations (use one "
            "kind)");
  EXPECT_EQ(Errors("p: {payload_mutation: {kind: truncate}}"),
            "p.yaml:1:23: policy \"p\": payload_mutation: truncate needs "
            "truncate_to");
  EXPECT_EQ(Errors("p: {payload_mutation: {kind: swap_bytes, data: x}}"),
            "p.yaml:1:48: policy \"p\": payload_mutation.data: data does not "
            "apply to "
            "kind swap_bytes");
  EXPECT_EQ(Errors("p: {session_budget: {max_ops: 1, action: close}}"),
            "p.yaml:1:42: policy \"p\": session_budget.action: unknown action "
            "\"close\" (use drop, timeout or connection_error)");
  EXPECT_EQ(
      Errors("p: {targets: [{target: \"tcp://10.1.2.3/8\"}], latency: 1ms}"),
      "p.yaml:1:24: policy \"p\": targets[0].target: \"tcp://10.1.2.3/8\" is "
      "not a "
      "target: 10.1.2.3/8 has host bits set (did you mean 10.0.0.0/8?)");
  EXPECT_EQ(
      Errors("p: {targets: [\"10.0.0.1\"], latency: 1ms}"),
      "p.yaml:1:15: policy \"p\": targets[0]: \"10.0.0.1\" is not a target: "
      "missing scheme (use tcp://, udp:// or any://)");
  EXPECT_EQ(
      Errors("p: {targets: [\"http://x\"], latency: 1ms}"),
      "p.yaml:1:15: policy \"p\": targets[0]: \"http://x\" is not a target: "
      "unknown scheme \"http\" (use tcp://, udp:// or any://)");
  EXPECT_EQ(Errors("p: {targets: [\"tcp://::1:80\"], latency: 1ms}"),
            "p.yaml:1:15: policy \"p\": targets[0]: \"tcp://::1:80\" is not a "
            "target: "
            "IPv6 addresses need brackets, e.g. tcp://[::1]:80");
  // A host of digits and dots is an address, never a name: one that does
  // not parse is an error, not a hostname that silently matches nothing.
  EXPECT_EQ(Errors("p: {targets: [\"tcp://300.1.1.1\"], latency: 1ms}"),
            "p.yaml:1:15: policy \"p\": targets[0]: \"tcp://300.1.1.1\" is not "
            "a target: \"300.1.1.1\" is not an IPv4 address: part 300 is above "
            "255");
  EXPECT_EQ(Errors("p: {targets: [{target: \"udp://1.2.3:53\"}], latency: 1ms}"),
            "p.yaml:1:24: policy \"p\": targets[0].target: \"udp://1.2.3:53\" "
            "is not a target: \"1.2.3\" is not an IPv4 address: an IPv4 "
            "address has 4 parts, this has 3");
  EXPECT_EQ(Errors("p: {targets: [\"tcp://10.01.1.1\"], latency: 1ms}"),
            "p.yaml:1:15: policy \"p\": targets[0]: \"tcp://10.01.1.1\" is not "
            "a target: \"10.01.1.1\" is not an IPv4 address: part 01 has a "
            "leading zero");
  EXPECT_EQ(Errors("p: {targets: [\"tcp://1..2.3\"], latency: 1ms}"),
            "p.yaml:1:15: policy \"p\": targets[0]: \"tcp://1..2.3\" is not a "
            "target: \"1..2.3\" is not an IPv4 address: a part is empty");
  EXPECT_EQ(Errors("p: {targets: [\"tcp://[fe80::zz]:80\"], latency: 1ms}"),
            "p.yaml:1:15: policy \"p\": targets[0]: \"tcp://[fe80::zz]:80\" is "
            "not a target: \"fe80::zz\" is not an IPv6 address");
  EXPECT_EQ(Errors("p: {targets: [\"tcp://fe80::zz\"], latency: 1ms}"),
            "p.yaml:1:15: policy \"p\": targets[0]: \"tcp://fe80::zz\" is not a "
            "target: IPv6 addresses need brackets, e.g. tcp://[::1]:80");
  EXPECT_EQ(Errors("p: {targets: [{hostname: \"10.0.0.1\"}], latency: 1ms}"),
            "p.yaml:1:26: policy \"p\": targets[0].hostname: \"10.0.0.1\" is "
            "not a hostname pattern: digits and dots only: an address, not a "
            "name (an address goes in target, e.g. tcp://10.0.0.1)");
  // Names with digits stay names.
  EXPECT_EQ(Errors("p: {targets: [\"tcp://db1.example:5432\", "
                   "{hostname: \"*.10.example\"}], latency: 1ms}"),
            "<ok>");
  EXPECT_EQ(
      Errors("p: {targets: [{priority: 1}], latency: 1ms}"),
      "p.yaml:1:15: policy \"p\": targets[0]: needs target, hostname or sni");
  EXPECT_EQ(Errors("p: {targets: [{hostname: \"a b\"}], latency: 1ms}"),
            "p.yaml:1:26: policy \"p\": targets[0].hostname: \"a b\" is not a "
            "hostname "
            "pattern: unexpected character \" \" (use letters, digits, '-', "
            "'.' and a "
            "leading \"*.\")");
}

TEST(PolicyFileErrorTest, NewFieldValueErrors) {
  EXPECT_EQ(Errors("p:\n"
                   "  blackhole: true\n"
                   "  blackhole_direction: up\n"),
            "p.yaml:3:24: policy \"p\": blackhole_direction: unknown direction "
            "\"up\" (use both, uplink or downlink)");
  EXPECT_EQ(Errors("p: {latency: 1ms, per_operation: 1}"),
            "p.yaml:1:34: policy \"p\": per_operation: \"1\" is not a boolean: "
            "use true or false");
  EXPECT_EQ(Errors("p: {http_error: {status: 700}}"),
            "p.yaml:1:26: policy \"p\": http_error.status: \"700\" is not an "
            "HTTP status: out of range (100..599)");
  EXPECT_EQ(Errors("p: {http_error: {status: 99}}"),
            "p.yaml:1:26: policy \"p\": http_error.status: \"99\" is not an "
            "HTTP status: out of range (100..599)");
  EXPECT_EQ(Errors("p: {http_error: {status: 5xx}}"),
            "p.yaml:1:26: policy \"p\": http_error.status: \"5xx\" is not an "
            "HTTP status: expected a whole number");
  EXPECT_EQ(Errors("p: {http_error: {status: -503}}"),
            "p.yaml:1:26: policy \"p\": http_error.status: \"-503\" is not an "
            "HTTP status: expected a whole number");
  EXPECT_EQ(Errors("p: {http_error: {body: oops}}"),
            "p.yaml:1:17: policy \"p\": http_error: needs status (100..599), "
            "e.g. {status: 503}");
  EXPECT_EQ(
      Errors("p: {http_error: 503}"),
      "p.yaml:1:17: policy \"p\": http_error: expected a map, got \"503\"");
  EXPECT_EQ(Errors("p: {http_error: {status: 503, probability: 150%}}"),
            "p.yaml:1:44: policy \"p\": http_error.probability: \"150%\" is "
            "not a probability: above 100%");
  EXPECT_EQ(Errors("p: {http_error: {status: 503, body: [a]}}"),
            "p.yaml:1:37: policy \"p\": http_error.body: expected a single "
            "value, got a list");
  // yaml-cpp reads the escape \N as the single byte 0x85 (and \_ as 0xa0),
  // which is no UTF-8 (found by the policy fuzzer); \u0085 is.
  EXPECT_EQ(Errors("p: {http_error: {status: 503, body: \"a\\Nb\"}}"),
            "p.yaml:1:37: policy \"p\": http_error.body: not UTF-8 text "
            "(write \\u0085 for a next-line character, \\u00a0 for a "
            "no-break space)");
  EXPECT_EQ(One("p: {http_error: {status: 503, body: \"a\\u0085\\u00a0b\"}}")
                .http_error()
                .body(),
            "a\u0085\u00a0b");
  EXPECT_EQ(Errors("p:\n  http_error:\n    status: 503\n    body: \"" +
                   std::string(4097, 'x') + "\"\n"),
            "p.yaml:4:11: policy \"p\": http_error.body: 4097 bytes; a body is "
            "at most 4096 bytes");
}

TEST(PolicyFileErrorTest, CollectsEveryErrorOfEveryPolicy) {
  EXPECT_EQ(
      Errors("a: {latency: 1}\n"
             "b: {jitter: -1ms, rate: 0.5bps}\n"),
      "p.yaml:1:14: policy \"a\": latency: \"1\" is not a duration: missing "
      "unit "
      "(use ns, us, ms, s, m or h)\n"
      "p.yaml:2:13: policy \"b\": jitter: \"-1ms\" is not a duration: negative "
      "durations are not allowed\n"
      "p.yaml:2:25: policy \"b\": rate: \"0.5bps\" is not a rate: not a whole "
      "number of bits per second");
}

TEST(PolicyFileErrorTest, LimitsFileSizeAndReportedErrors) {
  EXPECT_EQ(Errors(std::string((1 << 20) + 1, '#')),
            "p.yaml: too large (1048577 bytes; policy files are at most 1mb)");
  std::string many;
  for (int i = 0; i < 60; ++i)
    many += "p" + std::to_string(i) + ": {latency: x}\n";
  const std::string errors = Errors(many);
  EXPECT_EQ(std::count(errors.begin(), errors.end(), '\n'), 50);
  EXPECT_THAT(errors, testing::StartsWith(
                          "p.yaml:1:15: policy \"p0\": latency: \"x\" is "
                          "not a duration: expected a number at \"x\"\n"));
  EXPECT_THAT(errors, testing::EndsWith("\n... and 10 more errors"));
}

// --- Validation rules: each valid and invalid --------------------------------

struct RuleCase {
  const char* name;
  const char* valid;
  const char* invalid;
  const char* error;
};

class ValidationRuleTest : public testing::TestWithParam<RuleCase> {};

TEST_P(ValidationRuleTest, ValidPassesInvalidFailsWithExactText) {
  const RuleCase& c = GetParam();
  EXPECT_EQ(Errors(c.valid), "<ok>") << c.name;
  EXPECT_EQ(Errors(c.invalid), c.error) << c.name;
}

INSTANTIATE_TEST_SUITE_P(
    Rules, ValidationRuleTest,
    testing::Values(
        RuleCase{"targets_non_empty", "p: {latency: 1ms, targets: [any://]}",
                 "p: {latency: 1ms, targets: []}",
                 "p.yaml:1:28: policy \"p\": targets: must not be empty (leave "
                 "targets "
                 "out to match all traffic)"},
        RuleCase{
            "hostname_sni_exclusive",
            "p: {latency: 1ms, targets: [{hostname: a.com}, {sni: b.com}]}",
            "p: {latency: 1ms, targets: [{hostname: a.com, sni: b.com}]}",
            "p.yaml:1:29: policy \"p\": targets[0]: hostname and sni cannot be "
            "combined in one target (use two targets)"},
        RuleCase{"address_not_with_hostname",
                 "p: {latency: 1ms, targets: [{target: \"tcp://:80\", "
                 "hostname: a.com}]}",
                 "p: {latency: 1ms, targets: [{target: \"tcp://10.0.0.0/8\", "
                 "hostname: "
                 "a.com}]}",
                 "p.yaml:1:29: policy \"p\": targets[0]: an address "
                 "(10.0.0.0/8) cannot "
                 "be combined with hostname (select by address or by name, not "
                 "both)"},
        RuleCase{
            "address_not_with_sni",
            "p: {latency: 1ms, targets: [{target: \"tcp://:443\", sni: "
            "a.com}]}",
            "p: {latency: 1ms, targets: [{target: \"tcp://[::1]:443\", sni: "
            "a.com}]}",
            "p.yaml:1:29: policy \"p\": targets[0]: an address (::1/128) "
            "cannot be "
            "combined with sni (select by address or by name, not both)"},
        RuleCase{"dns_needs_hostname_only",
                 "p: {dns: {nxdomain: 5%}, targets: [{hostname: "
                 "\"*.example.com\"}]}",
                 "p: {dns: {nxdomain: 5%}, targets: [\"tcp://10.0.0.0/8\"]}",
                 "p.yaml:1:10: policy \"p\": dns: DNS effects need "
                 "hostname-only targets "
                 "(a lookup has no address, port or TLS yet), and targets[0] "
                 "\"tcp://10.0.0.0/8\" selects by an address"},
        RuleCase{"dns_hostname_with_port",
                 "p: {dns: {delay: 1s}, targets: [{hostname: a.com}]}",
                 "p: {dns: {delay: 1s}, targets: [{target: \"any://:443\", "
                 "hostname: "
                 "a.com}]}",
                 "p.yaml:1:10: policy \"p\": dns: DNS effects need "
                 "hostname-only targets "
                 "(a lookup has no address, port or TLS yet), and targets[0] "
                 "\"any://:443 hostname=a.com\" selects by port"},
        RuleCase{"sni_needs_tcp",
                 "p: {latency: 1ms, targets: [{target: \"tcp://:443\", sni: "
                 "a.com}]}",
                 "p: {latency: 1ms, targets: [{target: \"any://:443\", sni: "
                 "a.com}]}",
                 "p.yaml:1:29: policy \"p\": targets[0]: sni needs a tcp:// "
                 "target (the "
                 "TLS ClientHello is only seen on TCP), and \"any://:443 "
                 "sni=a.com\" is "
                 "not tcp"},
        RuleCase{
            "connect_timeout_needs_tcp",
            "p: {timeout: {connect: 1s}, targets: [\"any://:53\"]}",
            "p: {timeout: {connect: 1s}, targets: [\"udp://:53\"]}",
            "p.yaml:1:24: policy \"p\": timeout.connect: timeout.connect needs "
            "tcp:// or any:// targets, and targets[0] \"udp://:53\" is udp "
            "(UDP has "
            "no connection to time out, refuse or half-close)"},
        RuleCase{"connection_error_needs_tcp",
                 "p: {connection_error: reset, targets: [\"tcp://:53\"]}",
                 "p: {connection_error: reset, targets: [\"udp://:53\"]}",
                 "p.yaml:1:23: policy \"p\": connection_error: "
                 "connection_error needs "
                 "tcp:// or any:// targets, and targets[0] \"udp://:53\" is "
                 "udp (UDP has "
                 "no connection to time out, refuse or half-close)"},
        RuleCase{
            "udp_rate_and_recv_timeout_ok",
            "p: {rate: 1mbps, timeout: {recv: 1s}, targets: [\"udp://:53\"]}",
            "p: {half_open: {after: 1kb}, targets: [\"udp://:53\"]}",
            "p.yaml:1:16: policy \"p\": half_open: half_open needs tcp:// or "
            "any:// "
            "targets, and targets[0] \"udp://:53\" is udp (UDP has no "
            "connection to "
            "time out, refuse or half-close)"},
        RuleCase{"duplicate_needs_datagrams",
                 "p: {packet_duplicate: 1%, targets: [\"udp://:53\"]}",
                 "p: {packet_duplicate: 1%, targets: [\"tcp://:80\"]}",
                 "p.yaml:1:23: policy \"p\": packet_duplicate: "
                 "packet_duplicate needs "
                 "udp:// or any:// targets, and targets[0] \"tcp://:80\" is "
                 "tcp (a TCP "
                 "stream never shows its packets reordered or duplicated)"},
        RuleCase{
            "budget_timeout_needed",
            "p: {session_budget: {max_tx: 1kb, action: timeout, "
            "budget_timeout: "
            "5s}}",
            "p: {session_budget: {max_tx: 1kb, action: timeout}}",
            "p.yaml:1:43: policy \"p\": session_budget.action: action timeout "
            "needs "
            "budget_timeout (how long to stall, e.g. budget_timeout: 30s)"},
        RuleCase{
            "budget_needs_a_limit", "p: {session_budget: {max_duration: 1m}}",
            "p: {session_budget: {action: drop}}",
            "p.yaml:1:21: policy \"p\": session_budget: needs max_tx, max_rx, "
            "max_ops or max_duration"},
        RuleCase{
            "budget_error_only_with_connection_error",
            "p: {session_budget: {max_ops: 1, action: connection_error, error: "
            "EPIPE}}",
            "p: {session_budget: {max_ops: 1, error: EPIPE}}",
            "p.yaml:1:41: policy \"p\": session_budget.error: error only "
            "applies to "
            "action connection_error"},
        RuleCase{"burst_loss_needs_packet_loss",
                 "p: {packet_loss: 1%, burst_loss: 2}", "p: {burst_loss: 2}",
                 "p.yaml:1:17: policy \"p\": burst_loss: burst_loss needs "
                 "packet_loss (it "
                 "says how many packets are lost in a row once a loss starts)"},
        RuleCase{
            "burst_loss_with_link_loss_in_uplink",
            "p: {packet_loss: 1%, uplink: {burst_loss: 3}}",
            "p: {downlink: {burst_loss: 3}, uplink: {packet_loss: 1%}}",
            "p.yaml:1:28: policy \"p\": downlink.burst_loss: burst_loss needs "
            "packet_loss (it says how many packets are lost in a row once a "
            "loss "
            "starts)"},
        RuleCase{
            "loss_models_exclusive",
            "p: {correlated_loss: {p_good_to_bad: 1%, p_bad_to_good: 10%}}",
            "p: {packet_loss: 1%, correlated_loss: {p_good_to_bad: 1%, "
            "p_bad_to_good: 10%}}",
            "p.yaml:1:39: policy \"p\": correlated_loss: packet_loss and "
            "correlated_loss cannot be combined (correlated_loss already sets "
            "the "
            "loss rate)"},
        RuleCase{"uniform_min_le_max",
                 "p: {latency: {distribution: uniform, min: 5ms, max: 5ms}}",
                 "p: {latency: {distribution: uniform, min: 20ms, max: 10ms}}",
                 "p.yaml:1:14: policy \"p\": latency: uniform min 20ms is "
                 "above max 10ms"},
        RuleCase{"pareto_shape_positive",
                 "p: {latency: {distribution: pareto, shape: 0.5, scale: 1ms}}",
                 "p: {latency: {distribution: pareto, shape: 0, scale: 1ms}}",
                 "p.yaml:1:44: policy \"p\": latency.shape: shape must be "
                 "above 0, got 0"},
        RuleCase{"probability_at_most_100", "p: {dns: {timeout: 100%}}",
                 "p: {dns: {timeout: 100.01%}}",
                 "p.yaml:1:20: policy \"p\": dns.timeout: \"100.01%\" is not a "
                 "probability: above 100%"},
        RuleCase{"dns_probabilities_sum",
                 "p: {dns: {timeout: 50%, nxdomain: 50%}}",
                 "p: {dns: {timeout: 60%, nxdomain: 50%}}",
                 "p.yaml:1:10: policy \"p\": dns: timeout and nxdomain "
                 "together are above "
                 "100%"},
        RuleCase{"port_range",
                 "p: {latency: 1ms, targets: [\"tcp://:1-65535\"]}",
                 "p: {latency: 1ms, targets: [\"tcp://:0\"]}",
                 "p.yaml:1:29: policy \"p\": targets[0]: \"tcp://:0\" is not a "
                 "target: "
                 "port 0 is out of range (1..65535)"},
        RuleCase{
            "port_max", "p: {latency: 1ms, targets: [\"tcp://:65535\"]}",
            "p: {latency: 1ms, targets: [\"tcp://:65536\"]}",
            "p.yaml:1:29: policy \"p\": targets[0]: \"tcp://:65536\" is not a "
            "target: port 65536 is out of range (1..65535)"},
        RuleCase{"port_lo_le_hi",
                 "p: {latency: 1ms, targets: [\"tcp://:8000-8000\"]}",
                 "p: {latency: 1ms, targets: [\"tcp://:9000-8000\"]}",
                 "p.yaml:1:29: policy \"p\": targets[0]: \"tcp://:9000-8000\" "
                 "is not a "
                 "target: port range 9000-8000 is reversed"},
        RuleCase{
            "priority_range",
            "p: {latency: 1ms, targets: [{target: any://, priority: -1000}]}",
            "p: {latency: 1ms, targets: [{target: any://, priority: 1001}]}",
            "p.yaml:1:56: policy \"p\": targets[0].priority: \"1001\" is not a "
            "priority: out of range (-1000..1000)"},
        RuleCase{"errno_known",
                 "p: {half_open: {after: 1kb, error: ECONNRESET}}",
                 "p: {half_open: {after: 1kb, error: ECONNRESTE}}",
                 "p.yaml:1:36: policy \"p\": half_open.error: \"ECONNRESTE\" "
                 "is not an "
                 "errno name (e.g. ENOSPC, EIO, ECONNREFUSED)"},
        RuleCase{"path_glob_only_on_file_families",
                 "p: {syscalls: [{unlink: {deny: EPERM, path: \"/tmp/*\"}}]}",
                 "p: {syscalls: [{connect: {deny: ECONNREFUSED, path: "
                 "\"/tmp/*\"}}]}",
                 "p.yaml:1:53: policy \"p\": syscalls[0].path: path globs only "
                 "apply to "
                 "file families (open, read, write, fsync, fdatasync, close, "
                 "unlink, "
                 "rename, mkdir, ftruncate), not connect"},
        RuleCase{
            "empty_policy", "p: {blackhole: true}", "p: {seed: 3}",
            "p.yaml:1:1: policy \"p\": no effect (give latency, packet_loss, "
            "syscalls, ...)"},
        RuleCase{
            "null_policy", "p: {partition: [[a, b]]}", "p:\n",
            "p.yaml:1:1: policy \"p\": no effect (give latency, packet_loss, "
            "syscalls, ...)"},
        RuleCase{
            "blackhole_false_is_no_effect", "p: {blackhole: true}",
            "p: {blackhole: false}",
            "p.yaml:1:1: policy \"p\": no effect (give latency, packet_loss, "
            "syscalls, ...)"},
        RuleCase{"duplicate_names_in_file",
                 "a: {latency: 1ms}\nb: {latency: 1ms}",
                 "a: {latency: 1ms}\na: {latency: 2ms}",
                 "p.yaml:2:1: policy \"a\" is already defined at p.yaml:1:1"},
        // All-zero effect blocks are no effect: they would print as {} and
        // not load again (found by the policy fuzzer).
        RuleCase{"dns_all_zero_is_empty", "p: {dns: {nxdomain: 1%}}",
                 "p: {dns: {nxdomain: 0}}",
                 "p.yaml:1:10: policy \"p\": dns: needs delay, timeout and/or "
                 "nxdomain"},
        RuleCase{"timeout_all_zero_is_empty", "p: {timeout: {connect: 1ms}}",
                 "p: {timeout: {connect: 0}}",
                 "p.yaml:1:14: policy \"p\": timeout: needs connect and/or recv, "
                 "e.g. {connect: 5s}"},
        // Found by the fuzzer: a control character in a glob (here a tab,
        // there U+0085 from YAML's \N escape) did not print back as a policy.
        RuleCase{"path_glob_is_printable_text",
                 "p: {syscalls: [{write: {deny: EIO, path: \"/data/\u00e9*\"}}]}",
                 "p: {syscalls: [{write: {deny: EIO, path: \"/a\\tb\"}}]}",
                 "p.yaml:1:42: policy \"p\": syscalls[0].path: path glob must be "
                 "UTF-8 text without control characters"},
        RuleCase{"delay_at_most_24h", "p: {latency: 24h}", "p: {latency: 25h}",
                 "p.yaml:1:14: policy \"p\": latency: 25h is above the 24h "
                 "limit for one "
                 "delay"},
        RuleCase{"rate_positive", "p: {rate: 8bps}", "p: {rate: 0}",
                 "p.yaml:1:11: policy \"p\": rate: rate must be above 0 (use "
                 "blackhole "
                 "to stop all traffic)"},
        RuleCase{"rate_burst_at_most_1gb",
                 "p: {rate: {rate: 1gbps, burst: 1gb}}",
                 "p: {rate: {rate: 1gbps, burst: 2gb}}",
                 "p.yaml:1:32: policy \"p\": rate.burst: 2gb is above the 1gb "
                 "limit for "
                 "a burst"},
        RuleCase{"spike_duration_le_every",
                 "p: {latency: 1ms, schedule: {kind: spike, every: 5s, "
                 "duration: 5s}}",
                 "p: {latency: 1ms, schedule: {kind: spike, every: 5s, "
                 "duration: 6s}}",
                 "p.yaml:1:64: policy \"p\": schedule.duration: spike duration "
                 "6s is "
                 "longer than every 5s"},
        RuleCase{"percent_intervals_need_run_duration",
                 "p: {latency: 1ms, schedule: {kind: intervals, intervals: "
                 "\"start:0%,duration:10%\", run_duration: 10s}}",
                 "p: {latency: 1ms, schedule: {kind: intervals, intervals: "
                 "\"start:0%,duration:10%\"}}",
                 "p.yaml:1:58: policy \"p\": schedule.intervals: percentages "
                 "need a run "
                 "duration: add run_duration (e.g. run_duration: 60s)"},
        RuleCase{"interval_within_run",
                 "p: {latency: 1ms, schedule: {kind: intervals, intervals: "
                 "\"start:80%,duration:20%\", run_duration: 10s}}",
                 "p: {latency: 1ms, schedule: {kind: intervals, intervals: "
                 "\"start:80%,duration:30%\", run_duration: 10s}}",
                 "p.yaml:1:58: policy \"p\": schedule.intervals: interval 1 "
                 "ends after "
                 "100% of the run (start 80% + duration 30%)"},
        RuleCase{
            "partition_two_processes", "p: {partition: [a, b]}",
            "p: {partition: [a, a]}",
            "p.yaml:1:16: policy \"p\": partition[0]: a partition needs two "
            "different processes, got \"a\" twice"},
        RuleCase{
            "mutation_prob_or_every_n",
            "p: {payload_mutation: {kind: swap_bytes, every_n: 3}}",
            "p: {payload_mutation: {kind: swap_bytes, every_n: 3, prob: 1%}}",
            "p.yaml:1:51: policy \"p\": payload_mutation.every_n: prob and "
            "every_n "
            "cannot be combined (use one)"},
        RuleCase{
            "mutation_sizes",
            "p: {payload_mutation: {kind: swap_bytes, min_size: 1kb, max_size: "
            "1kb}}",
            "p: {payload_mutation: {kind: swap_bytes, min_size: 2kb, max_size: "
            "1kb}}",
            "p.yaml:1:52: policy \"p\": payload_mutation.min_size: min_size "
            "2kb is "
            "above max_size 1kb"},
        RuleCase{"blackhole_direction_needs_blackhole",
                 "p: {blackhole: true, blackhole_direction: uplink}",
                 "p: {latency: 1ms, blackhole_direction: uplink}",
                 "p.yaml:1:40: policy \"p\": blackhole_direction: "
                 "blackhole_direction only applies to a black hole (add "
                 "blackhole: true)"},
        RuleCase{"blackhole_direction_alone",
                 "p: {blackhole: true, blackhole_direction: downlink}",
                 "p: {blackhole: false, blackhole_direction: downlink}",
                 "p.yaml:1:44: policy \"p\": blackhole_direction: "
                 "blackhole_direction only applies to a black hole (add "
                 "blackhole: true)"},
        RuleCase{"per_operation_is_no_effect",
                 "p: {latency: 1ms, per_operation: true}",
                 "p: {per_operation: true}",
                 "p.yaml:1:1: policy \"p\": no effect (give latency, "
                 "packet_loss, syscalls, ...)"},
        RuleCase{"http_error_is_an_effect", "p: {http_error: {status: 503}}",
                 "p: {http_error: {status: 503}, targets: [\"udp://:53\"]}",
                 "p.yaml:1:17: policy \"p\": http_error: http_error needs "
                 "tcp:// or any:// targets, and targets[0] \"udp://:53\" is "
                 "udp (HTTP requests come over TCP)"}),
    [](const testing::TestParamInfo<RuleCase>& info) {
      return info.param.name;
    });

TEST(LoadPolicyFilesTest, DuplicateNamesAcrossFilesFailTheWholeLoad) {
  const std::string dir = testing::TempDir();
  const std::string a = dir + "/dup_a.yaml", b = dir + "/dup_b.json";
  std::ofstream(a) << "# a\nshared: {latency: 1ms}\nonly_a: {jitter: 1ms}\n";
  std::ofstream(b) << "{\"other\": {\"latency\": \"1ms\"},\n \"shared\": "
                      "{\"latency\": \"2ms\"}}";
  absl::StatusOr<PolicySet> both = LoadPolicyFiles({a, b});
  ASSERT_FALSE(both.ok());
  EXPECT_EQ(both.status().message(),
            b + ":2:2: policy \"shared\" is already defined at " + a + ":2:1");
  absl::StatusOr<PolicySet> one = LoadPolicyFiles({a});
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->policies_size(), 2);
  absl::StatusOr<PolicySet> missing =
      LoadPolicyFiles({a, dir + "/no_such.yaml"});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(),
            dir + "/no_such.yaml: cannot read: No such file or directory");
}

TEST(ValidatePolicyTest, ChecksProtosFromAnyFrontEnd) {
  Policy p = FromText(R"pb(
    name: "grpc"
    link { packet_loss_ppm: 2000000 }
    syscalls {
      family: FAMILY_WRITE
      action: ACTION_DENY
      errno_name: "ENOPE"
      probability_ppm: 1000000
    }
    targets { protocol: PROTOCOL_TCP port_min: 10 port_max: 5 }
  )pb");
  absl::Status s = ValidatePolicy(p, "PutPolicy");
  EXPECT_EQ(
      s.message(),
      "PutPolicy: policy \"grpc\": packet_loss: 2000000ppm is not a "
      "probability: above 100%\n"
      "PutPolicy: policy \"grpc\": syscalls[0]: \"ENOPE\" is not an errno name "
      "(e.g. ENOSPC, EIO, ECONNREFUSED)\n"
      "PutPolicy: policy \"grpc\": targets[0]: port range 10-5 is reversed");
  EXPECT_TRUE(
      ValidatePolicy(FromText("name: \"ok\" blackhole: true"), "x").ok());
  EXPECT_TRUE(ValidatePolicy(FromText("name: \"ok\" blackhole: true "
                                      "blackhole_direction: DIRECTION_UPLINK"),
                             "x")
                  .ok());
  EXPECT_EQ(ValidatePolicy(FromText("name: \"h\" http_error { status: 700 "
                                    "probability_ppm: 2000000 }"),
                           "x")
                .message(),
            "x: policy \"h\": http_error.status: 700 is not an HTTP status: "
            "out of range (100..599)\n"
            "x: policy \"h\": http_error.probability: 2000000ppm is not a "
            "probability: above 100%");
  EXPECT_EQ(
      ValidatePolicy(FromText("name: \"h\" http_error { body: \"x\" }"), "x")
          .message(),
      "x: policy \"h\": http_error: needs status (100..599)");
  Policy big = FromText("name: \"h\" http_error { status: 503 }");
  big.mutable_http_error()->set_body(std::string(5000, 'b'));
  EXPECT_EQ(ValidatePolicy(big, "x").message(),
            "x: policy \"h\": http_error.body: 5000 bytes; a body is at most "
            "4096 bytes");
  Policy direction = FromText("name: \"d\" blackhole: true");
  direction.set_blackhole_direction(static_cast<fault::v1::Direction>(9));
  EXPECT_EQ(ValidatePolicy(direction, "x").message(),
            "x: policy \"d\": blackhole_direction: unknown direction");
  EXPECT_EQ(ValidatePolicy(FromText("name: \"d\" link { jitter_ns: 1 } "
                                    "blackhole_direction: DIRECTION_BOTH "
                                    "per_operation: true"),
                           "x")
                .message(),
            "x: policy \"d\": blackhole_direction: blackhole_direction only "
            "applies to a black hole (add blackhole: true)");
  EXPECT_EQ(
      ValidatePolicy(FromText("name: \"\" blackhole: true"), "x").message(),
      "x: empty policy name");
}

TEST(ValidatePolicyTest, ProblemsCarryTheFieldPath) {
  std::vector<PolicyProblem> problems = PolicyProblems(FromText(R"pb(
    name: "p"
    downlink {
      latency { distribution: DISTRIBUTION_UNIFORM min_ns: 5 max_ns: 1 }
    }
    schedule {
      kind: KIND_INTERVALS
      intervals { start_ppm: 1 }
    }
  )pb"));
  ASSERT_EQ(problems.size(), 3u);
  EXPECT_EQ(problems[0].path, "downlink.latency");
  EXPECT_EQ(problems[0].message, "uniform min 5ns is above max 1ns");
  EXPECT_EQ(problems[1].path, "schedule.intervals");
  EXPECT_EQ(problems[2].path, "schedule.intervals");
  EXPECT_TRUE(PolicyProblems(FromText("name: \"ok\" blackhole: true")).empty());
  // An HTTP error response is an effect of its own.
  EXPECT_TRUE(
      PolicyProblems(
          FromText("name: \"h\" http_error { status: 503 probability_ppm: 1 }"))
          .empty());
}

TEST(IntervalGrammarTest, PolicyFilesNeedBothKeysAndOneKind) {
  auto ivs =
      ParseIntervals("start:10%,duration:50%; start : 75% , duration:20%");
  ASSERT_TRUE(ivs.ok()) << ivs.status();
  ASSERT_EQ(ivs->size(), 2u);
  EXPECT_EQ((*ivs)[1].start_ppm(), 750'000u);
  EXPECT_EQ(std::string(ParseIntervals("start:1s").status().message()),
            "\"start:1s\" is not an interval list: interval \"start:1s\" "
            "needs both start and duration");
  EXPECT_EQ(
      std::string(ParseIntervals("start:1s,duration:5%").status().message()),
      "\"start:1s,duration:5%\" is not an interval list: mixes "
      "percentages and durations (use one kind)");
  EXPECT_EQ(
      std::string(ParseIntervals("start:1s,duration:5").status().message()),
      "\"start:1s,duration:5\" is not an interval list: duration: \"5\" "
      "is not a duration: missing unit (use ns, us, ms, s, m or h)")
      << "the file grammar keeps its units";
}

TEST(IntervalGrammarTest, ProxyRulesFillMissingKeysAndResolveMixes) {
  IntervalGrammar g;
  g.proxy_rules = true;
  // Missing start: 0; missing duration: for ever without a run duration.
  auto open = ParseIntervals("duration:5s;start:10s", g);
  ASSERT_TRUE(open.ok()) << open.status();
  EXPECT_EQ((*open)[0].start_ns(), 0);
  EXPECT_EQ((*open)[0].duration_ns(), 5'000'000'000);
  EXPECT_EQ((*open)[1].start_ns(), 10'000'000'000);
  EXPECT_EQ((*open)[1].duration_ns(),
            std::numeric_limits<int64_t>::max() - 10'000'000'000);
  g.run_duration_name = "--duration";
  EXPECT_EQ(std::string(ParseIntervals("start:10%", g).status().message()),
            "\"start:10%\" is not an interval list: percentages need "
            "--duration");
  g.run_duration_ns = 60'000'000'000;
  auto pct = ParseIntervals("start:10%", g);
  ASSERT_TRUE(pct.ok()) << pct.status();
  EXPECT_EQ((*pct)[0].start_ppm(), 100'000u);
  EXPECT_EQ((*pct)[0].duration_ppm(), 900'000u);
  auto abs = ParseIntervals("start:50s", g);
  ASSERT_TRUE(abs.ok()) << abs.status();
  EXPECT_EQ((*abs)[0].duration_ns(), 10'000'000'000);
  auto mixed = ParseIntervals("start:10s,duration:50%", g);
  ASSERT_TRUE(mixed.ok()) << mixed.status();
  EXPECT_EQ((*mixed)[0].start_ns(), 10'000'000'000);
  EXPECT_EQ((*mixed)[0].duration_ns(), 30'000'000'000);
  EXPECT_EQ((*mixed)[0].duration_ppm(), 0u);
  EXPECT_EQ(std::string(ParseIntervals("start:60s", g).status().message()),
            "\"start:60s\" is not an interval list: interval 1 starts at 1m, "
            "after the end of the run (--duration 1m)");
  EXPECT_EQ(std::string(ParseIntervals("start:100%", g).status().message()),
            "\"start:100%\" is not an interval list: interval 1 starts at the "
            "end of the run");
  // The caller's duration syntax.
  g.duration = [](std::string_view) -> absl::StatusOr<int64_t> { return 7; };
  auto custom = ParseIntervals("start:x,duration:y", g);
  ASSERT_TRUE(custom.ok()) << custom.status();
  EXPECT_EQ((*custom)[0].start_ns(), 7);
}

// --- Flags ------------------------------------------------------------------

absl::StatusOr<std::optional<Policy>> ParseFlags(std::vector<std::string> args,
                                                 EffectFlags* flags = nullptr) {
  CLI::App app("test");
  EffectFlags local;
  if (flags == nullptr) flags = &local;
  AddEffectFlags(&app, flags);
  std::vector<std::string> rest;
  app.add_option("command", rest);
  args.insert(args.begin(), "fault");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(std::string("CLI: ") + e.what());
  }
  return PolicyFromFlags(*flags, "cli");
}

TEST(EffectFlagsTest, NoFlagsNoPolicy) {
  auto p = ParseFlags({"./app"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_FALSE(p->has_value());
}

TEST(EffectFlagsTest, FlagsGiveTheSameProtoAsTheFile) {
  EffectFlags flags;
  auto from_flags =
      ParseFlags({"--latency",
                  "7ms",
                  "--jitter",
                  "3ms",
                  "--packet-loss",
                  "0.2%",
                  "--burst-loss",
                  "2",
                  "--rate",
                  "1mbps",
                  "--connect-timeout",
                  "9ms",
                  "--recv-timeout",
                  "9ms",
                  "--target",
                  "tcp://10.0.0.0/8",
                  "--target",
                  "tcp://127.0.0.1:9000",
                  "--deny",
                  "write=ENOSPC,path=*.db-journal,prob=50%,when=3+",
                  "--delay",
                  "fsync=200ms",
                  "--deny",
                  "connect=ECONNREFUSED",
                  "--seed",
                  "42",
                  "./app",
                  "arg"},
                 &flags);
  ASSERT_TRUE(from_flags.ok()) << from_flags.status();
  ASSERT_TRUE(from_flags->has_value());
  const Policy from_file =
      One("cli:\n"
          "  latency: 7ms\n"
          "  jitter: 3ms\n"
          "  packet_loss: 0.2%\n"
          "  burst_loss: 2\n"
          "  rate: 1mbps\n"
          "  timeout: {connect: 9ms, recv: 9ms}\n"
          "  syscalls:\n"
          "    - write: {deny: ENOSPC, path: \"*.db-journal\", probability: "
          "50%, when: 3+}\n"
          "    - connect: deny(ECONNREFUSED)\n"
          "    - fsync: delay(200ms)\n"
          "  targets: [tcp://10.0.0.0/8, \"tcp://127.0.0.1:9000\"]\n"
          "  seed: 42\n");
  // Repeated flags keep their order within a kind; --deny rules come before
  // --delay rules (CLI11 reports options in declaration order).
  std::string diff;
  MessageDifferencer d;
  d.ReportDifferencesToString(&diff);
  EXPECT_TRUE(d.Compare(from_file, **from_flags)) << diff;
}

TEST(EffectFlagsTest, DistributionDirectionalDnsAndConnectionErrorFlags) {
  auto p = ParseFlags({"--latency-distribution",
                       "uniform",
                       "--latency-min",
                       "1ms",
                       "--latency-max",
                       "3ms",
                       "--uplink-latency",
                       "5ms",
                       "--downlink-packet-loss",
                       "1%",
                       "--dns-delay",
                       "1s",
                       "--dns-nxdomain",
                       "5%",
                       "--dns-timeout",
                       "1%",
                       "--connection-error",
                       "reset:5%",
                       "--blackhole",
                       "--target-hostname",
                       "api.example.com",
                       "--rate",
                       "2mbps",
                       "--rate-burst",
                       "16kb"});
  ASSERT_TRUE(p.ok()) << p.status();
  const Policy expected =
      One("cli:\n"
          "  latency: {distribution: uniform, min: 1ms, max: 3ms}\n"
          "  uplink: {latency: 5ms}\n"
          "  downlink: {packet_loss: 1%}\n"
          "  dns: {delay: 1s, nxdomain: 5%, timeout: 1%}\n"
          "  connection_error: {kind: reset, prob: 5%}\n"
          "  blackhole: true\n"
          "  rate: {rate: 2mbps, burst: 16kb}\n"
          "  targets: [{hostname: api.example.com}]\n");
  std::string diff;
  MessageDifferencer d;
  d.ReportDifferencesToString(&diff);
  EXPECT_TRUE(d.Compare(expected, **p)) << diff;
}

TEST(EffectFlagsTest, BlackholeDirectionAndPerOperationFlags) {
  auto p = ParseFlags({"--blackhole", "--blackhole-direction", "downlink",
                       "--per-operation", "--latency", "5ms"});
  ASSERT_TRUE(p.ok()) << p.status();
  const Policy expected =
      One("cli:\n"
          "  blackhole: true\n"
          "  blackhole_direction: downlink\n"
          "  per_operation: true\n"
          "  latency: 5ms\n");
  std::string diff;
  MessageDifferencer d;
  d.ReportDifferencesToString(&diff);
  EXPECT_TRUE(d.Compare(expected, **p)) << diff;

  auto error = [](std::vector<std::string> args) {
    auto p = ParseFlags(std::move(args));
    return p.ok() ? std::string("<ok>") : std::string(p.status().message());
  };
  EXPECT_EQ(
      error({"--latency", "1ms", "--blackhole-direction", "uplink"}),
      "--blackhole-direction: blackhole_direction only applies to a black "
      "hole (add blackhole: true)");
  EXPECT_EQ(error({"--blackhole", "--blackhole-direction", "sideways"}),
            "--blackhole-direction: unknown direction \"sideways\" (use both, "
            "uplink or downlink)");
  EXPECT_EQ(error({"--per-operation"}),
            "flags: no effect (give latency, packet_loss, syscalls, ...)");
}

TEST(EffectFlagsTest, ErrorsNameTheFlag) {
  auto error = [](std::vector<std::string> args) {
    auto p = ParseFlags(std::move(args));
    return p.ok() ? std::string("<ok>") : std::string(p.status().message());
  };
  EXPECT_EQ(error({"--packet-loss", "150%"}),
            "--packet-loss: \"150%\" is not a probability: above 100%");
  EXPECT_EQ(error({"--latency", "7 ms"}),
            "--latency: \"7 ms\" is not a duration: unknown unit \" ms\" (use "
            "ns, us, "
            "ms, s, m or h)");
  EXPECT_EQ(
      error({"--deny", "write=ENOSPC,prob=150%"}),
      "--deny write=ENOSPC,prob=150%: write.probability: \"150%\" is not a "
      "probability: above 100%");
  EXPECT_EQ(error({"--deny", "wrte=ENOSPC"}),
            "--deny wrte=ENOSPC: unknown syscall family \"wrte\" (did you mean "
            "\"write\"?)");
  EXPECT_EQ(
      error({"--deny", "write"}),
      "--deny \"write\": expected FAMILY=ERRNO[,path=GLOB][,prob=P][,when=W], "
      "e.g. write=ENOSPC");
  EXPECT_EQ(
      error({"--deny", "write=EIO,colour=red"}),
      "--deny write=EIO,colour=red: write: unknown field \"colour\" (known "
      "fields: deny, delay, path, probability, when)");
  EXPECT_EQ(
      error({"--deny", "connect=EIO,path=/x"}),
      "--deny connect=EIO,path=/x: path: path globs only apply to file "
      "families "
      "(open, read, write, fsync, fdatasync, close, unlink, rename, mkdir, "
      "ftruncate), not connect");
  EXPECT_EQ(error({"--burst-loss", "2"}),
            "--burst-loss: burst_loss needs packet_loss (it says how many "
            "packets are "
            "lost in a row once a loss starts)");
  EXPECT_EQ(
      error({"--connection-error", "boom"}),
      "--connection-error: kind: unknown connection error kind \"boom\" (use "
      "reset, refused or unreachable)");
  EXPECT_EQ(
      error({"--connect-timeout", "1s", "--target", "udp://:53"}),
      "--connect-timeout: timeout.connect needs tcp:// or any:// targets, and "
      "targets[0] \"udp://:53\" is udp (UDP has no connection to time out, "
      "refuse "
      "or half-close)");
  EXPECT_EQ(error({"--dns-delay", "1s", "--target", "tcp://:80"}),
            "--dns-delay: dns: DNS effects need hostname-only targets (a "
            "lookup has no "
            "address, port or TLS yet), and targets[0] \"tcp://:80\" selects "
            "by port");
  EXPECT_EQ(
      error({"--target", "tcp://:0", "--latency", "1ms"}),
      "--target tcp://:0: \"tcp://:0\" is not a target: port 0 is out of range "
      "(1..65535)");
  EXPECT_EQ(error({"--latency", "1ms", "--latency-min", "1ms"}),
            "--latency: cannot be combined with --latency-distribution and its "
            "parameters (--latency is a fixed delay)");
  EXPECT_EQ(
      error({"--latency-distribution", "uniform", "--latency-min", "9ms",
             "--latency-max", "1ms"}),
      "--latency-distribution: latency: uniform min 9ms is above max 1ms");
  EXPECT_EQ(error({"--target", "any://"}),
            "flags: no effect (give latency, packet_loss, syscalls, ...)");
}

TEST(SyscallFamilyTest, IoUringInFilesAndFlags) {
  Policy file = One("p: {syscalls: [{io_uring: {deny: ENOSYS}}]}");
  ASSERT_EQ(file.syscalls_size(), 1);
  EXPECT_EQ(file.syscalls(0).family(), fault::v1::SyscallFault::FAMILY_IO_URING);
  EXPECT_EQ(file.syscalls(0).action(), fault::v1::SyscallFault::ACTION_DENY);
  EXPECT_EQ(file.syscalls(0).errno_name(), "ENOSYS");
  EXPECT_EQ(internal::FamilyName(file.syscalls(0).family()), "io_uring");
  EXPECT_FALSE(internal::IsFileFamily(file.syscalls(0).family()));

  auto flags = ParseFlags({"--deny", "io_uring=ENOSYS"});
  ASSERT_TRUE(flags.ok()) << flags.status();
  ASSERT_TRUE(flags->has_value());
  ASSERT_EQ((*flags)->syscalls_size(), 1);
  EXPECT_EQ((*flags)->syscalls(0).family(), fault::v1::SyscallFault::FAMILY_IO_URING);
  EXPECT_EQ((*flags)->syscalls(0).errno_name(), "ENOSYS");

  EXPECT_EQ(Errors("p: {syscalls: [{io_uring: {deny: ENOSYS, path: \"/x\"}}]}"),
            "p.yaml:1:48: policy \"p\": syscalls[0].path: path globs only apply to "
            "file families (open, read, write, fsync, fdatasync, close, unlink, "
            "rename, mkdir, ftruncate), not io_uring");
  EXPECT_EQ(Errors("p: {syscalls: [{io_urin: {deny: ENOSYS}}]}"),
            "p.yaml:1:17: policy \"p\": syscalls[0]: unknown syscall family "
            "\"io_urin\" (did you mean \"io_uring\"?)");
}

TEST(EffectFlagsTest, ExceptLeavesFlagsOut) {
  CLI::App app("test");
  EffectFlags flags;
  AddEffectFlags(&app, &flags, {"latency-mean", "seed"});
  EXPECT_EQ(app.get_option_no_throw("--latency-mean"), nullptr);
  EXPECT_EQ(app.get_option_no_throw("--seed"), nullptr);
  EXPECT_NE(app.get_option_no_throw("--latency-stddev"), nullptr);
  EXPECT_NE(app.get_option_no_throw("--latency"), nullptr);
}

TEST(EffectFlagsTest, NamedPolicyOrInlineNotBoth) {
  EffectFlags none;
  EXPECT_TRUE(CheckNamedOrInline("slow_link", none).ok());
  EffectFlags flags;
  flags.given = {
      {"latency", "1ms"}, {"deny", "write=EIO"}, {"deny", "fsync=EIO"}};
  EXPECT_TRUE(CheckNamedOrInline("", flags).ok());
  EXPECT_EQ(
      CheckNamedOrInline("slow_link", flags).message(),
      "--use slow_link cannot be combined with effect flags (--latency, "
      "--deny): "
      "run a named policy from a file, or give the effects inline, not both");
}

}  // namespace
}  // namespace fault::policy
