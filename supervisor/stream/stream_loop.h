// The stream engine's event loop, shared by its source files:
// stream_engine.cc (connections, relaying, effects), http_proxy.cc (the
// HTTP/1.1 forward proxy), udp_relay.cc (UDP mappings and transparent UDP),
// transparent.cc (where captured traffic was going) and resolver.cc. Not a
// public interface.
#ifndef FAULT_SUPERVISOR_STREAM_STREAM_LOOP_H_
#define FAULT_SUPERVISOR_STREAM_STREAM_LOOP_H_

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "shim/engine/engine.h"
#include "supervisor/stream/resolver.h"
#include "supervisor/stream/stream_engine.h"
#include "supervisor/stream/transparent.h"

namespace fault::stream {

namespace eng = ::fault::engine;

inline constexpr int64_t kForever = INT64_MAX;

int64_t NowNs();

// Closes with an RST instead of a FIN: the peer sees ECONNRESET, as it
// would from a reset connection.
void CloseWithReset(int fd);

inline bool IsDatagramListener(StreamEngine::Listener::Kind k) {
  return k == StreamEngine::Listener::Kind::kUdp ||
         k == StreamEngine::Listener::Kind::kTransparentUdp;
}

struct Conn;
struct HttpState;
struct HttpStateDeleter {
  void operator()(HttpState* h) const;  // http_proxy.cc
};

// What the epoll data pointer of every registered fd points at.
struct Handle {
  enum Kind : uint8_t {
    kListener4, kListener6, kControl, kWake, kSide, kProxyListener, kPooled,
    kResolver, kUdpListener, kUdpUpstream, kPluginMail
  };
  Kind kind;
  int side = 0;            // kSide: 0 near (the target / the client), 1 far
  Conn* conn = nullptr;
  int index = 0;           // kProxyListener: into listeners_
  struct Pooled* pooled = nullptr;  // kPooled
  struct UdpSession* udp = nullptr;  // kUdpUpstream
};

struct Chunk {
  std::unique_ptr<char[]> data;
  size_t off = 0;
  size_t end = 0;
  int64_t release_ns = 0;
};

// One direction: bytes read from side `d`, written to side `1 - d`
// (0: uplink, target/client -> far end; 1: downlink).
struct Dir {
  std::deque<Chunk> q;
  size_t queued = 0;        // bytes in q
  size_t piped = 0;         // bytes in the pipe (pass-through, splice)
  int64_t last_release = 0;
  bool src_eof = false;     // the source sent its FIN (or a budget ended it)
  bool dst_shut = false;    // the FIN was passed on
  bool paused = false;      // reading stopped above the watermark
  bool stalled = false;     // black-holed: read and discarded
  bool throttled = false;   // a rate episode is under way (one event each)
  // The current flight: bytes that arrive while earlier ones of the
  // direction still wait share their decision (see Ingest).
  int64_t flight_delay = 0;
  uint64_t flight_bytes = 0;
  bool more = false;        // a read burst stopped at its limit: read again
  // splice: a read found the pipe full; read again once it drains.
  bool in_blocked = false;
  int pipe[2] = {-1, -1};
  // Bytes read and not yet through the tunnel plugins (plugin_hooks.cc).
  size_t plug_queued = 0;
};

// A relayed connection's chunks on their way through the tunnel plugins,
// one direction: one chunk at a time, through each plugin in turn.
struct PlugDir {
  std::deque<std::string> pending;  // read, waiting for the plugins
  std::string cur;                  // the chunk with a plugin now
  size_t cur_read = 0;              // bytes of `cur` as read (Dir::plug_queued)
  bool busy = false;                // `cur` is with a plugin (or held)
  size_t next = 0;                  // the plugin `cur` goes to next
  uint64_t serial = 0;              // of the call under way
  int64_t hold_until = 0;           // a Buffer answer: `cur` waits until then
};
struct PlugTunnel {
  PlugDir dir[2];
  std::string id;  // ProcessTunnelDataRequest.id
};

// Answers of plugin calls, posted by gRPC's threads for the loop (an
// eventfd says when there are some). Shared: an answer may come after
// the loop is gone.
struct PluginMailbox {
  enum Hook : uint8_t { kHttpRequest, kHttpResponse, kTunnelUp, kTunnelDown };
  struct Item {
    uint64_t conn = 0;
    uint64_t serial = 0;
    Hook hook = kHttpRequest;
    size_t plugin = 0;
    grpc_module::PluginResult result;
  };
  PluginMailbox();
  ~PluginMailbox();
  void Post(Item item);
  std::vector<Item> Take();
  int fd = -1;
  std::mutex mu;
  std::vector<Item> items;
};

// A rule that applies to a connection, as the table held it when it was
// last read, with the connection's state under it.
struct RuleRef {
  char name[FAULT_NAME_MAX] = {};
  int index = -1;
  uint64_t seq = 0;
  uint64_t generation = 0;
  fault_rule r;
  eng::ConnState cs;
};

struct Conn {
  enum Kind : uint8_t {
    kRedirect,  // fault exec: a target's connection, announced in a slot
    kRelay,     // the proxy: a TCP mapping, a CONNECT tunnel, a captured connection
    kHttp,      // the proxy: HTTP/1.1 forward proxy requests
  };
  uint64_t id = 0;
  Kind kind = kRedirect;
  Handle h[2];
  int fd[2] = {-1, -1};
  Dir dir[2];
  // The far side: kAwaitFar (no socket yet: an accepted connection's
  // socket not handed over, a name being resolved, no HTTP request yet),
  // kConnecting, kOpen; kDead once the connection is gone.
  enum State : uint8_t { kAwaitFar, kConnecting, kOpen, kDead } state = kAwaitFar;
  // kRedirect: the announcement slot.
  bool has_slot = false;
  int family_index = 0;
  uint16_t slot_port = 0;
  bool slot_open = false;      // the redirect slot says OPEN
  int32_t pid = 0;
  std::vector<RuleRef> rules;  // all apply, in order
  int rate_rule[2] = {-1, -1}; // rules[] entry whose rate limits a direction
  int64_t opened_ns = 0;
  int64_t handshake_until = 0;
  int64_t fail_at = kForever;  // a scheduled failure (timeout.recv, stalls)
  int fail_err = 0;
  int64_t timer_at = kForever; // earliest timer queued for this connection
  uint16_t engine_port = 0;    // marked in table->engine_ports
  bool splice = false;         // pass-through: no rule, bytes passed on as read
  bool spliced = false;        // a direction went through a pipe (splice())
  char target[FAULT_NAME_MAX] = {};
  // The proxy: the far end's addresses, and the next to try.
  std::vector<sockaddr_storage> far_addrs;
  size_t far_next = 0;
  std::unique_ptr<HttpState, HttpStateDeleter> http;
  // The HTTP proxy waits (an upstream's answer, a lookup) before it reads
  // more of the client's requests.
  bool http_blocked = false;
  // A relay whose chunks go through the tunnel plugins.
  std::unique_ptr<PlugTunnel> plug;
  // Protocol faults: the client's requests are read and matched first
  // (protocol_faults.cc); `proto_rule` is the rules[] entry they belong to.
  std::unique_ptr<ProtocolFilter> proto;
  size_t proto_rule = 0;
  int proto_dir = 0;  // the requests' direction: 0 the program's, 1 its client's
};

struct Timer {
  int64_t at;
  uint64_t conn;
  bool operator>(const Timer& o) const { return at > o.at; }
};

// A listener of the proxy, as this loop holds it.
struct ProxyListener {
  StreamEngine::Listener config;
  int fd = -1;
  Handle h;
  // kTcp: the upstream's addresses (resolved at start), used in turn.
  std::vector<sockaddr_storage> upstream;
  size_t next = 0;
};

// One client of a UDP mapping, or one client and destination of a
// transparent UDP listener: its datagrams go to the upstream from a socket
// of its own, and the answers come back to it from the listener. `conn`
// holds the rules and the target (no sockets of its own).
struct UdpSession {
  uint64_t id = 0;
  int listener = -1;
  bool transparent = false;
  sockaddr_storage client = {};
  socklen_t client_len = 0;
  int fd = -1;  // connected to the upstream
  Handle h;
  Conn conn;
  int64_t last_ns = 0;
};

// A datagram held back by a delay.
struct Datagram {
  int64_t at;
  uint64_t session;
  int dir;
  std::string data;
  bool operator>(const Datagram& o) const { return at > o.at; }
};

// An idle upstream connection of the HTTP proxy, kept for reuse.
struct Pooled {
  int fd = -1;
  std::string key;  // "host:port" as requested
  int64_t since = 0;
  Handle h;
};

class StreamEngine::Loop {
 public:
  explicit Loop(const Options& o) : o_(o), t_(o.table) {}
  ~Loop();

  // `first`: this loop opens the redirect listeners and the control socket
  // (only one loop does).
  absl::Status Open(bool first, uint16_t* port4, uint16_t* port6, std::string* name,
                    std::vector<uint16_t>* ports);
  void Run();
  void RequestStop();
  void RequestFinish(int64_t deadline_ns);
  size_t cut_short() const { return cut_short_.load(); }
  void AddStats(Stats* s) const;

  // ---- connections (stream_engine.cc)
  void Register(int fd, Handle* h, uint32_t events);
  void OnListener(int family_index, int fd);
  void OnProxyListener(int index);
  // The connection limit: stop or resume accepting on every TCP listener.
  bool AtLimit() const;
  void PauseListeners(bool pause);
  void OnControl();
  void OnSide(Conn* c, int side, uint32_t events);
  Conn* NewConn(Conn::Kind kind, int near_fd);
  // A new kRelay connection to c->far_addrs (the first is `far`): its
  // rules, its connect-time faults, then the connect.
  void StartRelay(Conn* c, const eng::Endpoint& far, bool always);
  // Starts connecting side 1 to `ss`: 0, or the error (nothing kept).
  int ConnectTo(Conn* c, const sockaddr_storage& ss);
  // Tries c->far_addrs from far_next on: 0, or the last error.
  int ConnectAny(Conn* c);
  void ConnectFar(Conn* c, const fault_redirect& r);
  void AttachFar(Conn* c, int fd);
  void FarConnected(Conn* c);
  // Reads what side `d` has. `edge`: called for an epoll edge without a
  // hang-up, so a short read means the socket is empty (a later arrival
  // brings a new edge); otherwise it reads until EAGAIN.
  void ReadFrom(Conn* c, int d, bool edge = false);
  void ReadSplice(Conn* c, int d, bool edge);
  void Ingest(Conn* c, int d, const char* buf, size_t n, int64_t now);
  void Enqueue(Conn* c, int d, const char* buf, size_t n, int64_t release);
  void Pump(Conn* c, int d, int64_t now);
  void PumpSplice(Conn* c, int d);
  void Service(Conn* c);
  void Fail(Conn* c, int err);
  void Kill(Conn* c);
  void Schedule(Conn* c, int64_t at);
  // Re-reads the connection's rules after a republished table. False: no
  // rule applies now.
  bool CurrentRules(Conn* c);
  // The rules for a proxied connection to `far` (host as requested):
  // always_rules when `always` holds, and the best target rule.
  void SelectRules(Conn* c, const eng::Endpoint& far, bool always);
  void SelectRulesOnly(Conn* c, const eng::Endpoint& far, bool always);
  bool AddRule(Conn* c, int index, const eng::Index& idx);
  void UpdateRates(Conn* c);
  // Connect-time effects of the rules (the proxy): false if the connection
  // was failed by one.
  bool DecideConnect(Conn* c, int* err);
  // One event of the engine's layer in the table's ring.
  void EmitEvent(int rule, uint64_t generation, int32_t pid, uint16_t op, uint16_t effect,
                 int64_t value, const char* target);
  void Emit(Conn* c, int d, const RuleRef& ref, const eng::NetDecision& dec);
  void EmitRate(Conn* c, int d, int ref);
  fault_redirect* Slot(const Conn* c) {
    return &t_->redirects[c->family_index][c->slot_port];
  }
  void SetSlotState(Conn* c, uint32_t state, int err);
  void ExpireOrphans(int64_t now);
  size_t Unflushed() const;

  // ---- transparent listeners (transparent.cc)
  // A connection accepted on a kTransparentTcp listener from `peer`.
  void AcceptCaptured(int fd, const sockaddr_storage& peer);
  // Where `client` meant to go (Options::origin_lookup), ready to connect
  // to. False (counted as unclaimed): not known, or not an address.
  bool Captured(const sockaddr_storage& client, int protocol, sockaddr_storage* dest,
                socklen_t* dest_len, int32_t* pid);
  // Whether the always rules apply to a captured destination
  // (Options::capture_filter, given its IP literal).
  bool AlwaysRulesFor(const eng::Endpoint& far) const;

  // ---- UDP mappings and transparent UDP (udp_relay.cc)
  void OnUdpListener(int index);
  void OnUdpUpstream(UdpSession* s);
  void UdpForward(UdpSession* s, int d, const char* buf, size_t n, int64_t now);
  void UdpSend(UdpSession* s, int d, const char* buf, size_t n);
  void UdpDue(int64_t now);
  void ExpireUdp(int64_t now);
  int64_t NextUdpDue() const { return udp_due_.empty() ? kForever : udp_due_.top().at; }

  // ---- HTTP forward proxy (http_proxy.cc)
  void HttpStart(Conn* c);
  void HttpRead(Conn* c, const char* buf, size_t n, int64_t now);
  void HttpFromUpstream(Conn* c, const char* buf, size_t n, int64_t now);
  void HttpService(Conn* c);
  void HttpFarConnected(Conn* c);
  void HttpUnblock(Conn* c);
  void SendHead(Conn* c, int64_t now);
  // The rules that apply to a forward-proxy request for `host` before its
  // upstream is known (HTTP error and DNS faults), read under one index.
  std::vector<RuleRef> PreResolveRules(const std::string& host, bool always);
  void HttpUpstreamFailed(Conn* c, int err);
  void HttpResolved(uint64_t conn_id, uint64_t serial, int err,
                    std::vector<sockaddr_storage> addrs);
  void HttpProcess(Conn* c, int64_t now);
  bool HttpRoute(Conn* c, int64_t now);
  void HttpRespond(Conn* c, int status, const std::string& reason,
                   const std::string& body, bool close, int64_t now);
  void HttpDetachUpstream(Conn* c, bool reusable);
  int PoolTake(const std::string& key);
  void PoolPut(const std::string& key, int fd);
  void OnPooled(Pooled* p);
  void ExpirePool(int64_t now);
  void OnResolver();

  // ---- gRPC plugins (plugin_hooks.cc)
  // Whether plugin `i` takes part now: enabled, or failing closed.
  bool PluginTakesPart(size_t i, uint32_t capability) const;
  bool AnyPlugin(uint32_t capability) const;
  grpc_module::PluginClient::Done PluginDone(Conn* c, uint64_t serial, PluginMailbox::Hook hook,
                                             size_t plugin);
  void OnPluginMail();
  std::string PluginName(size_t i) const;
  // Tunnels: a relay starts with the plugins when any takes tunnels.
  void PlugTunnelStart(Conn* c);
  // Bytes read from side `d` of a relay: through the plugins, then Ingest.
  void Relay(Conn* c, int d, const char* buf, size_t n, int64_t now);
  void PlugTunnelStep(Conn* c, int d);
  void PlugTunnelAnswer(Conn* c, int d, size_t plugin, grpc_module::PluginResult r);
  // Bytes read from side `d`, past the protocol faults.
  void RelayRaw(Conn* c, int d, const char* buf, size_t n, int64_t now);
  // ---- protocol faults (stream_engine.cc)
  // `requests`: the direction the requests go (0: the program is the
  // client; 1: an accepted connection, the program is the server).
  void ProtoStart(Conn* c, int requests);
  void ProtoRelay(Conn* c, const char* buf, size_t n, int64_t now);
  void PlugTunnelClose(Conn* c);
  void PlugService(Conn* c, int64_t now);
  // HTTP (http_proxy.cc): a request's plugins, then its response's.
  bool HttpWantsPlugins(Conn* c);
  void HttpPluginAnswer(Conn* c, PluginMailbox::Item item);
  void HttpPluginRequestNext(Conn* c);
  void HttpPluginRequestAnswer(Conn* c, size_t plugin, grpc_module::PluginResult r);
  void HttpPluginRequestDone(Conn* c);
  void HttpPluginAnswerRequest(Conn* c, int status, std::string raw, std::string text);
  void HttpPluginResponseNext(Conn* c);
  void HttpPluginResponseAnswer(Conn* c, size_t plugin, grpc_module::PluginResult r);
  void HttpPluginResponseDone(Conn* c);
  void HttpRespondRaw(Conn* c, std::string text, bool close, int64_t now);

  Options o_;
  int index_ = 0;  // of this loop in the engine
  std::shared_ptr<PluginMailbox> mailbox_;
  Handle mailbox_h_{Handle::kPluginMail};
  std::atomic<uint64_t> plugin_bypassed_{0}, plugin_refused_{0};
  fault_table* t_;
  int ep_ = -1;
  int listen_[2] = {-1, -1};
  int control_ = -1;
  int wake_ = -1;
  Handle listen_h_[2] = {{Handle::kListener4}, {Handle::kListener6}};
  Handle control_h_{Handle::kControl};
  Handle wake_h_{Handle::kWake};
  Handle resolver_h_{Handle::kResolver};
  std::vector<std::unique_ptr<ProxyListener>> listeners_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> finish_by_{0};  // 0: not finishing
  uint64_t finish_moved_ = 0;          // bytes written when last looked
  int64_t finish_progress_ns_ = 0;     // when they last changed
  static constexpr int64_t kStallNs = 2'000'000'000;
  std::atomic<size_t> cut_short_{0};
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  std::vector<std::unique_ptr<Conn>> dead_;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
  // Accepted sockets handed over before their replacement connection
  // arrived, and connections waiting for their accepted socket, by
  // (family_index << 16 | port).
  struct Orphan {
    int fd;
    int64_t since;
  };
  std::unordered_map<uint32_t, Orphan> handed_;
  std::unordered_map<uint32_t, uint64_t> awaiting_;
  int64_t next_expiry_ = 0;
  int64_t early_ns_ = 0;
  static constexpr int64_t kMaxEarlyNs = 200'000;
  static constexpr int64_t kSpinNs = 30'000;
  std::unique_ptr<char[]> scratch_;
  // HTTP: idle upstream connections by "host:port", and name lookups.
  std::unordered_map<std::string, std::vector<std::unique_ptr<Pooled>>> pool_;
  std::vector<std::unique_ptr<Pooled>> dead_pooled_;  // freed after the batch
  std::unique_ptr<Resolver> resolver_;
  // UDP mappings: sessions by listener and client address, and the
  // datagrams waiting for their time.
  std::unordered_map<std::string, std::unique_ptr<UdpSession>> udp_sessions_;
  std::unordered_map<uint64_t, UdpSession*> udp_by_id_;
  // Transparent sessions by listener and client: Options::origin_release
  // once a client has none left.
  std::unordered_map<std::string, int> udp_clients_;
  std::vector<std::unique_ptr<UdpSession>> dead_udp_;
  std::priority_queue<Datagram, std::vector<Datagram>, std::greater<Datagram>> udp_due_;
  std::atomic<uint64_t> datagrams_{0};
  bool listeners_paused_ = false;
  // Connections open over all loops (the connection limit).
  std::shared_ptr<std::atomic<size_t>> total_open_;
  std::atomic<uint64_t> limited_{0};

  std::atomic<uint64_t> accepted_{0}, unclaimed_{0}, far_failed_{0}, open_{0},
      bytes_[2] = {0, 0}, http_requests_{0}, upstream_reused_{0}, spliced_{0}, captured_{0};
};

}  // namespace fault::stream

#endif  // FAULT_SUPERVISOR_STREAM_STREAM_LOOP_H_
