// The stream engine with plugins (Options::plugins), against a fake plugin
// client that answers on a thread of its own after a delay, as gRPC's
// callbacks do: order through a slow plugin, a held chunk, an HTTP ABORT
// that never reaches the upstream, failures open and closed, and a
// connection that never waits for another's plugin call.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "supervisor/grpc/plugin_api.h"
#include "supervisor/stream/stream_engine.h"
#include "supervisor/stream/stream_test_util.h"

namespace fault::stream {
namespace {

using grpc_module::PluginResult;

// One plugin. Each call is answered by `tunnel` / `http_request` after
// `delay_ms` (per call: a function of the call's number), on a worker
// thread, in the order the delays end.
class FakePlugins final : public grpc_module::PluginClient {
 public:
  uint32_t flags = grpc_module::kPluginEnabled | grpc_module::kPluginDescribed |
                   grpc_module::kPluginTunnel | grpc_module::kPluginHttp |
                   grpc_module::kPluginServerSide;
  std::function<PluginResult(const std::string& chunk)> tunnel = [](const std::string& c) {
    PluginResult r;
    r.kind = PluginResult::kReplace;
    r.chunk = c;
    return r;
  };
  std::function<PluginResult(const grpc_module::PluginHttpRequest&)> http_request =
      [](const grpc_module::PluginHttpRequest&) {
        PluginResult r;
        r.kind = PluginResult::kContinue;
        return r;
      };
  std::function<int(int call)> delay_ms = [](int) { return 0; };

  ~FakePlugins() override {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_) t.join();
  }
  size_t size() const override { return 1; }
  uint32_t Flags(size_t) const override { return flags; }
  grpc_module::PluginDescription Describe(size_t) const override {
    grpc_module::PluginDescription d;
    d.name = "fake";
    d.address = "fake:1";
    return d;
  }
  void ProcessHttpRequest(size_t, const grpc_module::PluginHttpRequest& r, Done done) override {
    Later(http_request(r), std::move(done));
  }
  void ProcessHttpResponse(size_t, const grpc_module::PluginHttpResponse&, Done done) override {
    PluginResult r;
    r.kind = PluginResult::kContinue;
    Later(r, std::move(done));
  }
  void ProcessTunnelData(size_t, const std::string&, int, int, const std::string& chunk,
                         Done done) override {
    Later(tunnel(chunk), std::move(done));
  }
  std::vector<grpc_module::PluginStats> Stats() const override { return {}; }
  std::vector<grpc_module::PluginEvent> TakeEvents(uint64_t*) override { return {}; }
  int calls() const { return calls_.load(); }

 private:
  void Later(PluginResult r, Done done) {
    const int ms = delay_ms(calls_++);
    std::lock_guard<std::mutex> l(mu_);
    threads_.emplace_back([this, ms, r = std::move(r), done = std::move(done)]() mutable {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stop_; });
      lock.unlock();
      done(std::move(r));
    });
  }
  std::atomic<int> calls_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

int Connect(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = Loopback(port);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  return fd;
}

// Reads until EOF (or the timeout): what arrived, and whether it ended
// with a reset.
std::string ReadAll(int fd, bool* reset = nullptr, int timeout_ms = 5000) {
  std::string out;
  char buf[4096];
  const int64_t until = NowNs() + int64_t{timeout_ms} * 1'000'000;
  if (reset != nullptr) *reset = false;
  while (NowNs() < until) {
    pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    ssize_t r = read(fd, buf, sizeof(buf));
    if (r < 0 && reset != nullptr) *reset = errno == ECONNRESET;
    if (r <= 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  return out;
}

struct Mapping {
  Table table;
  FakePlugins plugins;
  uint16_t up_port = 0;
  int lfd = -1;
  std::unique_ptr<StreamEngine> engine;

  void Start(bool fail_closed = false) {
    table.Publish();
    lfd = Listen(&up_port);
    StreamEngine::Options o = Opts(table.get());
    o.redirects = false;
    o.advertise = false;
    StreamEngine::Listener l;
    l.upstream_host = "127.0.0.1";
    l.upstream_port = up_port;
    l.name = "tcp";
    o.listeners.push_back(l);
    o.plugins = &plugins;
    o.plugin_fail_closed = fail_closed;
    auto e = StreamEngine::Start(o);
    ASSERT_TRUE(e.ok()) << e.status();
    engine = std::move(*e);
  }
  ~Mapping() {
    engine.reset();
    if (lfd >= 0) close(lfd);
  }
  uint16_t port() const { return engine->ports()[0]; }
};

TEST(PluginHooks, ChunksKeepTheirOrderThroughASlowPlugin) {
  Mapping m;
  // Later calls answer sooner than earlier ones: the engine must still
  // pass the chunks on in order (one call at a time per direction).
  m.plugins.delay_ms = [](int call) { return call % 3 == 0 ? 30 : 1; };
  m.plugins.tunnel = [](const std::string& c) {
    PluginResult r;
    r.kind = PluginResult::kReplace;
    r.chunk = "[" + c + "]";
    return r;
  };
  m.Start();
  int c = Connect(m.port());
  int s = accept(m.lfd, nullptr, nullptr);
  ASSERT_GE(s, 0);
  std::string want;
  for (int i = 0; i < 10; ++i) {
    std::string piece = std::to_string(i);
    ASSERT_EQ(write(c, piece.data(), piece.size()), 1);
    usleep(5000);  // separate reads
  }
  shutdown(c, SHUT_WR);
  std::string got = ReadAll(s);
  std::string digits;
  for (char ch : got)
    if (ch != '[' && ch != ']') digits += ch;
  EXPECT_EQ(digits, "0123456789");
  EXPECT_EQ(got.front(), '[');
  EXPECT_EQ(got.back(), ']');
  close(c);
  close(s);
}

TEST(PluginHooks, BufferHoldsTheChunkForItsTime) {
  Mapping m;
  m.plugins.tunnel = [](const std::string&) {
    PluginResult r;
    r.kind = PluginResult::kBuffer;
    r.buffer_ms = 200;
    return r;
  };
  m.Start();
  int c = Connect(m.port());
  int s = accept(m.lfd, nullptr, nullptr);
  const int64_t t0 = NowNs();
  ASSERT_EQ(write(c, "held", 4), 4);
  char buf[4];
  ASSERT_TRUE(ReadExactly(s, buf, 4));
  const int64_t took = NowNs() - t0;
  EXPECT_EQ(std::string(buf, 4), "held");
  EXPECT_GE(took, 200'000'000);
  EXPECT_LT(took, 700'000'000);
  close(c);
  close(s);
}

TEST(PluginHooks, FailuresPassOnOpenAndResetClosed) {
  for (bool closed : {false, true}) {
    Mapping m;
    m.plugins.tunnel = [](const std::string&) {
      PluginResult r;
      r.error = "DEADLINE_EXCEEDED";
      r.deadline_exceeded = true;
      return r;
    };
    m.Start(closed);
    int c = Connect(m.port());
    int s = accept(m.lfd, nullptr, nullptr);
    ASSERT_EQ(write(c, "data", 4), 4);
    bool reset = false;
    if (closed) {
      std::string got = ReadAll(c, &reset);
      EXPECT_TRUE(reset) << "fail closed: the client is reset";
      EXPECT_EQ(m.engine->stats().plugin_refused, 1u);
    } else {
      char buf[4];
      ASSERT_TRUE(ReadExactly(s, buf, 4));
      EXPECT_EQ(std::string(buf, 4), "data");
      EXPECT_EQ(m.engine->stats().plugin_bypassed, 1u);
    }
    close(c);
    close(s);
  }
}

TEST(PluginHooks, DisabledPluginIsSkippedOpenAndHoldsClosed) {
  for (bool closed : {false, true}) {
    Mapping m;
    m.plugins.flags &= ~grpc_module::kPluginEnabled;
    m.plugins.tunnel = [](const std::string&) {
      PluginResult r;
      r.disabled = true;
      r.error = "disabled";
      return r;
    };
    m.Start(closed);
    int c = Connect(m.port());
    int s = accept(m.lfd, nullptr, nullptr);
    ASSERT_EQ(write(c, "data", 4), 4);
    if (closed) {
      bool reset = false;
      ReadAll(c, &reset);
      EXPECT_TRUE(reset);
    } else {
      char buf[4];
      ASSERT_TRUE(ReadExactly(s, buf, 4));
      EXPECT_EQ(m.plugins.calls(), 0) << "fail open does not call a disabled plugin";
    }
    close(c);
    close(s);
  }
}

TEST(PluginHooks, SlowCallOfOneConnectionDoesNotHoldAnother) {
  Mapping m;
  m.plugins.tunnel = [](const std::string& c) {
    PluginResult r;
    r.kind = PluginResult::kPassThrough;
    r.chunk = c;
    return r;
  };
  m.plugins.delay_ms = [](int call) { return call == 0 ? 1000 : 0; };
  m.Start();
  int slow = Connect(m.port());
  int slow_s = accept(m.lfd, nullptr, nullptr);
  ASSERT_EQ(write(slow, "slow", 4), 4);
  usleep(20000);
  int fast = Connect(m.port());
  int fast_s = accept(m.lfd, nullptr, nullptr);
  const int64_t t0 = NowNs();
  ASSERT_EQ(write(fast, "fast", 4), 4);
  char buf[4];
  ASSERT_TRUE(ReadExactly(fast_s, buf, 4));
  EXPECT_LT(NowNs() - t0, 300'000'000);
  ASSERT_TRUE(ReadExactly(slow_s, buf, 4, 3000));
  EXPECT_EQ(std::string(buf, 4), "slow");
  for (int fd : {slow, slow_s, fast, fast_s}) close(fd);
}

TEST(PluginHooks, HttpAbortAnswersWithoutTheUpstream) {
  Table table;
  table.Publish();
  FakePlugins plugins;
  plugins.http_request = [](const grpc_module::PluginHttpRequest& req) {
    PluginResult r;
    r.kind = PluginResult::kAbort;
    r.response.status = 503;
    r.response.headers.push_back({"X-Path", req.path});
    r.response.body = req.method + " blocked";
    return r;
  };
  uint16_t up_port;
  int lfd = Listen(&up_port);
  StreamEngine::Options o = Opts(table.get());
  o.redirects = false;
  o.advertise = false;
  StreamEngine::Listener l;
  l.kind = StreamEngine::Listener::Kind::kHttpProxy;
  l.name = "http";
  o.listeners.push_back(l);
  o.plugins = &plugins;
  auto e = StreamEngine::Start(o);
  ASSERT_TRUE(e.ok()) << e.status();
  int c = Connect((*e)->ports()[0]);
  std::string req = "GET http://127.0.0.1:" + std::to_string(up_port) +
                    "/a?b=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(write(c, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  std::string got = ReadAll(c);
  EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 503") << got;
  EXPECT_NE(got.find("X-Path: /a?b=1\r\n"), std::string::npos) << got;
  EXPECT_NE(got.find("Content-Length: 11\r\n"), std::string::npos) << got;
  EXPECT_NE(got.find("\r\n\r\nGET blocked"), std::string::npos) << got;
  pollfd p = {lfd, POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 100), 0) << "the upstream was contacted";
  close(c);
  e->reset();
  close(lfd);
}

}  // namespace
}  // namespace fault::stream
