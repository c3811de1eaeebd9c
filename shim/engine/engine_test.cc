#include "shim/engine/engine.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gtest/gtest.h>
#include <netdb.h>
#include <netinet/in.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace fault::engine {
namespace {

// A heap-allocated table (1 MiB) initialised at simulated time 1000 s.
struct TableHolder {
  std::unique_ptr<fault_table> t{new fault_table};
  std::unique_ptr<fault_config> cfg{new fault_config};
  TableHolder() {
    InitTable(t.get(), 1000'000'000'000);
    memset(cfg.get(), 0, sizeof(fault_config));
  }
  fault_rule& Rule(int i) {
    if (cfg->n_rules <= static_cast<uint32_t>(i)) cfg->n_rules = i + 1;
    return cfg->rules[i];
  }
  fault_syscall_rule& Sys(int i) {
    if (cfg->n_syscall_rules <= static_cast<uint32_t>(i))
      cfg->n_syscall_rules = i + 1;
    return cfg->syscall_rules[i];
  }
  void Publish() { engine::Publish(t.get(), cfg.get()); }
  Index Idx() {
    Index idx;
    EXPECT_TRUE(BuildIndex(t.get(), &idx));
    return idx;
  }
};

fault_target Cidr(const char* addr, int prefix, uint16_t pmin = 0,
                  uint16_t pmax = 0, int32_t prio = 0,
                  uint8_t proto = FAULT_PROTO_ANY) {
  fault_target t;
  memset(&t, 0, sizeof(t));
  t.kind = FAULT_TARGET_CIDR;
  t.protocol = proto;
  t.prefix_len = static_cast<uint8_t>(prefix);
  if (strchr(addr, ':')) {
    t.family = AF_INET6;
    inet_pton(AF_INET6, addr, t.addr);
  } else {
    t.family = AF_INET;
    inet_pton(AF_INET, addr, t.addr);
  }
  t.port_min = pmin;
  t.port_max = pmax;
  t.priority = prio;
  return t;
}

Endpoint Ep(const char* addr, uint16_t port, uint8_t proto = FAULT_PROTO_TCP) {
  Endpoint ep;
  if (strchr(addr, ':')) {
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(port);
    inet_pton(AF_INET6, addr, &sa.sin6_addr);
    EXPECT_TRUE(SetEndpointAddress(&ep, &sa, sizeof(sa)));
  } else {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    inet_pton(AF_INET, addr, &sa.sin_addr);
    EXPECT_TRUE(SetEndpointAddress(&ep, &sa, sizeof(sa)));
  }
  ep.protocol = proto;
  return ep;
}

// ---------------------------------------------------------------- seqlock ---

TEST(Seqlock, InitAndPublishBumpGeneration) {
  TableHolder h;
  EXPECT_TRUE(TableValid(h.t.get()));
  EXPECT_EQ(h.t->seq, 2u);
  EXPECT_EQ(h.t->config.generation, 1u);
  h.Rule(0).flags = FAULT_RULE_ACTIVE;
  h.Publish();
  EXPECT_EQ(h.t->seq, 4u);
  EXPECT_EQ(h.t->config.generation, 2u);
  Index idx = h.Idx();
  EXPECT_EQ(idx.seq, 4u);
  EXPECT_EQ(idx.generation, 2u);
  EXPECT_EQ(idx.n_rules, 1u);
  EXPECT_EQ(idx.active, 1u);
}

TEST(Seqlock, WriterDeadMidPublishGivesUpInsteadOfHanging) {
  TableHolder h;
  h.t->seq = 7;  // odd forever
  Index idx;
  EXPECT_FALSE(BuildIndex(h.t.get(), &idx));
}

TEST(Seqlock, BadHeaderIsRejected) {
  TableHolder h;
  h.t->version = 99;
  Index idx;
  EXPECT_FALSE(BuildIndex(h.t.get(), &idx));
}

TEST(Seqlock, StaleSequenceFailsReads) {
  TableHolder h;
  h.Rule(0).seed = 5;
  h.Publish();
  Index idx = h.Idx();
  h.Publish();
  fault_rule r;
  EXPECT_FALSE(ReadRule(h.t.get(), idx.seq, 0, &r));
  idx = h.Idx();
  EXPECT_TRUE(ReadRule(h.t.get(), idx.seq, 0, &r));
  EXPECT_EQ(r.seed, 5u);
}

// A reader never sees a mix of two publishes.
TEST(Seqlock, ConcurrentPublishNeverTears) {
  TableHolder h;
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (uint64_t g = 1; g <= 2000; ++g) {
      for (int i = 0; i < 4; ++i) {
        h.Rule(i).seed = g;
        h.Rule(i).timeout_connect_ns = static_cast<int64_t>(g);
        h.Rule(i).dns_delay_ns = static_cast<int64_t>(g);
      }
      h.Publish();
    }
    stop = true;
  });
  int consistent = 0;
  for (int n = 0; n < 200000 && !stop; ++n) {
    Index idx;
    if (!BuildIndex(h.t.get(), &idx)) continue;
    fault_rule r;
    if (!ReadRule(h.t.get(), idx.seq, 3, &r)) continue;
    ASSERT_EQ(r.seed, static_cast<uint64_t>(r.timeout_connect_ns));
    ASSERT_EQ(r.seed, static_cast<uint64_t>(r.dns_delay_ns));
    ++consistent;
  }
  writer.join();
  EXPECT_GT(consistent, 0);
}

// ------------------------------------------------------------------ index ---

TEST(Index, MasksAndFeatures) {
  TableHolder h;
  h.Rule(0).flags = FAULT_RULE_ACTIVE;
  h.Rule(0).uplink.fixed_ns = 1000;
  h.Rule(1).dns_nxdomain_ppm = 10;
  h.Rule(1).n_targets = 1;
  h.Rule(1).first_target = 0;
  h.cfg->targets[0].kind = FAULT_TARGET_HOSTNAME;
  strcpy(h.cfg->targets[0].name, "example.com");
  h.Rule(2).flags = FAULT_RULE_ACTIVE;
  h.Rule(2).downlink.reorder_ppm = 5;
  h.Sys(0).rule = 2;
  h.Sys(0).family = kFamilyFsync;
  h.Sys(1).rule = 0;
  h.Sys(1).family = kFamilyWrite;
  h.cfg->families_mask = FamilyBit(kFamilyFsync);
  h.Publish();
  Index idx = h.Idx();
  EXPECT_EQ(idx.active, 0b101u);
  EXPECT_EQ(idx.net, 0b101u);
  EXPECT_EQ(idx.dns, 0b010u);
  EXPECT_EQ(idx.hostname, 0b010u);
  EXPECT_EQ(idx.families_mask, FamilyBit(kFamilyFsync));
  EXPECT_EQ(idx.family_rules[kFamilyFsync][0], 1u);
  EXPECT_EQ(idx.family_rules[kFamilyWrite][0], 2u);
  EXPECT_EQ(idx.family_owner_rules[kFamilyFsync], 0b100u);
  EXPECT_EQ(idx.syscall_families,
            FamilyBit(kFamilyFsync) | FamilyBit(kFamilyWrite));
  EXPECT_TRUE(idx.features & kFeatReorder);
  EXPECT_TRUE(idx.features & kFeatLatency);
  EXPECT_FALSE(idx.features & kFeatMutation);
}

// HTTP errors and per-operation decisions are no network features: a rule
// with only those neither joins the net mask nor goes through the stream
// engine, so fault exec treats existing policies as before.
TEST(Index, HttpErrorAndPerOperationAreNoStreamEffects) {
  TableHolder h;
  h.Rule(0).flags = FAULT_RULE_ACTIVE;
  h.Rule(0).http_status = 503;
  h.Rule(0).http_error_ppm = 1000000;
  h.Rule(1).flags = FAULT_RULE_ACTIVE | FAULT_RULE_PER_OP;
  h.Rule(2).flags = FAULT_RULE_ACTIVE | FAULT_RULE_PER_OP;
  h.Rule(2).uplink.fixed_ns = 1000;
  h.Rule(3).flags = FAULT_RULE_ACTIVE | FAULT_RULE_BLACKHOLE;
  h.Rule(3).blackhole_direction = kDirectionDownlink;
  h.Publish();
  Index idx = h.Idx();
  EXPECT_EQ(idx.net, 0b1100u);
  EXPECT_TRUE(idx.features & kFeatHttpError);
  EXPECT_EQ(RuleFeatures(h.cfg->rules[0]), kFeatHttpError);
  EXPECT_EQ(RuleFeatures(h.cfg->rules[1]), 0u);
  EXPECT_FALSE(HasStreamEffects(h.t.get(), h.cfg->rules[0]));
  EXPECT_FALSE(HasStreamEffects(h.t.get(), h.cfg->rules[1]));
  EXPECT_TRUE(HasStreamEffects(h.t.get(), h.cfg->rules[2]));
  EXPECT_TRUE(HasStreamEffects(h.t.get(), h.cfg->rules[3]));
  // An HTTP error next to stream effects changes nothing about them.
  h.Rule(2).http_status = 500;
  EXPECT_TRUE(HasStreamEffects(h.t.get(), h.cfg->rules[2]));
  EXPECT_EQ(RuleFeatures(h.cfg->rules[2]) & kNetFeatures, kFeatLatency);
}

TEST(Index, FindRuleByName) {
  TableHolder h;
  strcpy(h.Rule(0).name, "slow");
  strcpy(h.Rule(1).name, "flaky_db");
  h.Publish();
  Index idx = h.Idx();
  EXPECT_EQ(FindRuleByName(h.t.get(), idx, "flaky_db"), 1);
  EXPECT_EQ(FindRuleByName(h.t.get(), idx, "slow"), 0);
  EXPECT_EQ(FindRuleByName(h.t.get(), idx, "nope"), -1);
}

// --------------------------------------------------------------- matching ---

TEST(Match, EndpointNormalisesMappedV6) {
  Endpoint ep = Ep("::ffff:10.1.2.3", 80);
  EXPECT_EQ(ep.family, AF_INET);
  EXPECT_EQ(ep.port, 80);
  EXPECT_EQ(ep.addr[0], 10);
  EXPECT_EQ(ep.addr[3], 3);
  Endpoint v6 = Ep("2001:db8::1", 443);
  EXPECT_EQ(v6.family, AF_INET6);
}

TEST(Match, Names) {
  EXPECT_TRUE(NameMatches("example.com", "EXAMPLE.com"));
  EXPECT_TRUE(NameMatches("example.com", "example.com."));
  EXPECT_FALSE(NameMatches("example.com", "www.example.com"));
  EXPECT_TRUE(NameMatches("*.example.com", "api.example.com"));
  EXPECT_TRUE(NameMatches("*.example.com", "a.b.example.com"));
  EXPECT_FALSE(NameMatches("*.example.com", "example.com"));
  EXPECT_FALSE(NameMatches("*.example.com", "badexample.com"));
  EXPECT_TRUE(NameMatches("*", "anything"));
  EXPECT_FALSE(NameMatches("", "x"));
}

TEST(Match, Cidr) {
  EXPECT_TRUE(CidrMatches(Cidr("10.0.0.0", 8), Ep("10.200.1.1", 1)));
  EXPECT_FALSE(CidrMatches(Cidr("10.0.0.0", 8), Ep("11.0.0.1", 1)));
  EXPECT_TRUE(CidrMatches(Cidr("192.168.1.128", 25), Ep("192.168.1.200", 1)));
  EXPECT_FALSE(CidrMatches(Cidr("192.168.1.128", 25), Ep("192.168.1.100", 1)));
  EXPECT_TRUE(CidrMatches(Cidr("127.0.0.1", 32), Ep("127.0.0.1", 1)));
  EXPECT_TRUE(CidrMatches(Cidr("0.0.0.0", 0), Ep("8.8.8.8", 1)));
  EXPECT_TRUE(CidrMatches(Cidr("2001:db8::", 32), Ep("2001:db8:1::5", 1)));
  EXPECT_FALSE(CidrMatches(Cidr("2001:db8::", 32), Ep("2001:db9::5", 1)));
  EXPECT_FALSE(CidrMatches(Cidr("::", 0), Ep("1.2.3.4", 1)));  // family differs
}

TEST(Match, ProtocolAndPorts) {
  fault_target t = Cidr("127.0.0.1", 32, 8000, 8100, 0, FAULT_PROTO_TCP);
  EXPECT_TRUE(TargetMatches(t, Ep("127.0.0.1", 8000)));
  EXPECT_TRUE(TargetMatches(t, Ep("127.0.0.1", 8100)));
  EXPECT_FALSE(TargetMatches(t, Ep("127.0.0.1", 8101)));
  EXPECT_FALSE(TargetMatches(t, Ep("127.0.0.1", 8050, FAULT_PROTO_UDP)));
  fault_target single = Cidr("127.0.0.1", 32, 53, 0);  // port_max 0: just 53
  EXPECT_TRUE(TargetMatches(single, Ep("127.0.0.1", 53, FAULT_PROTO_UDP)));
  EXPECT_FALSE(TargetMatches(single, Ep("127.0.0.1", 54, FAULT_PROTO_UDP)));
  fault_target any{};
  any.protocol = 3;  // fault.v1 PROTOCOL_ANY
  EXPECT_TRUE(TargetMatches(any, Ep("1.2.3.4", 9, FAULT_PROTO_UDP)));
}

TEST(Match, Hostname) {
  fault_target t{};
  t.kind = FAULT_TARGET_HOSTNAME;
  strcpy(t.name, "*.svc.local");
  Endpoint ep = Ep("10.0.0.1", 80);
  EXPECT_FALSE(TargetMatches(t, ep));
  ep.hostname = "db.svc.local";
  EXPECT_TRUE(TargetMatches(t, ep));
}

TEST(Match, PickRuleByPriorityThenIndex) {
  TableHolder h;
  h.Rule(0).n_targets = 1;
  h.Rule(0).first_target = 0;
  h.cfg->targets[0] = Cidr("127.0.0.0", 8, 0, 0, 1);
  h.Rule(1).n_targets = 2;
  h.Rule(1).first_target = 1;
  h.cfg->targets[1] = Cidr("10.0.0.0", 8, 0, 0, 9);
  h.cfg->targets[2] = Cidr("127.0.0.1", 32, 80, 80, 5);
  h.Rule(2).n_targets = 1;
  h.Rule(2).first_target = 3;
  h.cfg->targets[3] = Cidr("127.0.0.1", 32, 0, 0, 5);
  h.Rule(3).n_targets = 0;  // everything, priority 0
  h.Publish();
  Index idx = h.Idx();
  EXPECT_EQ(PickRule(h.t.get(), idx, 0b1111, Ep("127.0.0.1", 80)),
            1);  // 5 beats 1, index 1 < 2
  EXPECT_EQ(PickRule(h.t.get(), idx, 0b1101, Ep("127.0.0.1", 80)), 2);
  EXPECT_EQ(PickRule(h.t.get(), idx, 0b1111, Ep("127.0.0.1", 81)), 2);
  EXPECT_EQ(PickRule(h.t.get(), idx, 0b1111, Ep("8.8.8.8", 81)), 3);
  EXPECT_EQ(PickRule(h.t.get(), idx, 0b0111, Ep("8.8.8.8", 81)), -1);
  EXPECT_EQ(PickRule(h.t.get(), idx, 0b1111, Ep("10.1.1.1", 1)), 1);
}

// Targets live in one pool shared by all rules; a rule's span may be far
// longer than the old per-rule bound of 8, and only its own span counts.
TEST(Match, RuleSpansInTheSharedTargetPool) {
  TableHolder h;
  h.Rule(0).n_targets = 2;
  h.Rule(0).first_target = 0;
  h.cfg->targets[0] = Cidr("10.0.0.1", 32, 0, 0, 0);
  h.cfg->targets[1] = Cidr("10.0.0.2", 32, 0, 0, 0);
  h.Rule(1).n_targets = 300;
  h.Rule(1).first_target = 2;
  for (int i = 0; i < 300; ++i) {
    h.cfg->targets[2 + i] =
        Cidr("192.168.0.1", 32, static_cast<uint16_t>(1000 + i),
             static_cast<uint16_t>(1000 + i), i == 299 ? 7 : 0);
  }
  h.cfg->n_targets = 302;
  h.Publish();
  Index idx = h.Idx();
  EXPECT_EQ(PickRule(h.t.get(), idx, 0b11, Ep("192.168.0.1", 1299)), 1);
  EXPECT_EQ(PickRule(h.t.get(), idx, 0b11, Ep("192.168.0.1", 1300)), -1);
  // Rule 0 does not see rule 1's targets, nor rule 1 rule 0's.
  EXPECT_EQ(PickRule(h.t.get(), idx, 0b01, Ep("192.168.0.1", 1299)), -1);
  EXPECT_EQ(PickRule(h.t.get(), idx, 0b10, Ep("10.0.0.2", 80)), -1);
  int32_t prio = -1;
  EXPECT_EQ(RuleTargetsMatch(h.t.get(), idx.seq, 1, Ep("192.168.0.1", 1299),
                             &prio),
            TargetMatch::kYes);
  EXPECT_EQ(prio, 7);
  EXPECT_EQ(RuleTargetsMatch(h.t.get(), idx.seq, 0, Ep("192.168.0.1", 1299),
                             &prio),
            TargetMatch::kNo);
  EXPECT_EQ(RuleTargetsMatch(h.t.get(), idx.seq + 2, 0, Ep("10.0.0.1", 1),
                             &prio),
            TargetMatch::kTorn);
}

// A span reaching past the pool (a corrupt or hostile table) is clamped,
// never read out of bounds.
TEST(Match, TargetSpanIsClampedToThePool) {
  fault_rule r{};
  uint32_t first = 0;
  r.first_target = FAULT_MAX_TARGETS_TOTAL - 2;
  r.n_targets = 100;
  EXPECT_EQ(RuleTargetSpan(r, &first), 2u);
  EXPECT_EQ(first, FAULT_MAX_TARGETS_TOTAL - 2u);
  r.first_target = FAULT_MAX_TARGETS_TOTAL + 5;
  EXPECT_EQ(RuleTargetSpan(r, &first), 0u);
  r.first_target = 0xffffffffu;
  r.n_targets = 0xffffffffu;
  EXPECT_EQ(RuleTargetSpan(r, &first), 0u);
}

// fault_rule is copied onto readers' stacks on the hot path: it must not
// grow with the number of targets.
TEST(Table, RuleStaysSmall) {
  EXPECT_LT(sizeof(fault_rule), 1024u);
}

TEST(Hosts, CacheRemembersNewest) {
  auto c = std::make_unique<HostCache>();
  memset(c.get(), 0, sizeof(HostCache));
  in_addr a;
  inet_pton(AF_INET, "10.0.0.7", &a);
  char name[FAULT_NAME_MAX];
  EXPECT_FALSE(HostCacheLookup(c.get(), AF_INET, &a, name));
  HostCacheAdd(c.get(), "old.example", AF_INET, &a);
  HostCacheAdd(c.get(), "db.example", AF_INET, &a);
  ASSERT_TRUE(HostCacheLookup(c.get(), AF_INET, &a, name));
  EXPECT_STREQ(name, "db.example");
  in6_addr a6;
  inet_pton(AF_INET6, "::1", &a6);
  EXPECT_FALSE(HostCacheLookup(c.get(), AF_INET6, &a6, name));
  for (int i = 0; i < HostCache::kEntries; ++i)
    HostCacheAdd(c.get(), "x", AF_INET6, &a6);
  EXPECT_FALSE(HostCacheLookup(c.get(), AF_INET, &a, name));  // overwritten
}

// -------------------------------------------------------------------- rng ---

TEST(Rng, SameInputsSameStream) {
  DecisionRng a(42, 3, 17), b(42, 3, 17), c(42, 3, 18), d(43, 3, 17),
      e(42, 4, 17);
  uint64_t x = a.Next();
  EXPECT_EQ(x, b.Next());
  EXPECT_NE(x, c.Next());
  EXPECT_NE(x, d.Next());
  EXPECT_NE(x, e.Next());
  EXPECT_EQ(a.Next(), b.Next());
}

TEST(Rng, PpmRateWithinBinomialBound) {
  int hits = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    DecisionRng r(1, 0, static_cast<uint64_t>(i));
    hits += r.Ppm(300000);
  }
  // mean 30000, sd = sqrt(n p (1-p)) = 144.9; 5 sd
  EXPECT_NEAR(hits, 30000, 725);
  DecisionRng r(1, 0, 0);
  EXPECT_FALSE(r.Ppm(0));
  EXPECT_TRUE(r.Ppm(1000000));
}

TEST(Rng, ClaimDecisionAdvancesSharedCounter) {
  TableHolder h;
  DecisionRng a = ClaimDecision(h.t.get(), 2, 9);
  DecisionRng b = ClaimDecision(h.t.get(), 2, 9);
  EXPECT_EQ(h.t->counters.rule_decisions[2], 2u);
  EXPECT_EQ(a.key, DecisionRng(9, 2, 0).key);
  EXPECT_EQ(b.key, DecisionRng(9, 2, 1).key);
}

TEST(Rng, RuleSeed) {
  TableHolder h;
  fault_rule r{};
  r.flags = FAULT_RULE_HAS_SEED;
  r.seed = 77;
  EXPECT_EQ(RuleSeed(h.t.get(), r), 77u);
  r.flags = 0;
  EXPECT_EQ(RuleSeed(h.t.get(), r), Mix64(1000'000'000'000ULL ^ 0x5eedULL));
}

// ------------------------------------------------------------------- math ---

TEST(Math, MatchesLibm) {
  for (double x : {1e-300, 1e-10, 0.001, 0.5, 0.7071, 1.0, 1.5, 2.0, 10.0,
                   12345.678, 1e300}) {
    EXPECT_NEAR(math::Log(x), std::log(x),
                1e-12 * std::max(1.0, std::fabs(std::log(x))))
        << x;
  }
  for (double x :
       {-700.0, -20.0, -1.0, -0.1, 0.0, 0.3, 1.0, 5.5, 50.0, 700.0}) {
    EXPECT_NEAR(math::Exp(x) / std::exp(x), 1.0, 1e-12) << x;
  }
  EXPECT_NEAR(math::Pow(0.25, -0.5), 2.0, 1e-12);
  EXPECT_NEAR(math::Sqrt(2.0), std::sqrt(2.0), 1e-15);
}

// ---------------------------------------------------------------- latency ---

TEST(Latency, FixedAndFactor) {
  fault_link l{};
  l.distribution = FAULT_DIST_FIXED;
  l.fixed_ns = 200'000'000;
  DecisionRng r(1, 0, 0);
  EXPECT_EQ(SampleLatency(l, r, 1.0), 200'000'000);
  EXPECT_EQ(SampleLatency(l, r, 0.5), 100'000'000);
  fault_link none{};
  EXPECT_EQ(SampleLatency(none, r, 1.0), 0);
}

TEST(Latency, UniformAndJitterBounds) {
  fault_link l{};
  l.distribution = FAULT_DIST_UNIFORM;
  l.min_ns = 10'000;
  l.max_ns = 20'000;
  double sum = 0;
  for (int i = 0; i < 20000; ++i) {
    DecisionRng r(5, 0, static_cast<uint64_t>(i));
    int64_t v = SampleLatency(l, r, 1.0);
    ASSERT_GE(v, 10'000);
    ASSERT_LE(v, 20'000);
    sum += static_cast<double>(v);
  }
  EXPECT_NEAR(sum / 20000, 15'000, 100);
  fault_link j{};
  j.fixed_ns = 1000;
  j.jitter_ns = 300;
  for (int i = 0; i < 1000; ++i) {
    DecisionRng r(5, 0, static_cast<uint64_t>(i));
    int64_t v = SampleLatency(j, r, 1.0);
    ASSERT_GE(v, 700);
    ASSERT_LE(v, 1300);
  }
}

TEST(Latency, NormalMoments) {
  fault_link l{};
  l.distribution = FAULT_DIST_NORMAL;
  l.mean_ns = 100'000'000;
  l.stddev_ns = 10'000'000;
  const int n = 40000;
  double sum = 0, sq = 0;
  for (int i = 0; i < n; ++i) {
    DecisionRng r(7, 1, static_cast<uint64_t>(i));
    double v = static_cast<double>(SampleLatency(l, r, 1.0));
    sum += v;
    sq += v * v;
  }
  double mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
  EXPECT_NEAR(mean, 1e8, 3e5);  // 6 standard errors (1e7/200)
  EXPECT_NEAR(sd, 1e7, 2.5e5);
}

TEST(Latency, ParetoTail) {
  fault_link l{};
  l.distribution = FAULT_DIST_PARETO;
  l.scale_ns = 1'000'000;
  l.shape = 2.0;
  const int n = 40000;
  int above_median = 0;
  double median = 1e6 * std::pow(2.0, 1.0 / 2.0);
  for (int i = 0; i < n; ++i) {
    DecisionRng r(9, 0, static_cast<uint64_t>(i));
    int64_t v = SampleLatency(l, r, 1.0);
    ASSERT_GE(v, 1'000'000);
    above_median += static_cast<double>(v) > median;
  }
  EXPECT_NEAR(above_median, n / 2, 600);
}

TEST(Latency, ParetoNormalIsNormalPlusTail) {
  fault_link l{};
  l.distribution = FAULT_DIST_PARETO_NORMAL;
  l.mean_ns = 50'000'000;
  l.stddev_ns = 0;
  l.scale_ns = 1'000'000;
  l.shape = 3.0;
  for (int i = 0; i < 2000; ++i) {
    DecisionRng r(9, 0, static_cast<uint64_t>(i));
    ASSERT_GE(SampleLatency(l, r, 1.0), 50'000'000);
  }
}

// ------------------------------------------------------------------- loss ---

TEST(Loss, BurstLosesInARow) {
  fault_link l{};
  l.loss_ppm = 1000000;
  l.burst_loss = 3;
  LossState s;
  uint32_t pos;
  DecisionRng r(1, 0, 0);
  ASSERT_TRUE(DecideLoss(l, &s, r, 1.0, &pos));
  EXPECT_EQ(pos, 0u);
  l.loss_ppm = 0;  // the burst continues regardless
  ASSERT_TRUE(DecideLoss(l, &s, r, 1.0, &pos));
  EXPECT_EQ(pos, 1u);
  ASSERT_TRUE(DecideLoss(l, &s, r, 1.0, &pos));
  EXPECT_EQ(pos, 2u);
  EXPECT_FALSE(DecideLoss(l, &s, r, 1.0, &pos));
}

TEST(Loss, RtoDoublesWithinBurst) {
  EXPECT_EQ(TcpLossStallNs(kDefaultRtoNs, 0), 200'000'000);
  EXPECT_EQ(TcpLossStallNs(kDefaultRtoNs, 1), 400'000'000);
  EXPECT_EQ(TcpLossStallNs(kDefaultRtoNs, 3), 1'600'000'000);
  EXPECT_EQ(TcpLossStallNs(kDefaultRtoNs, 40), 60'000'000'000);
}

TEST(Loss, GilbertElliottStates) {
  fault_link l{};
  l.ge_p_good_to_bad_ppm = 1000000;
  l.ge_p_bad_to_good_ppm = 0;
  l.ge_loss_good_ppm = 0;
  l.ge_loss_bad_ppm = 1000000;
  LossState s;
  uint32_t pos;
  for (int i = 0; i < 10; ++i) {
    DecisionRng r(1, 0, static_cast<uint64_t>(i));
    EXPECT_TRUE(DecideLoss(l, &s, r, 1.0, &pos));
  }
  EXPECT_EQ(s.ge_bad, 1);
  // Stationary loss = pi_bad * loss_bad with pi_bad = p / (p + r).
  fault_link m{};
  m.ge_p_good_to_bad_ppm = 100000;
  m.ge_p_bad_to_good_ppm = 300000;
  m.ge_loss_good_ppm = 0;
  m.ge_loss_bad_ppm = 800000;
  LossState t;
  int lost = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    DecisionRng r(3, 0, static_cast<uint64_t>(i));
    lost += DecideLoss(m, &t, r, 1.0, &pos);
  }
  EXPECT_NEAR(static_cast<double>(lost) / n, 0.25 * 0.8, 0.01);
}

TEST(Loss, BernoulliRate) {
  fault_link l{};
  l.loss_ppm = 100000;
  LossState s;
  uint32_t pos;
  int lost = 0;
  for (int i = 0; i < 100000; ++i) {
    DecisionRng r(11, 0, static_cast<uint64_t>(i));
    lost += DecideLoss(l, &s, r, 1.0, &pos);
  }
  EXPECT_NEAR(lost, 10000, 475);  // 5 sd
}

// ----------------------------------------------------------- token bucket ---

TEST(TokenBucket, ExactOnSimulatedTime) {
  FakeClock fc;
  Clock clock = fc.clock();
  fc.now = 5'000'000'000;
  TokenBucket b;
  const uint64_t rate = 8'000'000;  // 1 byte per microsecond
  EXPECT_EQ(BucketBytes(rate, 0), 10000u);
  int64_t wait;
  EXPECT_EQ(TokenBucketTake(&b, rate, 0, clock.Now(), 25000, &wait),
            10000u);  // starts full
  EXPECT_EQ(TokenBucketTake(&b, rate, 0, clock.Now(), 25000, &wait), 0u);
  EXPECT_EQ(wait, 5'000'000);  // half a bucket: 5000 bytes at 1 B/us
  fc.Advance(1'000'000);       // 1000 bytes refilled: less than half a bucket
  EXPECT_EQ(TokenBucketTake(&b, rate, 0, clock.Now(), 25000, &wait), 0u);
  EXPECT_EQ(wait, 4'000'000);
  EXPECT_EQ(TokenBucketTake(&b, rate, 0, clock.Now(), 500, &wait),
            500u);        // small wants pass
  fc.Advance(5'700'000);  // a late wake-up keeps what accrued
  EXPECT_EQ(TokenBucketTake(&b, rate, 0, clock.Now(), 25000, &wait), 6200u);
  fc.Advance(1'000'000'000);  // refill caps at the bucket
  EXPECT_EQ(TokenBucketTake(&b, rate, 0, clock.Now(), 1 << 30, &wait), 10000u);
}

TEST(TokenBucket, SustainedRateOverFiveSeconds) {
  FakeClock fc;
  TokenBucket b;
  const uint64_t rate = 8'000'000;
  uint64_t sent = 0;
  int64_t start = fc.now;
  // A sender that always wants 64 KiB and sleeps when told to.
  for (int i = 0; i < 100000 && fc.now - start < 5'000'000'000; ++i) {
    int64_t wait;
    uint64_t n = TokenBucketTake(&b, rate, 0, fc.now, 65536, &wait);
    sent += n;
    if (n == 0) fc.Advance(wait);
  }
  double bps = static_cast<double>(sent) * 8 / ((fc.now - start) / 1e9);
  // The initial full bucket (10000 B) is the only excess: 16 kbit/s over 5 s.
  EXPECT_NEAR(bps, 8e6, 8e6 * 0.005);
}

TEST(TokenBucket, ExplicitBurstAndUnlimited) {
  TokenBucket b;
  int64_t wait;
  EXPECT_EQ(TokenBucketTake(&b, 0, 0, 0, 123, &wait), 123u);
  EXPECT_EQ(BucketBytes(8000, 0), 1500u);  // at least 1500 bytes
  EXPECT_EQ(TokenBucketTake(&b, 80000, 4000, 0, 5000, &wait), 4000u);
  EXPECT_EQ(TokenBucketTake(&b, 80000, 4000, 0, 5000, &wait), 0u);
  EXPECT_EQ(wait, 200'000'000);  // half the bucket, 2000 bytes, at 10000 B/s
}

// --------------------------------------------------------------- when/glob ---

TEST(When, StraceSemantics) {
  EXPECT_TRUE(WhenFires(0, 0, 0, 1));
  // when=3: only the third call
  EXPECT_FALSE(WhenFires(3, 3, 0, 2));
  EXPECT_TRUE(WhenFires(3, 3, 0, 3));
  EXPECT_FALSE(WhenFires(3, 3, 0, 4));
  // when=3+: third and later
  EXPECT_TRUE(WhenFires(3, 0, 1, 3));
  EXPECT_TRUE(WhenFires(3, 0, 1, 100));
  // when=2..5
  EXPECT_FALSE(WhenFires(2, 5, 1, 1));
  EXPECT_TRUE(WhenFires(2, 5, 1, 5));
  EXPECT_FALSE(WhenFires(2, 5, 1, 6));
  // when=2+3: 2, 5, 8, ...
  EXPECT_TRUE(WhenFires(2, 0, 3, 8));
  EXPECT_FALSE(WhenFires(2, 0, 3, 7));
}

TEST(Glob, Patterns) {
  EXPECT_TRUE(GlobMatch("*.db-journal", "t.db-journal"));
  EXPECT_FALSE(GlobMatch("*.db-journal", "t.db"));
  EXPECT_TRUE(GlobMatch("/data/*", "/data/a/b"));
  EXPECT_TRUE(GlobMatch("file?.txt", "file1.txt"));
  EXPECT_FALSE(GlobMatch("file?.txt", "file10.txt"));
  EXPECT_TRUE(GlobMatch("[a-c]x", "bx"));
  EXPECT_FALSE(GlobMatch("[!a-c]x", "bx"));
  EXPECT_TRUE(GlobMatch("\\*", "*"));
  EXPECT_FALSE(GlobMatch("\\*", "a"));
  EXPECT_TRUE(GlobMatch("a*b*c", "aXXbYYc"));
  EXPECT_FALSE(GlobMatch("a*b*c", "aXXbYY"));
  EXPECT_TRUE(GlobMatch("[", "["));
}

TEST(Glob, PathRules) {
  EXPECT_TRUE(PathMatches("", "/x"));
  EXPECT_TRUE(PathMatches("", nullptr));
  EXPECT_FALSE(PathMatches("*.db", nullptr));
  EXPECT_TRUE(PathMatches("*.db-journal", "/tmp/x/t.db-journal"));
  EXPECT_FALSE(PathMatches("t*", "/tmp/x/a"));  // basename only
  EXPECT_TRUE(PathMatches("/data/*", "/data/sub/f"));
  EXPECT_FALSE(PathMatches("/data/*", "/other/data/f"));
}

// --------------------------------------------------------------- schedule ---

TEST(Schedule, Kinds) {
  fault_schedule s{};
  EXPECT_EQ(ScheduleFactor(s, 123), 1.0);
  s.kind = kScheduleRamp;
  s.ramp_ns = 1000;
  EXPECT_EQ(ScheduleFactor(s, 0), 0.0);
  EXPECT_EQ(ScheduleFactor(s, 250), 0.25);
  EXPECT_EQ(ScheduleFactor(s, 5000), 1.0);
  s = fault_schedule{};
  s.kind = kScheduleSpike;
  s.every_ns = 100;
  s.duration_ns = 10;
  EXPECT_EQ(ScheduleFactor(s, 5), 1.0);
  EXPECT_EQ(ScheduleFactor(s, 50), 0.0);
  EXPECT_EQ(ScheduleFactor(s, 205), 1.0);
  s = fault_schedule{};
  s.kind = kScheduleFlapping;
  s.on_ns = 30;
  s.off_ns = 70;
  EXPECT_EQ(ScheduleFactor(s, 29), 1.0);
  EXPECT_EQ(ScheduleFactor(s, 30), 0.0);
  EXPECT_EQ(ScheduleFactor(s, 130), 1.0 * 0);
  EXPECT_EQ(ScheduleFactor(s, 100), 1.0);
  s = fault_schedule{};
  s.kind = kScheduleIntervals;
  s.n_intervals = 2;
  s.interval_start_ns[0] = 10;
  s.interval_duration_ns[0] = 50;
  s.interval_start_ns[1] = 75;
  s.interval_duration_ns[1] = 20;
  EXPECT_EQ(ScheduleFactor(s, 9), 0.0);
  EXPECT_EQ(ScheduleFactor(s, 10), 1.0);
  EXPECT_EQ(ScheduleFactor(s, 60), 0.0);
  EXPECT_EQ(ScheduleFactor(s, 80), 1.0);
  EXPECT_EQ(ScheduleFactor(s, 95), 0.0);
}

// ---------------------------------------------------------- syscall rules ---

TEST(Syscall, DenyByPathWithWhenCounter) {
  TableHolder h;
  h.Rule(0).flags = FAULT_RULE_ACTIVE;
  fault_syscall_rule& s = h.Sys(0);
  s.rule = 0;
  s.family = kFamilyWrite;
  s.action = kActionDeny;
  s.err = ENOSPC;
  strcpy(s.path_glob, "*.db-journal");
  s.when_first = 2;
  s.when_last = 3;
  s.when_step = 1;
  h.Publish();
  Index idx = h.Idx();
  SyscallDecision d;
  int64_t now = h.t->start_ns + 1;
  EXPECT_FALSE(
      DecideSyscall(h.t.get(), idx, kFamilyWrite, "/tmp/a.db", 1, now, &d));
  EXPECT_FALSE(DecideSyscall(h.t.get(), idx, kFamilyWrite, "/tmp/a.db-journal",
                             1, now, &d));
  ASSERT_TRUE(DecideSyscall(h.t.get(), idx, kFamilyWrite, "/tmp/a.db-journal",
                            1, now, &d));
  EXPECT_EQ(d.err, ENOSPC);
  EXPECT_EQ(d.action, kActionDeny);
  EXPECT_EQ(d.index, 0);
  EXPECT_TRUE(DecideSyscall(h.t.get(), idx, kFamilyWrite, "/tmp/a.db-journal",
                            1, now, &d));
  EXPECT_FALSE(DecideSyscall(h.t.get(), idx, kFamilyWrite, "/tmp/a.db-journal",
                             1, now, &d));
  EXPECT_FALSE(DecideSyscall(h.t.get(), idx, kFamilyFsync, "/tmp/a.db-journal",
                             1, now, &d));
  EXPECT_EQ(h.t->counters.syscall_matched[0], 4u);
  EXPECT_EQ(h.t->counters.syscall_fired[0], 2u);
  EXPECT_EQ(h.t->counters.rule_fired[0], 2u);
}

TEST(Syscall, ScopeMaskProbabilityAndDelay) {
  TableHolder h;
  h.Rule(1).flags = FAULT_RULE_HAS_SEED;  // scoped (not active)
  h.Rule(1).seed = 4;
  fault_syscall_rule& s = h.Sys(0);
  s.rule = 1;
  s.family = kFamilyFsync;
  s.action = kActionDelay;
  s.delay_ns = 5000;
  s.probability_ppm = 500000;
  h.Publish();
  Index idx = h.Idx();
  SyscallDecision d;
  int64_t now = h.t->start_ns;
  EXPECT_FALSE(DecideSyscall(h.t.get(), idx, kFamilyFsync, nullptr,
                             /*mask=*/0b01, now, &d));
  int fired = 0;
  for (int i = 0; i < 2000; ++i) {
    if (DecideSyscall(h.t.get(), idx, kFamilyFsync, nullptr, 0b10, now, &d)) {
      ++fired;
      EXPECT_EQ(d.delay_ns, 5000);
      EXPECT_EQ(d.action, kActionDelay);
    }
  }
  EXPECT_NEAR(fired, 1000, 120);
  // Same seed, same decisions: replay the stream.
  int replay = 0;
  for (uint64_t i = 0; i < 2000; ++i)
    replay += DecisionRng(4, 1, i).Ppm(500000);
  EXPECT_EQ(fired, replay);
}

TEST(Syscall, ScheduleOffMeansNoMatch) {
  TableHolder h;
  h.Rule(0).flags = FAULT_RULE_ACTIVE;
  h.Rule(0).schedule.kind = kScheduleIntervals;
  h.Rule(0).schedule.n_intervals = 1;
  h.Rule(0).schedule.interval_start_ns[0] = 1000;
  h.Rule(0).schedule.interval_duration_ns[0] = 1000;
  h.Sys(0).rule = 0;
  h.Sys(0).family = kFamilyFsync;
  h.Sys(0).action = kActionDeny;
  h.Sys(0).err = EIO;
  h.Publish();
  Index idx = h.Idx();
  SyscallDecision d;
  EXPECT_FALSE(DecideSyscall(h.t.get(), idx, kFamilyFsync, nullptr, 1,
                             h.t->start_ns + 10, &d));
  EXPECT_TRUE(DecideSyscall(h.t.get(), idx, kFamilyFsync, nullptr, 1,
                            h.t->start_ns + 1500, &d));
}

// ---------------------------------------------------------------- network ---

struct NetFixture : ::testing::Test {
  TableHolder h;
  fault_rule& r = h.Rule(0);
  ConnState cs;
  NetDecision d;
  void SetUp() override { r.flags = FAULT_RULE_ACTIVE | FAULT_RULE_HAS_SEED; }
  void Run(NetOp op, int proto = FAULT_PROTO_TCP, uint64_t bytes = 100,
           int64_t now = 0, double factor = 1.0) {
    DecideNet(h.t.get(), r, 0, op, proto, &cs, bytes, now, factor, &d);
  }
};

TEST_F(NetFixture, ConnectTimeout) {
  r.timeout_connect_ns = 300'000'000;
  Run(NetOp::kConnect);
  EXPECT_EQ(d.stall_ns, 300'000'000);
  EXPECT_EQ(d.err, ETIMEDOUT);
  EXPECT_EQ(d.effect, FAULT_EFFECT_TIMEOUT);
  EXPECT_EQ(h.t->counters.rule_matched[0], 1u);
  EXPECT_EQ(h.t->counters.rule_fired[0], 1u);
}

TEST_F(NetFixture, BlackholeConnectAndTraffic) {
  r.flags |= FAULT_RULE_BLACKHOLE;
  Run(NetOp::kConnect);
  EXPECT_EQ(d.stall_ns, 127'000'000'000);
  EXPECT_EQ(d.err, ETIMEDOUT);
  Run(NetOp::kSend);
  EXPECT_TRUE(d.drop);
  Run(NetOp::kRecv);
  EXPECT_EQ(d.stall_ns, INT64_MAX);
}

TEST_F(NetFixture, BlackholeOfBothDirectionsIsTheDefault) {
  r.flags |= FAULT_RULE_BLACKHOLE;
  r.blackhole_direction = kDirectionBoth;
  Run(NetOp::kConnect);
  EXPECT_EQ(d.stall_ns, 127'000'000'000);
  EXPECT_EQ(d.effect, FAULT_EFFECT_BLACKHOLE);
  Run(NetOp::kSend);
  EXPECT_TRUE(d.drop);
  Run(NetOp::kRecv);
  EXPECT_EQ(d.stall_ns, INT64_MAX);
  EXPECT_TRUE(BlackholeTakes(r, kUplink));
  EXPECT_TRUE(BlackholeTakes(r, kDownlink));
  r.flags &= ~FAULT_RULE_BLACKHOLE;  // a direction alone is no black hole
  EXPECT_FALSE(BlackholeTakes(r, kUplink));
  EXPECT_FALSE(BlackholeTakes(r, kDownlink));
}

TEST_F(NetFixture, UplinkBlackholeSwallowsSendsOnly) {
  r.flags |= FAULT_RULE_BLACKHOLE;
  r.blackhole_direction = kDirectionUplink;
  r.downlink.fixed_ns = 50;
  Run(NetOp::kConnect);  // the connection opens
  EXPECT_EQ(d.stall_ns, -1);
  EXPECT_EQ(d.err, 0);
  EXPECT_EQ(d.effect, FAULT_EFFECT_LATENCY);  // the handshake's round trip
  Run(NetOp::kSend, FAULT_PROTO_TCP, 64);
  EXPECT_TRUE(d.drop);
  EXPECT_EQ(d.stall_ns, -1);
  EXPECT_EQ(d.effect, FAULT_EFFECT_BLACKHOLE);
  EXPECT_EQ(d.value, 64);
  Run(NetOp::kRecv, FAULT_PROTO_TCP, 64);
  EXPECT_FALSE(d.drop);
  EXPECT_EQ(d.stall_ns, -1);
  EXPECT_EQ(d.err, 0);
  EXPECT_EQ(d.delay_ns, 50);  // the other direction's effects still apply
  EXPECT_EQ(d.effect, FAULT_EFFECT_LATENCY);
  Run(NetOp::kSend, FAULT_PROTO_UDP, 10);
  EXPECT_TRUE(d.drop);
  Run(NetOp::kRecv, FAULT_PROTO_UDP, 10);
  EXPECT_FALSE(d.drop);
  EXPECT_EQ(d.stall_ns, -1);
  EXPECT_EQ(h.t->counters.rule_fired[0], 5u);
}

TEST_F(NetFixture, DownlinkBlackholeStallsReceivesOnly) {
  r.flags |= FAULT_RULE_BLACKHOLE;
  r.blackhole_direction = kDirectionDownlink;
  Run(NetOp::kConnect);
  EXPECT_EQ(d.stall_ns, -1);
  EXPECT_EQ(d.err, 0);
  EXPECT_FALSE(d.fired);
  Run(NetOp::kSend, FAULT_PROTO_TCP, 64);
  EXPECT_FALSE(d.drop);
  EXPECT_FALSE(d.fired);
  Run(NetOp::kRecv, FAULT_PROTO_TCP, 64);
  EXPECT_EQ(d.stall_ns, INT64_MAX);
  EXPECT_EQ(d.err, ETIMEDOUT);
  EXPECT_EQ(d.effect, FAULT_EFFECT_BLACKHOLE);
  r.timeout_recv_ns = 5000;  // a receive timeout bounds the stall
  Run(NetOp::kRecv, FAULT_PROTO_TCP, 64);
  EXPECT_EQ(d.stall_ns, 5000);
  EXPECT_EQ(d.err, ETIMEDOUT);
  EXPECT_EQ(d.effect, FAULT_EFFECT_BLACKHOLE);
  // A connect timeout still applies to the connect.
  r.timeout_connect_ns = 300;
  Run(NetOp::kConnect);
  EXPECT_EQ(d.stall_ns, 300);
  EXPECT_EQ(d.effect, FAULT_EFFECT_TIMEOUT);
}

TEST_F(NetFixture, RefusedWithProbability) {
  r.conn_error_errno = ECONNREFUSED;
  r.conn_error_ppm = 1000000;
  Run(NetOp::kConnect);
  EXPECT_EQ(d.err, ECONNREFUSED);
  EXPECT_EQ(d.effect, FAULT_EFFECT_CONNECTION_ERROR);
  Run(NetOp::kSend);  // refused only applies to connect
  EXPECT_EQ(d.err, 0);
  EXPECT_FALSE(d.fired);
}

TEST_F(NetFixture, ResetSticks) {
  r.conn_error_errno = ECONNRESET;
  r.conn_error_ppm = 1000000;
  Run(NetOp::kSend);
  EXPECT_EQ(d.err, ECONNRESET);
  r.conn_error_ppm = 0;
  Run(NetOp::kRecv);
  EXPECT_EQ(d.err, ECONNRESET);
}

TEST_F(NetFixture, ConnectLatencyIsRoundTrip) {
  r.uplink.fixed_ns = 100;
  r.downlink.fixed_ns = 50;
  Run(NetOp::kConnect);
  EXPECT_EQ(d.delay_ns, 150);
  EXPECT_EQ(d.effect, FAULT_EFFECT_LATENCY);
  Run(NetOp::kSend);
  EXPECT_EQ(d.delay_ns, 100);
  Run(NetOp::kRecv);
  EXPECT_EQ(d.delay_ns, 50);
}

TEST_F(NetFixture, LossTcpStallsUdpDrops) {
  r.uplink.loss_ppm = 1000000;
  r.uplink.burst_loss = 2;
  Run(NetOp::kSend);
  EXPECT_EQ(d.delay_ns, 200'000'000);
  EXPECT_FALSE(d.drop);
  EXPECT_EQ(d.effect, FAULT_EFFECT_LOSS);
  Run(NetOp::kSend);
  EXPECT_EQ(d.delay_ns, 400'000'000);  // doubled within the burst
  ConnState udp;
  DecideNet(h.t.get(), r, 0, NetOp::kSend, FAULT_PROTO_UDP, &udp, 10, 0, 1.0,
            &d);
  EXPECT_TRUE(d.drop);
  EXPECT_EQ(d.delay_ns, 0);
}

TEST_F(NetFixture, DuplicateDatagramsOnly) {
  r.uplink.duplicate_ppm = 1000000;
  r.downlink.duplicate_ppm = 1000000;
  Run(NetOp::kSend, FAULT_PROTO_UDP, 10);
  EXPECT_TRUE(d.duplicate);
  EXPECT_EQ(d.effect, FAULT_EFFECT_DUPLICATE);
  EXPECT_EQ(d.value, 10);
  Run(NetOp::kRecv, FAULT_PROTO_UDP, 10);
  EXPECT_TRUE(d.duplicate);
  Run(NetOp::kSend, FAULT_PROTO_TCP, 10);
  EXPECT_FALSE(d.duplicate);
  EXPECT_FALSE(d.fired);
  r.uplink.loss_ppm = 1000000;  // a lost datagram is not duplicated
  Run(NetOp::kSend, FAULT_PROTO_UDP, 10);
  EXPECT_TRUE(d.drop);
  EXPECT_FALSE(d.duplicate);
}

TEST_F(NetFixture, RecvTimeout) {
  r.timeout_recv_ns = 5000;
  Run(NetOp::kRecv);
  EXPECT_EQ(d.stall_ns, 5000);
  EXPECT_EQ(d.err, ETIMEDOUT);
  Run(NetOp::kSend);
  EXPECT_FALSE(d.fired);
}

TEST_F(NetFixture, SessionBudgetBytes) {
  r.budget_max_tx = 150;
  r.budget_action = kBudgetConnectionError;
  Run(NetOp::kSend, FAULT_PROTO_TCP, 100);
  EXPECT_EQ(d.max_bytes, UINT64_MAX);
  AccountBytes(&cs, kUplink, 100);
  Run(NetOp::kSend, FAULT_PROTO_TCP, 100);
  EXPECT_EQ(d.max_bytes, 50u);  // only what is left of the budget
  AccountBytes(&cs, kUplink, 50);
  Run(NetOp::kSend, FAULT_PROTO_TCP, 100);
  EXPECT_EQ(d.err, ECONNRESET);
  EXPECT_EQ(d.effect, FAULT_EFFECT_BUDGET);
  Run(NetOp::kRecv);
  EXPECT_EQ(d.err, ECONNRESET);  // sticks for the connection
}

TEST_F(NetFixture, SessionBudgetDropAndDuration) {
  r.budget_max_duration_ns = 1000;
  r.budget_action = kBudgetDrop;
  Run(NetOp::kRecv, FAULT_PROTO_TCP, 10, 0);
  EXPECT_FALSE(d.fired);
  Run(NetOp::kRecv, FAULT_PROTO_TCP, 10, 1000);
  EXPECT_TRUE(d.eof);
  Run(NetOp::kSend, FAULT_PROTO_TCP, 10, 1000);
  EXPECT_EQ(d.err, EPIPE);
}

TEST_F(NetFixture, SessionBudgetTimeoutOps) {
  r.budget_max_ops = 2;
  r.budget_action = kBudgetTimeout;
  r.budget_timeout_ns = 777;
  Run(NetOp::kSend);
  Run(NetOp::kSend);
  EXPECT_FALSE(d.fired);
  Run(NetOp::kSend);
  EXPECT_EQ(d.stall_ns, 777);
  EXPECT_EQ(d.err, ETIMEDOUT);
}

TEST_F(NetFixture, HalfOpenAfterBytes) {
  r.half_open_after_bytes = 100;
  Run(NetOp::kSend, FAULT_PROTO_TCP, 80);
  EXPECT_EQ(d.max_bytes, UINT64_MAX);
  AccountBytes(&cs, kUplink, 80);
  Run(NetOp::kRecv, FAULT_PROTO_TCP, 80);
  EXPECT_EQ(d.max_bytes, 20u);
  AccountBytes(&cs, kDownlink, 20);
  Run(NetOp::kSend, FAULT_PROTO_TCP, 10);
  EXPECT_TRUE(d.drop);  // swallowed
  EXPECT_EQ(d.effect, FAULT_EFFECT_HALF_OPEN);
  Run(NetOp::kRecv);
  EXPECT_EQ(d.stall_ns, INT64_MAX);
  r.half_open_errno = ECONNRESET;
  Run(NetOp::kRecv);
  EXPECT_EQ(d.err, ECONNRESET);
}

TEST_F(NetFixture, ScheduleOffDrawsNothing) {
  r.uplink.fixed_ns = 100;
  Run(NetOp::kSend, FAULT_PROTO_TCP, 1, 0, 0.0);
  EXPECT_EQ(d.rule, -1);
  EXPECT_EQ(h.t->counters.rule_decisions[0], 0u);
  EXPECT_EQ(h.t->counters.rule_matched[0], 1u);
  EXPECT_EQ(h.t->counters.rule_fired[0], 0u);
}

TEST_F(NetFixture, SameSeedSameLossPattern) {
  r.seed = 1;
  r.uplink.loss_ppm = 300000;
  auto pattern = [&]() {
    TableHolder fresh;
    ConnState c;
    uint64_t bits = 0;
    for (int i = 0; i < 64; ++i) {
      DecideNet(fresh.t.get(), r, 0, NetOp::kSend, FAULT_PROTO_UDP, &c, 1, 0,
                1.0, &d);
      if (d.drop) bits |= uint64_t{1} << i;
    }
    return bits;
  };
  uint64_t a = pattern(), b = pattern();
  EXPECT_EQ(a, b);
  EXPECT_NE(a, 0u);
  r.seed = 2;
  EXPECT_NE(pattern(), a);
}

// -------------------------------------------------------------------- http ---

struct HttpFixture : ::testing::Test {
  TableHolder h;
  fault_rule& r = h.Rule(0);
  void SetUp() override {
    r.flags = FAULT_RULE_ACTIVE | FAULT_RULE_HAS_SEED;
    r.seed = 42;
    r.http_status = 503;
    r.http_error_ppm = 1000000;
  }
  // Whether each of `n` requests fired, bit i for request i (n <= 64),
  // on a table of its own.
  uint64_t Pattern(int n, double factor = 1.0) {
    TableHolder fresh;
    uint64_t bits = 0;
    HttpErrorDecision d;
    for (int i = 0; i < n; ++i) {
      DecideHttpError(fresh.t.get(), r, 0, 0, factor, &d);
      if (d.fire) bits |= uint64_t{1} << i;
    }
    return bits;
  }
};

TEST_F(HttpFixture, FiresWithTheStatusAndCounts) {
  HttpErrorDecision d;
  DecideHttpError(h.t.get(), r, 0, 123, 1.0, &d);
  EXPECT_EQ(d.rule, 0);
  EXPECT_TRUE(d.fire);
  EXPECT_EQ(d.status, 503u);
  EXPECT_EQ(h.t->counters.rule_matched[0], 1u);
  EXPECT_EQ(h.t->counters.rule_fired[0], 1u);
  EXPECT_EQ(h.t->counters.rule_decisions[0], 1u);
  // The caller emits the event (with its own target): none is emitted here.
  fault_event ev;
  EXPECT_FALSE(PopEvent(h.t.get(), &ev));
}

TEST_F(HttpFixture, ProbabilityZeroNeverHundredAlways) {
  r.http_error_ppm = 0;
  HttpErrorDecision d;
  for (int i = 0; i < 1000; ++i) {
    DecideHttpError(h.t.get(), r, 0, i, 1.0, &d);
    ASSERT_FALSE(d.fire) << i;
    EXPECT_EQ(d.status, 0u);
    EXPECT_EQ(d.rule, 0);
  }
  EXPECT_EQ(h.t->counters.rule_matched[0], 1000u);
  EXPECT_EQ(h.t->counters.rule_fired[0], 0u);
  r.http_error_ppm = 1000000;
  for (int i = 0; i < 1000; ++i) {
    DecideHttpError(h.t.get(), r, 0, i, 1.0, &d);
    ASSERT_TRUE(d.fire) << i;
    EXPECT_EQ(d.status, 503u);
  }
  EXPECT_EQ(h.t->counters.rule_fired[0], 1000u);
}

TEST_F(HttpFixture, RateIsAboutTheProbability) {
  r.http_error_ppm = 250000;
  int fired = 0;
  const int n = 10000;
  HttpErrorDecision d;
  for (int i = 0; i < n; ++i) {
    DecideHttpError(h.t.get(), r, 0, 0, 1.0, &d);
    fired += d.fire;
  }
  // mean 2500, sd = sqrt(n p (1-p)) = 43.3; 5 sd
  EXPECT_NEAR(fired, 2500, 217);
  EXPECT_EQ(h.t->counters.rule_fired[0], static_cast<uint64_t>(fired));
}

TEST_F(HttpFixture, SameSeedSameSequence) {
  r.http_error_ppm = 500000;
  const uint64_t a = Pattern(64);
  EXPECT_EQ(Pattern(64), a);
  EXPECT_NE(a, 0u);
  EXPECT_NE(a, ~uint64_t{0});
  r.seed = 43;
  EXPECT_NE(Pattern(64), a);
  // The stream is the rule's: other decisions of the rule take numbers
  // from it too, and the answer depends on the number, not on time.
  r.seed = 42;
  TableHolder fresh;
  HttpErrorDecision d;
  DecideHttpError(fresh.t.get(), r, 0, 0, 1.0, &d);
  const bool first = d.fire;
  DecisionRng same = DecisionRng(42, 0, 0);
  EXPECT_EQ(first, same.Ppm(500000));
  DecideHttpError(fresh.t.get(), r, 0, 999'000'000'000, 1.0, &d);
  EXPECT_EQ(d.fire, DecisionRng(42, 0, 1).Ppm(500000));
}

TEST_F(HttpFixture, ScheduleFactorScalesTheProbability) {
  HttpErrorDecision d;
  DecideHttpError(h.t.get(), r, 0, 0, 0.0, &d);  // off: nothing drawn
  EXPECT_EQ(d.rule, -1);
  EXPECT_FALSE(d.fire);
  EXPECT_EQ(h.t->counters.rule_matched[0], 1u);
  EXPECT_EQ(h.t->counters.rule_decisions[0], 0u);
  int fired = 0;
  for (int i = 0; i < 10000; ++i) {
    DecideHttpError(h.t.get(), r, 0, 0, 0.5, &d);  // half way up a ramp
    fired += d.fire;
  }
  EXPECT_NEAR(fired, 5000, 250);  // sd 50
}

TEST_F(HttpFixture, RuleWithoutHttpErrorIsNotCounted) {
  r.http_status = 0;
  HttpErrorDecision d;
  DecideHttpError(h.t.get(), r, 0, 0, 1.0, &d);
  EXPECT_EQ(d.rule, -1);
  EXPECT_FALSE(d.fire);
  EXPECT_EQ(h.t->counters.rule_matched[0], 0u);
  EXPECT_EQ(h.t->counters.rule_decisions[0], 0u);
}

// --------------------------------------------------------------------- dns ---

TEST(Dns, Decisions) {
  TableHolder h;
  fault_rule& r = h.Rule(0);
  r.dns_delay_ns = 1000;
  r.dns_nxdomain_ppm = 1000000;
  DnsDecision d;
  DecideDns(h.t.get(), r, 0, 1.0, &d);
  EXPECT_EQ(d.delay_ns, 1000);
  EXPECT_EQ(d.eai, EAI_NONAME);
  EXPECT_EQ(d.effect, FAULT_EFFECT_DNS_NXDOMAIN);
  r.dns_timeout_ppm = 1000000;
  DecideDns(h.t.get(), r, 0, 1.0, &d);
  EXPECT_EQ(d.eai, EAI_AGAIN);
  EXPECT_EQ(h.t->counters.rule_fired[0], 2u);
}

// ------------------------------------------------------------------ events ---

TEST(Events, RingOrderAndDrops) {
  TableHolder h;
  fault_event ev{};
  for (int i = 0; i < FAULT_EVENT_RING_SIZE; ++i) {
    ev.value = i;
    ASSERT_TRUE(EmitEvent(h.t.get(), ev));
  }
  ev.value = -1;
  EXPECT_FALSE(EmitEvent(h.t.get(), ev));
  EXPECT_EQ(h.t->ring.drops, 1u);
  fault_event out;
  ASSERT_TRUE(PopEvent(h.t.get(), &out));
  EXPECT_EQ(out.value, 0);
  EXPECT_EQ(out.seq, 1u);
  ev.value = 99;
  EXPECT_TRUE(EmitEvent(h.t.get(), ev));  // room again
  for (int i = 1; i < FAULT_EVENT_RING_SIZE; ++i) {
    ASSERT_TRUE(PopEvent(h.t.get(), &out));
    ASSERT_EQ(out.value, i);
  }
  ASSERT_TRUE(PopEvent(h.t.get(), &out));
  EXPECT_EQ(out.value, 99);
  EXPECT_FALSE(PopEvent(h.t.get(), &out));
}

TEST(Events, ConcurrentProducersLoseNothing) {
  TableHolder h;
  constexpr int kPerThread = 3000;
  std::atomic<int> popped{0};
  std::atomic<bool> done{false};
  std::thread consumer([&] {
    fault_event out;
    for (int spins = 0; spins < 50'000'000; ++spins) {
      if (PopEvent(h.t.get(), &out)) {
        ++popped;
      } else if (done) {
        if (!PopEvent(h.t.get(), &out)) break;
        ++popped;
      }
    }
  });
  std::thread producers[3];
  for (auto& p : producers)
    p = std::thread([&] {
      fault_event ev{};
      for (int i = 0; i < kPerThread; ++i) EmitEvent(h.t.get(), ev);
    });
  for (auto& p : producers) p.join();
  done = true;
  consumer.join();
  EXPECT_EQ(static_cast<uint64_t>(popped.load()) + h.t->ring.drops,
            3u * kPerThread);
}

// A minimal TLS 1.2 ClientHello with a server_name extension.
std::vector<uint8_t> ClientHello(const std::string& host) {
  std::vector<uint8_t> sni_ext;
  size_t list = 3 + host.size();
  sni_ext = {0x00,
             0x00,  // server_name
             static_cast<uint8_t>((list + 2) >> 8),
             static_cast<uint8_t>(list + 2),
             static_cast<uint8_t>(list >> 8),
             static_cast<uint8_t>(list),
             0x00,  // host_name
             static_cast<uint8_t>(host.size() >> 8),
             static_cast<uint8_t>(host.size())};
  sni_ext.insert(sni_ext.end(), host.begin(), host.end());
  std::vector<uint8_t> other_ext = {0x00, 0x0b, 0x00,
                                    0x02, 0x01, 0x00};  // ec_point_formats
  std::vector<uint8_t> body = {0x03, 0x03};             // client_version
  body.insert(body.end(), 32, 0xaa);                    // random
  body.push_back(0);                                    // session_id
  body.insert(body.end(), {0x00, 0x02, 0x13, 0x01});    // cipher_suites
  body.insert(body.end(), {0x01, 0x00});                // compression
  size_t ext_len = other_ext.size() + sni_ext.size();
  body.push_back(static_cast<uint8_t>(ext_len >> 8));
  body.push_back(static_cast<uint8_t>(ext_len));
  body.insert(body.end(), other_ext.begin(), other_ext.end());
  body.insert(body.end(), sni_ext.begin(), sni_ext.end());
  std::vector<uint8_t> hs = {0x01, 0x00, static_cast<uint8_t>(body.size() >> 8),
                             static_cast<uint8_t>(body.size())};
  hs.insert(hs.end(), body.begin(), body.end());
  std::vector<uint8_t> rec = {0x16, 0x03, 0x01,
                              static_cast<uint8_t>(hs.size() >> 8),
                              static_cast<uint8_t>(hs.size())};
  rec.insert(rec.end(), hs.begin(), hs.end());
  return rec;
}

TEST(Sni, ParsesServerName) {
  char name[FAULT_NAME_MAX];
  std::vector<uint8_t> h = ClientHello("api.example.test");
  ASSERT_TRUE(ParseTlsSni(h.data(), h.size(), name));
  EXPECT_STREQ(name, "api.example.test");
  // Truncated anywhere: never reads past the end, finds nothing.
  for (size_t n = 0; n < h.size(); ++n) {
    std::vector<uint8_t> cut(h.begin(), h.begin() + static_cast<long>(n));
    EXPECT_FALSE(ParseTlsSni(cut.data(), cut.size(), name)) << n;
  }
  const char* http = "GET / HTTP/1.1\r\n\r\n";
  EXPECT_FALSE(
      ParseTlsSni(reinterpret_cast<const uint8_t*>(http), strlen(http), name));
  std::string long_name(100, 'a');
  h = ClientHello(long_name);
  ASSERT_TRUE(ParseTlsSni(h.data(), h.size(), name));
  EXPECT_EQ(strlen(name), FAULT_NAME_MAX - 1u);
}

TEST(Strings, CopyStringTruncates) {
  char buf[4];
  EXPECT_EQ(CopyString(buf, "abcdef", sizeof(buf)), 6u);
  EXPECT_STREQ(buf, "abc");
}

}  // namespace
}  // namespace fault::engine

namespace fault::engine {
namespace {

TEST(EndpointTest, SockaddrRoundTripLoopbackAndFormat) {
  for (int family : {AF_INET, AF_INET6}) {
    Endpoint lo = LoopbackEndpoint(family, 8080);
    EXPECT_TRUE(IsLoopback(lo));
    sockaddr_storage ss;
    size_t len = EndpointSockaddr(lo, &ss, sizeof(ss));
    ASSERT_EQ(len, family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
    EXPECT_EQ(ss.ss_family, family);
    Endpoint back;
    ASSERT_TRUE(SetEndpointAddress(&back, &ss, len));
    EXPECT_EQ(back.family, family);
    EXPECT_EQ(back.port, 8080);
    EXPECT_EQ(memcmp(back.addr, lo.addr, sizeof(lo.addr)), 0);
    char text[FAULT_NAME_MAX];
    FormatEndpoint(lo, text, sizeof(text));
    EXPECT_STREQ(text, family == AF_INET ? "127.0.0.1:8080" : "[::1]:8080");
  }
  Endpoint other;
  other.family = AF_INET;
  other.addr[0] = 10;
  EXPECT_FALSE(IsLoopback(other));
  sockaddr_in small;
  EXPECT_EQ(EndpointSockaddr(LoopbackEndpoint(AF_INET6, 1), &small, sizeof(small)), 0u);
  char tiny[6];
  FormatEndpoint(LoopbackEndpoint(AF_INET, 80), tiny, sizeof(tiny));
  EXPECT_STREQ(tiny, "127.0");  // cut, still terminated
}

}  // namespace
}  // namespace fault::engine
