#include "supervisor/stream/protocol_faults.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace fault::stream {
namespace {

using Action = ProtocolFilter::Action;

std::shared_ptr<ProtocolFaults> Faults() {
  auto f = std::make_shared<ProtocolFaults>();
  f->has_seed = true;
  f->seed = 7;
  return f;
}

// Feeds `in` in pieces of `step` bytes and returns all actions.
std::vector<Action> FeedAll(ProtocolFilter& filter, const std::string& in, size_t step) {
  std::vector<Action> out;
  for (size_t i = 0; i < in.size(); i += step) filter.Feed(in.substr(i, step), &out);
  return out;
}

std::string Forwarded(const std::vector<Action>& acts) {
  std::string s;
  for (const Action& a : acts)
    if (a.kind == Action::kForward) s += a.bytes;
  return s;
}

std::string Replied(const std::vector<Action>& acts) {
  std::string s;
  for (const Action& a : acts)
    if (a.kind == Action::kReply) s += a.bytes;
  return s;
}

std::string RespCommand(const std::vector<std::string>& args) {
  std::string s = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) s += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return s;
}

std::string PgMessage(char type, const std::string& body) {
  std::string s(1, type);
  uint32_t n = static_cast<uint32_t>(body.size() + 4);
  for (int sh = 24; sh >= 0; sh -= 8) s.push_back(static_cast<char>((n >> sh) & 0xff));
  return s + body;
}

std::string PgStartup(uint32_t code, const std::string& rest) {
  std::string body;
  for (int sh = 24; sh >= 0; sh -= 8) body.push_back(static_cast<char>((code >> sh) & 0xff));
  body += rest;
  std::string s;
  uint32_t n = static_cast<uint32_t>(body.size() + 4);
  for (int sh = 24; sh >= 0; sh -= 8) s.push_back(static_cast<char>((n >> sh) & 0xff));
  return s + body;
}

TEST(ProtocolFaultsTest, HttpRouteAnsweredOthersForwardedInAnySplit) {
  auto f = Faults();
  ProtocolFaults::Http h;
  h.method = "POST";
  h.path = "/orders/*";
  h.status = 503;
  h.body = "try later";
  f->http.push_back(h);
  const std::string ok1 = "GET /orders/1 HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string bad =
      "POST /orders/2?x=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
  const std::string ok2 = "POST /users HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc";
  for (size_t step : {1u, 3u, 7u, 1000u}) {
    ProtocolFilter filter(f, 1);
    std::vector<Action> acts = FeedAll(filter, ok1 + bad + ok2, step);
    EXPECT_EQ(Forwarded(acts), ok1 + ok2) << "step " << step;
    EXPECT_EQ(Replied(acts),
              "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; "
              "charset=utf-8\r\nContent-Length: 9\r\n\r\ntry later")
        << "step " << step;
    int replies = 0;
    for (const Action& a : acts) {
      if (a.kind != Action::kReply) continue;
      ++replies;
      EXPECT_EQ(a.status, 503);
      EXPECT_EQ(a.what, "POST /orders/2");
    }
    EXPECT_EQ(replies, 1);
  }
}

TEST(ProtocolFaultsTest, HttpChunkedBodyOfFaultedRequestDiscarded) {
  auto f = Faults();
  ProtocolFaults::Http h;
  h.path = "/x";
  h.status = 500;
  f->http.push_back(h);
  ProtocolFilter filter(f, 1);
  const std::string bad =
      "PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
  const std::string next = "GET /y HTTP/1.1\r\n\r\n";
  std::vector<Action> acts = FeedAll(filter, bad + next, 5);
  EXPECT_EQ(Forwarded(acts), next);
  EXPECT_NE(Replied(acts).find("HTTP/1.1 500 "), std::string::npos);
}

TEST(ProtocolFaultsTest, HttpHeadAndCloseAndDrop) {
  auto f = Faults();
  ProtocolFaults::Http h;
  h.path = "/*";
  h.status = 404;
  h.body = "gone";
  f->http.push_back(h);
  {
    ProtocolFilter filter(f, 1);
    std::vector<Action> acts = FeedAll(filter, "HEAD /a HTTP/1.0\r\n\r\n", 100);
    EXPECT_EQ(Replied(acts),
              "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"
              "Content-Length: 4\r\nConnection: close\r\n\r\n");
    ASSERT_EQ(acts.size(), 1u);
    EXPECT_TRUE(acts[0].close);  // HTTP/1.0 without keep-alive: the answer ends it
  }
  f->http[0].drop = true;
  ProtocolFilter filter(f, 1);
  std::vector<Action> acts = FeedAll(filter, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n", 100);
  ASSERT_EQ(acts.size(), 1u);
  EXPECT_EQ(acts[0].kind, Action::kDrop);
}

TEST(ProtocolFaultsTest, HttpProbabilityIsSeededAndPartial) {
  auto f = Faults();
  ProtocolFaults::Http h;
  h.path = "/*";
  h.status = 500;
  h.probability_ppm = 500'000;
  f->http.push_back(h);
  std::string in;
  for (int i = 0; i < 200; ++i) in += "GET /a HTTP/1.1\r\n\r\n";
  auto count = [&](uint64_t serial) {
    ProtocolFilter filter(f, serial);
    int n = 0;
    for (const Action& a : FeedAll(filter, in, 4096)) n += a.kind == Action::kReply;
    return n;
  };
  int a = count(1);
  EXPECT_GT(a, 60);
  EXPECT_LT(a, 140);
  EXPECT_EQ(a, count(1));  // the same seed, the same decisions
}

TEST(ProtocolFaultsTest, HttpDelayForwardsTheRequest) {
  auto f = Faults();
  ProtocolFaults::Http h;
  h.method = "GET";
  h.path = "/slow";
  h.delay_ns = 300'000'000;
  f->http.push_back(h);
  ProtocolFilter filter(f, 1);
  const std::string slow = "GET /slow HTTP/1.1\r\n\r\n";
  const std::string fast = "GET /fast HTTP/1.1\r\n\r\n";
  std::vector<Action> acts = FeedAll(filter, fast + slow, 1000);
  ASSERT_EQ(acts.size(), 3u);
  EXPECT_EQ(acts[0].kind, Action::kForward);
  EXPECT_EQ(acts[0].bytes, fast);
  EXPECT_EQ(acts[1].kind, Action::kDelay);
  EXPECT_EQ(acts[1].delay_ns, 300'000'000);
  EXPECT_EQ(acts[2].kind, Action::kForward);
  EXPECT_EQ(acts[2].bytes, slow);
}

TEST(ProtocolFaultsTest, NotHttpPassesThrough) {
  auto f = Faults();
  ProtocolFaults::Http h;
  h.path = "/*";
  h.status = 500;
  f->http.push_back(h);
  ProtocolFilter filter(f, 1);
  std::string junk("\x16\x03\x01\x00\x05hello", 10);
  std::vector<Action> acts = FeedAll(filter, junk + "GET / HTTP/1.1\r\n\r\n", 3);
  EXPECT_EQ(Forwarded(acts), junk + "GET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(filter.protocol(), ProtocolFilter::Protocol::kPassThrough);
}

TEST(ProtocolFaultsTest, RedisCommandAndKey) {
  auto f = Faults();
  ProtocolFaults::Redis r;
  r.commands = {"SET", "DEL"};
  r.key = "user:*";
  r.error = "READONLY You can't write against a read only replica.";
  f->redis.push_back(r);
  const std::string get = RespCommand({"GET", "user:1"});
  const std::string set_user = RespCommand({"set", "user:1", "v"});
  const std::string set_other = RespCommand({"SET", "other", "v"});
  for (size_t step : {1u, 4u, 1000u}) {
    ProtocolFilter filter(f, 1);
    std::vector<Action> acts = FeedAll(filter, get + set_user + set_other, step);
    EXPECT_EQ(Forwarded(acts), get + set_other);
    EXPECT_EQ(Replied(acts), "-READONLY You can't write against a read only replica.\r\n");
  }
  ProtocolFilter inline_filter(f, 1);
  std::vector<Action> acts = FeedAll(inline_filter, "DEL user:2\r\nPING\r\n", 2);
  EXPECT_EQ(Forwarded(acts), "PING\r\n");
  EXPECT_EQ(Replied(acts), "-READONLY You can't write against a read only replica.\r\n");
}

TEST(ProtocolFaultsTest, RedisDelayForwardsTheCommandLater) {
  auto f = Faults();
  ProtocolFaults::Redis r;
  r.commands = {"GET"};
  r.key = "slow:*";
  r.delay_ns = 40'000'000;
  f->redis.push_back(r);
  const std::string fast = RespCommand({"GET", "other"});
  const std::string slow = RespCommand({"get", "slow:1"});
  for (size_t step : {1u, 5u, 1000u}) {
    ProtocolFilter filter(f, 1);
    std::vector<Action> acts = FeedAll(filter, fast + slow + fast, step);
    // Everything reaches the server, in order; a delay comes right before
    // the command it holds back.
    EXPECT_EQ(Forwarded(acts), fast + slow + fast);
    EXPECT_EQ(Replied(acts), "");
    int delays = 0;
    for (size_t i = 0; i < acts.size(); ++i) {
      if (acts[i].kind != Action::kDelay) continue;
      ++delays;
      EXPECT_EQ(acts[i].delay_ns, 40'000'000);
      EXPECT_EQ(acts[i].what, "GET slow:1");
      ASSERT_LT(i + 1, acts.size());
      EXPECT_EQ(acts[i + 1].kind, Action::kForward);
      EXPECT_EQ(acts[i + 1].bytes.substr(0, slow.size()), slow);
    }
    EXPECT_EQ(delays, 1);
  }
}

TEST(ProtocolFaultsTest, RedisParser) {
  size_t len = 0;
  std::vector<std::string> args;
  EXPECT_EQ(ParseRedisCommand("*2\r\n$3\r\nGET\r\n$1\r\nk", &len, &args),
            ParseResult::kNeedMore);
  EXPECT_EQ(ParseRedisCommand("*2\r\n$3\r\nGET\r\n$1\r\nk\r\nextra", &len, &args),
            ParseResult::kMessage);
  EXPECT_EQ(len, 20u);
  EXPECT_EQ(args, (std::vector<std::string>{"GET", "k"}));
  EXPECT_EQ(ParseRedisCommand("*1\r\n$3\r\nGETXX", &len, &args), ParseResult::kInvalid);
  EXPECT_EQ(ParseRedisCommand("*x\r\n", &len, &args), ParseResult::kInvalid);
  EXPECT_EQ(ParseRedisCommand("*-5\r\n", &len, &args), ParseResult::kInvalid);
}

TEST(ProtocolFaultsTest, PostgresSimpleQuery) {
  auto f = Faults();
  ProtocolFaults::Postgres g;
  g.query = "insert into orders*";
  g.sqlstate = "40001";
  g.message = "could not serialize access";
  f->postgres.push_back(g);
  const std::string ssl = PgStartup(80877103, "");
  const std::string startup = PgStartup(196608, std::string("user\0u\0\0", 8));
  const std::string ok = PgMessage('Q', std::string("SELECT 1\0", 9));
  const std::string bad = PgMessage('Q', std::string(" INSERT INTO orders VALUES (1)\0", 31));
  for (size_t step : {1u, 6u, 1000u}) {
    ProtocolFilter filter(f, 1);
    std::vector<Action> acts = FeedAll(filter, ssl + startup + ok + bad + ok, step);
    EXPECT_EQ(Forwarded(acts), ssl + startup + ok + ok);
    EXPECT_EQ(Replied(acts),
              PostgresErrorResponse("40001", "could not serialize access") +
                  PostgresReadyForQuery());
  }
  EXPECT_EQ(PostgresReadyForQuery(), std::string("Z\0\0\0\x05I", 6));
  EXPECT_EQ(PostgresErrorResponse("40001", "m"),
            std::string("E\0\0\0\x1dSERROR\0VERROR\0C40001\0Mm\0\0", 30));
}

TEST(ProtocolFaultsTest, PostgresExtendedQuerySkipsToSync) {
  auto f = Faults();
  ProtocolFaults::Postgres g;
  g.query = "DELETE*";
  g.sqlstate = "42501";
  g.message = "permission denied";
  f->postgres.push_back(g);
  ProtocolFilter filter(f, 1);
  const std::string startup = PgStartup(196608, std::string("user\0u\0\0", 8));
  const std::string parse = PgMessage('P', std::string("\0DELETE FROM t\0\0\0", 17));
  const std::string bind = PgMessage('B', std::string("\0\0\0\0\0\0\0\0", 8));
  const std::string exec = PgMessage('E', std::string("\0\0\0\0\0", 5));
  const std::string sync = PgMessage('S', "");
  const std::string good = PgMessage('P', std::string("\0SELECT 1\0\0\0", 12));
  std::vector<Action> acts =
      FeedAll(filter, startup + parse + bind + exec + sync + good + sync, 3);
  EXPECT_EQ(Forwarded(acts), startup + good + sync);
  EXPECT_EQ(Replied(acts), PostgresErrorResponse("42501", "permission denied") +
                               PostgresReadyForQuery());
  int faults = 0;
  for (const Action& a : acts) faults += a.kind == Action::kReply && a.fault;
  EXPECT_EQ(faults, 1);
}

TEST(ProtocolFaultsTest, PostgresDelayForwardsTheQueryLater) {
  auto f = Faults();
  ProtocolFaults::Postgres g;
  g.query = "select pg_*";
  g.delay_ns = 2'000'000'000;
  f->postgres.push_back(g);
  ProtocolFilter filter(f, 1);
  const std::string startup = PgStartup(196608, std::string("user\0u\0\0", 8));
  const std::string ok = PgMessage('Q', std::string("SELECT 1\0", 9));
  const std::string slow = PgMessage('Q', std::string("SELECT PG_sleep(0)\0", 19));
  std::vector<Action> acts = FeedAll(filter, startup + ok + slow + ok, 1000);
  EXPECT_EQ(Forwarded(acts), startup + ok + slow + ok);
  EXPECT_EQ(Replied(acts), "");
  ASSERT_EQ(acts.size(), 3u);
  EXPECT_EQ(acts[1].kind, Action::kDelay);
  EXPECT_EQ(acts[1].delay_ns, 2'000'000'000);
  EXPECT_EQ(acts[1].what, "SELECT PG_sleep(0)");
  EXPECT_EQ(acts[2].bytes, slow + ok);
}

TEST(ProtocolFaultsTest, PostgresBadLengthPassesThrough) {
  auto f = Faults();
  ProtocolFaults::Postgres g;
  g.query = "*";
  g.drop = true;
  f->postgres.push_back(g);
  ProtocolFilter filter(f, 1);
  const std::string startup = PgStartup(196608, std::string("user\0u\0\0", 8));
  std::string garbage("Q\xff\xff\xff\xff", 5);
  std::vector<Action> acts = FeedAll(filter, startup + garbage, 100);
  EXPECT_EQ(Forwarded(acts), startup + garbage);
  ProtocolFilter dropper(f, 1);
  acts = FeedAll(dropper, startup + PgMessage('Q', std::string("x\0", 2)), 100);
  ASSERT_EQ(acts.size(), 2u);
  EXPECT_EQ(acts[1].kind, Action::kDrop);
}

}  // namespace
}  // namespace fault::stream
