#include "supervisor/run/proxy_syntax.h"

#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fault::run {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kS = 1'000'000'000;

template <typename T>
std::string Message(const absl::StatusOr<T>& s) {
  return s.ok() ? "<ok>" : std::string(s.status().message());
}

// --- Mappings ----------------------------------------------------------------

TEST(MappingTest, Forms) {
  struct Case {
    std::string text, listen, host;
    uint16_t port;
    std::string scheme;
  };
  for (const Case& c : std::vector<Case>{
           {"9090=127.0.0.1:6379", "127.0.0.1:9090", "127.0.0.1", 6379, ""},
           {"tcp:9090=db:5432", "127.0.0.1:9090", "db", 5432, ""},
           {"0.0.0.0:9090=db:5432", "0.0.0.0:9090", "db", 5432, ""},
           {"tcp:127.0.0.2:9090=db:5432", "127.0.0.2:9090", "db", 5432, ""},
           {"[::1]:9090=[::1]:6379", "[::1]:9090", "::1", 6379, ""},
           {"tcp:[::]:9090=[0:0::1]:6379", "[::]:9090", "::1", 6379, ""},
           {"9098=https://www.google.com:443", "127.0.0.1:9098",
            "www.google.com", 443, "https"},
           {"35432=psql://db:5432/", "127.0.0.1:35432", "db", 5432, "psql"},
           {"1=h:65535", "127.0.0.1:1", "h", 65535, ""},
       }) {
    absl::StatusOr<Mapping> m = ParseMapping(c.text);
    ASSERT_TRUE(m.ok()) << c.text << ": " << m.status();
    EXPECT_EQ(m->text, c.text);
    EXPECT_EQ(m->listen.ToString(), c.listen) << c.text;
    EXPECT_EQ(m->upstream.host, c.host) << c.text;
    EXPECT_EQ(m->upstream.port, c.port) << c.text;
    EXPECT_EQ(m->scheme, c.scheme) << c.text;
  }
}

TEST(MappingTest, Errors) {
  EXPECT_EQ(Message(ParseMapping("9090")),
            "\"9090\": expected LISTEN=UPSTREAM, e.g. 9090=127.0.0.1:6379");
  EXPECT_EQ(
      Message(ParseMapping("http:9090=h:80")),
      "\"http:9090=h:80\": not supported: http: mappings (an HTTP reverse "
      "proxy); use a TCP mapping (9090=HOST:PORT) or the HTTP forward "
      "proxy (--proxy-address)");
  for (const char* proto : {"https", "psql", "psqls", "tls"}) {
    EXPECT_THAT(Message(ParseMapping(std::string(proto) + ":9090=h:80")),
                HasSubstr(std::string("not supported: ") + proto + ": "));
  }
  EXPECT_EQ(Message(ParseMapping("udp:9090=h:80")),
            "\"udp:9090=h:80\": not supported: the listen side \"udp:9090\" "
            "(use PORT, IPV4:PORT or [IPV6]:PORT, optionally after tcp:)");
  EXPECT_EQ(Message(ParseMapping("9090=https://www.google.com")),
            "\"9090=https://www.google.com\": the upstream \"www.google.com\" "
            "has no port: give the port (HOST:PORT, e.g. www.google.com:443)");
  EXPECT_EQ(Message(ParseMapping("9090=db")),
            "\"9090=db\": the upstream \"db\" has no port: give the port "
            "(HOST:PORT, e.g. db:80)");
  EXPECT_EQ(Message(ParseMapping("0=h:1")),
            "\"0=h:1\": listen port \"0\" is not a port (1..65535)");
  EXPECT_EQ(Message(ParseMapping("65536=h:1")),
            "\"65536=h:1\": listen port \"65536\" is not a port (1..65535)");
  EXPECT_EQ(Message(ParseMapping("9090=h:0")),
            "\"9090=h:0\": upstream port \"0\" is not a port (1..65535)");
  EXPECT_EQ(Message(ParseMapping("9090=::1:80")),
            "\"9090=::1:80\": upstream \"::1:80\": write an IPv6 address in "
            "brackets, e.g. [::1]:8080");
  EXPECT_EQ(Message(ParseMapping("9090=h:80/path")),
            "\"9090=h:80/path\": the upstream \"h:80/path\" is HOST:PORT (no "
            "path, query or user)");
  EXPECT_EQ(Message(ParseMapping("9090=bad host:80")),
            "\"9090=bad host:80\": \"bad host\" is not a host name or IP "
            "address");
  EXPECT_EQ(Message(ParseMapping("localhost:9090=h:80")),
            "\"localhost:9090=h:80\": not supported: the listen side "
            "\"localhost:9090\" (use PORT, IPV4:PORT or [IPV6]:PORT, "
            "optionally after tcp:)");
  EXPECT_EQ(Message(ParseMapping("1.2.3:9090=h:80")),
            "\"1.2.3:9090=h:80\": listen side \"1.2.3:9090\": \"1.2.3\" is not "
            "an IP address (listeners take an address, not a name: 127.0.0.1, "
            "0.0.0.0, [::1], [::])");
}

// --- Upstreams ---------------------------------------------------------------

TEST(UpstreamTest, Normalisation) {
  for (const auto& [in, out] : std::vector<std::pair<std::string, std::string>>{
           {"http://example.com:8080", "example.com:8080"},
           {"https://example.com", "example.com:443"},
           {"http://example.com", "example.com:80"},
           {"HTTP://Example.COM/path", "example.com:80"},
           {"example.com:8080", "example.com:8080"},
           {"127.0.0.1:8080", "127.0.0.1:8080"},
           {"[::1]:8080", "[::1]:8080"},
           {"[0:0::1]:8080", "[::1]:8080"},
           {"http://[::1]", "[::1]:80"},
           {"example.com", "example.com"},
           {"::1", "[::1]"},
           {"*", "*"},
       }) {
    absl::StatusOr<std::string> u = NormalizeUpstream(in);
    ASSERT_TRUE(u.ok()) << in << ": " << u.status();
    EXPECT_EQ(*u, out) << in;
  }
  EXPECT_EQ(Message(NormalizeUpstream("ftp://h")),
            "\"ftp://h\": no port, and ftp:// has no default: give the port");
  EXPECT_EQ(Message(NormalizeUpstream("h:99999")),
            "\"h:99999\": \"99999\" is not a port (1..65535)");
  EXPECT_EQ(Message(NormalizeUpstream("a b")),
            "\"a b\": \"a b\" is not a host name or IP address");
  EXPECT_EQ(Message(NormalizeUpstream("user@h:1")),
            "\"user@h:1\": expected HOST, HOST:PORT or SCHEME://HOST[:PORT]");
}

TEST(UpstreamTest, MatchesByExactHost) {
  const std::vector<std::string> u = {"example.com:8080", "[::1]:443",
                                      "api.local", "127.0.0.1:80"};
  EXPECT_TRUE(UpstreamMatches(u, "example.com", 8080));
  EXPECT_TRUE(UpstreamMatches(u, "EXAMPLE.com", 8080));
  EXPECT_FALSE(UpstreamMatches(u, "example.com", 80));
  EXPECT_FALSE(UpstreamMatches(u, "www.example.com", 8080));
  EXPECT_TRUE(UpstreamMatches(u, "::1", 443));
  EXPECT_TRUE(UpstreamMatches(u, "[::1]", 443));
  EXPECT_TRUE(UpstreamMatches(u, "0::1", 443));
  EXPECT_TRUE(UpstreamMatches(u, "api.local", 1));
  EXPECT_TRUE(UpstreamMatches(u, "api.local", 65535));
  EXPECT_TRUE(UpstreamMatches(u, "127.0.0.1", 80));
  EXPECT_FALSE(UpstreamMatches(u, "localhost", 80)) << "names are not resolved";
  EXPECT_FALSE(UpstreamMatches({"localhost:80"}, "127.0.0.1", 80));
  EXPECT_FALSE(UpstreamMatches({}, "a", 1));
  EXPECT_TRUE(UpstreamMatches({"a:1", "*"}, "anything", 9));
}

// --- Durations and latency values --------------------------------------------

TEST(DurationTest, ProxySyntax) {
  for (const auto& [in, ns] : std::vector<std::pair<std::string, int64_t>>{
           {"60s", 60 * kS},
           {"10m", 600 * kS},
           {"500ms", 500 * kMs},
           {"1h", 3600 * kS},
           {"1m30s", 90 * kS},
           {"1m 30s", 90 * kS},
           {"2 minutes", 120 * kS},
           {"1.5h", 5400 * kS},
           {"1d", 86400 * kS},
           {"1w", 604800 * kS},
           {"90", 90 * kS},
           {"0.5", 500 * kMs},
           {"250us", 250'000},
           {"250µs", 250'000},
           {"3 secs", 3 * kS},
           {" 5s ", 5 * kS},
           {"0", 0},
       }) {
    absl::StatusOr<int64_t> d = ParseProxyDuration(in);
    ASSERT_TRUE(d.ok()) << in << ": " << d.status();
    EXPECT_EQ(*d, ns) << in;
  }
  EXPECT_EQ(Message(ParseProxyDuration("-5s")),
            "\"-5s\" is not a duration: negative (e.g. 60s, 10m, 1m30s, 500ms, "
            "or 90 for seconds)");
  EXPECT_EQ(Message(ParseProxyDuration("5 fortnights")),
            "\"5 fortnights\" is not a duration: unknown unit \"fortnights\" "
            "(use ns, us, ms, s, m, h, d or w) (e.g. 60s, 10m, 1m30s, 500ms, "
            "or 90 for seconds)");
  EXPECT_EQ(Message(ParseProxyDuration("1m 30")),
            "\"1m 30\" is not a duration: missing unit after 30 (e.g. 60s, "
            "10m, 1m30s, 500ms, or 90 for seconds)");
  EXPECT_THAT(Message(ParseProxyDuration("999999999w")),
              HasSubstr("too large (at most 2562047h)"));
  EXPECT_THAT(Message(ParseProxyDuration("")), HasSubstr("empty value"));
}

TEST(DurationTest, Milliseconds) {
  for (const auto& [in, ns] : std::vector<std::pair<std::string, int64_t>>{
           {"300", 300 * kMs},
           {"0.25", 250'000},
           {"300.0", 300 * kMs},
           {".5", 500'000},
           {"250us", 250'000},
           {"1.5ms", 1'500'000},
           {"2s", 2 * kS},
           {"0", 0},
       }) {
    absl::StatusOr<int64_t> d = ParseMilliseconds(in);
    ASSERT_TRUE(d.ok()) << in << ": " << d.status();
    EXPECT_EQ(*d, ns) << in;
  }
  EXPECT_EQ(Message(ParseMilliseconds("-5")), "\"-5\" is negative");
  EXPECT_EQ(Message(ParseMilliseconds("1e3")),
            "\"1e3\" is not a duration: unknown unit \"e\" (use ns, us, ms, "
            "s, m or h)");
  EXPECT_EQ(Message(ParseMilliseconds("0.0000001")),
            "\"0.0000001\" milliseconds: \"0.0000001ms\" is not a duration: "
            "not a whole number of nanoseconds");
}

TEST(NumberTest, PlainDecimalsOnly) {
  EXPECT_DOUBLE_EQ(*ParseProxyNumber("1.5"), 1.5);
  EXPECT_DOUBLE_EQ(*ParseProxyNumber(".5"), 0.5);
  EXPECT_DOUBLE_EQ(*ParseProxyNumber("0"), 0);
  for (const char* bad : {"", "-1", "1e3", "inf", "nan", "1.", "1.2.3", " 1"}) {
    EXPECT_EQ(Message(ParseProxyNumber(bad)),
              "\"" + std::string(bad) + "\" is not a number (e.g. 1.5)");
  }
}

// --- Listen addresses and schedules ------------------------------------------

TEST(ListenAddressTest, Forms) {
  for (const auto& [in, out] : std::vector<std::pair<std::string, std::string>>{
           {"127.0.0.1:3180", "127.0.0.1:3180"},
           {"0.0.0.0:1", "0.0.0.0:1"},
           {"[::1]:3180", "[::1]:3180"},
           {"[::]:80", "[::]:80"},
           {"[0:0:0:0:0:0:0:1]:80", "[::1]:80"},
           {"127.0.0.1:0", "127.0.0.1:0"},
       }) {
    absl::StatusOr<ListenAddress> a = ParseListenAddress(in, true);
    ASSERT_TRUE(a.ok()) << in << ": " << a.status();
    EXPECT_EQ(a->ToString(), out);
  }
  EXPECT_EQ(Message(ParseListenAddress("127.0.0.1:0", false)),
            "\"127.0.0.1:0\": \"0\" is not a port (1..65535)");
  EXPECT_EQ(Message(ParseListenAddress("127.0.0.1:", true)),
            "\"127.0.0.1:\": an empty port is not a port (0..65535)");
  EXPECT_EQ(Message(ParseListenAddress("127.0.0.1:+80", true)),
            "\"127.0.0.1:+80\": \"+80\" is not a port (0..65535)");
  EXPECT_EQ(Message(ParseListenAddress("[::1:80", true)),
            "\"[::1:80\": \"[\" without \"]\"");
  EXPECT_EQ(Message(ParseListenAddress("010.0.0.1:80", true)),
            "\"010.0.0.1:80\": \"010.0.0.1\" is not an IP address (listeners "
            "take an address, not a name: 127.0.0.1, 0.0.0.0, [::1], [::])");
}

TEST(ScheduleSyntaxTest, Periods) {
  absl::StatusOr<fault::v1::Schedule> s =
      ParseProxySchedule("start:1m,duration:30;duration:500ms", 0);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->kind(), fault::v1::Schedule::KIND_INTERVALS);
  ASSERT_EQ(s->intervals_size(), 2);
  EXPECT_EQ(s->intervals(0).start_ns(), 60 * kS);
  EXPECT_EQ(s->intervals(0).duration_ns(), 30 * kS);
  EXPECT_EQ(s->intervals(1).start_ns(), 0);
  EXPECT_EQ(s->intervals(1).duration_ns(), 500 * kMs);
  EXPECT_EQ(s->run_duration_ns(), 0);
  absl::StatusOr<fault::v1::Schedule> r =
      ParseProxySchedule("start:10%,duration:1m 30s", 600 * kS);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->intervals(0).start_ns(), 60 * kS) << "mixed: resolved";
  EXPECT_EQ(r->intervals(0).duration_ns(), 90 * kS);
  EXPECT_EQ(r->run_duration_ns(), 600 * kS);
  EXPECT_EQ(Message(ParseProxySchedule("start:soon", 0)),
            "\"start:soon\" is not an interval list: start: \"soon\" is not a "
            "duration: expected a number at \"soon\" (e.g. 60s, 10m, 1m30s, "
            "500ms, or 90 for seconds)");
  EXPECT_EQ(Message(ParseProxySchedule("start:30s;duration:10s", 20 * kS)),
            "\"start:30s;duration:10s\" is not an interval list: interval 1 "
            "starts at 30s, after the end of the run (--duration 20s)");
  EXPECT_EQ(Message(ParseProxySchedule("start:5%,start:6%", 20 * kS)),
            "\"start:5%,start:6%\" is not an interval list: start given twice "
            "in one interval");
  std::string eight;
  for (int i = 0; i < 8; ++i) eight += "start:" + std::to_string(i) + ";";
  eight.pop_back();
  EXPECT_TRUE(ParseProxySchedule(eight, 0).ok());
  EXPECT_THAT(Message(ParseProxySchedule(eight + ";start:9", 0)),
              HasSubstr("has 9 periods; a schedule holds at most 8"));
}

}  // namespace
}  // namespace fault::run
