#include "supervisor/stream/http_head.h"

#include <string>

#include "gtest/gtest.h"

namespace fault::stream {
namespace {

TEST(HttpHead, AbsoluteFormBecomesOriginFormWithoutHopByHopHeaders) {
  RequestRoute r = ParseAndRoute(
      "GET http://Example.com:8080/a/b?x=1#frag HTTP/1.1\r\nHost: example.com:8080\r\n"
      "Proxy-Connection: keep-alive\r\nProxy-Authorization: Basic eA==\r\nAccept: */*\r\n\r\n");
  ASSERT_EQ(r.status, 0) << r.message;
  EXPECT_FALSE(r.connect);
  EXPECT_EQ(r.host, "example.com");
  EXPECT_EQ(r.port, 8080);
  EXPECT_EQ(r.key, "example.com:8080");
  EXPECT_EQ(r.out_head,
            "GET /a/b?x=1 HTTP/1.1\r\nHost: Example.com:8080\r\nAccept: */*\r\n\r\n");
  EXPECT_EQ(ParseAndRoute("GET /p HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").status, 400);
}

TEST(HttpHead, DefaultsAndAHostHeaderWhenMissing) {
  RequestRoute r = ParseAndRoute("GET http://h HTTP/1.0\r\n\r\n");
  ASSERT_EQ(r.status, 0) << r.message;
  EXPECT_EQ(r.key, "h:80");
  EXPECT_EQ(r.out_head, "GET / HTTP/1.0\r\nHost: h\r\n\r\n");
  // The URL wins over a Host header that disagrees with it.
  r = ParseAndRoute("GET http://a:81/ HTTP/1.1\r\nHost: b:82\r\n\r\n");
  ASSERT_EQ(r.status, 0) << r.message;
  EXPECT_EQ(r.key, "a:81");
  EXPECT_EQ(r.out_head, "GET / HTTP/1.1\r\nHost: a:81\r\n\r\n");
  r = ParseAndRoute("GET http://h?q=2 HTTP/1.1\r\n\r\n");
  ASSERT_EQ(r.status, 0) << r.message;
  EXPECT_EQ(r.out_head.substr(0, 19), "GET /?q=2 HTTP/1.1\r");
}

TEST(HttpHead, OriginFormGoesWhereTheHostHeaderSays) {
  RequestRoute r = ParseAndRoute("POST /p HTTP/1.1\r\nHost: [::1]:9000\r\nContent-Length: 0\r\n\r\n");
  ASSERT_EQ(r.status, 0) << r.message;
  EXPECT_EQ(r.host, "::1");
  EXPECT_EQ(r.port, 9000);
  EXPECT_EQ(r.key, "[::1]:9000");
  EXPECT_EQ(ParseAndRoute("GET /p HTTP/1.1\r\n\r\n").status, 400);
  EXPECT_EQ(ParseAndRoute("GET /p HTTP/1.1\r\nHost: h:0\r\n\r\n").status, 400);
  EXPECT_EQ(ParseAndRoute("GET /p HTTP/1.1\r\nHost: h:99999\r\n\r\n").status, 400);
}

TEST(HttpHead, ConnectTakesAnAuthority) {
  RequestRoute r = ParseAndRoute("CONNECT example.com:443 HTTP/1.1\r\n\r\n");
  ASSERT_EQ(r.status, 0) << r.message;
  EXPECT_TRUE(r.connect);
  EXPECT_EQ(r.key, "example.com:443");
  EXPECT_TRUE(r.out_head.empty());
  r = ParseAndRoute("CONNECT [2001:db8::1]:8443 HTTP/1.1\r\n\r\n");
  ASSERT_EQ(r.status, 0) << r.message;
  EXPECT_EQ(r.host, "2001:db8::1");
  EXPECT_EQ(r.port, 8443);
}

TEST(HttpHead, HttpsInAbsoluteFormIsNotImplementedAndGarbageIsBad) {
  RequestRoute r = ParseAndRoute("GET https://h/ HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.status, 501);
  EXPECT_NE(r.message.find("CONNECT"), std::string::npos);
  EXPECT_EQ(ParseAndRoute("HELLO\r\n\r\n").status, 400);
  EXPECT_EQ(ParseAndRoute("GET http://h/ HTTP/1.1\r\n").status, 400);  // no end
}

TEST(HttpHead, HeadEndFindsTheEmptyLine) {
  EXPECT_EQ(HeadEnd("GET / HTTP/1.1\r\n\r\nbody", 0), 18u);
  EXPECT_EQ(HeadEnd("GET / HTTP/1.1\n\nbody", 0), 16u);
  EXPECT_EQ(HeadEnd("GET / HTTP/1.1\r\nHost: h\r\n", 0), std::string::npos);
}

}  // namespace
}  // namespace fault::stream
