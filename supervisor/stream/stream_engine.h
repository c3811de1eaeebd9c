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
// A third way needs nothing in the target: a capture layer outside the
// engine (an eBPF program on connect()/sendto()) sends a process's
// connections and datagrams to a transparent listener on loopback and
// remembers where they were going; Options::origin_lookup tells the engine,
// which relays them there as it relays a TCP or UDP mapping.
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

#include <sys/socket.h>

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
#include "supervisor/grpc/plugin_api.h"
#include "supervisor/stream/protocol_faults.h"

namespace fault::stream {

class StreamEngine {
 public:
  // A listener of the proxy (`fault run`): a TCP or UDP mapping to one
  // upstream, an HTTP/1.1 forward proxy (absolute-form requests and
  // CONNECT), or a transparent listener that takes captured connections
  // (kTransparentTcp) or datagrams (kTransparentUdp) and sends each to
  // where it was going (Options::origin_lookup).
  struct Listener {
    enum class Kind { kTcp, kHttpProxy, kUdp, kTransparentTcp, kTransparentUdp };
    Kind kind = Kind::kTcp;
    // An IPv4 or IPv6 literal; a loopback address for the transparent
    // kinds. An IPv6 listener takes IPv6 clients only (IPV6_V6ONLY): IPv4
    // ones, v4-mapped or not, belong on an IPv4 listener.
    std::string host = "127.0.0.1";
    uint16_t port = 0;               // 0: any free port (see ports())
    std::string upstream_host;       // kTcp, kUdp: a name or an IP literal
    uint16_t upstream_port = 0;
    std::string name;                // for messages ("9090=db:5432")
  };

  // Where a captured connection or datagram was going, as the capture
  // layer recorded it.
  struct Origin {
    // AF_INET or AF_INET6. A v4-mapped IPv6 address (::ffff:a.b.c.d) means
    // IPv4: the engine connects to it with an AF_INET socket.
    sockaddr_storage destination{};
    uint32_t pid = 0;    // the client's process (0: unknown), for events
    char comm[16] = {};  // its name, for the capture layer's messages
  };
  // Where a client meant to go. `client` is its address as the engine sees
  // it: the peer of a connection accepted on a kTransparentTcp listener, or
  // the source of a datagram on a kTransparentUdp listener; `protocol` is
  // IPPROTO_TCP or IPPROTO_UDP. False: not known (the connection is reset,
  // the datagram dropped; both counted in Stats::unclaimed). Asked once per
  // connection and once per datagram (an unconnected UDP socket may send
  // each datagram somewhere else), on the loop threads: it must be
  // thread-safe and quick.
  using OriginLookup =
      std::function<bool(const sockaddr_storage& client, int protocol, Origin* out)>;
  // A client's transparent UDP sessions all expired (a session per
  // destination): the capture layer may forget it. Called on a loop thread;
  // not for the sessions left when the engine stops.
  using OriginRelease = std::function<void(const sockaddr_storage& client, int protocol)>;

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
    // A UDP mapping's client, or a transparent UDP session, is forgotten
    // after this long without a datagram either way; checked once a second.
    int64_t udp_idle_ns = 60'000'000'000;
    // Required by the transparent listeners. Their connections and
    // datagrams meet the rules as forward-proxy targets do: the always
    // rules when `capture_filter` accepts the destination (its IP literal,
    // IPv6 without brackets, and port; all of them when it is empty), and
    // the best target rule.
    OriginLookup origin_lookup;
    std::function<bool(std::string_view host, uint16_t port)> capture_filter;
    OriginRelease origin_release;  // optional
    // Non-zero: the SO_MARK of every socket the engine opens toward an
    // upstream, so that a capture layer can leave the engine's own traffic
    // alone. Setting it needs CAP_NET_ADMIN; without it the sockets go
    // unmarked (the capture layer can also tell the engine by its pid).
    uint32_t upstream_mark = 0;
    // gRPC plugins (`fault run --grpc-plugin`, supervisor/stream/plugin_hooks.cc):
    // their HTTP hooks see the forward proxy's requests to targets that
    // `upstream_filter` accepts, whole (the body is read first) and their
    // responses, whole; their tunnel hooks see every chunk of TCP mappings,
    // CONNECT tunnels to such targets and captured connections. Calls are
    // asynchronous: the connection waits, the loop does not. Not owned;
    // outlives the engine. nullptr: no plugins.
    grpc_module::PluginClient* plugins = nullptr;
    // A call that fails (an error, the deadline, a disabled plugin): false
    // (fail open) goes on as if the plugin had passed the traffic on
    // unchanged; true (fail closed) answers the request 502 or resets the
    // connection.
    bool plugin_fail_closed = false;
    // Protocol faults by rule name (`fault exec`): a redirected connection
    // whose rule has some (FAULT_RULE_PROTOCOL) has the client's requests
    // read and matched (protocol_faults.h). nullptr: none.
    std::shared_ptr<ProtocolFaultSet> protocol_faults;
  };

  struct Stats {
    uint64_t accepted = 0;    // connections handed to the engine
    // Accepted with no armed redirect, or with no known origin on a
    // transparent listener (reset); transparent datagrams with no known
    // origin (dropped).
    uint64_t unclaimed = 0;
    uint64_t far_failed = 0;  // the far end could not be reached
    uint64_t open = 0;        // connections now open
    uint64_t bytes_up = 0;    // target -> far end, written
    uint64_t bytes_down = 0;  // far end -> target, written
    uint64_t http_requests = 0;   // forwarded or answered by the proxy
    uint64_t upstream_reused = 0; // requests sent on a kept-alive upstream
    uint64_t spliced = 0;         // connections relayed with splice()
    uint64_t datagrams = 0;       // UDP datagrams passed on (either way)
    uint64_t limited = 0;         // times the connection limit stopped accepting
    // Transparent connections accepted with a known origin, and new
    // transparent UDP sessions.
    uint64_t captured = 0;
    // Plugin calls that failed: passed on unchanged (fail open), or the
    // request answered 502 / the connection reset (fail closed).
    uint64_t plugin_bypassed = 0;
    uint64_t plugin_refused = 0;
  };

  // With `redirects`, binds 127.0.0.1:0, [::1]:0 (when the machine has IPv6
  // loopback) and an abstract AF_UNIX datagram socket; binds every
  // listener (a name in a TCP mapping's upstream is resolved now); then
  // starts the loops. An error names the listener that failed (a
  // transparent one needs options.origin_lookup and a loopback host).
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
