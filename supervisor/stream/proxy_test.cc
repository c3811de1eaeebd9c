// The stream engine as a proxy: TCP mappings, splice() pass-through, the
// HTTP/1.1 forward proxy (keep-alive and upstream reuse, CONNECT, HTTP
// error faults, DNS and unreachable upstreams), observed from the client's
// side of real loopback sockets.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "shim/engine/engine.h"
#include "supervisor/stream/stream_engine.h"
#include "supervisor/stream/stream_test_util.h"

namespace fault::stream {
namespace {

namespace eng = ::fault::engine;

// A small HTTP/1.1 origin server on 127.0.0.1: a thread per connection,
// keep-alive, answers every request with its request line as the body.
class Origin {
 public:
  Origin() {
    lfd_ = Listen(&port_);
    thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~Origin() {
    stop_ = true;
    shutdown(lfd_, SHUT_RDWR);
    thread_.join();
    for (std::thread& t : conns_) t.join();
    close(lfd_);
  }
  uint16_t port() const { return port_; }
  int accepted() const { return accepted_.load(); }
  std::vector<std::string> heads() {
    std::lock_guard<std::mutex> l(mu_);
    return heads_;
  }

 private:
  void AcceptLoop() {
    for (int i = 0; i < 64 && !stop_; ++i) {
      pollfd p = {lfd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) {
        --i;
        if (stop_) return;
        continue;
      }
      int fd = accept(lfd_, nullptr, nullptr);
      if (fd < 0) return;
      ++accepted_;
      conns_.emplace_back([this, fd] { Serve(fd); });
    }
  }
  void Serve(int fd) {
    std::string in;
    char buf[4096];
    const int64_t until = NowNs() + 10'000'000'000;
    while (!stop_ && NowNs() < until) {
      size_t end = in.find("\r\n\r\n");
      if (end != std::string::npos) {
        std::string head = in.substr(0, end + 4);
        size_t body = 0;
        size_t cl = head.find("Content-Length: ");
        if (cl != std::string::npos) body = std::stoul(head.substr(cl + 16));
        if (in.size() < end + 4 + body) goto more;
        in.erase(0, end + 4 + body);
        {
          std::lock_guard<std::mutex> l(mu_);
          heads_.push_back(head);
        }
        std::string line = head.substr(0, head.find("\r\n"));
        std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: " +
                           std::to_string(line.size()) + "\r\n\r\n" + line;
        // A 304 may carry the length of what it does not send.
        if (line.find(" /304 ") != std::string::npos)
          resp = "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n";
        if (write(fd, resp.data(), resp.size()) != static_cast<ssize_t>(resp.size())) break;
        continue;
      }
    more:
      pollfd p = {fd, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      ssize_t r = read(fd, buf, sizeof(buf));
      if (r <= 0) break;
      in.append(buf, static_cast<size_t>(r));
    }
    close(fd);
  }

  int lfd_;
  uint16_t port_;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
  std::vector<std::thread> conns_;
  std::mutex mu_;
  std::vector<std::string> heads_;
};

int Connect(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = Loopback(port);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  return fd;
}

void Send(int fd, const std::string& s) {
  ASSERT_EQ(write(fd, s.data(), s.size()), static_cast<ssize_t>(s.size()));
}

// Reads one HTTP response with a Content-Length (or until EOF). What
// follows it (the next pipelined response) is kept for the next call.
std::string ReadResponse(int fd, int timeout_ms = 5000) {
  static std::map<int, std::string> rest;
  std::string in = std::move(rest[fd]);
  rest.erase(fd);
  char buf[4096];
  const int64_t until = NowNs() + int64_t{timeout_ms} * 1'000'000;
  while (NowNs() < until) {
    size_t end = in.find("\r\n\r\n");
    if (end != std::string::npos) {
      size_t cl = in.find("Content-Length: ");
      if (cl != std::string::npos && cl < end) {
        size_t n = std::stoul(in.substr(cl + 16));
        if (in.size() >= end + 4 + n) {
          if (in.size() > end + 4 + n) rest[fd] = in.substr(end + 4 + n);
          return in.substr(0, end + 4 + n);
        }
      }
    }
    pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    ssize_t r = read(fd, buf, sizeof(buf));
    if (r <= 0) break;
    in.append(buf, static_cast<size_t>(r));
  }
  return in;
}

std::string Body(const std::string& response) {
  size_t end = response.find("\r\n\r\n");
  return end == std::string::npos ? "" : response.substr(end + 4);
}

StreamEngine::Options ProxyOpts(fault_table* t) {
  StreamEngine::Options o = Opts(t);
  o.redirects = false;
  o.advertise = false;
  return o;
}

StreamEngine::Listener HttpListener() {
  StreamEngine::Listener l;
  l.kind = StreamEngine::Listener::Kind::kHttpProxy;
  l.name = "http";
  return l;
}

StreamEngine::Listener TcpListener(uint16_t upstream) {
  StreamEngine::Listener l;
  l.upstream_host = "127.0.0.1";
  l.upstream_port = upstream;
  l.name = "tcp";
  return l;
}

TEST(Proxy, TcpMappingAppliesTheAlwaysRules) {
  Table table;
  fault_rule& r = table.AddRule("latency");
  SetFixedLatency(&r.downlink, 30'000'000);
  table.Publish();
  uint16_t port;
  int lfd = Listen(&port);
  StreamEngine::Options o = ProxyOpts(table.get());
  o.listeners.push_back(TcpListener(port));
  o.always_rules = {"latency"};
  auto e = StreamEngine::Start(o);
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_EQ((*e)->ports().size(), 1u);
  EXPECT_EQ((*e)->port4(), 0);  // no redirect listeners

  int c = Connect((*e)->ports()[0]);
  int s = accept(lfd, nullptr, nullptr);
  ASSERT_GE(s, 0);
  int64_t t0 = NowNs();
  Send(c, "up");
  char buf[2];
  ASSERT_TRUE(ReadExactly(s, buf, 2));
  EXPECT_LT(NowNs() - t0, 25'000'000);  // uplink: no delay
  t0 = NowNs();
  Send(s, "dn");
  ASSERT_TRUE(ReadExactly(c, buf, 2));
  EXPECT_GE(NowNs() - t0, 30'000'000);
  EXPECT_EQ(std::string(buf, 2), "dn");
  EXPECT_EQ((*e)->stats().spliced, 0u);
  EXPECT_GE(table.get()->counters.rule_fired[0], 1u);
  close(c);
  close(s);
  close(lfd);
}

TEST(Proxy, ConnectionLimitHoldsNewClientsUntilOneCloses) {
  Table table;
  table.Publish();
  uint16_t port;
  int lfd = Listen(&port);
  StreamEngine::Options o = ProxyOpts(table.get());
  o.listeners.push_back(TcpListener(port));
  o.max_connections = 2;
  auto e = StreamEngine::Start(o);
  ASSERT_TRUE(e.ok()) << e.status();
  int c[3];
  int s[3];
  for (int i = 0; i < 2; ++i) {
    c[i] = Connect((*e)->ports()[0]);
    s[i] = accept(lfd, nullptr, nullptr);
    ASSERT_GE(s[i], 0);
  }
  // The third waits in the kernel's queue: its bytes go nowhere yet.
  c[2] = Connect((*e)->ports()[0]);
  Send(c[2], "third");
  pollfd p = {lfd, POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 200), 0);
  EXPECT_EQ((*e)->stats().limited, 1u);
  close(c[0]);
  close(s[0]);
  ASSERT_EQ(poll(&p, 1, 2000), 1);
  s[2] = accept(lfd, nullptr, nullptr);
  ASSERT_GE(s[2], 0);
  char buf[5];
  ASSERT_TRUE(ReadExactly(s[2], buf, 5));
  EXPECT_EQ(std::string(buf, 5), "third");
  for (int i = 1; i < 3; ++i) {
    close(c[i]);
    close(s[i]);
  }
  close(lfd);
}

TEST(Proxy, PassThroughIsSplicedAndIntact) {
  Table table;
  table.Publish();
  uint16_t port;
  int lfd = Listen(&port);
  StreamEngine::Options o = ProxyOpts(table.get());
  o.listeners.push_back(TcpListener(port));
  o.loops = 2;
  auto e = StreamEngine::Start(o);
  ASSERT_TRUE(e.ok()) << e.status();
  int c = Connect((*e)->ports()[0]);
  int s = accept(lfd, nullptr, nullptr);
  ASSERT_GE(s, 0);
  std::string data(8 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 + (i >> 11));
  std::thread writer([&] {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t w = write(c, data.data() + off, data.size() - off);
      if (w <= 0) break;
      off += static_cast<size_t>(w);
    }
    shutdown(c, SHUT_WR);
  });
  std::string got(data.size(), '\0');
  EXPECT_TRUE(ReadExactly(s, got.data(), got.size(), 20000));
  writer.join();
  EXPECT_TRUE(got == data);
  // The FIN is passed on.
  char b;
  pollfd p = {s, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 2000), 1);
  EXPECT_EQ(read(s, &b, 1), 0);
  EXPECT_EQ((*e)->stats().spliced, 1u);
  EXPECT_EQ((*e)->stats().bytes_up, data.size());
  close(c);
  close(s);
  close(lfd);
}

TEST(Proxy, HttpForwardKeepsAliveAndReusesTheUpstream) {
  Table table;
  table.Publish();
  Origin origin;
  StreamEngine::Options o = ProxyOpts(table.get());
  o.listeners.push_back(HttpListener());
  auto e = StreamEngine::Start(o);
  ASSERT_TRUE(e.ok()) << e.status();
  const std::string host = "127.0.0.1:" + std::to_string(origin.port());
  int c = Connect((*e)->ports()[0]);
  for (int i = 0; i < 3; ++i) {
    Send(c, "GET http://" + host + "/a?x=" + std::to_string(i) +
                " HTTP/1.1\r\nHost: " + host + "\r\nProxy-Connection: keep-alive\r\n\r\n");
    std::string r = ReadResponse(c);
    EXPECT_EQ(Body(r), "GET /a?x=" + std::to_string(i) + " HTTP/1.1") << r;
  }
  // A POST with a body on the same connection.
  Send(c, "POST http://" + host + "/p HTTP/1.1\r\nHost: " + host +
              "\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(Body(ReadResponse(c)), "POST /p HTTP/1.1");
  close(c);
  // A second client gets the pooled upstream connection.
  usleep(50'000);
  int c2 = Connect((*e)->ports()[0]);
  Send(c2, "GET http://" + host + "/b HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
  EXPECT_EQ(Body(ReadResponse(c2)), "GET /b HTTP/1.1");
  close(c2);
  EXPECT_EQ(origin.accepted(), 1);
  EXPECT_EQ((*e)->stats().http_requests, 5u);
  EXPECT_EQ((*e)->stats().upstream_reused, 4u);
  for (const std::string& head : origin.heads())
    EXPECT_EQ(head.find("Proxy-Connection"), std::string::npos) << head;
}

TEST(Proxy, PipelinedRequestsToTwoUpstreamsAreAnsweredInOrder) {
  Table table;
  table.Publish();
  Origin a, b;
  StreamEngine::Options o = ProxyOpts(table.get());
  o.listeners.push_back(HttpListener());
  auto e = StreamEngine::Start(o);
  ASSERT_TRUE(e.ok()) << e.status();
  const std::string ha = "127.0.0.1:" + std::to_string(a.port());
  const std::string hb = "127.0.0.1:" + std::to_string(b.port());
  int c = Connect((*e)->ports()[0]);
  // One write, three requests, two upstreams.
  Send(c, "GET http://" + ha + "/1 HTTP/1.1\r\nHost: " + ha + "\r\n\r\n" +
              "GET http://" + hb + "/2 HTTP/1.1\r\nHost: " + hb + "\r\n\r\n" +
              "GET http://" + ha + "/3 HTTP/1.1\r\nHost: " + ha + "\r\n\r\n");
  EXPECT_EQ(Body(ReadResponse(c)), "GET /1 HTTP/1.1");
  EXPECT_EQ(Body(ReadResponse(c)), "GET /2 HTTP/1.1");
  EXPECT_EQ(Body(ReadResponse(c)), "GET /3 HTTP/1.1");
  close(c);
  EXPECT_EQ(a.accepted(), 1);  // /3 reused the pooled connection to a
  EXPECT_EQ(b.accepted(), 1);
}

TEST(Proxy, ResponsesWithoutBodiesKeepTheConnectionInStep) {
  Table table;
  table.Publish();
  Origin origin;
  StreamEngine::Options o = ProxyOpts(table.get());
  o.listeners.push_back(HttpListener());
  auto e = StreamEngine::Start(o);
  ASSERT_TRUE(e.ok()) << e.status();
  const std::string host = "127.0.0.1:" + std::to_string(origin.port());
  int c = Connect((*e)->ports()[0]);
  Send(c, "GET http://" + host + "/304 HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
  std::string head;
  char ch;
  while (head.find("\r\n\r\n") == std::string::npos && ReadExactly(c, &ch, 1)) head += ch;
  EXPECT_EQ(head.substr(0, 12), "HTTP/1.1 304");
  Send(c, "GET http://" + host + "/next HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
  EXPECT_EQ(Body(ReadResponse(c)), "GET /next HTTP/1.1");
  close(c);
}

TEST(Proxy, TheProxysOwnAnswerWaitsForTheOnesBeforeIt) {
  Table table;
  fault_rule& r = table.AddRule("http-response");
  r.http_status = 503;
  r.http_error_ppm = 1'000'000;
  table.Publish();
  Origin origin;
  StreamEngine::Options o = ProxyOpts(table.get());
  o.listeners.push_back(HttpListener());
  o.always_rules = {"http-response"};
  o.upstream_filter = [](std::string_view host, uint16_t) { return host == "localhost"; };
  auto e = StreamEngine::Start(o);
  ASSERT_TRUE(e.ok()) << e.status();
  const std::string ip = "127.0.0.1:" + std::to_string(origin.port());
  const std::string name = "localhost:" + std::to_string(origin.port());
  int c = Connect((*e)->ports()[0]);
  Send(c, "GET http://" + ip + "/first HTTP/1.1\r\nHost: " + ip + "\r\n\r\n" +
              "GET http://" + name + "/second HTTP/1.1\r\nHost: " + name + "\r\n\r\n" +
              "GET http://" + ip + "/third HTTP/1.1\r\nHost: " + ip + "\r\n\r\n");
  EXPECT_EQ(Body(ReadResponse(c)), "GET /first HTTP/1.1");
  EXPECT_EQ(ReadResponse(c).substr(0, 12), "HTTP/1.1 503");
  EXPECT_EQ(Body(ReadResponse(c)), "GET /third HTTP/1.1");
  close(c);
}

TEST(Proxy, AMappingTriesTheUpstreamsOtherAddresses) {
  Table table;
  table.Publish();
  uint16_t port;
  int lfd = Listen(&port);  // 127.0.0.1 only; "localhost" may resolve to ::1 first
  StreamEngine::Options o = ProxyOpts(table.get());
  StreamEngine::Listener l = TcpListener(port);
  l.upstream_host = "localhost";
  o.listeners.push_back(l);
  auto e = StreamEngine::Start(o);
  ASSERT_TRUE(e.ok()) << e.status();
  for (int i = 0; i < 4; ++i) {
    int c = Connect((*e)->ports()[0]);
    Send(c, "x");
    pollfd p = {lfd, POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 3000), 1) << "connection " << i;
    int s = accept(lfd, nullptr, nullptr);
    char b;
    ASSERT_TRUE(ReadExactly(s, &b, 1)) << "connection " << i;
    close(s);
    close(c);
  }
  close(lfd);
}

TEST(Proxy, HttpErrorFaultAnswersWithoutTheUpstream) {
  Table table;
  fault_rule& r = table.AddRule("http-response");
  r.http_status = 503;
  r.http_error_ppm = 1'000'000;
  table.Publish();
  Origin origin;
  StreamEngine::Options o = ProxyOpts(table.get());
  o.listeners.push_back(HttpListener());
  o.always_rules = {"http-response"};
  o.http_bodies["http-response"] = "busy";
  auto e = StreamEngine::Start(o);
  ASSERT_TRUE(e.ok()) << e.status();
  const std::string host = "127.0.0.1:" + std::to_string(origin.port());
  int c = Connect((*e)->ports()[0]);
  for (int i = 0; i < 2; ++i) {
    Send(c, "POST http://" + host + "/ HTTP/1.1\r\nHost: " + host +
                "\r\nContent-Length: 3\r\n\r\nabc");
    std::string resp = ReadResponse(c);
    EXPECT_EQ(resp.substr(0, 12), "HTTP/1.1 503") << resp;
    EXPECT_EQ(Body(resp), "busy");
  }
  close(c);
  EXPECT_EQ(origin.accepted(), 0);
  EXPECT_EQ(table.get()->counters.rule_fired[0], 2u);
  fault_event ev;
  ASSERT_TRUE(eng::PopEvent(table.get(), &ev));
  EXPECT_EQ(ev.effect, FAULT_EFFECT_HTTP_ERROR);
  EXPECT_EQ(ev.value, 503);
}

TEST(Proxy, UpstreamFilterDecidesWhereTheAlwaysRulesApply) {
  Table table;
  fault_rule& r = table.AddRule("latency");
  SetFixedLatency(&r.downlink, 40'000'000);
  table.Publish();
  Origin origin;
  StreamEngine::Options o = ProxyOpts(table.get());
  o.listeners.push_back(HttpListener());
  o.always_rules = {"latency"};
  const uint16_t faulted = origin.port();
  o.upstream_filter = [faulted](std::string_view host, uint16_t port) {
    return host == "localhost" && port == faulted;
  };
  auto e = StreamEngine::Start(o);
  ASSERT_TRUE(e.ok()) << e.status();
  const std::string ip = "127.0.0.1:" + std::to_string(origin.port());
  const std::string name = "localhost:" + std::to_string(origin.port());
  for (const std::string& host : {ip, name}) {
    int c = Connect((*e)->ports()[0]);
    int64_t t0 = NowNs();
    Send(c, "GET http://" + host + "/ HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
    std::string resp = ReadResponse(c);
    int64_t took = NowNs() - t0;
    EXPECT_EQ(Body(resp), "GET / HTTP/1.1");
    if (host == ip)
      EXPECT_LT(took, 35'000'000) << host;
    else
      EXPECT_GE(took, 40'000'000) << host;
    close(c);
  }
}

TEST(Proxy, ConnectTunnelsBytesBothWays) {
  Table table;
  table.Publish();
  uint16_t port;
  int lfd = Listen(&port);
  StreamEngine::Options o = ProxyOpts(table.get());
  o.listeners.push_back(HttpListener());
  auto e = StreamEngine::Start(o);
  ASSERT_TRUE(e.ok()) << e.status();
  int c = Connect((*e)->ports()[0]);
  const std::string host = "127.0.0.1:" + std::to_string(port);
  Send(c, "CONNECT " + host + " HTTP/1.1\r\nHost: " + host + "\r\n\r\nearly");
  int s = accept(lfd, nullptr, nullptr);
  ASSERT_GE(s, 0);
  std::string head(39, '\0');
  ASSERT_TRUE(ReadExactly(c, head.data(), head.size()));
  EXPECT_EQ(head, "HTTP/1.1 200 Connection Established\r\n\r\n");
  char buf[5];
  ASSERT_TRUE(ReadExactly(s, buf, 5));
  EXPECT_EQ(std::string(buf, 5), "early");
  Send(s, "reply");
  ASSERT_TRUE(ReadExactly(c, buf, 5));
  EXPECT_EQ(std::string(buf, 5), "reply");
  close(c);
  close(s);
  close(lfd);
}

TEST(Proxy, UnreachableAndMalformedGetClearAnswers) {
  Table table;
  table.Publish();
  uint16_t port;
  int lfd = Listen(&port);
  close(lfd);  // nothing listens there
  StreamEngine::Options o = ProxyOpts(table.get());
  o.listeners.push_back(HttpListener());
  auto e = StreamEngine::Start(o);
  ASSERT_TRUE(e.ok()) << e.status();
  const std::string host = "127.0.0.1:" + std::to_string(port);
  int c = Connect((*e)->ports()[0]);
  Send(c, "GET http://" + host + "/ HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
  std::string resp = ReadResponse(c);
  EXPECT_EQ(resp.substr(0, 12), "HTTP/1.1 502") << resp;
  EXPECT_NE(Body(resp).find("Connection refused"), std::string::npos) << resp;
  // The connection stays usable: the next request gets its own answer.
  Send(c, "GET http://" + host + "/ HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
  EXPECT_EQ(ReadResponse(c).substr(0, 12), "HTTP/1.1 502");
  close(c);
  c = Connect((*e)->ports()[0]);
  Send(c, "NOT HTTP AT ALL\r\n\r\n");
  EXPECT_EQ(ReadResponse(c).substr(0, 12), "HTTP/1.1 400");
  close(c);
  c = Connect((*e)->ports()[0]);
  Send(c, "GET /nohost HTTP/1.1\r\n\r\n");
  EXPECT_EQ(ReadResponse(c).substr(0, 12), "HTTP/1.1 400");
  close(c);
  c = Connect((*e)->ports()[0]);
  Send(c, "GET http://no-such-host.invalid/ HTTP/1.1\r\n\r\n");
  resp = ReadResponse(c, 15000);
  EXPECT_EQ(resp.substr(0, 12), "HTTP/1.1 502") << resp;
  EXPECT_NE(Body(resp).find("cannot resolve no-such-host.invalid"), std::string::npos) << resp;
  close(c);
}

// A UDP echo server on 127.0.0.1 for `seconds`.
class UdpEcho {
 public:
  UdpEcho() {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = Loopback(0);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    port_ = LocalPort(fd_);
    thread_ = std::thread([this] {
      char buf[2048];
      while (!stop_) {
        pollfd p = {fd_, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        sockaddr_storage from;
        socklen_t len = sizeof(from);
        ssize_t n = recvfrom(fd_, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len);
        if (n > 0) sendto(fd_, buf, static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&from), len);
      }
    });
  }
  ~UdpEcho() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  uint16_t port() const { return port_; }

 private:
  int fd_;
  uint16_t port_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Sends `n` datagrams through `port` and counts the echoes that come back
// within `wait_ms`; *first_ns is the first echo's round trip.
int UdpRoundTrips(uint16_t port, int n, int wait_ms, int64_t* first_ns) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = Loopback(port);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  const int64_t t0 = NowNs();
  for (int i = 0; i < n; ++i) EXPECT_EQ(send(fd, "dgram", 5, 0), 5);
  int got = 0;
  *first_ns = -1;
  const int64_t until = t0 + int64_t{wait_ms} * 1'000'000;
  char buf[64];
  while (NowNs() < until) {
    pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 20) <= 0) continue;
    if (recv(fd, buf, sizeof(buf), 0) == 5) {
      if (got++ == 0) *first_ns = NowNs() - t0;
    }
  }
  close(fd);
  return got;
}

StreamEngine::Listener UdpListener(uint16_t upstream) {
  StreamEngine::Listener l = TcpListener(upstream);
  l.kind = StreamEngine::Listener::Kind::kUdp;
  l.name = "udp";
  return l;
}

TEST(Proxy, UdpMappingRelaysDelaysAndLosesDatagrams) {
  Table table;
  fault_rule& slow = table.AddRule("slow");
  SetFixedLatency(&slow.downlink, 30'000'000);
  fault_rule& lossy = table.AddRule("lossy");
  lossy.uplink.loss_ppm = 1'000'000;
  table.Publish();
  UdpEcho echo;
  for (const char* rule : {"", "slow", "lossy"}) {
    StreamEngine::Options o = ProxyOpts(table.get());
    o.listeners.push_back(UdpListener(echo.port()));
    o.match_targets = false;
    if (*rule) o.always_rules = {rule};
    auto e = StreamEngine::Start(o);
    ASSERT_TRUE(e.ok()) << e.status();
    int64_t first = 0;
    int got = UdpRoundTrips((*e)->ports()[0], 10, std::string(rule) == "lossy" ? 300 : 500, &first);
    if (std::string(rule) == "lossy") {
      EXPECT_EQ(got, 0);
    } else {
      EXPECT_EQ(got, 10) << rule;
      if (*rule) EXPECT_GE(first, 30'000'000);
      else EXPECT_LT(first, 25'000'000);
    }
  }
  EXPECT_GE(table.get()->counters.rule_fired[1], 10u);
}

}  // namespace
}  // namespace fault::stream
