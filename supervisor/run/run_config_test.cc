#include "supervisor/run/run_config.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fault::run {
namespace {

using fault::v1::Direction;
using fault::v1::Latency;
using fault::v1::Policy;
using ::testing::HasSubstr;
using Env = std::map<std::string, std::string>;

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kS = 1'000'000'000;

// `fault run ARGS` with the environment `env`.
absl::StatusOr<RunConfig> Build(std::vector<std::string> args,
                                const Env& env = {}) {
  CLI::App app("fault");
  CLI::App* run = app.add_subcommand("run");
  RunFlags flags;
  RegisterRunFlags(run, &flags);
  args.insert(args.begin(), {"fault", "run"});
  std::vector<char*> argv;
  argv.reserve(args.size());
  for (auto& a : args) argv.push_back(a.data());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(std::string("CLI: ") + e.what());
  }
  return BuildRunConfig(flags, [&env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

RunConfig Ok(std::vector<std::string> args, const Env& env = {}) {
  absl::StatusOr<RunConfig> c = Build(std::move(args), env);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : RunConfig();
}

// The error text, or "<ok>".
std::string Error(std::vector<std::string> args, const Env& env = {}) {
  absl::StatusOr<RunConfig> c = Build(std::move(args), env);
  return c.ok() ? "<ok>" : std::string(c.status().message());
}

const Policy& Find(const RunConfig& c, const std::string& name) {
  for (const Policy& p : c.policies.policies()) {
    if (p.name() == name) return p;
  }
  ADD_FAILURE() << "no policy " << name;
  static const Policy kNone;
  return kNone;
}

// --- Flags -------------------------------------------------------------------

TEST(RunFlagsTest, RegistersEveryFlag) {
  CLI::App app("fault");
  RunFlags flags;
  RegisterRunFlags(&app, &flags);
  for (const char* name :
       {"--proxy-address", "--disable-http-proxy", "--proxy", "-u",
        "--upstream", "--duration", "--no-ui", "--tail", "--with-latency",
        "--latency-per-read-write", "--latency-side", "--latency-direction",
        "--latency-distribution", "--latency-mean", "--latency-stddev",
        "--latency-shape", "--latency-scale", "--latency-min", "--latency-max",
        "--latency-sched", "--with-jitter", "--jitter-direction",
        "--jitter-side", "--jitter-amplitude", "--jitter-frequency",
        "--jitter-sched", "--with-bandwidth", "--bandwidth-side",
        "--bandwidth-direction", "--bandwidth-rate", "--bandwidth-unit",
        "--bandwidth-sched", "--with-packet-loss", "--packet-loss-side",
        "--packet-loss-direction", "--packet-loss-sched", "--packet-loss-rate",
        "--with-blackhole", "--blackhole-side", "--blackhole-direction",
        "--blackhole-sched", "--with-http-response", "--http-response-status",
        "--http-response-body", "--http-response-trigger-probability",
        "--http-response-sched", "--http-response-direction", "--with-dns",
        "--dns-rate", "--dns-sched", "--policy", "--seed", "--events", "--event-loops", "--max-connections", "-q",
        "--quiet", "--expect-faults",
        // Our effect flags whose names the Rust flags leave free.
        "--latency", "--jitter", "--packet-loss", "--rate", "--blackhole",
        "--dns-nxdomain", "--deny", "--target"}) {
    EXPECT_NE(app.get_option_no_throw(name), nullptr) << name;
  }
  EXPECT_THAT(app.get_option("--jitter-frequency")->get_description(),
              HasSubstr("every flight"));
  EXPECT_THAT(app.get_option("--http-response-direction")->get_description(),
              HasSubstr("no effect"));
}

TEST(RunFlagsTest, SwitchesTakeNoValue) {
  EXPECT_THAT(Error({"--with-latency=false"}), HasSubstr("CLI: "));
}

TEST(RunFlagsTest, NothingGivenIsTheDefaultProxy) {
  const RunConfig c = Ok({});
  ASSERT_TRUE(c.proxy_address.has_value());
  EXPECT_EQ(c.proxy_address->ToString(), "127.0.0.1:3180");
  EXPECT_TRUE(c.mappings.empty());
  EXPECT_TRUE(c.upstreams.empty());
  EXPECT_EQ(c.duration_ns, 0);
  EXPECT_EQ(c.policies.policies_size(), 0);
  EXPECT_TRUE(c.flag_policies.empty());
  EXPECT_FALSE(c.seed.has_value());
  EXPECT_FALSE(c.no_ui || c.tail || c.quiet || c.expect_faults);
}

TEST(RunFlagsTest, LifecycleAndOurFlags) {
  const RunConfig c =
      Ok({"--duration", "1m30s", "--no-ui", "--tail", "-q", "--expect-faults",
          "--events", "e.jsonl", "--seed", "42"});
  EXPECT_EQ(c.duration_ns, 90 * kS);
  EXPECT_TRUE(c.no_ui && c.tail && c.quiet && c.expect_faults);
  EXPECT_EQ(c.events_path, "e.jsonl");
  EXPECT_EQ(c.seed, 42u);
  EXPECT_EQ(Error({"--seed", "-1"}),
            "--seed: \"-1\" is not an unsigned 64-bit integer");
  EXPECT_EQ(c.event_loops, 0);
  EXPECT_EQ(Ok({"--event-loops", "3"}).event_loops, 3);
  EXPECT_EQ(c.max_connections, 0u);
  EXPECT_EQ(Ok({"--max-connections", "500"}).max_connections, 500u);
  EXPECT_EQ(Error({"--max-connections", "x"}),
            "--max-connections: \"x\" is not a number from 1 to 10000000");
  EXPECT_EQ(Error({"--event-loops", "0"}),
            "--event-loops: \"0\" is not a number from 1 to 64");
  const RunConfig e = Ok({}, {{"FAULT_PROXY_DURATION", "10m"},
                              {"FAULT_PROXY_NO_UI", "1"},
                              {"FAULT_PROXY_TAILING", "yes"}});
  EXPECT_EQ(e.duration_ns, 600 * kS);
  EXPECT_TRUE(e.no_ui && e.tail);
  EXPECT_EQ(
      Ok({"--duration", "90"}, {{"FAULT_PROXY_DURATION", "10m"}}).duration_ns,
      90 * kS)
      << "the command line wins";
  EXPECT_EQ(Error({"--duration", "soon"}),
            "--duration: \"soon\" is not a duration: expected a number at "
            "\"soon\" (e.g. 60s, 10m, 1m30s, 500ms, or 90 for seconds)");
  EXPECT_EQ(Error({}, {{"FAULT_PROXY_DURATION", "0"}}),
            "FAULT_PROXY_DURATION=0: must be above 0 (leave it out to run "
            "until interrupted)");
}

// --- Environment -------------------------------------------------------------

TEST(RunEnvTest, SwitchesFollowClapsFalseyRule) {
  for (const char* off :
       {"", "0", "false", "FALSE", "no", "off", "Off", "n", "f"}) {
    EXPECT_TRUE(Ok({}, {{"FAULT_WITH_BLACKHOLE", off}}).flag_policies.empty())
        << "FAULT_WITH_BLACKHOLE=" << off;
  }
  for (const char* on : {"1", "true", "yes", "on", "anything"}) {
    EXPECT_EQ(Ok({}, {{"FAULT_WITH_BLACKHOLE", on}}).flag_policies,
              std::vector<std::string>{"blackhole"})
        << "FAULT_WITH_BLACKHOLE=" << on;
  }
}

TEST(RunEnvTest, CommandLineWinsValueByValue) {
  const Env env = {{"FAULT_WITH_LATENCY", "1"},
                   {"FAULT_LATENCY_MEAN", "100"},
                   {"FAULT_LATENCY_STANDARD_DEVIATION", "10"},
                   {"FAULT_LATENCY_DIRECTION", "egress"}};
  const RunConfig from_env = Ok({}, env);
  const Latency& l = Find(from_env, "latency").uplink().latency();
  EXPECT_EQ(l.mean_ns(), 100 * kMs);
  EXPECT_EQ(l.stddev_ns(), 10 * kMs);
  const RunConfig mixed = Ok({"--latency-mean", "300"}, env);
  const Latency& m = Find(mixed, "latency").uplink().latency();
  EXPECT_EQ(m.mean_ns(), 300 * kMs);
  EXPECT_EQ(m.stddev_ns(), 10 * kMs);
  EXPECT_EQ(
      Error({}, {{"FAULT_WITH_LATENCY", "1"}, {"FAULT_LATENCY_MEAN", "abc"}}),
      "FAULT_LATENCY_MEAN=abc: \"abc\" is not a number of milliseconds "
      "or a duration (e.g. 300, 0.5 or 250us)");
}

TEST(RunEnvTest, FaultValuesInTheEnvironmentWaitForTheirSwitch) {
  // A configured fault switched off by its variable: its values are quietly
  // unused, as in the Rust tool.
  const RunConfig c = Ok({}, {{"FAULT_WITH_LATENCY", "false"},
                              {"FAULT_LATENCY_MEAN", "300"},
                              {"FAULT_LATENCY_SCHED", "start:10%"}});
  EXPECT_TRUE(c.flag_policies.empty());
  // On the command line they are an error naming the switch.
  EXPECT_EQ(Error({"--latency-mean", "300"}),
            "--latency-mean: has no effect without --with-latency");
  EXPECT_EQ(Error({"--latency-mean", "300"}, {{"FAULT_WITH_LATENCY", "0"}}),
            "--latency-mean: has no effect without --with-latency "
            "(FAULT_WITH_LATENCY=0 switches it off)");
}

TEST(RunEnvTest, EveryVariableIsRead) {
  const Env env = {
      {"FAULT_WITH_JITTER", "1"},
      {"FAULT_JITTER_SIDE", "client"},
      {"FAULT_JITTER_DIRECTION", "both"},
      {"FAULT_JITTER_AMPLITUDE", "40"},
      {"FAULT_JITTER_FREQ", "1"},
      {"FAULT_JITTER_SCHED", "start:1s"},
      {"FAULT_WITH_BANDWIDTH", "1"},
      {"FAULT_BANDWIDTH_SIDE", "client"},
      {"FAULT_BANDWIDTH_DIRECTION", "ingress"},
      {"FAULT_BANDWIDTH_RATE", "5"},
      {"FAULT_BANDWIDTH_UNIT", "kbps"},
      {"FAULT_BANDWIDTH_SCHED", "start:2s"},
      {"FAULT_WITH_PACKET_LOSS", "1"},
      {"FAULT_PACKET_LOSS_SIDE", "server"},
      {"FAULT_PACKET_LOSS_DIRECTION", "egress"},
      {"FAULT_PACKET_LOSS_SCHED", "start:3s"},
      {"FAULT_WITH_BLACKHOLE", "1"},
      {"FAULT_BLACKHOLE_SIDE", "client"},
      {"FAULT_BLACKHOLE_DIRECTION", "egress"},
      {"FAULT_BLACKHOLE_SCHED", "start:4s"},
      {"FAULT_WITH_HTTP_FAULT", "1"},
      {"FAULT_HTTP_FAULT_STATUS", "503"},
      {"FAULT_HTTP_FAULT_BODY", "busy"},
      {"FAULT_HTTP_FAULT_PROBABILITY", "0.25"},
      {"FAULT_HTTP_FAULT_SCHED", "start:5s"},
      {"FAULT_WITH_DNS", "1"},
      {"FAULT_DNS_PROBABILITY", "0.1"},
      {"FAULT_DNS_SCHED", "start:6s"},
      {"FAULT_WITH_LATENCY", "1"},
      {"FAULT_LATENCY_SIDE", "client"},
      {"FAULT_LATENCY_DIRECTION", "ingress"},
      {"FAULT_LATENCY_DISTRIBUTION", "pareto"},
      {"FAULT_LATENCY_SCALE", "5"},
      {"FAULT_LATENCY_SHAPE", "2.5"},
      {"FAULT_LATENCY_PER_READ_WRITE", "1"},
      {"FAULT_LATENCY_SCHED", "start:7s"},
      {"FAULT_UPSTREAMS", "a:1,b:2"},
      {"FAULT_DISABLE_HTTP_PROXY", "0"},
      {"FAULT_HTTP_PROXY_ADDRESS", "127.0.0.1:4000"},
  };
  const RunConfig c = Ok({}, env);
  EXPECT_EQ(
      c.flag_policies,
      (std::vector<std::string>{"latency", "jitter", "bandwidth", "packet-loss",
                                "blackhole", "http-response", "dns"}));
  const Policy& lat = Find(c, "latency");
  EXPECT_EQ(lat.uplink().latency().distribution(),
            Latency::DISTRIBUTION_PARETO);
  EXPECT_EQ(lat.uplink().latency().scale_ns(), 5 * kMs);
  EXPECT_DOUBLE_EQ(lat.uplink().latency().shape(), 2.5);
  EXPECT_TRUE(lat.per_operation());
  EXPECT_EQ(lat.schedule().intervals(0).start_ns(), 7 * kS);
  const Policy& jit = Find(c, "jitter");
  EXPECT_EQ(jit.link().jitter_ns(), 20 * kMs);
  EXPECT_EQ(jit.schedule().intervals(0).start_ns(), 1 * kS);
  const Policy& bw = Find(c, "bandwidth");
  EXPECT_EQ(bw.uplink().rate().rate_bps(), 5 * 1000 * 8u);
  EXPECT_EQ(bw.schedule().intervals(0).start_ns(), 2 * kS);
  const Policy& loss = Find(c, "packet-loss");
  EXPECT_EQ(loss.uplink().packet_loss_ppm(), 100'000u);
  EXPECT_EQ(loss.schedule().intervals(0).start_ns(), 3 * kS);
  const Policy& bh = Find(c, "blackhole");
  EXPECT_EQ(bh.blackhole_direction(), fault::v1::DIRECTION_DOWNLINK);
  EXPECT_EQ(bh.schedule().intervals(0).start_ns(), 4 * kS);
  const Policy& http = Find(c, "http-response");
  EXPECT_EQ(http.http_error().status(), 503u);
  EXPECT_EQ(http.http_error().body(), "busy");
  EXPECT_EQ(http.http_error().probability_ppm(), 250'000u);
  EXPECT_EQ(http.schedule().intervals(0).start_ns(), 5 * kS);
  const Policy& dns = Find(c, "dns");
  EXPECT_EQ(dns.dns().nxdomain_ppm(), 100'000u);
  EXPECT_EQ(dns.schedule().intervals(0).start_ns(), 6 * kS);
  EXPECT_EQ(c.upstreams, (std::vector<std::string>{"a:1", "b:2"}));
  EXPECT_EQ(c.proxy_address->ToString(), "127.0.0.1:4000");
}

// --- The forward proxy -------------------------------------------------------

TEST(ProxyAddressTest, IPv4AndIPv6FlagsAndBothVariables) {
  EXPECT_EQ(Ok({"--proxy-address", "0.0.0.0:8080"}).proxy_address->ToString(),
            "0.0.0.0:8080");
  const RunConfig v6 = Ok({"--proxy-address", "[::1]:8080"});
  EXPECT_EQ(v6.proxy_address->host, "::1");
  EXPECT_EQ(v6.proxy_address->port, 8080);
  EXPECT_EQ(v6.proxy_address->ToString(), "[::1]:8080");
  EXPECT_EQ(Ok({"--proxy-address", "127.0.0.1:0"}).proxy_address->port, 0)
      << "any free port";
  EXPECT_EQ(
      Ok({}, {{"FAULT_HTTP_PROXY_ADDRESS", "127.0.0.1:1"}}).proxy_address->port,
      1);
  EXPECT_EQ(
      Ok({}, {{"FAULT_PROXY_ADDRESS", "127.0.0.1:2"}}).proxy_address->port, 2)
      << "the documented name";
  EXPECT_EQ(Ok({"--proxy-address", "127.0.0.1:3"},
               {{"FAULT_HTTP_PROXY_ADDRESS", "127.0.0.1:1"}})
                .proxy_address->port,
            3);
  EXPECT_EQ(Ok({}, {{"FAULT_HTTP_PROXY_ADDRESS", "127.0.0.1:1"},
                    {"FAULT_PROXY_ADDRESS", "127.0.0.1:1"}})
                .proxy_address->port,
            1);
  EXPECT_EQ(Error({}, {{"FAULT_HTTP_PROXY_ADDRESS", "127.0.0.1:1"},
                       {"FAULT_PROXY_ADDRESS", "127.0.0.1:2"}}),
            "FAULT_HTTP_PROXY_ADDRESS=127.0.0.1:1: FAULT_PROXY_ADDRESS="
            "127.0.0.1:2 says otherwise (set one of them)");
}

TEST(ProxyAddressTest, Errors) {
  EXPECT_EQ(Error({"--proxy-address", "localhost:3180"}),
            "--proxy-address: \"localhost:3180\": \"localhost\" is not an IP "
            "address (listeners take an address, not a name: 127.0.0.1, "
            "0.0.0.0, [::1], [::])");
  EXPECT_EQ(Error({"--proxy-address", "3180"}),
            "--proxy-address: \"3180\": expected IPV4:PORT or [IPV6]:PORT, "
            "e.g. 127.0.0.1:3180 or [::1]:3180");
  EXPECT_EQ(Error({"--proxy-address", "127.0.0.1:70000"}),
            "--proxy-address: \"127.0.0.1:70000\": \"70000\" is not a port "
            "(0..65535)");
  EXPECT_EQ(Error({"--proxy-address", "::1:80"}),
            "--proxy-address: \"::1:80\": write an IPv6 address in brackets, "
            "e.g. [::1]:8080");
  EXPECT_EQ(
      Error({"--proxy-address", "[::1]"}),
      "--proxy-address: \"[::1]\": expected [IPV6]:PORT, e.g. [::1]:8080");
  EXPECT_EQ(Error({"--proxy-address", "[1.2.3.4]:80"}),
            "--proxy-address: \"1.2.3.4\" is not an IPv6 address");
}

TEST(ProxyAddressTest, DisableHttpProxy) {
  const RunConfig c =
      Ok({"--disable-http-proxy", "--proxy", "9090=127.0.0.1:6379"});
  EXPECT_FALSE(c.proxy_address.has_value());
  EXPECT_EQ(Error({"--disable-http-proxy"}),
            "--disable-http-proxy: nothing to run: no --proxy mapping, no "
            "HTTP proxy and no --stealth");
  EXPECT_EQ(Error({"--disable-http-proxy", "--proxy-address", "127.0.0.1:1",
                   "--proxy", "9090=h:1"}),
            "--proxy-address: has no effect with --disable-http-proxy");
  EXPECT_FALSE(
      Ok({"--proxy", "9090=h:1"}, {{"FAULT_DISABLE_HTTP_PROXY", "true"},
                                   {"FAULT_HTTP_PROXY_ADDRESS", "127.0.0.1:1"}})
          .proxy_address.has_value());
}

// --- Mappings ----------------------------------------------------------------

TEST(MappingFlagTest, FlagsAndListenClashes) {
  const RunConfig c =
      Ok({"--proxy", "9090=a:1", "--proxy", "tcp:[::1]:9091=[::1]:2"});
  ASSERT_EQ(c.mappings.size(), 2u);
  EXPECT_EQ(c.mappings[1].listen.host, "::1");
  EXPECT_EQ(Error({"--proxy", "9090=a:1", "--proxy", "127.0.0.1:9090=b:2"}),
            "--proxy \"127.0.0.1:9090=b:2\": listens on 127.0.0.1:9090, as "
            "--proxy \"9090=a:1\" does");
  EXPECT_EQ(Error({"--proxy", "0.0.0.0:9090=a:1", "--proxy", "9090=b:2"}),
            "--proxy \"9090=b:2\": listens on 127.0.0.1:9090, as --proxy "
            "\"0.0.0.0:9090=a:1\" does");
  EXPECT_EQ(Ok({"--proxy", "0.0.0.0:9090=a:1", "--proxy", "[::1]:9090=b:2"})
                .mappings.size(),
            2u)
      << "an IPv4 wildcard leaves IPv6 addresses free";
  EXPECT_EQ(Error({"--proxy", "3180=a:1"}),
            "--proxy \"3180=a:1\": listens on 127.0.0.1:3180, the HTTP proxy's "
            "address (--proxy-address; move one, or --disable-http-proxy)");
  EXPECT_EQ(Ok({"--disable-http-proxy", "--proxy", "3180=a:1"}).mappings.size(),
            1u);
  EXPECT_EQ(Error({"--proxy", "http:9090=h:80"}),
            "--proxy: \"http:9090=h:80\": not supported: http: mappings (an "
            "HTTP reverse proxy); use a TCP mapping (9090=HOST:PORT) or the "
            "HTTP forward proxy (--proxy-address)");
}

// --- Upstreams ---------------------------------------------------------------

TEST(UpstreamFlagTest, FlagsAreRepeatableAndCommaSeparated) {
  const RunConfig c =
      Ok({"-u", "http://a:1,b:2", "--upstream", "c", "--upstream", "b:2"});
  EXPECT_EQ(c.upstreams, (std::vector<std::string>{"a:1", "b:2", "c"}));
  EXPECT_EQ(Ok({"-u", "x:1"}, {{"FAULT_UPSTREAMS", "a:1"}}).upstreams,
            std::vector<std::string>{"x:1"});
  EXPECT_EQ(Error({"-u", "a:1,"}), "--upstream: \"a:1,\" has an empty item");
  EXPECT_EQ(Error({}, {{"FAULT_UPSTREAMS", "a:0"}}),
            "FAULT_UPSTREAMS=a:0: \"a:0\": \"0\" is not a port (1..65535)");
}

// --- Latency -----------------------------------------------------------------

TEST(PluginFlagsTest, RepeatableCommaSeparatedInOrder) {
  RunConfig c = Ok({"-g", "http://127.0.0.1:50051,127.0.0.1:50052", "--grpc-plugin",
                    "[::1]:7"});
  EXPECT_EQ(c.plugins, (std::vector<std::string>{"http://127.0.0.1:50051", "127.0.0.1:50052",
                                                 "[::1]:7"}));
  EXPECT_FALSE(c.plugin_fail_closed);
  EXPECT_EQ(c.plugin_timeout_ns, 1 * kS);
  EXPECT_EQ(c.plugin_health_interval_ns, 10 * kS);
  // The command line wins over the environment.
  c = Ok({"-g", "a:1"}, {{"FAULT_GRPC_PLUGINS", "b:2,c:3"}});
  EXPECT_EQ(c.plugins, (std::vector<std::string>{"a:1"}));
  c = Ok({}, {{"FAULT_GRPC_PLUGINS", "b:2, c:3"}});
  EXPECT_EQ(c.plugins, (std::vector<std::string>{"b:2", "c:3"}));
}

TEST(PluginFlagsTest, FailureTimeoutAndHealth) {
  RunConfig c = Ok({"-g", "a:1", "--plugin-failure", "closed", "--plugin-timeout", "100ms",
                    "--plugin-health-interval", "2s"});
  EXPECT_TRUE(c.plugin_fail_closed);
  EXPECT_EQ(c.plugin_timeout_ns, 100 * kMs);
  EXPECT_EQ(c.plugin_health_interval_ns, 2 * kS);
  c = Ok({"-g", "a:1"}, {{"FAULT_PLUGIN_FAILURE", "CLOSED"}, {"FAULT_PLUGIN_TIMEOUT", "250ms"}});
  EXPECT_TRUE(c.plugin_fail_closed);
  EXPECT_EQ(c.plugin_timeout_ns, 250 * kMs);
}

TEST(PluginFlagsTest, Errors) {
  EXPECT_THAT(Error({"-g", "https://a:1"}), HasSubstr("--grpc-plugin: \"https://a:1\" https://"));
  EXPECT_THAT(Error({"-g", "a"}), HasSubstr("--grpc-plugin: \"a\" has no port"));
  EXPECT_THAT(Error({}, {{"FAULT_GRPC_PLUGINS", "a:1,,b:2"}}),
              HasSubstr("FAULT_GRPC_PLUGINS=a:1,,b:2: \"a:1,,b:2\" has an empty item"));
  EXPECT_THAT(Error({"-g", "a:1", "--plugin-failure", "maybe"}),
              HasSubstr("--plugin-failure: \"maybe\" is not open or closed"));
  EXPECT_THAT(Error({"-g", "a:1", "--plugin-timeout", "0ms"}),
              HasSubstr("--plugin-timeout: \"0ms\" is not above 0 and at most 10m"));
  EXPECT_THAT(Error({"-g", "a:1", "--plugin-health-interval", "2h"}),
              HasSubstr("is not above 0 and at most 1h"));
  EXPECT_THAT(Error({"--plugin-failure", "closed"}),
              HasSubstr("--plugin-failure: has no effect without --grpc-plugin"));
}

TEST(LatencyTest, NormalByDefaultOnTheDownlink) {
  const RunConfig c = Ok({"--with-latency", "--latency-mean", "300"});
  ASSERT_EQ(c.flag_policies, std::vector<std::string>{"latency"});
  const Policy& p = Find(c, "latency");
  EXPECT_FALSE(p.has_uplink());
  EXPECT_FALSE(p.has_link());
  EXPECT_EQ(p.downlink().latency().distribution(),
            Latency::DISTRIBUTION_NORMAL);
  EXPECT_EQ(p.downlink().latency().mean_ns(), 300 * kMs);
  EXPECT_EQ(p.downlink().latency().stddev_ns(), 0);
  EXPECT_FALSE(p.per_operation());
  EXPECT_FALSE(p.has_schedule());
  EXPECT_EQ(p.targets_size(), 0);
  const Latency sub =
      Find(Ok({"--with-latency", "--latency-mean", "0.5", "--latency-stddev",
               "250us", "--latency-per-read-write"}),
           "latency")
          .downlink()
          .latency();
  EXPECT_EQ(sub.mean_ns(), 500'000);
  EXPECT_EQ(sub.stddev_ns(), 250'000);
  EXPECT_TRUE(Find(Ok({"--with-latency", "--latency-mean", "1",
                       "--latency-per-read-write"}),
                   "latency")
                  .per_operation());
}

TEST(LatencyTest, Distributions) {
  const Latency u =
      Find(Ok({"--with-latency", "--latency-distribution", "uniform",
               "--latency-min", "10", "--latency-max", "20"}),
           "latency")
          .downlink()
          .latency();
  EXPECT_EQ(u.distribution(), Latency::DISTRIBUTION_UNIFORM);
  EXPECT_EQ(u.min_ns(), 10 * kMs);
  EXPECT_EQ(u.max_ns(), 20 * kMs);
  EXPECT_EQ(Find(Ok({"--with-latency", "--latency-distribution", "uniform",
                     "--latency-max", "20"}),
                 "latency")
                .downlink()
                .latency()
                .min_ns(),
            0);
  const Latency p =
      Find(Ok({"--with-latency", "--latency-distribution", "pareto",
               "--latency-scale", "5", "--latency-shape", "1.5"}),
           "latency")
          .downlink()
          .latency();
  EXPECT_EQ(p.distribution(), Latency::DISTRIBUTION_PARETO);
  EXPECT_EQ(p.scale_ns(), 5 * kMs);
  EXPECT_DOUBLE_EQ(p.shape(), 1.5);
  for (const char* spelling :
       {"pareto-normal", "pareto_normal", "paretonormal"}) {
    const Latency pn =
        Find(Ok({"--with-latency", "--latency-distribution", spelling,
                 "--latency-mean", "100", "--latency-stddev", "10",
                 "--latency-scale", "5", "--latency-shape", "2"}),
             "latency")
            .downlink()
            .latency();
    EXPECT_EQ(pn.distribution(), Latency::DISTRIBUTION_PARETO_NORMAL)
        << spelling;
    // The Rust sum starts from `scale`: our mean carries it.
    EXPECT_EQ(pn.mean_ns(), 105 * kMs) << spelling;
    EXPECT_EQ(pn.stddev_ns(), 10 * kMs);
    EXPECT_EQ(pn.scale_ns(), 5 * kMs);
  }
}

TEST(LatencyTest, Errors) {
  EXPECT_EQ(Error({"--with-latency"}),
            "--with-latency: the latency would be 0: add --latency-mean MS "
            "(e.g. --latency-mean 300)");
  EXPECT_EQ(Error({"--with-latency", "--latency-stddev", "5"}),
            "--with-latency: the latency would be 0: add --latency-mean MS "
            "(e.g. --latency-mean 300)");
  EXPECT_EQ(Error({"--with-latency", "--latency-mean", "0"}),
            "--latency-mean: must be above 0");
  EXPECT_EQ(Error({"--with-latency", "--latency-mean", "fast"}),
            "--latency-mean: \"fast\" is not a number of milliseconds or a "
            "duration (e.g. 300, 0.5 or 250us)");
  EXPECT_EQ(Error({"--with-latency", "--latency-distribution", "gamma",
                   "--latency-mean", "1"}),
            "--latency-distribution: \"gamma\" is not a distribution (use "
            "uniform, normal, pareto or pareto-normal)");
  EXPECT_EQ(Error({"--with-latency", "--latency-distribution", "uniform"}),
            "--latency-distribution: uniform latency needs --latency-max");
  EXPECT_EQ(Error({"--with-latency", "--latency-distribution", "uniform",
                   "--latency-min", "20", "--latency-max", "20"}),
            "--latency-max: 20ms is not above --latency-min 20ms (uniform "
            "latency needs min < max)");
  EXPECT_EQ(Error({"--with-latency", "--latency-distribution", "pareto"}),
            "--latency-distribution: pareto latency needs --latency-scale "
            "and --latency-shape");
  EXPECT_EQ(Error({"--with-latency", "--latency-distribution", "pareto",
                   "--latency-scale", "0", "--latency-shape", "0"}),
            "--latency-scale: must be above 0\n"
            "--latency-shape: must be above 0");
  EXPECT_EQ(Error({"--with-latency", "--latency-distribution", "pareto",
                   "--latency-scale", "1", "--latency-shape", "x"}),
            "--latency-shape: \"x\" is not a number (e.g. 1.5)");
  EXPECT_EQ(Error({"--with-latency", "--latency-distribution", "pareto-normal",
                   "--latency-mean", "1"}),
            "--latency-distribution: pareto-normal latency needs "
            "--latency-stddev, --latency-scale and --latency-shape");
  EXPECT_EQ(
      Error({"--with-latency", "--latency-mean", "10", "--latency-min", "1"}),
      "--latency-min: does not apply to the normal distribution (it "
      "takes --latency-mean and --latency-stddev)");
  // The validator's limits, named by flag.
  EXPECT_EQ(Error({"--with-latency", "--latency-mean", "25h"}),
            "--latency-mean: 25h is above the 24h limit for one delay");
  EXPECT_EQ(Error({"--with-latency", "--latency-mean", "10", "--latency-stddev",
                   "25h"}),
            "--latency-stddev: 25h is above the 24h limit for one delay");
}

TEST(LatencyTest, SideAndDirection) {
  struct Case {
    std::string side, direction;
    Direction want;
  };
  for (const Case& c : std::vector<Case>{
           {"server", "ingress", fault::v1::DIRECTION_DOWNLINK},
           {"client", "egress", fault::v1::DIRECTION_DOWNLINK},
           {"server", "egress", fault::v1::DIRECTION_UPLINK},
           {"client", "ingress", fault::v1::DIRECTION_UPLINK},
           {"server", "both", fault::v1::DIRECTION_BOTH},
           {"client", "both", fault::v1::DIRECTION_BOTH},
           {"", "", fault::v1::DIRECTION_DOWNLINK},
           {"client", "", fault::v1::DIRECTION_UPLINK},
           {"", "egress", fault::v1::DIRECTION_UPLINK},
       }) {
    std::vector<std::string> args = {"--with-latency", "--latency-mean", "7"};
    if (!c.side.empty()) args.insert(args.end(), {"--latency-side", c.side});
    if (!c.direction.empty()) {
      args.insert(args.end(), {"--latency-direction", c.direction});
    }
    const Policy p = Find(Ok(args), "latency");
    const Direction got = p.has_link()       ? fault::v1::DIRECTION_BOTH
                          : p.has_uplink()   ? fault::v1::DIRECTION_UPLINK
                          : p.has_downlink() ? fault::v1::DIRECTION_DOWNLINK
                                             : fault::v1::DIRECTION_UNSPECIFIED;
    EXPECT_EQ(got, c.want) << c.side << "/" << c.direction;
    EXPECT_EQ(int{p.has_link()} + p.has_uplink() + p.has_downlink(), 1);
  }
  EXPECT_EQ(Error({"--with-latency", "--latency-mean", "7", "--latency-side",
                   "left", "--latency-direction", "up"}),
            "--latency-side: \"left\" is not a side (use client or server)\n"
            "--latency-direction: \"up\" is not a direction (use ingress, "
            "egress or both)");
}

// --- The other faults --------------------------------------------------------

TEST(JitterTest, UniformFromZeroToTheAmplitude) {
  const Policy p = Find(Ok({"--with-jitter"}), "jitter");
  EXPECT_EQ(p.downlink().latency().distribution(), Latency::DISTRIBUTION_FIXED);
  EXPECT_EQ(p.downlink().latency().fixed_ns(), 10 * kMs);
  EXPECT_EQ(p.downlink().jitter_ns(), 10 * kMs);
  const Policy q = Find(
      Ok({"--with-jitter", "--jitter-amplitude", "0.001", "--jitter-frequency",
          "0.5", "--jitter-side", "client", "--jitter-direction", "egress"}),
      "jitter");
  EXPECT_EQ(q.downlink().latency().fixed_ns(), 500);
  EXPECT_EQ(q.downlink().jitter_ns(), 500);
  EXPECT_EQ(Error({"--with-jitter", "--jitter-amplitude", "0"}),
            "--jitter-amplitude: an amplitude of 0 does nothing");
  EXPECT_EQ(Error({"--with-jitter", "--jitter-frequency", "0"}),
            "--jitter-frequency: a frequency of 0 does nothing");
  EXPECT_EQ(Error({"--with-jitter", "--jitter-frequency", "-1"}),
            "--jitter-frequency: \"-1\" is not a number (e.g. 1.5)");
  EXPECT_EQ(Error({"--jitter-amplitude", "5"}),
            "--jitter-amplitude: has no effect without --with-jitter");
}

TEST(BandwidthTest, BytesPerSecondAsBits) {
  EXPECT_EQ(
      Find(Ok({"--with-bandwidth"}), "bandwidth").downlink().rate().rate_bps(),
      8000u)
      << "1000 Bps";
  for (const auto& [unit, bytes] :
       std::vector<std::pair<std::string, uint64_t>>{{"Bps", 1},
                                                     {"bps", 1},
                                                     {"KBps", 1000},
                                                     {"kbps", 1000},
                                                     {"MBps", 1000000},
                                                     {"mbps", 1000000},
                                                     {"GBps", 1000000000},
                                                     {"gBpS", 1000000000}}) {
    EXPECT_EQ(Find(Ok({"--with-bandwidth", "--bandwidth-rate", "3",
                       "--bandwidth-unit", unit}),
                   "bandwidth")
                  .downlink()
                  .rate()
                  .rate_bps(),
              3 * bytes * 8)
        << unit;
  }
  EXPECT_EQ(Error({"--with-bandwidth", "--bandwidth-rate", "0"}),
            "--bandwidth-rate: \"0\" is not a positive whole number");
  EXPECT_EQ(Error({"--with-bandwidth", "--bandwidth-rate", "1.5"}),
            "--bandwidth-rate: \"1.5\" is not a positive whole number");
  EXPECT_EQ(Error({"--with-bandwidth", "--bandwidth-unit", "bits"}),
            "--bandwidth-unit: \"bits\" is not a unit (use Bps, KBps, MBps or "
            "GBps: bytes per second)");
  EXPECT_EQ(Error({"--with-bandwidth", "--bandwidth-rate", "10000000000",
                   "--bandwidth-unit", "GBps"}),
            "--bandwidth-rate: too large");
  EXPECT_EQ(
      Find(Ok({"--with-bandwidth", "--bandwidth-side", "client"}), "bandwidth")
          .uplink()
          .rate()
          .rate_bps(),
      8000u);
}

TEST(PacketLossTest, RateAndDirection) {
  const Policy p = Find(Ok({"--with-packet-loss"}), "packet-loss");
  EXPECT_EQ(p.downlink().packet_loss_ppm(), 100'000u);
  EXPECT_EQ(Find(Ok({"--with-packet-loss", "--packet-loss-rate", "5%",
                     "--packet-loss-direction", "both"}),
                 "packet-loss")
                .link()
                .packet_loss_ppm(),
            50'000u);
  EXPECT_EQ(Error({"--with-packet-loss", "--packet-loss-rate", "0"}),
            "--packet-loss-rate: \"0\": a probability of 0 does nothing");
  EXPECT_EQ(Error({"--with-packet-loss", "--packet-loss-rate", "5"}),
            "--packet-loss-rate: \"5\" is not a probability: a plain number is "
            "a fraction between 0 and 1 (write \"50%\" for a percentage)");
  EXPECT_EQ(Error({"--packet-loss-rate", "5%"}),
            "--packet-loss-rate: has no effect without --with-packet-loss");
}

TEST(BlackholeTest, Directions) {
  const Policy p = Find(Ok({"--with-blackhole"}), "blackhole");
  EXPECT_TRUE(p.blackhole());
  EXPECT_EQ(p.blackhole_direction(), fault::v1::DIRECTION_DOWNLINK);
  EXPECT_EQ(
      Find(Ok({"--with-blackhole", "--blackhole-side", "client"}), "blackhole")
          .blackhole_direction(),
      fault::v1::DIRECTION_UPLINK);
  EXPECT_EQ(Find(Ok({"--with-blackhole", "--blackhole-direction", "both"}),
                 "blackhole")
                .blackhole_direction(),
            fault::v1::DIRECTION_BOTH);
  EXPECT_EQ(Error({"--blackhole-side", "client"}),
            "--blackhole-side: has no effect without --with-blackhole");
}

TEST(HttpResponseTest, StatusBodyAndProbability) {
  const RunConfig c = Ok({"--with-http-response"});
  const Policy& p = Find(c, "http-response");
  EXPECT_EQ(p.http_error().status(), 500u);
  EXPECT_EQ(p.http_error().probability_ppm(), 1'000'000u);
  EXPECT_EQ(p.http_error().body(), "");
  EXPECT_TRUE(c.http_bodies.empty());
  const RunConfig d = Ok({"--with-http-response", "--http-response-status",
                          "418", "--http-response-body", "{\"teapot\":true}",
                          "--http-response-trigger-probability", "0.5",
                          "--http-response-direction", "anything"});
  const Policy& q = Find(d, "http-response");
  EXPECT_EQ(q.http_error().status(), 418u);
  EXPECT_EQ(q.http_error().probability_ppm(), 500'000u);
  EXPECT_EQ(q.http_error().body(), "{\"teapot\":true}");
  EXPECT_EQ(d.http_bodies.at("http-response"), "{\"teapot\":true}");
  EXPECT_EQ(Error({"--with-http-response", "--http-response-status", "99"}),
            "--http-response-status: \"99\" is not an HTTP status (100..599)");
  EXPECT_EQ(Error({"--with-http-response", "--http-response-status", "600"}),
            "--http-response-status: \"600\" is not an HTTP status (100..599)");
  EXPECT_EQ(Error({"--with-http-response",
                   "--http-response-trigger-probability", "1.5"}),
            "--http-response-trigger-probability: \"1.5\" is not a "
            "probability: a plain number is a fraction between 0 and 1 (write "
            "\"50%\" for a percentage)");
  EXPECT_EQ(Error({"--with-http-response", "--http-response-body",
                   std::string(4097, 'x')}),
            "--http-response-body: 4097 bytes; a body is at most 4096 bytes");
  EXPECT_EQ(Ok({"--http-response-direction", "both"}).policies.policies_size(),
            0)
      << "accepted and ignored, even alone";
}

TEST(DnsTest, NxdomainWithoutTargets) {
  const Policy p = Find(Ok({"--with-dns"}), "dns");
  EXPECT_EQ(p.dns().nxdomain_ppm(), 500'000u);
  EXPECT_EQ(p.dns().timeout_ppm(), 0u);
  EXPECT_EQ(p.targets_size(), 0) << "every lookup; the validator accepts it";
  EXPECT_EQ(
      Find(Ok({"--with-dns", "--dns-rate", "1"}), "dns").dns().nxdomain_ppm(),
      1'000'000u);
  EXPECT_EQ(Error({"--with-dns", "--dns-rate", "50"}),
            "--dns-rate: \"50\" is not a probability: a plain number is a "
            "fraction between 0 and 1 (write \"50%\" for a percentage)");
  EXPECT_EQ(
      Error({}, {{"FAULT_WITH_DNS", "1"}, {"FAULT_DNS_PROBABILITY", "0"}}),
      "FAULT_DNS_PROBABILITY=0: \"0\": a probability of 0 does nothing");
}

// --- Schedules ---------------------------------------------------------------

TEST(ScheduleTest, AbsoluteRelativeAndOpenEnded) {
  const fault::v1::Schedule a =
      Find(Ok({"--with-blackhole", "--blackhole-sched",
               "start:10s,duration:5s;start:1m"}),
           "blackhole")
          .schedule();
  EXPECT_EQ(a.kind(), fault::v1::Schedule::KIND_INTERVALS);
  ASSERT_EQ(a.intervals_size(), 2);
  EXPECT_EQ(a.intervals(0).start_ns(), 10 * kS);
  EXPECT_EQ(a.intervals(0).duration_ns(), 5 * kS);
  EXPECT_EQ(a.intervals(1).start_ns(), 60 * kS);
  EXPECT_EQ(a.intervals(1).duration_ns(),
            std::numeric_limits<int64_t>::max() - 60 * kS)
      << "no --duration: until the end, for ever";
  EXPECT_EQ(a.run_duration_ns(), 0);

  const fault::v1::Schedule r =
      Find(Ok({"--duration", "100s", "--with-blackhole", "--blackhole-sched",
               "start:5%,duration:30%;start:90%"}),
           "blackhole")
          .schedule();
  ASSERT_EQ(r.intervals_size(), 2);
  EXPECT_EQ(r.intervals(0).start_ppm(), 50'000u);
  EXPECT_EQ(r.intervals(0).duration_ppm(), 300'000u);
  EXPECT_EQ(r.intervals(1).start_ppm(), 900'000u);
  EXPECT_EQ(r.intervals(1).duration_ppm(), 100'000u);
  EXPECT_EQ(r.run_duration_ns(), 100 * kS);

  const fault::v1::Schedule bare =
      Find(Ok({"--with-dns", "--dns-sched", "duration:30"}), "dns").schedule();
  EXPECT_EQ(bare.intervals(0).start_ns(), 0);
  EXPECT_EQ(bare.intervals(0).duration_ns(), 30 * kS) << "bare seconds";

  const fault::v1::Schedule mixed =
      Find(Ok({"--duration", "1m", "--with-dns", "--dns-sched",
               "start:10s,duration:50%"}),
           "dns")
          .schedule();
  EXPECT_EQ(mixed.intervals(0).start_ns(), 10 * kS);
  EXPECT_EQ(mixed.intervals(0).duration_ns(), 30 * kS);
}

TEST(ScheduleTest, Errors) {
  EXPECT_EQ(Error({"--with-blackhole", "--blackhole-sched", "start:10%"}),
            "--blackhole-sched: \"start:10%\" is not an interval list: "
            "percentages need --duration");
  EXPECT_EQ(Error({"--with-blackhole", "--blackhole-sched", "start:10%"},
                  {{"FAULT_PROXY_DURATION", "oops"}}),
            "FAULT_PROXY_DURATION=oops: \"oops\" is not a duration: expected a "
            "number at \"oops\" (e.g. 60s, 10m, 1m30s, 500ms, or 90 for "
            "seconds)")
      << "no second error about a duration that was given";
  EXPECT_EQ(Error({"--with-blackhole", "--blackhole-sched", "begin:1s"}),
            "--blackhole-sched: \"begin:1s\" is not an interval list: unknown "
            "key \"begin\" (use start and duration)");
  EXPECT_EQ(Error({"--with-blackhole", "--blackhole-sched", "start:30s;"}),
            "--blackhole-sched: \"start:30s;\" is not an interval list: empty "
            "interval (expected start:..,duration:..)");
  EXPECT_EQ(Error({"--duration", "1m", "--with-blackhole", "--blackhole-sched",
                   "start:50s,duration:20s"}),
            "--blackhole-sched: interval 1 ends after run_duration 1m");
  EXPECT_EQ(
      Error({"--with-blackhole", "--blackhole-sched", "start:1s,duration:0s"}),
      "--blackhole-sched: interval 1 has a zero duration");
  std::string nine;
  for (int i = 0; i < 9; ++i)
    nine += (i ? ";" : "") + std::string("start:") + std::to_string(i) +
            "s,duration:1s";
  EXPECT_EQ(Error({"--with-blackhole", "--blackhole-sched", nine}),
            "--blackhole-sched: \"" + nine +
                "\" has 9 periods; a schedule holds at most 8 "
                "(FAULT_MAX_INTERVALS)");
  EXPECT_EQ(Error({"--blackhole-sched", "start:1s"}),
            "--blackhole-sched: has no effect without --with-blackhole");
}

TEST(ScheduleTest, EachFaultKeepsItsOwnAndTheyOverlap) {
  const RunConfig c =
      Ok({"--duration", "60s", "--with-latency", "--latency-mean", "100",
          "--latency-sched", "start:0%,duration:50%", "--with-packet-loss",
          "--packet-loss-sched", "start:25%,duration:50%", "--with-bandwidth"});
  EXPECT_EQ(c.flag_policies,
            (std::vector<std::string>{"latency", "bandwidth", "packet-loss"}));
  EXPECT_EQ(Find(c, "latency").schedule().intervals(0).duration_ppm(),
            500'000u);
  EXPECT_EQ(Find(c, "packet-loss").schedule().intervals(0).start_ppm(),
            250'000u);
  EXPECT_FALSE(Find(c, "bandwidth").has_schedule()) << "the whole run";
}

// --- Our policies ------------------------------------------------------------

class PolicyFileTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& text) {
    std::string path = ::testing::TempDir() + "run_config_test_" +
                       std::to_string(getpid()) + "_" +
                       std::to_string(files_.size()) + ".yaml";
    std::ofstream(path) << text;
    files_.push_back(path);
    return path;
  }
  void TearDown() override {
    for (const std::string& f : files_) std::remove(f.c_str());
  }
  std::vector<std::string> files_;
};

TEST_F(PolicyFileTest, FilesAndEffectFlagsAfterTheFlagFaults) {
  const std::string file = Write("slow: {latency: 7ms}\n");
  const RunConfig c = Ok({"--with-blackhole", "--policy", file, "--latency",
                          "5ms", "--target", "tcp://10.0.0.0/8"});
  ASSERT_EQ(c.policies.policies_size(), 3);
  EXPECT_EQ(c.policies.policies(0).name(), "blackhole");
  EXPECT_EQ(c.policies.policies(1).name(), "slow");
  EXPECT_EQ(c.policies.policies(2).name(), "cli");
  EXPECT_EQ(c.policies.policies(2).link().latency().fixed_ns(), 5 * kMs);
  EXPECT_EQ(c.policies.policies(2).targets_size(), 1);
  EXPECT_EQ(c.flag_policies, std::vector<std::string>{"blackhole"});
}

TEST_F(PolicyFileTest, NameClashesAndFileErrors) {
  const std::string clash = Write("latency: {latency: 7ms}\n");
  EXPECT_EQ(Error({"--with-latency", "--latency-mean", "1", "--policy", clash}),
            "--policy: policy \"latency\" has the name of the --with-latency "
            "fault's policy (rename it in its file)");
  EXPECT_EQ(Ok({"--policy", clash}).policies.policies_size(), 1);
  const std::string cli = Write("cli: {latency: 7ms}\n");
  EXPECT_EQ(Error({"--policy", cli, "--jitter", "1ms"}),
            "--policy: policy \"cli\" has the name of the effect flags' inline "
            "policy (rename it in its file)");
  const std::string bad = Write("p: {latncy: 7ms}\n");
  EXPECT_EQ(Error({"--policy", bad}),
            bad +
                ":1:5: policy \"p\": unknown field \"latncy\" (did you mean "
                "\"latency\"?)");
  EXPECT_EQ(Error({"--packet-loss", "150%"}),
            "--packet-loss: \"150%\" is not a probability: above 100%");
}

TEST_F(PolicyFileTest, TheTableBoundsCountEveryPolicy) {
  std::string text;
  for (int i = 0; i < 64; ++i)
    text += "p" + std::to_string(i) + ": {latency: 1ms}\n";
  const std::string file = Write(text);
  EXPECT_EQ(Ok({"--policy", file}).policies.policies_size(), 64);
  EXPECT_EQ(Error({"--policy", file, "--with-blackhole"}),
            "the flag faults, --policy files and effect flags together: 65 "
            "policies; the table holds at most 64 (FAULT_MAX_RULES)");
}

// --- Everything at once ------------------------------------------------------

TEST(RunConfigTest, EveryProblemIsReportedAndNothingIsReturned) {
  absl::StatusOr<RunConfig> c =
      Build({"--proxy-address", "nowhere", "--proxy", "9090", "-u", "a:0",
             "--with-latency", "--with-jitter", "--jitter-amplitude", "x",
             "--with-dns", "--dns-rate", "2"});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(c.status().message()),
            "--proxy-address: \"nowhere\": expected IPV4:PORT or [IPV6]:PORT, "
            "e.g. 127.0.0.1:3180 or [::1]:3180\n"
            "--proxy: \"9090\": expected LISTEN=UPSTREAM, e.g. "
            "9090=127.0.0.1:6379\n"
            "--upstream: \"a:0\": \"0\" is not a port (1..65535)\n"
            "--with-latency: the latency would be 0: add --latency-mean MS "
            "(e.g. --latency-mean 300)\n"
            "--jitter-amplitude: \"x\" is not a number of milliseconds or a "
            "duration (e.g. 300, 0.5 or 250us)\n"
            "--dns-rate: \"2\" is not a probability: a plain number is a "
            "fraction between 0 and 1 (write \"50%\" for a percentage)");
}

// --- Stealth -------------------------------------------------------------------

TEST(StealthConfigTest, SelectorsFromFlagsAndTheRustVariables) {
  RunConfig c = Ok({"--stealth", "--capture-process", "capcurl,py*", "--capture-pid", "42",
                    "--capture-exec", "wrk", "--capture-cgroup", "/ci/job", "--capture-all-netns",
                    "--ebpf-proxy-port", "18081"});
  ASSERT_TRUE(c.stealth.has_value());
  EXPECT_EQ(c.stealth->processes, (std::vector<std::string>{"capcurl", "py*"}));
  EXPECT_EQ(c.stealth->pids, (std::vector<int>{42}));
  EXPECT_EQ(c.stealth->exec_names, (std::vector<std::string>{"wrk"}));
  EXPECT_EQ(c.stealth->cgroups, (std::vector<std::string>{"/ci/job"}));
  EXPECT_TRUE(c.stealth->all_netns);
  EXPECT_EQ(c.stealth->port, 18081);

  RunConfig e = Ok({}, {{"FAULT_ENABLE_STEALTH", "1"}, {"FAULT_EBPF_PROCESS_NAME", "capcurl"},
                        {"FAULT_EBPF_PROXY_PORT", "9000"}});
  ASSERT_TRUE(e.stealth.has_value());
  EXPECT_EQ(e.stealth->processes, (std::vector<std::string>{"capcurl"}));
  EXPECT_EQ(e.stealth->port, 9000);
  EXPECT_FALSE(Ok({}, {{"FAULT_ENABLE_STEALTH", "false"}}).stealth.has_value());
  // The Rust tool's other stealth flags are accepted.
  EXPECT_TRUE(Ok({"--stealth", "--capture-process", "x", "--ebpf-programs-dir", "/opt",
                  "--ebpf-proxy-ip", "10.0.0.1", "--ebpf-proxy-iface", "eth0"})
                  .stealth.has_value());
  // Stealth alone runs without the HTTP proxy.
  EXPECT_FALSE(Ok({"--stealth", "--capture-pid", "1", "--disable-http-proxy"})
                   .proxy_address.has_value());
}

TEST(StealthConfigTest, EachMistakeIsNamed) {
  EXPECT_THAT(Error({"--stealth"}), HasSubstr("--stealth: selects no process"));
  EXPECT_THAT(Error({"--capture-process", "curl"}), HasSubstr("--capture-process: needs --stealth"));
  EXPECT_THAT(Error({"--capture-all-netns"}), HasSubstr("--capture-all-netns: needs --stealth"));
  EXPECT_THAT(Error({"--stealth", "--capture-process", "a-name-of-sixteen"}),
              HasSubstr("longer than 15 bytes"));
  EXPECT_THAT(Error({"--stealth", "--capture-process", "/usr/bin/curl"}),
              HasSubstr("not a process name"));
  EXPECT_THAT(Error({"--stealth", "--capture-process", "a*b"}), HasSubstr("not a process name"));
  EXPECT_THAT(Error({"--stealth", "--capture-process", "a,,b"}), HasSubstr("empty name"));
  EXPECT_THAT(Error({"--stealth", "--capture-pid", "0"}),
              HasSubstr("--capture-pid: \"0\" is not a process ID"));
  EXPECT_THAT(Error({"--stealth", "--capture-pid", "12x"}), HasSubstr("is not a process ID"));
  EXPECT_THAT(Error({"--stealth", "--capture-exec", "bin/wrk"}), HasSubstr("--capture-exec"));
  EXPECT_THAT(Error({"--stealth", "--capture-cgroup", "ci/job"}),
              HasSubstr("--capture-cgroup: \"ci/job\" is not a path"));
  EXPECT_THAT(Error({"--stealth", "--capture-pid", "1", "--ebpf-proxy-port", "70000"}),
              HasSubstr("--ebpf-proxy-port: \"70000\" is not a port"));
  EXPECT_THAT(Error({"--stealth", "--capture-pid", "1"}, {{"FAULT_EBPF_PROXY_PORT", "x"}}),
              HasSubstr("FAULT_EBPF_PROXY_PORT=x"));
}

TEST(ControlConfigTest, AddressesAndTokens) {
  RunConfig c = Ok({"--control", "unix:/tmp/x/c.sock"});
  ASSERT_TRUE(c.control.has_value());
  EXPECT_EQ(c.control->socket_path, "/tmp/x/c.sock");
  EXPECT_FALSE(Ok({}).control.has_value());
  EXPECT_THAT(Error({"--control", "http://x"}),
              HasSubstr("--control: http://x: expected unix, unix:PATH or tcp:HOST:PORT"));
  EXPECT_THAT(Error({"--control", "tcp:127.0.0.1:0"}),
              HasSubstr("needs --control-token-file"));
  EXPECT_THAT(Error({"--control-token-file", "/nonexistent/token"}),
              HasSubstr("--control-token-file: needs --control ADDRESS"));
  EXPECT_THAT(Error({"--control", "tcp:127.0.0.1:0", "--control-token-file",
                     "/nonexistent/token"}),
              HasSubstr("--control-token-file: /nonexistent/token"));
}

}  // namespace
}  // namespace fault::run
