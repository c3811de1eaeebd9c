#include "supervisor/stream/stream_engine.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "shim/engine/engine.h"
#include "supervisor/stream/stream_test_util.h"

namespace fault::stream {
namespace {

namespace eng = ::fault::engine;

// What the shim does on connect(): bind to a loopback port, announce the
// real destination, connect to the engine. Returns the connected socket.
int ConnectThrough(fault_table* t, const StreamEngine& e, uint16_t dest_port,
                   int rule, int64_t handshake_ns = 0) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in any = Loopback(0);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&any), sizeof(any)), 0);
  uint16_t p = LocalPort(fd);
  fault_redirect& r = t->redirects[0][p];
  r.kind = FAULT_REDIRECT_CONNECT;
  r.family = AF_INET;
  r.port = dest_port;
  r.rule = static_cast<uint16_t>(rule);
  r.pid = getpid();
  r.handshake_ns = handshake_ns;
  r.err = 0;
  uint32_t lo = htonl(INADDR_LOOPBACK);
  memcpy(r.addr, &lo, 4);
  __atomic_store_n(&r.state, FAULT_REDIRECT_ARMED, __ATOMIC_RELEASE);
  sockaddr_in eng_addr = Loopback(e.port4());
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&eng_addr), sizeof(eng_addr)), 0);
  return fd;
}

// Waits until the redirect slot of `fd` is OPEN or FAILED (as a blocking
// connect in the shim does). Returns the final state.
uint32_t WaitSlot(fault_table* t, int fd, int64_t timeout_ns = 5'000'000'000) {
  fault_redirect& r = t->redirects[0][LocalPort(fd)];
  int64_t until = NowNs() + timeout_ns;
  for (;;) {
    uint32_t s = __atomic_load_n(&r.state, __ATOMIC_ACQUIRE);
    if (s != FAULT_REDIRECT_ARMED && s != FAULT_REDIRECT_CLAIMED &&
        s != FAULT_REDIRECT_CONNECTED)
      return s;
    if (NowNs() > until) return s;
    timespec ts = {0, 10'000'000};
    syscall(SYS_futex, &r.state, FUTEX_WAIT, s, &ts, nullptr, 0);
  }
}

TEST(StreamEngine, RelaysBothWaysWithEachDirectionsLatency) {
  Table table;
  fault_rule& r = table.AddRule("slow");
  SetFixedLatency(&r.uplink, 40'000'000);
  SetFixedLatency(&r.downlink, 20'000'000);
  table.Publish();
  auto e = StreamEngine::Start(Opts(table.get()));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(table.get()->engine_port4, (*e)->port4());

  uint16_t port;
  int lfd = Listen(&port);
  int c = ConnectThrough(table.get(), **e, port, 0);
  int s = accept(lfd, nullptr, nullptr);
  ASSERT_GE(s, 0);
  EXPECT_EQ(WaitSlot(table.get(), c), FAULT_REDIRECT_OPEN);

  int64_t t0 = NowNs();
  ASSERT_EQ(write(c, "ping", 4), 4);
  char buf[4];
  ASSERT_TRUE(ReadExactly(s, buf, 4));
  int64_t up = NowNs() - t0;
  EXPECT_EQ(std::string(buf, 4), "ping");
  t0 = NowNs();
  ASSERT_EQ(write(s, "pong", 4), 4);
  ASSERT_TRUE(ReadExactly(c, buf, 4));
  int64_t down = NowNs() - t0;
  EXPECT_EQ(std::string(buf, 4), "pong");
  EXPECT_GE(up, 40'000'000);
  EXPECT_LT(up, 40'000'000 + 30'000'000);
  EXPECT_GE(down, 20'000'000);
  EXPECT_LT(down, 20'000'000 + 30'000'000);
  // Counted and reported like the shim's decisions.
  EXPECT_GE(table.get()->counters.rule_fired[0], 2u);
  fault_event ev;
  ASSERT_TRUE(eng::PopEvent(table.get(), &ev));
  EXPECT_EQ(ev.effect, FAULT_EFFECT_LATENCY);
  EXPECT_EQ(ev.layer, 3);
  EXPECT_EQ(ev.value, 40'000'000);
  EXPECT_EQ(std::string(ev.target), "127.0.0.1:" + std::to_string(port));
  close(c);
  close(s);
  close(lfd);
}

TEST(StreamEngine, HandshakeTimeHoldsTheSlotAndTheFirstBytes) {
  Table table;
  table.AddRule("handshake");
  table.Publish();
  auto e = StreamEngine::Start(Opts(table.get()));
  ASSERT_TRUE(e.ok());
  uint16_t port;
  int lfd = Listen(&port);
  int64_t t0 = NowNs();
  int c = ConnectThrough(table.get(), **e, port, 0, 60'000'000);
  ASSERT_EQ(write(c, "x", 1), 1);  // before the emulated handshake is over
  EXPECT_EQ(WaitSlot(table.get(), c), FAULT_REDIRECT_OPEN);
  EXPECT_GE(NowNs() - t0, 60'000'000);
  int s = accept(lfd, nullptr, nullptr);
  char b;
  ASSERT_TRUE(ReadExactly(s, &b, 1));
  EXPECT_GE(NowNs() - t0, 60'000'000);
  close(c);
  close(s);
  close(lfd);
}

TEST(StreamEngine, RefusedFarEndFailsTheSlotAndResetsTheTarget) {
  Table table;
  table.AddRule("any");
  table.Publish();
  auto e = StreamEngine::Start(Opts(table.get()));
  ASSERT_TRUE(e.ok());
  uint16_t port;
  int lfd = Listen(&port);
  close(lfd);  // nothing listens there now
  int c = ConnectThrough(table.get(), **e, port, 0);
  EXPECT_EQ(WaitSlot(table.get(), c), FAULT_REDIRECT_FAILED);
  EXPECT_EQ(table.get()->redirects[0][LocalPort(c)].err, ECONNREFUSED);
  char b;
  pollfd p = {c, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 2000), 1);
  EXPECT_EQ(read(c, &b, 1), -1);
  EXPECT_EQ(errno, ECONNRESET);
  EXPECT_GE((*e)->stats().far_failed, 1u);
  close(c);
}

TEST(StreamEngine, UnannouncedConnectionsAreRefused) {
  Table table;
  table.Publish();
  auto e = StreamEngine::Start(Opts(table.get()));
  ASSERT_TRUE(e.ok());
  int c = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = Loopback((*e)->port4());
  ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  char b;
  pollfd p = {c, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 2000), 1);
  EXPECT_LE(read(c, &b, 1), 0);
  EXPECT_EQ((*e)->stats().unclaimed, 1u);
  close(c);
}

TEST(StreamEngine, RateShapesTheStreamAndCountsAsFired) {
  Table table;
  fault_rule& r = table.AddRule("narrow");
  r.uplink.rate_bps = 8'000'000;  // 1 MB/s
  table.Publish();
  auto e = StreamEngine::Start(Opts(table.get()));
  ASSERT_TRUE(e.ok());
  uint16_t port;
  int lfd = Listen(&port);
  int c = ConnectThrough(table.get(), **e, port, 0);
  int s = accept(lfd, nullptr, nullptr);
  const size_t kBytes = 500'000;
  std::string data(kBytes, '\0');
  for (size_t i = 0; i < kBytes; ++i) data[i] = static_cast<char>(i * 131);
  int64_t t0 = NowNs();
  std::thread writer([&] {
    size_t off = 0;
    while (off < kBytes) {
      ssize_t w = write(c, data.data() + off, kBytes - off);
      if (w <= 0) break;
      off += static_cast<size_t>(w);
    }
    shutdown(c, SHUT_WR);
  });
  std::string got(kBytes, '\0');
  ASSERT_TRUE(ReadExactly(s, got.data(), kBytes, 10000));
  double secs = static_cast<double>(NowNs() - t0) / 1e9;
  writer.join();
  EXPECT_EQ(got, data);
  // 500 kB at 1 MB/s, less the first bucket's worth (10 ms).
  EXPECT_GT(secs, 0.45);
  EXPECT_LT(secs, 0.6);
  EXPECT_GE(table.get()->counters.rule_fired[0], 1u);
  char b;
  EXPECT_EQ(read(s, &b, 1), 0);  // the half-close was passed on
  close(c);
  close(s);
  close(lfd);
}

TEST(StreamEngine, BlackholeSwallowsWhatTheTargetSends) {
  Table table;
  fault_rule& r = table.AddRule("hole");
  r.flags |= FAULT_RULE_BLACKHOLE;
  table.Publish();
  auto e = StreamEngine::Start(Opts(table.get()));
  ASSERT_TRUE(e.ok());
  uint16_t port;
  int lfd = Listen(&port);
  int c = ConnectThrough(table.get(), **e, port, 0);
  int s = accept(lfd, nullptr, nullptr);
  ASSERT_EQ(write(c, "hello", 5), 5);
  ASSERT_EQ(write(s, "back", 4), 4);
  pollfd p[2] = {{s, POLLIN, 0}, {c, POLLIN, 0}};
  EXPECT_EQ(poll(p, 2, 300), 0);  // nothing arrives either way
  close(c);
  close(s);
  close(lfd);
}

// A black hole of one direction: the connection opens and the other
// direction's bytes pass.
TEST(StreamEngine, OneDirectionBlackholeSwallowsOnlyThatDirection) {
  for (uint32_t direction : {eng::kDirectionUplink, eng::kDirectionDownlink}) {
    SCOPED_TRACE(direction);
    Table table;
    fault_rule& r = table.AddRule("hole");
    r.flags |= FAULT_RULE_BLACKHOLE;
    r.blackhole_direction = direction;
    table.Publish();
    auto e = StreamEngine::Start(Opts(table.get()));
    ASSERT_TRUE(e.ok());
    uint16_t port;
    int lfd = Listen(&port);
    int c = ConnectThrough(table.get(), **e, port, 0);
    int s = accept(lfd, nullptr, nullptr);
    ASSERT_GE(s, 0);
    EXPECT_EQ(WaitSlot(table.get(), c), FAULT_REDIRECT_OPEN);
    ASSERT_EQ(write(c, "hello", 5), 5);
    ASSERT_EQ(write(s, "back", 4), 4);
    const int open_end = direction == eng::kDirectionUplink ? c : s;
    const int dark_end = direction == eng::kDirectionUplink ? s : c;
    char buf[5];
    const size_t n = direction == eng::kDirectionUplink ? 4 : 5;
    ASSERT_TRUE(ReadExactly(open_end, buf, n));
    EXPECT_EQ(std::string(buf, n),
              direction == eng::kDirectionUplink ? "back" : "hello");
    pollfd p = {dark_end, POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, 300), 0);  // nothing arrives the other way
    close(c);
    close(s);
    close(lfd);
  }
}

// Bytes that arrive while earlier ones wait join their flight (one
// decision), unless the rule decides per operation.
TEST(StreamEngine, PerOperationDecidesEveryRead) {
  for (bool per_op : {false, true}) {
    SCOPED_TRACE(per_op);
    Table table;
    fault_rule& r = table.AddRule("slow");
    SetFixedLatency(&r.uplink, 300'000'000);
    if (per_op) r.flags |= FAULT_RULE_PER_OP;
    table.Publish();
    auto e = StreamEngine::Start(Opts(table.get()));
    ASSERT_TRUE(e.ok());
    uint16_t port;
    int lfd = Listen(&port);
    int c = ConnectThrough(table.get(), **e, port, 0);
    int s = accept(lfd, nullptr, nullptr);
    ASSERT_GE(s, 0);
    EXPECT_EQ(WaitSlot(table.get(), c), FAULT_REDIRECT_OPEN);
    ASSERT_EQ(write(c, "a", 1), 1);
    timespec gap = {0, 100'000'000};  // "a" still waits in the engine
    nanosleep(&gap, nullptr);
    ASSERT_EQ(write(c, "b", 1), 1);
    char buf[2];
    ASSERT_TRUE(ReadExactly(s, buf, 2));
    EXPECT_EQ(std::string(buf, 2), "ab");
    EXPECT_EQ(table.get()->counters.rule_decisions[0], per_op ? 2u : 1u);
    EXPECT_EQ(table.get()->counters.rule_fired[0], per_op ? 2u : 1u);
    close(c);
    close(s);
    close(lfd);
  }
}

TEST(StreamEngine, AcceptedSocketsHandedOverAreRelayed) {
  Table table;
  fault_rule& r = table.AddRule("server_side");
  SetFixedLatency(&r.uplink, 30'000'000);
  table.Publish();
  auto e = StreamEngine::Start(Opts(table.get()));
  ASSERT_TRUE(e.ok());
  uint16_t port;
  int lfd = Listen(&port);
  // A client outside the run.
  int client = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = Loopback(port);
  ASSERT_EQ(connect(client, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  int accepted = accept(lfd, nullptr, nullptr);
  ASSERT_GE(accepted, 0);

  // What the shim's accept() does.
  int repl = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in any = Loopback(0);
  ASSERT_EQ(bind(repl, reinterpret_cast<sockaddr*>(&any), sizeof(any)), 0);
  uint16_t p = LocalPort(repl);
  fault_redirect& slot = table.get()->redirects[0][p];
  slot.kind = FAULT_REDIRECT_ACCEPTED;
  slot.rule = 0;
  slot.pid = getpid();
  __atomic_store_n(&slot.state, FAULT_REDIRECT_ARMED, __ATOMIC_RELEASE);
  fault_handoff msg = {p, 0, 0, getpid()};
  iovec iov = {&msg, sizeof(msg)};
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
  msghdr m = {};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = cbuf;
  m.msg_controllen = sizeof(cbuf);
  cmsghdr* cm = CMSG_FIRSTHDR(&m);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &accepted, sizeof(int));
  sockaddr_un un = {};
  un.sun_family = AF_UNIX;
  const std::string& name = (*e)->control_name();
  memcpy(un.sun_path + 1, name.data(), name.size());
  m.msg_name = &un;
  m.msg_namelen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  int ctl = socket(AF_UNIX, SOCK_DGRAM, 0);
  ASSERT_EQ(sendmsg(ctl, &m, 0), static_cast<ssize_t>(sizeof(msg)));
  close(ctl);
  sockaddr_in ea = Loopback((*e)->port4());
  ASSERT_EQ(connect(repl, reinterpret_cast<sockaddr*>(&ea), sizeof(ea)), 0);
  ASSERT_EQ(dup2(repl, accepted), accepted);
  close(repl);

  EXPECT_EQ(WaitSlot(table.get(), accepted), FAULT_REDIRECT_OPEN);
  ASSERT_EQ(write(client, "req", 3), 3);
  char buf[3];
  ASSERT_TRUE(ReadExactly(accepted, buf, 3));
  int64_t t0 = NowNs();
  ASSERT_EQ(write(accepted, "res", 3), 3);  // the server's send: uplink
  ASSERT_TRUE(ReadExactly(client, buf, 3));
  EXPECT_GE(NowNs() - t0, 30'000'000);
  EXPECT_EQ(std::string(buf, 3), "res");
  close(client);
  close(accepted);
  close(lfd);
}

TEST(StreamEngine, ALargeTransferArrivesIntactThroughTheWatermark) {
  Table table;
  fault_rule& r = table.AddRule("slow_down");
  SetFixedLatency(&r.downlink, 5'000'000);
  table.Publish();
  StreamEngine::Options o = Opts(table.get());
  o.high_watermark = 256 << 10;
  auto e = StreamEngine::Start(o);
  ASSERT_TRUE(e.ok());
  uint16_t port;
  int lfd = Listen(&port);
  int c = ConnectThrough(table.get(), **e, port, 0);
  int s = accept(lfd, nullptr, nullptr);
  const size_t kBytes = 8 << 20;
  std::thread writer([&] {
    std::vector<char> block(1 << 16);
    size_t sent = 0;
    while (sent < kBytes) {
      for (size_t i = 0; i < block.size(); ++i)
        block[i] = static_cast<char>((sent + i) * 7);
      ssize_t w = write(s, block.data(), block.size());
      if (w <= 0) break;
      sent += static_cast<size_t>(w);
      if (static_cast<size_t>(w) < block.size()) break;  // not expected: blocking
    }
    close(s);
  });
  size_t got = 0;
  bool same = true;
  std::vector<char> buf(1 << 16);
  int64_t until = NowNs() + 20'000'000'000;
  while (NowNs() < until) {
    ssize_t n = read(c, buf.data(), buf.size());
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i)
      same &= buf[static_cast<size_t>(i)] == static_cast<char>((got + static_cast<size_t>(i)) * 7);
    got += static_cast<size_t>(n);
  }
  writer.join();
  EXPECT_EQ(got, kBytes);
  EXPECT_TRUE(same);
  close(c);
  close(lfd);
}

TEST(StreamEngine, FinishPassesOnWhatWasSentAndGivesUpOnAFarEndThatStopsReading) {
  Table table;
  fault_rule& r = table.AddRule("slow");
  SetFixedLatency(&r.uplink, 50'000'000);
  table.Publish();
  auto e = StreamEngine::Start(Opts(table.get()));
  ASSERT_TRUE(e.ok());
  uint16_t port;
  int lfd = Listen(&port);
  // One connection whose bytes are still held back when the target closes
  // it: Finish passes them on.
  int c1 = ConnectThrough(table.get(), **e, port, 0);
  int s1 = accept(lfd, nullptr, nullptr);
  ASSERT_EQ(write(c1, "last words", 10), 10);
  close(c1);
  // One whose far end never reads, with more bytes on their way than the
  // kernel's buffers hold: Finish gives up on it once nothing moves.
  int c2 = ConnectThrough(table.get(), **e, port, 0);
  int s2 = accept(lfd, nullptr, nullptr);
  std::thread writer([c2] {
    std::string block(1 << 16, 'x');
    for (int i = 0; i < 1024; ++i) {  // 64 MiB at most; blocks when full
      if (send(c2, block.data(), block.size(), MSG_NOSIGNAL) <= 0) break;
    }
  });
  usleep(300'000);
  int64_t t0 = NowNs();
  size_t cut = (*e)->Finish(60'000'000'000);
  double secs = static_cast<double>(NowNs() - t0) / 1e9;
  EXPECT_EQ(cut, 1u);
  EXPECT_GT(secs, 1.5);  // two seconds without progress
  EXPECT_LT(secs, 10.0);
  char buf[16];
  ASSERT_TRUE(ReadExactly(s1, buf, 10));
  EXPECT_EQ(std::string(buf, 10), "last words");
  e->reset();  // closes the engine's sockets: the writer's write fails
  writer.join();
  close(c2);
  close(s1);
  close(s2);
  close(lfd);
}

}  // namespace
}  // namespace fault::stream
