// Transparent listeners without a capture layer: the test's clients bind a
// loopback port, a table keyed by that port says where they "were going"
// (what the capture layer's map would hold), and they connect or send to
// the engine's transparent listener. Observed from both ends of real
// loopback sockets, and through sock_diag for what only the engine's own
// sockets show (their family, their mark).
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "shim/engine/engine.h"
#include "supervisor/stream/stream_engine.h"
#include "supervisor/stream/stream_test_util.h"
#include "supervisor/stream/transparent.h"

namespace fault::stream {
namespace {

namespace eng = ::fault::engine;

constexpr uint32_t kPid = 4242;

sockaddr_storage Addr(int family, uint16_t port) {
  sockaddr_storage ss = {};
  if (family == AF_INET) {
    sockaddr_in a = Loopback(port);
    memcpy(&ss, &a, sizeof(a));
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    a->sin6_port = htons(port);
  }
  return ss;
}

// ::ffff:127.0.0.1 at `port`.
sockaddr_storage V4Mapped(uint16_t port) {
  sockaddr_storage ss = {};
  auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
  a->sin6_family = AF_INET6;
  a->sin6_port = htons(port);
  inet_pton(AF_INET6, "::ffff:127.0.0.1", &a->sin6_addr);
  return ss;
}

socklen_t AddrLen(const sockaddr_storage& ss) {
  return ss.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
}

uint16_t PortOf(const sockaddr_storage& ss) {
  return ntohs(ss.ss_family == AF_INET ? reinterpret_cast<const sockaddr_in&>(ss).sin_port
                                       : reinterpret_cast<const sockaddr_in6&>(ss).sin6_port);
}

uint16_t BoundPort(int fd) {
  sockaddr_storage ss = {};
  socklen_t len = sizeof(ss);
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return PortOf(ss);
}

bool HasIpv6Loopback() {
  int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_storage ss = Addr(AF_INET6, 0);
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&ss), sizeof(sockaddr_in6)) == 0;
  close(fd);
  return ok;
}

// A socket bound to the family's loopback address on a port of its own:
// the port the "capture layer" knows the client by.
int BoundSocket(int family, int type, uint16_t* port) {
  int fd = socket(family, type | SOCK_CLOEXEC, 0);
  sockaddr_storage ss = Addr(family, 0);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&ss), AddrLen(ss)), 0);
  *port = BoundPort(fd);
  return fd;
}

int ListenOn(int family, uint16_t* port) {
  int fd = BoundSocket(family, SOCK_STREAM, port);
  EXPECT_EQ(listen(fd, 16), 0);
  return fd;
}

// accept() that gives up after two seconds (-1).
int AcceptWithin(int lfd, sockaddr_storage* peer = nullptr) {
  pollfd p = {lfd, POLLIN, 0};
  if (poll(&p, 1, 2000) != 1) return -1;
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  int fd = accept(lfd, reinterpret_cast<sockaddr*>(&ss), &len);
  if (peer != nullptr) *peer = ss;
  return fd;
}

// What the next read of `fd` brings within two seconds: 1 for bytes, 0
// for EOF, -errno for an error, -ETIME for nothing.
int NextRead(int fd) {
  pollfd p = {fd, POLLIN, 0};
  if (poll(&p, 1, 2000) != 1) return -ETIME;
  char b;
  ssize_t r = read(fd, &b, 1);
  return r > 0 ? 1 : r == 0 ? 0 : -errno;
}

void Send(int fd, const std::string& s) {
  ASSERT_EQ(write(fd, s.data(), s.size()), static_cast<ssize_t>(s.size()));
}

std::string Read(int fd, size_t n) {
  std::string s(n, '\0');
  if (!ReadExactly(fd, s.data(), n, 2000)) return "";
  return s;
}

// Where the test's clients were going, by their source port: the capture
// layer's map.
class Origins {
 public:
  void Set(uint16_t client_port, const sockaddr_storage& dest) {
    std::lock_guard<std::mutex> l(mu_);
    dest_[client_port] = dest;
  }
  int lookups() const { return lookups_.load(); }
  std::vector<std::pair<uint16_t, int>> released() {
    std::lock_guard<std::mutex> l(mu_);
    return released_;
  }
  StreamEngine::OriginLookup Lookup() {
    return [this](const sockaddr_storage& client, int, StreamEngine::Origin* out) {
      ++lookups_;
      std::lock_guard<std::mutex> l(mu_);
      auto it = dest_.find(PortOf(client));
      if (it == dest_.end()) return false;
      out->destination = it->second;
      out->pid = kPid;
      memcpy(out->comm, "client", 7);
      return true;
    };
  }
  StreamEngine::OriginRelease Release() {
    return [this](const sockaddr_storage& client, int protocol) {
      std::lock_guard<std::mutex> l(mu_);
      released_.emplace_back(PortOf(client), protocol);
    };
  }

 private:
  std::mutex mu_;
  std::map<uint16_t, sockaddr_storage> dest_;
  std::atomic<int> lookups_{0};
  std::vector<std::pair<uint16_t, int>> released_;
};

StreamEngine::Listener Transparent(StreamEngine::Listener::Kind kind,
                                   const std::string& host = "127.0.0.1") {
  StreamEngine::Listener l;
  l.kind = kind;
  l.host = host;
  l.name = kind == StreamEngine::Listener::Kind::kTransparentTcp ? "capture-tcp" : "capture-udp";
  return l;
}

StreamEngine::Options CaptureOpts(fault_table* t, Origins* origins) {
  StreamEngine::Options o = Opts(t);
  o.redirects = false;
  o.advertise = false;
  o.origin_lookup = origins->Lookup();
  return o;
}

// A client of the engine's transparent TCP listener at `engine_port`
// whose connection "was going" to `dest`.
int CapturedClient(Origins* origins, int family, uint16_t engine_port,
                   const sockaddr_storage& dest) {
  uint16_t port;
  int fd = BoundSocket(family, SOCK_STREAM, &port);
  origins->Set(port, dest);
  sockaddr_storage engine = Addr(family, engine_port);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&engine), AddrLen(engine)), 0);
  return fd;
}

// Polls `pred` for up to two seconds.
template <typename F>
bool Eventually(F pred) {
  for (int i = 0; i < 200; ++i) {
    if (pred()) return true;
    usleep(10'000);
  }
  return pred();
}

// One socket as sock_diag reports it.
struct DiagSocket {
  bool found = false;
  int family = 0;
  bool has_mark = false;  // the mark is reported to CAP_NET_ADMIN only
  uint32_t mark = 0;
};

// The `family`/`protocol` socket from `local_port` to `remote_port`
// (loopback is all the tests use). False: sock_diag cannot be asked.
bool Diag(int family, int protocol, uint16_t local_port, uint16_t remote_port,
          DiagSocket* out) {
  *out = DiagSocket{};
  int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return false;
  timeval tv = {2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  struct {
    nlmsghdr nh;
    inet_diag_req_v2 req;
  } msg = {};
  msg.nh.nlmsg_len = sizeof(msg);
  msg.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  msg.req.sdiag_family = static_cast<uint8_t>(family);
  msg.req.sdiag_protocol = static_cast<uint8_t>(protocol);
  msg.req.idiag_states = ~0u;
  if (send(fd, &msg, sizeof(msg), 0) != static_cast<ssize_t>(sizeof(msg))) {
    close(fd);
    return false;
  }
  alignas(nlmsghdr) char buf[65536];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    int left = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_type == NLMSG_DONE) {
        close(fd);
        return true;
      }
      if (h->nlmsg_type == NLMSG_ERROR) {
        close(fd);
        return false;
      }
      auto* m = static_cast<inet_diag_msg*>(NLMSG_DATA(h));
      if (ntohs(m->id.idiag_sport) != local_port || ntohs(m->id.idiag_dport) != remote_port)
        continue;
      out->found = true;
      out->family = m->idiag_family;
      int alen = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
      for (auto* a = reinterpret_cast<rtattr*>(m + 1); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
        if (a->rta_type != INET_DIAG_MARK) continue;
        memcpy(&out->mark, RTA_DATA(a), sizeof(out->mark));
        out->has_mark = true;
      }
    }
  }
  close(fd);
  return false;
}

// A UDP server on loopback: answers every datagram with "<tag>:<it>" and
// remembers the source port of each.
class UdpServer {
 public:
  UdpServer(int family, std::string tag) : tag_(std::move(tag)) {
    fd_ = BoundSocket(family, SOCK_DGRAM, &port_);
    thread_ = std::thread([this] {
      char buf[2048];
      while (!stop_) {
        pollfd p = {fd_, POLLIN, 0};
        if (poll(&p, 1, 20) <= 0) continue;
        sockaddr_storage from;
        socklen_t len = sizeof(from);
        ssize_t n = recvfrom(fd_, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len);
        if (n < 0) continue;
        {
          std::lock_guard<std::mutex> l(mu_);
          sources_.push_back(PortOf(from));
        }
        std::string reply = tag_ + ":" + std::string(buf, static_cast<size_t>(n));
        sendto(fd_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
      }
    });
  }
  ~UdpServer() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  uint16_t port() const { return port_; }
  std::vector<uint16_t> sources() {
    std::lock_guard<std::mutex> l(mu_);
    return sources_;
  }

 private:
  std::string tag_;
  int fd_;
  uint16_t port_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<uint16_t> sources_;
};

// Sends `text` from the unconnected `fd` to the engine's listener.
void SendTo(int fd, int family, uint16_t engine_port, const std::string& text) {
  sockaddr_storage to = Addr(family, engine_port);
  ASSERT_EQ(sendto(fd, text.data(), text.size(), 0, reinterpret_cast<sockaddr*>(&to),
                   AddrLen(to)),
            static_cast<ssize_t>(text.size()));
}

// The next datagram on `fd` within `timeout_ms` ("" if none) and where it
// came from.
std::string RecvFrom(int fd, uint16_t* from_port = nullptr, int timeout_ms = 2000) {
  pollfd p = {fd, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) != 1) return "";
  char buf[2048];
  sockaddr_storage from = {};
  socklen_t len = sizeof(from);
  ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len);
  if (n < 0) return "";
  if (from_port != nullptr) *from_port = PortOf(from);
  return std::string(buf, static_cast<size_t>(n));
}

// ------------------------------------------------------------------ TCP ---

TEST(Transparent, TcpReachesTheOriginalDestinationBothWaysWithHalfClose) {
  Table table;
  table.Publish();
  Origins origins;
  uint16_t server_port;
  int lfd = ListenOn(AF_INET, &server_port);
  StreamEngine::Options o = CaptureOpts(table.get(), &origins);
  o.listeners.push_back(Transparent(StreamEngine::Listener::Kind::kTransparentTcp));
  auto e = StreamEngine::Start(o);
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_EQ((*e)->ports().size(), 1u);
  ASSERT_NE((*e)->ports()[0], 0);

  int c = CapturedClient(&origins, AF_INET, (*e)->ports()[0], Addr(AF_INET, server_port));
  const uint16_t client_port = BoundPort(c);
  sockaddr_storage peer;
  int s = AcceptWithin(lfd, &peer);
  ASSERT_GE(s, 0);
  EXPECT_NE(PortOf(peer), client_port);  // the engine's socket, not the client's

  Send(c, "hello");
  EXPECT_EQ(Read(s, 5), "hello");
  Send(s, "world");
  EXPECT_EQ(Read(c, 5), "world");
  // The client's FIN reaches the server; the server can still answer.
  shutdown(c, SHUT_WR);
  EXPECT_EQ(NextRead(s), 0);
  Send(s, "after");
  EXPECT_EQ(Read(c, 5), "after");
  close(s);
  EXPECT_EQ(NextRead(c), 0);
  close(c);

  StreamEngine::Stats st = (*e)->stats();
  EXPECT_EQ(st.accepted, 1u);
  EXPECT_EQ(st.captured, 1u);
  EXPECT_EQ(st.unclaimed, 0u);
  EXPECT_EQ(origins.lookups(), 1);
  EXPECT_TRUE(Eventually([&] { return (*e)->stats().open == 0; }));
  close(lfd);
}

TEST(Transparent, TcpOnIpv6Loopback) {
  if (!HasIpv6Loopback()) GTEST_SKIP() << "no ::1 on this machine";
  Table table;
  table.Publish();
  Origins origins;
  uint16_t server_port;
  int lfd = ListenOn(AF_INET6, &server_port);
  StreamEngine::Options o = CaptureOpts(table.get(), &origins);
  o.listeners.push_back(Transparent(StreamEngine::Listener::Kind::kTransparentTcp, "::1"));
  auto e = StreamEngine::Start(o);
  ASSERT_TRUE(e.ok()) << e.status();

  int c = CapturedClient(&origins, AF_INET6, (*e)->ports()[0], Addr(AF_INET6, server_port));
  int s = AcceptWithin(lfd);
  ASSERT_GE(s, 0);
  Send(c, "six");
  EXPECT_EQ(Read(s, 3), "six");
  Send(s, "xis");
  EXPECT_EQ(Read(c, 3), "xis");
  close(c);
  EXPECT_EQ(NextRead(s), 0);
  close(s);
  EXPECT_EQ((*e)->stats().captured, 1u);
  close(lfd);
}

TEST(Transparent, V4MappedDestinationIsConnectedAsIpv4) {
  Table table;
  table.Publish();
  Origins origins;
  uint16_t server_port;
  int lfd = ListenOn(AF_INET, &server_port);
  StreamEngine::Options o = CaptureOpts(table.get(), &origins);
  o.listeners.push_back(Transparent(StreamEngine::Listener::Kind::kTransparentTcp));
  auto e = StreamEngine::Start(o);
  ASSERT_TRUE(e.ok()) << e.status();

  int c = CapturedClient(&origins, AF_INET, (*e)->ports()[0], V4Mapped(server_port));
  sockaddr_storage peer;
  int s = AcceptWithin(lfd, &peer);
  ASSERT_GE(s, 0);
  Send(c, "mapped");
  EXPECT_EQ(Read(s, 6), "mapped");
  // The engine's end of the connection: an AF_INET socket (an AF_INET6
  // one would list as such, with a v4-mapped address).
  DiagSocket v4, v6;
  const bool diag = Diag(AF_INET, IPPROTO_TCP, PortOf(peer), server_port, &v4) &&
                    Diag(AF_INET6, IPPROTO_TCP, PortOf(peer), server_port, &v6);
  close(c);
  close(s);
  close(lfd);
  if (!diag) GTEST_SKIP() << "sock_diag unavailable: the socket's family was not checked";
  EXPECT_TRUE(v4.found);
  EXPECT_EQ(v4.family, AF_INET);
  EXPECT_FALSE(v6.found);
}

TEST(Transparent, OriginAddressTurnsV4MappedIntoIpv4) {
  sockaddr_storage out;
  socklen_t len = 0;
  ASSERT_TRUE(OriginAddress(V4Mapped(80), &out, &len));
  EXPECT_EQ(out.ss_family, AF_INET);
  EXPECT_EQ(len, sizeof(sockaddr_in));
  EXPECT_EQ(PortOf(out), 80);
  EXPECT_EQ(reinterpret_cast<sockaddr_in&>(out).sin_addr.s_addr, htonl(INADDR_LOOPBACK));

  sockaddr_storage v6 = Addr(AF_INET6, 443);
  reinterpret_cast<sockaddr_in6&>(v6).sin6_scope_id = 3;
  reinterpret_cast<sockaddr_in6&>(v6).sin6_flowinfo = 99;
  ASSERT_TRUE(OriginAddress(v6, &out, &len));
  EXPECT_EQ(out.ss_family, AF_INET6);
  EXPECT_EQ(len, sizeof(sockaddr_in6));
  EXPECT_EQ(reinterpret_cast<sockaddr_in6&>(out).sin6_scope_id, 3u);
  EXPECT_EQ(reinterpret_cast<sockaddr_in6&>(out).sin6_flowinfo, 0u);  // not part of "where"

  sockaddr_storage unix_addr = {};
  unix_addr.ss_family = AF_UNIX;
  EXPECT_FALSE(OriginAddress(unix_addr, &out, &len));
}

TEST(Transparent, UnknownOriginIsResetAndCountedUnclaimed) {
  Table table;
  table.Publish();
  Origins origins;
  StreamEngine::Options o = CaptureOpts(table.get(), &origins);
  o.listeners.push_back(Transparent(StreamEngine::Listener::Kind::kTransparentTcp));
  auto e = StreamEngine::Start(o);
  ASSERT_TRUE(e.ok()) << e.status();
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = Loopback((*e)->ports()[0]);
  ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  EXPECT_EQ(NextRead(c), -ECONNRESET);
  close(c);
  EXPECT_TRUE(Eventually([&] { return (*e)->stats().unclaimed == 1; }));
  StreamEngine::Stats st = (*e)->stats();
  EXPECT_EQ(st.accepted, 0u);
  EXPECT_EQ(st.captured, 0u);
}

TEST(Transparent, RefusedDestinationResetsTheClient) {
  Table table;
  table.Publish();
  Origins origins;
  uint16_t closed_port;
  close(ListenOn(AF_INET, &closed_port));  // nothing listens there now
  StreamEngine::Options o = CaptureOpts(table.get(), &origins);
  o.listeners.push_back(Transparent(StreamEngine::Listener::Kind::kTransparentTcp));
  auto e = StreamEngine::Start(o);
  ASSERT_TRUE(e.ok()) << e.status();
  int c = CapturedClient(&origins, AF_INET, (*e)->ports()[0], Addr(AF_INET, closed_port));
  EXPECT_EQ(NextRead(c), -ECONNRESET);
  close(c);
  EXPECT_TRUE(Eventually([&] { return (*e)->stats().far_failed >= 1; }));
  EXPECT_EQ((*e)->stats().captured, 1u);
}

TEST(Transparent, LatencyRuleDelaysBytesAndEventsNameTheDestination) {
  Table table;
  fault_rule& r = table.AddRule("latency");
  SetFixedLatency(&r.downlink, 60'000'000);
  table.Publish();
  Origins origins;
  uint16_t server_port;
  int lfd = ListenOn(AF_INET, &server_port);
  StreamEngine::Options o = CaptureOpts(table.get(), &origins);
  o.listeners.push_back(Transparent(StreamEngine::Listener::Kind::kTransparentTcp));
  o.always_rules = {"latency"};
  auto e = StreamEngine::Start(o);
  ASSERT_TRUE(e.ok()) << e.status();

  int c = CapturedClient(&origins, AF_INET, (*e)->ports()[0], Addr(AF_INET, server_port));
  int s = AcceptWithin(lfd);
  ASSERT_GE(s, 0);
  int64_t t0 = NowNs();
  Send(s, "slow");
  EXPECT_EQ(Read(c, 4), "slow");
  EXPECT_GE(NowNs() - t0, 60'000'000);
  EXPECT_EQ((*e)->stats().spliced, 0u);

  const std::string target = "127.0.0.1:" + std::to_string(server_port);
  bool seen = false;
  fault_event ev;
  while (eng::PopEvent(table.get(), &ev)) {
    if (ev.effect != FAULT_EFFECT_LATENCY) continue;
    seen = true;
    EXPECT_EQ(std::string(ev.target), target);
    EXPECT_EQ(ev.pid, static_cast<int32_t>(kPid));
  }
  EXPECT_TRUE(seen);
  close(c);
  close(s);
  close(lfd);
}

TEST(Transparent, UpstreamFilterDecidesWhereTheAlwaysRulesApply) {
  Table table;
  fault_rule& r = table.AddRule("latency");
  SetFixedLatency(&r.downlink, 60'000'000);
  table.Publish();
  Origins origins;
  uint16_t faulted_port, spared_port;
  int faulted = ListenOn(AF_INET, &faulted_port);
  int spared = ListenOn(AF_INET, &spared_port);
  StreamEngine::Options o = CaptureOpts(table.get(), &origins);
  o.listeners.push_back(Transparent(StreamEngine::Listener::Kind::kTransparentTcp));
  o.always_rules = {"latency"};
  auto asked = std::make_shared<std::vector<std::string>>();
  auto mu = std::make_shared<std::mutex>();
  o.capture_filter = [=](std::string_view host, uint16_t port) {
    std::lock_guard<std::mutex> l(*mu);
    asked->push_back(std::string(host) + " " + std::to_string(port));
    return port == faulted_port;
  };
  auto e = StreamEngine::Start(o);
  ASSERT_TRUE(e.ok()) << e.status();

  for (auto [lfd, port] : {std::pair{spared, spared_port}, std::pair{faulted, faulted_port}}) {
    int c = CapturedClient(&origins, AF_INET, (*e)->ports()[0], Addr(AF_INET, port));
    int s = AcceptWithin(lfd);
    ASSERT_GE(s, 0);
    int64_t t0 = NowNs();
    Send(s, "data");
    EXPECT_EQ(Read(c, 4), "data");
    if (port == spared_port)
      EXPECT_LT(NowNs() - t0, 50'000'000);
    else
      EXPECT_GE(NowNs() - t0, 60'000'000);
    close(c);
    close(s);
  }
  std::lock_guard<std::mutex> l(*mu);
  EXPECT_EQ(*asked, (std::vector<std::string>{"127.0.0.1 " + std::to_string(spared_port),
                                              "127.0.0.1 " + std::to_string(faulted_port)}));
  close(faulted);
  close(spared);
}

// ------------------------------------------------------------------ UDP ---

TEST(Transparent, UdpReachesEachDestinationAndAnswersComeFromTheListener) {
  for (int family : {AF_INET, AF_INET6}) {
    if (family == AF_INET6 && !HasIpv6Loopback()) continue;
    SCOPED_TRACE(family == AF_INET ? "IPv4" : "IPv6");
    Table table;
    table.Publish();
    Origins origins;
    UdpServer a(family, "A"), b(family, "B");
    StreamEngine::Options o = CaptureOpts(table.get(), &origins);
    o.listeners.push_back(Transparent(StreamEngine::Listener::Kind::kTransparentUdp,
                                      family == AF_INET ? "127.0.0.1" : "::1"));
    auto e = StreamEngine::Start(o);
    ASSERT_TRUE(e.ok()) << e.status();
    const uint16_t engine_port = (*e)->ports()[0];

    uint16_t client_port;
    int u = BoundSocket(family, SOCK_DGRAM, &client_port);
    uint16_t from = 0;
    // One unconnected socket, three datagrams, two destinations: the
    // lookup's latest answer decides each.
    origins.Set(client_port, Addr(family, a.port()));
    SendTo(u, family, engine_port, "one");
    EXPECT_EQ(RecvFrom(u, &from), "A:one");
    EXPECT_EQ(from, engine_port);
    origins.Set(client_port, Addr(family, b.port()));
    SendTo(u, family, engine_port, "two");
    EXPECT_EQ(RecvFrom(u, &from), "B:two");
    EXPECT_EQ(from, engine_port);
    origins.Set(client_port, Addr(family, a.port()));
    SendTo(u, family, engine_port, "three");
    EXPECT_EQ(RecvFrom(u, &from), "A:three");

    // A session per destination: A saw one source twice, B another.
    std::vector<uint16_t> at_a = a.sources(), at_b = b.sources();
    ASSERT_EQ(at_a.size(), 2u);
    ASSERT_EQ(at_b.size(), 1u);
    EXPECT_EQ(at_a[0], at_a[1]);
    EXPECT_NE(at_a[0], at_b[0]);
    EXPECT_NE(at_a[0], client_port);
    // The count follows the answer's sendto(): it may lag what the client
    // already has.
    EXPECT_TRUE(Eventually([&] { return (*e)->stats().datagrams == 6; }));
    EXPECT_EQ((*e)->stats().captured, 2u);
    EXPECT_EQ(origins.lookups(), 3);

    // A client nobody knows: its datagram goes nowhere.
    uint16_t stranger_port;
    int stranger = BoundSocket(family, SOCK_DGRAM, &stranger_port);
    SendTo(stranger, family, engine_port, "who");
    EXPECT_EQ(RecvFrom(stranger, nullptr, 200), "");
    EXPECT_TRUE(Eventually([&] { return (*e)->stats().unclaimed == 1; }));
    EXPECT_EQ(a.sources().size() + b.sources().size(), 3u);
    close(stranger);
    close(u);
  }
}

TEST(Transparent, UdpLossRuleDropsDatagrams) {
  Table table;
  fault_rule& r = table.AddRule("lossy");
  r.uplink.loss_ppm = 1'000'000;
  table.Publish();
  Origins origins;
  UdpServer server(AF_INET, "S");
  StreamEngine::Options o = CaptureOpts(table.get(), &origins);
  o.listeners.push_back(Transparent(StreamEngine::Listener::Kind::kTransparentUdp));
  o.always_rules = {"lossy"};
  auto e = StreamEngine::Start(o);
  ASSERT_TRUE(e.ok()) << e.status();
  uint16_t client_port;
  int u = BoundSocket(AF_INET, SOCK_DGRAM, &client_port);
  origins.Set(client_port, Addr(AF_INET, server.port()));
  for (int i = 0; i < 5; ++i) SendTo(u, AF_INET, (*e)->ports()[0], "lost");
  EXPECT_EQ(RecvFrom(u, nullptr, 300), "");
  EXPECT_TRUE(server.sources().empty());
  EXPECT_TRUE(Eventually(
      [&] { return __atomic_load_n(&table.get()->counters.rule_fired[0], __ATOMIC_RELAXED) == 5; }));
  EXPECT_EQ((*e)->stats().captured, 1u);
  close(u);
}

TEST(Transparent, UdpClientIsReleasedWhenItsLastSessionExpires) {
  Table table;
  table.Publish();
  Origins origins;
  UdpServer a(AF_INET, "A"), b(AF_INET, "B");
  StreamEngine::Options o = CaptureOpts(table.get(), &origins);
  o.listeners.push_back(Transparent(StreamEngine::Listener::Kind::kTransparentUdp));
  o.origin_release = origins.Release();
  o.udp_idle_ns = 300'000'000;
  auto e = StreamEngine::Start(o);
  ASSERT_TRUE(e.ok()) << e.status();
  const uint16_t engine_port = (*e)->ports()[0];
  uint16_t client_port;
  int u = BoundSocket(AF_INET, SOCK_DGRAM, &client_port);
  origins.Set(client_port, Addr(AF_INET, a.port()));
  SendTo(u, AF_INET, engine_port, "a");
  EXPECT_EQ(RecvFrom(u), "A:a");
  // The session with B stays busy past A's expiry (the sweep runs once a
  // second): the client still has a session, so it is not released.
  origins.Set(client_port, Addr(AF_INET, b.port()));
  const int64_t until = NowNs() + 1'500'000'000;
  while (NowNs() < until) {
    SendTo(u, AF_INET, engine_port, "b");
    EXPECT_EQ(RecvFrom(u), "B:b");
    usleep(30'000);
  }
  EXPECT_TRUE(origins.released().empty());
  EXPECT_TRUE(Eventually([&] { return !origins.released().empty(); }));
  EXPECT_EQ(origins.released(),
            (std::vector<std::pair<uint16_t, int>>{{client_port, IPPROTO_UDP}}));
  close(u);
}

// ----------------------------------------------------------------- mark ---

TEST(Transparent, UpstreamSocketCarriesTheMark) {
  for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
    int fd = UpstreamSocket(AF_INET, type, 0x5eed);
    ASSERT_GE(fd, 0);
    uint32_t mark = 0;
    socklen_t len = sizeof(mark);
    ASSERT_EQ(getsockopt(fd, SOL_SOCKET, SO_MARK, &mark, &len), 0);
    // Without CAP_NET_ADMIN the socket is made all the same, unmarked.
    int probe = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    uint32_t one = 1;
    const bool may_mark = setsockopt(probe, SOL_SOCKET, SO_MARK, &one, sizeof(one)) == 0;
    close(probe);
    EXPECT_EQ(mark, may_mark ? 0x5eedu : 0u);
    EXPECT_NE(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    close(fd);
    fd = UpstreamSocket(AF_INET, type, 0);
    ASSERT_EQ(getsockopt(fd, SOL_SOCKET, SO_MARK, &mark, &len), 0);
    EXPECT_EQ(mark, 0u);
    close(fd);
  }
}

TEST(Transparent, EveryUpstreamConnectionIsMarked) {
  {
    int probe = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    uint32_t one = 1;
    const bool may_mark = setsockopt(probe, SOL_SOCKET, SO_MARK, &one, sizeof(one)) == 0;
    close(probe);
    if (!may_mark) GTEST_SKIP() << "no CAP_NET_ADMIN: SO_MARK cannot be set";
  }
  Table table;
  table.Publish();
  Origins origins;
  uint16_t server_port;
  int lfd = ListenOn(AF_INET, &server_port);
  UdpServer udp(AF_INET, "U");
  StreamEngine::Options o = CaptureOpts(table.get(), &origins);
  StreamEngine::Listener mapping;
  mapping.upstream_host = "127.0.0.1";
  mapping.upstream_port = server_port;
  mapping.name = "tcp";
  o.listeners.push_back(mapping);
  o.listeners.push_back(Transparent(StreamEngine::Listener::Kind::kTransparentTcp));
  o.listeners.push_back(Transparent(StreamEngine::Listener::Kind::kTransparentUdp));
  o.upstream_mark = 0x5eed;
  auto e = StreamEngine::Start(o);
  ASSERT_TRUE(e.ok()) << e.status();

  // TCP: the mapping's upstream and a captured connection's.
  for (int i = 0; i < 2; ++i) {
    int c;
    if (i == 0) {
      c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a = Loopback((*e)->ports()[0]);
      ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    } else {
      c = CapturedClient(&origins, AF_INET, (*e)->ports()[1], Addr(AF_INET, server_port));
    }
    sockaddr_storage peer;
    int s = AcceptWithin(lfd, &peer);
    ASSERT_GE(s, 0);
    DiagSocket d;
    const bool diag = Diag(AF_INET, IPPROTO_TCP, PortOf(peer), server_port, &d);
    close(c);
    close(s);
    if (!diag) {
      close(lfd);
      GTEST_SKIP() << "sock_diag unavailable for TCP";
    }
    EXPECT_TRUE(d.found) << i;
    EXPECT_TRUE(d.has_mark) << i;
    EXPECT_EQ(d.mark, 0x5eedu) << i;
  }

  // UDP: the session's socket toward the destination.
  uint16_t client_port;
  int u = BoundSocket(AF_INET, SOCK_DGRAM, &client_port);
  origins.Set(client_port, Addr(AF_INET, udp.port()));
  SendTo(u, AF_INET, (*e)->ports()[2], "mark");
  EXPECT_EQ(RecvFrom(u), "U:mark");
  ASSERT_EQ(udp.sources().size(), 1u);
  DiagSocket d;
  const bool diag = Diag(AF_INET, IPPROTO_UDP, udp.sources()[0], udp.port(), &d);
  close(u);
  close(lfd);
  if (!diag) GTEST_SKIP() << "sock_diag unavailable for UDP";
  EXPECT_TRUE(d.found);
  EXPECT_TRUE(d.has_mark);
  EXPECT_EQ(d.mark, 0x5eedu);
}

// ---------------------------------------------------------------- start ---

TEST(Transparent, StartRefusesATransparentListenerItCannotServe) {
  Table table;
  table.Publish();
  StreamEngine::Options o = Opts(table.get());
  o.redirects = false;
  o.advertise = false;
  o.listeners.push_back(Transparent(StreamEngine::Listener::Kind::kTransparentUdp));
  auto e = StreamEngine::Start(o);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("capture-udp"), std::string::npos) << e.status();
  EXPECT_NE(e.status().message().find("origin lookup"), std::string::npos) << e.status();

  Origins origins;
  o.origin_lookup = origins.Lookup();
  o.listeners[0] = Transparent(StreamEngine::Listener::Kind::kTransparentTcp, "0.0.0.0");
  e = StreamEngine::Start(o);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("capture-tcp"), std::string::npos) << e.status();
  EXPECT_NE(e.status().message().find("loopback"), std::string::npos) << e.status();
}

}  // namespace
}  // namespace fault::stream
