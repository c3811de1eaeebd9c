#include "supervisor/exec/table_compiler.h"

#include <arpa/inet.h>
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <string>

#include "absl/strings/match.h"

namespace fault::exec {
namespace {

fault::v1::PolicySet Parse(const std::string& text) {
  fault::v1::PolicySet set;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &set)) << text;
  return set;
}

absl::StatusOr<CompiledTable> Compile(const std::string& text,
                                      CompileOptions options = {}) {
  static FixedSeedSource seeds(777);
  if (options.seeds == nullptr) options.seeds = &seeds;
  return CompileTable(Parse(text), options);
}

TEST(TableCompilerTest, MergesLinkAndDirectionOverridesFieldByField) {
  auto t = Compile(R"pb(
    policies {
      name: "slow"
      link {
        latency { distribution: DISTRIBUTION_FIXED fixed_ns: 50000000 }
        jitter_ns: 5000000
        packet_loss_ppm: 10000
        rate { rate_bps: 8000000 }
      }
      uplink { packet_loss_ppm: 20000 }
      downlink {
        latency { distribution: DISTRIBUTION_UNIFORM min_ns: 1 max_ns: 9 }
        rate { rate_bps: 1000000 burst_bytes: 4096 }
      }
    })pb");
  ASSERT_TRUE(t.ok()) << t.status();
  const fault_rule& r = t->config->rules[0];
  EXPECT_EQ(t->config->n_rules, 1u);
  EXPECT_STREQ(r.name, "slow");
  // Uplink: link values, loss overridden.
  EXPECT_EQ(r.uplink.distribution, FAULT_DIST_FIXED);
  EXPECT_EQ(r.uplink.fixed_ns, 50000000);
  EXPECT_EQ(r.uplink.jitter_ns, 5000000);
  EXPECT_EQ(r.uplink.loss_ppm, 20000u);
  EXPECT_EQ(r.uplink.rate_bps, 8000000u);
  EXPECT_EQ(r.uplink.rate_burst_bytes, 10000u);  // 8 Mbit/s / 8 / 100
  // Downlink: latency replaced as a whole, jitter and loss inherited.
  EXPECT_EQ(r.downlink.distribution, FAULT_DIST_UNIFORM);
  EXPECT_EQ(r.downlink.fixed_ns, 0);
  EXPECT_EQ(r.downlink.min_ns, 1);
  EXPECT_EQ(r.downlink.max_ns, 9);
  EXPECT_EQ(r.downlink.jitter_ns, 5000000);
  EXPECT_EQ(r.downlink.loss_ppm, 10000u);
  EXPECT_EQ(r.downlink.rate_bps, 1000000u);
  EXPECT_EQ(r.downlink.rate_burst_bytes, 4096u);
  EXPECT_TRUE(r.flags & FAULT_RULE_ACTIVE);
}

TEST(TableCompilerTest, SmallRateGetsOneMtuOfBurst) {
  auto t = Compile(R"pb(policies { name: "r" link { rate { rate_bps: 64000 } } })pb");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->config->rules[0].uplink.rate_burst_bytes, 1500u);
}

TEST(TableCompilerTest, ResolvesTargets) {
  auto t = Compile(R"pb(
    policies {
      name: "t"
      targets { protocol: PROTOCOL_TCP cidr: "10.1.2.3/8" port_min: 80 port_max: 90 priority: 5 }
      targets { protocol: PROTOCOL_UDP cidr: "127.0.0.1" port_min: 53 }
      targets { cidr: "fd00::1/64" }
      targets { protocol: PROTOCOL_ANY hostname: "*.example.com" }
      targets { sni: "api.example.com" }
      targets { protocol: PROTOCOL_TCP }
    })pb");
  ASSERT_TRUE(t.ok()) << t.status();
  const fault_rule& r = t->config->rules[0];
  ASSERT_EQ(r.n_targets, 6u);
  ASSERT_EQ(r.first_target, 0u);
  const fault_target* targets = t->config->targets;
  EXPECT_EQ(targets[0].kind, FAULT_TARGET_CIDR);
  EXPECT_EQ(targets[0].protocol, FAULT_PROTO_TCP);
  EXPECT_EQ(targets[0].family, AF_INET);
  EXPECT_EQ(targets[0].prefix_len, 8);
  EXPECT_EQ(targets[0].addr[0], 10);
  EXPECT_EQ(targets[0].addr[1], 0);  // host bits cleared
  EXPECT_EQ(targets[0].port_min, 80);
  EXPECT_EQ(targets[0].port_max, 90);
  EXPECT_EQ(targets[0].priority, 5);
  EXPECT_EQ(targets[1].prefix_len, 32);
  EXPECT_EQ(targets[1].protocol, FAULT_PROTO_UDP);
  EXPECT_EQ(targets[1].port_min, 53);
  EXPECT_EQ(targets[1].port_max, 53);  // a single port
  EXPECT_EQ(targets[2].family, AF_INET6);
  EXPECT_EQ(targets[2].prefix_len, 64);
  EXPECT_EQ(targets[2].addr[0], 0xfd);
  EXPECT_EQ(targets[2].addr[15], 0);  // host bits cleared
  EXPECT_EQ(targets[3].kind, FAULT_TARGET_HOSTNAME);
  EXPECT_EQ(targets[3].protocol, FAULT_PROTO_ANY);
  EXPECT_STREQ(targets[3].name, "*.example.com");
  EXPECT_EQ(targets[4].kind, FAULT_TARGET_SNI);
  EXPECT_EQ(targets[5].kind, FAULT_TARGET_ANY);
  EXPECT_EQ(targets[5].port_min, 0);
}

TEST(TableCompilerTest, BadCidrNamesPolicyAndTarget) {
  auto t = Compile(R"pb(policies { name: "p" targets { cidr: "10.0.0.300" } })pb");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(),
            "policy \"p\": targets[0]: \"10.0.0.300\" is not an IPv4 or IPv6 address");
  t = Compile(R"pb(policies { name: "p" targets { cidr: "10.0.0.0/33" } })pb");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(),
            "policy \"p\": targets[0]: prefix length 33 in \"10.0.0.0/33\" is out of range 0..32");
}

TEST(TableCompilerTest, BadPortRange) {
  auto t = Compile(R"pb(policies { name: "p" targets { port_min: 90 port_max: 80 } })pb");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(),
            "policy \"p\": targets[0]: port range 90-80 is empty (min > max)");
}

TEST(TableCompilerTest, SyscallFaultsWithErrnoNames) {
  auto t = Compile(R"pb(
    policies { name: "a" }
    policies {
      name: "disk"
      syscalls { family: FAMILY_FSYNC action: ACTION_DENY errno_name: "EIO" }
      syscalls {
        family: FAMILY_WRITE action: ACTION_DENY errno_name: "ENOSPC"
        path_glob: "*.db-journal" probability_ppm: 500000
        when { first: 3 last: 5 step: 1 }
      }
      syscalls { family: FAMILY_READ action: ACTION_DELAY delay_ns: 1000 }
    })pb");
  ASSERT_TRUE(t.ok()) << t.status();
  const fault_config& c = *t->config;
  ASSERT_EQ(c.n_syscall_rules, 3u);
  EXPECT_EQ(c.syscall_rules[0].rule, 1);
  EXPECT_EQ(c.syscall_rules[0].family, 4);
  EXPECT_EQ(c.syscall_rules[0].action, 1);
  EXPECT_EQ(c.syscall_rules[0].err, EIO);
  EXPECT_EQ(c.syscall_rules[0].probability_ppm, 1000000u);  // 0 means always
  EXPECT_EQ(c.syscall_rules[1].err, ENOSPC);
  EXPECT_STREQ(c.syscall_rules[1].path_glob, "*.db-journal");
  EXPECT_EQ(c.syscall_rules[1].probability_ppm, 500000u);
  EXPECT_EQ(c.syscall_rules[1].when_first, 3u);
  EXPECT_EQ(c.syscall_rules[1].when_last, 5u);
  EXPECT_EQ(c.syscall_rules[2].action, 2);
  EXPECT_EQ(c.syscall_rules[2].delay_ns, 1000);
  EXPECT_EQ(SyscallFamiliesMask(c), (1u << 4) | (1u << 3) | (1u << 2));
}

TEST(TableCompilerTest, UnknownErrnoNameIsAnError) {
  auto t = Compile(R"pb(policies {
    name: "d" syscalls { family: FAMILY_FSYNC action: ACTION_DENY errno_name: "EBOGUS" }
  })pb");
  ASSERT_FALSE(t.ok());
  EXPECT_TRUE(absl::StartsWith(t.status().message(), "policy \"d\": syscalls[0]: "))
      << t.status();
  EXPECT_NE(t.status().message().find("EBOGUS"), std::string::npos);
}

TEST(TableCompilerTest, ConnectionErrorHalfOpenBudgetDns) {
  auto t = Compile(R"pb(policies {
    name: "n"
    timeout { connect_ns: 300000000 recv_ns: 7 }
    connection_error { kind: KIND_REFUSED probability_ppm: 1000000 }
    half_open { after_bytes: 100 error: "ECONNRESET" }
    blackhole: true
    session_budget { max_tx_bytes: 10 action: ACTION_CONNECTION_ERROR }
    dns { delay_ns: 5 nxdomain_ppm: 1000000 timeout_ppm: 3 }
  })pb");
  ASSERT_TRUE(t.ok()) << t.status();
  const fault_rule& r = t->config->rules[0];
  EXPECT_EQ(r.timeout_connect_ns, 300000000);
  EXPECT_EQ(r.timeout_recv_ns, 7);
  EXPECT_EQ(r.conn_error_errno, ECONNREFUSED);
  EXPECT_EQ(r.conn_error_ppm, 1000000u);
  EXPECT_EQ(r.half_open_after_bytes, 100u);
  EXPECT_EQ(r.half_open_errno, ECONNRESET);
  EXPECT_TRUE(r.flags & FAULT_RULE_BLACKHOLE);
  EXPECT_EQ(r.budget_max_tx, 10u);
  EXPECT_EQ(r.budget_errno, ECONNRESET);  // the action's default
  EXPECT_EQ(r.dns_delay_ns, 5);
  EXPECT_EQ(r.dns_nxdomain_ppm, 1000000u);
  EXPECT_EQ(r.dns_timeout_ppm, 3u);
}

TEST(TableCompilerTest, BlackholeDirectionPerOperationAndHttpError) {
  auto t = Compile(R"pb(
    policies { name: "up" blackhole: true blackhole_direction: DIRECTION_UPLINK }
    policies { name: "down" blackhole: true blackhole_direction: DIRECTION_DOWNLINK }
    policies { name: "both" blackhole: true }
    policies {
      name: "http"
      per_operation: true
      http_error { status: 503 body: "not in the table" probability_ppm: 250000 }
    })pb");
  ASSERT_TRUE(t.ok()) << t.status();
  const fault_rule* r = t->config->rules;
  EXPECT_TRUE(r[0].flags & FAULT_RULE_BLACKHOLE);
  EXPECT_EQ(r[0].blackhole_direction, 2u);  // fault.v1.DIRECTION_UPLINK
  EXPECT_EQ(r[1].blackhole_direction, 3u);  // fault.v1.DIRECTION_DOWNLINK
  EXPECT_EQ(r[2].blackhole_direction, 0u);  // unspecified: both
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(r[i].flags & FAULT_RULE_PER_OP) << i;
    EXPECT_EQ(r[i].http_status, 0u) << i;
    EXPECT_EQ(r[i].http_error_ppm, 0u) << i;
  }
  EXPECT_FALSE(r[3].flags & FAULT_RULE_BLACKHOLE);
  EXPECT_TRUE(r[3].flags & FAULT_RULE_PER_OP);
  EXPECT_EQ(r[3].http_status, 503u);
  EXPECT_EQ(r[3].http_error_ppm, 250000u);

  t = Compile(R"pb(policies { name: "h" http_error { status: 99 probability_ppm: 1 } })pb");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(),
            "policy \"h\": http_error.status: 99 is not an HTTP status (100..599)");
  t = Compile(
      R"pb(policies { name: "h" http_error { status: 500 probability_ppm: 1000001 } })pb");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(),
            "policy \"h\": http_error.probability: 1000001ppm is more than 100% "
            "(1000000ppm)");
  fault::v1::PolicySet set = Parse(R"pb(policies { name: "d" blackhole: true })pb");
  set.mutable_policies(0)->set_blackhole_direction(static_cast<fault::v1::Direction>(7));
  FixedSeedSource seeds(1);
  CompileOptions options;
  options.seeds = &seeds;
  EXPECT_EQ(CompileTable(set, options).status().message(),
            "policy \"d\": blackhole_direction: unknown direction 7");
}

TEST(TableCompilerTest, PercentIntervalsNeedRunDuration) {
  const char* text = R"pb(policies {
    name: "s"
    schedule {
      kind: KIND_INTERVALS
      intervals { start_ppm: 100000 duration_ppm: 500000 }
      intervals { start_ppm: 750000 duration_ppm: 200000 }
    }
  })pb";
  auto t = Compile(text);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(),
            "policy \"s\": schedule intervals in percent need a run duration "
            "(schedule.run_duration or --run-duration)");
  CompileOptions options;
  options.run_duration_ns = 10000000000;  // 10 s
  t = Compile(text, options);
  ASSERT_TRUE(t.ok()) << t.status();
  const fault_schedule& s = t->config->rules[0].schedule;
  EXPECT_EQ(s.kind, 5u);
  ASSERT_EQ(s.n_intervals, 2u);
  EXPECT_EQ(s.interval_start_ns[0], 1000000000);
  EXPECT_EQ(s.interval_duration_ns[0], 5000000000);
  EXPECT_EQ(s.interval_start_ns[1], 7500000000);
  EXPECT_EQ(s.interval_duration_ns[1], 2000000000);
}

TEST(TableCompilerTest, ScheduleOwnRunDurationWins) {
  auto t = Compile(R"pb(policies {
    name: "s"
    schedule { kind: KIND_INTERVALS run_duration_ns: 1000 intervals { start_ppm: 500000 duration_ppm: 100000 } }
  })pb");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->config->rules[0].schedule.interval_start_ns[0], 500);
  EXPECT_EQ(t->config->rules[0].schedule.interval_duration_ns[0], 100);
}

TEST(TableCompilerTest, SeedsPolicyThenGlobalThenRandom) {
  const char* text = R"pb(policies { name: "own" seed: 5 } policies { name: "none" })pb";
  FixedSeedSource random(99);
  CompileOptions options;
  options.seeds = &random;
  auto t = Compile(text, options);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->config->rules[0].seed, 5u);
  EXPECT_EQ(t->config->rules[1].seed, 99u);
  EXPECT_TRUE(t->config->rules[1].flags & FAULT_RULE_HAS_SEED);
  EXPECT_EQ(t->rules[0].seed_origin, "policy");
  EXPECT_EQ(t->rules[1].seed_origin, "random");
  EXPECT_EQ(t->run_seed, 99u);
  EXPECT_TRUE(t->run_seed_random);
  EXPECT_EQ(random.calls(), 1);

  options.global_seed = 1;
  t = Compile(text, options);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->config->rules[0].seed, 5u);
  EXPECT_EQ(t->config->rules[1].seed, 1u);
  EXPECT_EQ(t->rules[1].seed_origin, "--seed");
  EXPECT_FALSE(t->run_seed_random);
  EXPECT_EQ(random.calls(), 1);  // not asked again
}

TEST(TableCompilerTest, EverySeedGivenMeansNoRunSeed) {
  FixedSeedSource random(99);
  CompileOptions options;
  options.seeds = &random;
  auto t = Compile(R"pb(policies { name: "own" seed: 5 })pb", options);
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->run_seed.has_value());
  EXPECT_EQ(random.calls(), 0);
}

TEST(TableCompilerTest, ScopesOnlyLeavesRulesInactive) {
  CompileOptions options;
  options.activate = false;
  auto t = Compile(R"pb(policies { name: "scoped" link { packet_loss_ppm: 1 } })pb", options);
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->config->rules[0].flags & FAULT_RULE_ACTIVE);
}

TEST(TableCompilerTest, TargetsOfAllPoliciesShareOnePool) {
  std::string text = "policies { name: \"a\" targets { port_min: 7 } } ";
  text += "policies { name: \"none\" } policies { name: \"b\" ";
  for (int i = 0; i < 200; ++i) {
    text += "targets { port_min: " + std::to_string(1000 + i) + " } ";
  }
  auto t = Compile(text + "}");
  ASSERT_TRUE(t.ok()) << t.status();
  const fault_config& c = *t->config;
  EXPECT_EQ(c.n_targets, 201u);
  EXPECT_EQ(c.rules[0].first_target, 0u);
  EXPECT_EQ(c.rules[0].n_targets, 1u);
  EXPECT_EQ(c.targets[0].port_min, 7);
  EXPECT_EQ(c.rules[1].n_targets, 0u);
  EXPECT_EQ(c.rules[2].first_target, 1u);
  EXPECT_EQ(c.rules[2].n_targets, 200u);
  EXPECT_EQ(c.targets[1].port_min, 1000);
  EXPECT_EQ(c.targets[200].port_min, 1199);
  EXPECT_EQ(c.targets[200].port_max, 1199);
}

TEST(TableCompilerTest, LimitsAreErrors) {
  std::string many;
  for (int i = 0; i <= FAULT_MAX_RULES; ++i) many += "policies { name: \"p" + std::to_string(i) + "\" }";
  auto t = Compile(many);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(), "65 policies; the table holds at most 64 (FAULT_MAX_RULES)");

  // The bound is on all policies' targets together: 2 x 512 fit, one more
  // does not.
  std::string targets;
  for (int p = 0; p < 2; ++p) {
    targets += "policies { name: \"t" + std::to_string(p) + "\" ";
    for (int i = 0; i < FAULT_MAX_TARGETS_TOTAL / 2; ++i) targets += "targets { port_min: 1 } ";
    targets += "} ";
  }
  t = Compile(targets);
  ASSERT_TRUE(t.ok()) << t.status();
  t = Compile(targets + "policies { name: \"u\" targets { port_min: 2 } }");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(),
            "1025 targets in all policies; the table holds at most 1024 "
            "(FAULT_MAX_TARGETS_TOTAL)");

  std::string syscalls = "policies { name: \"s\" ";
  for (int i = 0; i <= FAULT_MAX_SYSCALL_RULES; ++i) {
    syscalls += "syscalls { family: FAMILY_READ action: ACTION_DELAY delay_ns: 1 } ";
  }
  t = Compile(syscalls + "}");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(),
            "129 syscall faults in all policies; the table holds at most 128 "
            "(FAULT_MAX_SYSCALL_RULES)");

  t = Compile("policies { name: \"" + std::string(64, 'x') + "\" }");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(), "policy \"" + std::string(64, 'x') +
                                      "\": name \"" + std::string(64, 'x') +
                                      "\" is 64 bytes long; the table holds at most 63");

  t = Compile(R"pb(policies { name: "g" syscalls { family: FAMILY_OPEN action: ACTION_DENY errno_name: "EACCES" path_glob: ")pb" +
              std::string(256, 'a') + "\" } }");
  ASSERT_FALSE(t.ok());
  EXPECT_TRUE(absl::StrContains(t.status().message(), "syscalls[0].path"));
}

TEST(TableCompilerTest, DuplicateNamesAndProbabilityBounds) {
  auto t = Compile(R"pb(policies { name: "x" } policies { name: "x" })pb");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(), "policy \"x\": defined twice; policy names must be unique");
  t = Compile(R"pb(policies { name: "x" link { packet_loss_ppm: 1000001 } })pb");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(),
            "policy \"x\": uplink.packet_loss: 1000001ppm is more than 100% (1000000ppm)");
}

}  // namespace
}  // namespace fault::exec
