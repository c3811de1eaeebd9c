// The replies of mock services: route matching and the configuration's
// JSON form (the server itself is tested through `fault test`,
// spec_cli_test.py test_mock_services).
#include "supervisor/spec/mock.h"

#include <gtest/gtest.h>

namespace fault::spec {
namespace {

MockReply Body(const std::string& body, int status = 200) {
  MockReply r;
  r.body = body;
  r.status = status;
  return r;
}

MockConfig Http() {
  MockConfig c;
  c.routes = {{"GET /health", Body("get health")},
              {"/health", Body("any health")},
              {"GET /items/*", Body("item")},
              {"POST /items?draft=1", Body("draft")}};
  return c;
}

TEST(MockTest, HttpRoutesInOrderByMethodAndPath) {
  MockConfig c = Http();
  EXPECT_EQ(MatchHttp(c, "GET", "/health")->body, "get health");
  EXPECT_EQ(MatchHttp(c, "PUT", "/health")->body, "any health");
  EXPECT_EQ(MatchHttp(c, "GET", "/items/3?full=1")->body, "item");
  // The path without its query first, then the whole target.
  EXPECT_EQ(MatchHttp(c, "POST", "/items?draft=1")->body, "draft");
  EXPECT_EQ(MatchHttp(c, "POST", "/items"), nullptr);
  EXPECT_EQ(MatchHttp(c, "GET", "/nope"), nullptr);
  c.fallback = Body("none", 404);
  EXPECT_EQ(MatchHttp(c, "GET", "/nope")->status, 404);
}

TEST(MockTest, TcpLinesAreGlobs) {
  MockConfig c;
  c.protocol = MockConfig::Protocol::kTcp;
  c.routes = {{"PING", Body("PONG\n")}, {"GET *", Body("VALUE\n")}};
  EXPECT_EQ(MatchLine(c, "PING")->body, "PONG\n");
  EXPECT_EQ(MatchLine(c, "GET colour")->body, "VALUE\n");
  EXPECT_EQ(MatchLine(c, "PING me"), nullptr);
}

TEST(MockTest, RouteKeys) {
  using P = MockConfig::Protocol;
  EXPECT_EQ(CheckRouteKey(P::kHttp, "GET /a"), "");
  EXPECT_EQ(CheckRouteKey(P::kHttp, "/a/*"), "");
  EXPECT_EQ(CheckRouteKey(P::kHttp, "GET"),
            "want \"METHOD /path\" or \"/path\" (the path may be a glob: "
            "\"GET /items/*\")");
  EXPECT_EQ(CheckRouteKey(P::kHttp, "Get /a"),
            "\"Get\" is not a method (upper-case letters: GET, POST, ...)");
  EXPECT_EQ(CheckRouteKey(P::kTcp, "anything at all"), "");
  EXPECT_NE(CheckRouteKey(P::kTcp, ""), "");
}

TEST(MockTest, JsonRoundTrip) {
  MockConfig c = Http();
  c.routes[0].second.delay = absl::Milliseconds(250);
  c.routes[0].second.headers = {{"Content-Type", "text/plain"}};
  c.routes[1].second.close = true;
  c.fallback = Body("none", 404);
  absl::StatusOr<MockConfig> back = MockConfigFromJson(MockConfigToJson(c));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(MockConfigToJson(*back), MockConfigToJson(c));
  EXPECT_EQ(back->routes[0].second.delay, absl::Milliseconds(250));
  EXPECT_TRUE(back->routes[1].second.close);
  EXPECT_EQ(back->fallback->status, 404);
  EXPECT_FALSE(MockConfigFromJson({{"protocol", "udp"}, {"routes", {}}}).ok());
  EXPECT_FALSE(MockConfigFromJson({{"routes", {}}}).ok());
}

}  // namespace
}  // namespace fault::spec
