// The stream engine: a relay in the supervisor that applies a policy's
// stream effects (latency, jitter, loss as retransmission stalls, rate,
// black holes, budgets, half-open, resets) to real kernel sockets.
//
// A target's connection reaches the engine in one of two ways (see
// fault_redirect in shim/include/fault/table.h):
//   - connect: the target side binds its socket to a loopback port P, fills
//     redirects[family][P] with the real destination, and connects to the
//     engine's listener; the engine connects to the destination itself.
//   - accepted: a server's accepted socket is sent to the engine's control
//     socket (SCM_RIGHTS) with the port P of a fresh socket that the target
//     side connects to the engine and then puts in the accepted socket's
//     place.
// Either way the target holds a real TCP socket whose bytes arrive late,
// slowly or not at all because the engine holds them back, so readiness,
// buffering and backpressure are the kernel's own for every I/O model
// (blocking, poll, epoll edge-triggered, io_uring, Go's netpoller).
//
// Each direction of each connection is a FIFO of chunks as they were read,
// each with the time it may be written on. One decision of the shared
// engine (shim/engine, DecideNet) is drawn per chunk read, with the same
// counters, seeds and event ring as the shim's, so a seed gives the same
// decisions here as anywhere. Reading a direction stops while more than
// `high_watermark` bytes wait in it.
//
//   auto engine = StreamEngine::Start({.table = table->table()});
//   ... targets started now find it through the table header ...
//   engine->Finish(timeout);  // once the targets are gone: flush, then stop
//
// Thread-safety: Start() and the destructor from one thread; stats() from
// any. The loop runs on a thread of its own.
#ifndef FAULT_SUPERVISOR_STREAM_STREAM_ENGINE_H_
#define FAULT_SUPERVISOR_STREAM_STREAM_ENGINE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "fault/table.h"

namespace fault::stream {

class StreamEngine {
 public:
  // A listener of the proxy (`fault run`): a TCP mapping to one upstream,
  // or an HTTP/1.1 forward proxy (absolute-form requests and CONNECT).
  struct Listener {
    enum class Kind { kTcp, kHttpProxy, kUdp };
    Kind kind = Kind::kTcp;
    std::string host = "127.0.0.1";  // an IPv4 or IPv6 literal
    uint16_t port = 0;               // 0: any free port (see ports())
    std::string upstream_host;       // kTcp, kUdp: a name or an IP literal
    uint16_t upstream_port = 0;
    std::string name;                // for messages ("9090=db:5432")
  };

  struct Options {
    fault_table* table = nullptr;      // required; outlives the engine
    size_t high_watermark = 2 << 20;   // bytes queued per direction
    // Publish the listeners and the control socket in the table header
    // (engine_port4/6, engine_control) so that targets find them.
    bool advertise = true;
    // Take redirected connections (`fault exec`): loopback listeners and
    // the control socket. False for the proxy.
    bool redirects = true;
    // The proxy's listeners.
    std::vector<Listener> listeners;
    // Event loops (threads), each with its own epoll set and its own
    // SO_REUSEPORT socket per listener. Redirects need exactly one.
    int loops = 1;
    // The proxy's connections open at a time, over all loops (0: no limit).
    // At the limit the listeners stop accepting until one closes; clients
    // wait in the kernel's accept queue.
    size_t max_connections = 0;
    // Rules (by name) that apply together to every connection of a TCP
    // mapping, and to forward-proxy and CONNECT targets that
    // `upstream_filter` accepts (all of them when it is empty).
    std::vector<std::string> always_rules;
    std::function<bool(std::string_view host, uint16_t port)> upstream_filter;
    // The other rules select proxied connections by their targets (the
    // upstream's address), one rule per connection (the best priority).
    bool match_targets = true;
    // Bodies of HTTP error responses, by rule name (the table holds only
    // the status and the probability).
    std::map<std::string, std::string> http_bodies;
    // A UDP mapping's client is forgotten after this long without a
    // datagram either way; checked once a second.
    int64_t udp_idle_ns = 60'000'000'000;
  };

  struct Stats {
    uint64_t accepted = 0;    // connections handed to the engine
    uint64_t unclaimed = 0;   // accepted with no armed redirect (refused)
    uint64_t far_failed = 0;  // the far end could not be reached
    uint64_t open = 0;        // connections now open
    uint64_t bytes_up = 0;    // target -> far end, written
    uint64_t bytes_down = 0;  // far end -> target, written
    uint64_t http_requests = 0;   // forwarded or answered by the proxy
    uint64_t upstream_reused = 0; // requests sent on a kept-alive upstream
    uint64_t spliced = 0;         // connections relayed with splice()
    uint64_t datagrams = 0;       // UDP datagrams passed on (either way)
    uint64_t limited = 0;         // times the connection limit stopped accepting
  };

  // With `redirects`, binds 127.0.0.1:0, [::1]:0 (when the machine has IPv6
  // loopback) and an abstract AF_UNIX datagram socket; binds every
  // listener (a name in a TCP mapping's upstream is resolved now); then
  // starts the loops. An error names the listener that failed.
  static absl::StatusOr<std::unique_ptr<StreamEngine>> Start(
      const Options& options);

  ~StreamEngine();
  StreamEngine(const StreamEngine&) = delete;
  StreamEngine& operator=(const StreamEngine&) = delete;

  uint16_t port4() const { return port4_; }
  uint16_t port6() const { return port6_; }
  // The control socket's abstract name, without the leading NUL.
  const std::string& control_name() const { return control_name_; }

  Stats stats() const;
  // The port each of options.listeners got, in order.
  const std::vector<uint16_t>& ports() const { return ports_; }

  // Stops taking connections and waits, at most `timeout_ns` and while
  // bytes keep moving (two seconds without progress end it), until every
  // byte the targets sent before they closed their sockets has been passed
  // on, as the kernel would deliver a closed socket's buffer. Then the loop
  // stops. Returns the number of connections cut short.
  size_t Finish(int64_t timeout_ns);

  class Loop;  // the event loop (stream_engine.cc)

 private:
  StreamEngine() = default;

  std::vector<std::unique_ptr<Loop>> loops_;
  std::vector<std::thread> threads_;
  std::vector<uint16_t> ports_;
  uint16_t port4_ = 0;
  uint16_t port6_ = 0;
  std::string control_name_;
};

}  // namespace fault::stream

#endif  // FAULT_SUPERVISOR_STREAM_STREAM_ENGINE_H_
