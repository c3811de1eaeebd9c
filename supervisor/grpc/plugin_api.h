// The plugin client of fault-grpc.so, as `fault run --grpc-plugin` sees it:
// plain types and one abstract class, so that nothing of gRPC or protobuf
// crosses the module boundary (module.h).
//
//   const Module* m = ...grpc_module::Load()...;
//   std::string error;
//   std::unique_ptr<PluginClient> plugins(m->plugins->start(options, &error));
//   if (plugins == nullptr) ...error names the address and why...
//   plugins->ProcessHttpRequest(0, request, [](PluginResult r) { ...any thread... });
//
// The client speaks the PluginService of proto/plugin/plugin.proto (the Rust
// `fault` proxy's interface). Start() asks each plugin for its info and
// capabilities; a plugin that does not answer is kept, disabled, and a
// thread checks every plugin's health every `health_interval_ns`: a healthy
// one is asked again and enabled, an unhealthy or silent one disabled.
//
// Thread-safety: every member of PluginClient may be called from any
// thread. Calls never block: `done` runs later, once, on the client's
// completion-queue thread (or at once on the caller's, for a plugin that is
// disabled); it must be quick.
#ifndef FAULT_SUPERVISOR_GRPC_PLUGIN_API_H_
#define FAULT_SUPERVISOR_GRPC_PLUGIN_API_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace fault::grpc_module {

struct PluginHeader {
  std::string name;
  std::string value;
};

struct PluginHttpRequest {
  std::string method;
  std::string path;  // origin form, with the query
  std::vector<PluginHeader> headers;
  std::string body;
};

struct PluginHttpResponse {
  uint32_t status = 0;
  std::vector<PluginHeader> headers;
  std::string body;
};

// What one hook call came to.
struct PluginResult {
  enum Kind : uint8_t {
    kFailed,       // no usable answer: `error` says why
    kContinue,     // HTTP: go on, with `request`/`response` when has_* is set
    kAbort,        // HTTP: answer the client with `response`
    kPassThrough,  // tunnel: pass `chunk` on (empty: the chunk as it was)
    kReplace,      // tunnel: pass `chunk` on instead (empty: nothing)
    kBuffer,       // tunnel: hold the chunk back `buffer_ms`, then pass it on
    kClose,        // tunnel: close the connection (`reason`)
  };
  Kind kind = kFailed;
  bool deadline_exceeded = false;  // kFailed because the deadline passed
  bool disabled = false;           // kFailed because the plugin is disabled
  std::string error;
  bool has_request = false;
  PluginHttpRequest request;
  bool has_response = false;
  PluginHttpResponse response;
  std::string chunk;
  int64_t buffer_ms = 0;
  std::string reason;
  int64_t latency_ns = 0;
};

// Which side of a relayed connection a tunnel chunk belongs to, and whether
// the proxy read it there (ingress) or writes it there (egress); the
// values of ProcessTunnelDataRequest's enums.
inline constexpr int kPluginSideClient = 0;
inline constexpr int kPluginSideServer = 1;
inline constexpr int kPluginIngress = 0;
inline constexpr int kPluginEgress = 1;

// PluginClient::Flags(): what a plugin does now, read without a lock.
inline constexpr uint32_t kPluginEnabled = 1;      // started and healthy
inline constexpr uint32_t kPluginHttp = 2;         // can_handle_http_forward
inline constexpr uint32_t kPluginTunnel = 4;       // can_handle_tunnel, or a wire protocol
inline constexpr uint32_t kPluginServerSide = 8;   // side SERVER or ANY (else CLIENT)
inline constexpr uint32_t kPluginDescribed = 16;   // info and capabilities received

struct PluginDescription {
  std::string address;  // as given on the command line
  std::string target;   // host:port as dialled
  bool enabled = false;
  bool described = false;  // info and capabilities were received
  std::string name, version, author, url, platform;
  int side = 0;       // GetPluginInfoResponse.Side
  int direction = 0;  // GetPluginInfoResponse.Direction
  bool http = false;
  bool tunnel = false;
  std::vector<int> protocols;
  std::string last_error;  // why it was last disabled
};

// Calls of one kind to one plugin.
struct PluginCallStats {
  std::string rpc;  // "ProcessHttpRequest", ...
  uint64_t calls = 0;
  uint64_t failures = 0;  // deadline exceeded included
  uint64_t deadline_exceeded = 0;
  uint64_t skipped = 0;   // not made: the plugin was disabled
  int64_t p50_ns = 0;
  int64_t p99_ns = 0;
  int64_t max_ns = 0;
};

struct PluginStats {
  PluginDescription plugin;
  uint64_t disabled_times = 0;  // enabled -> disabled transitions
  uint64_t enabled_times = 0;   // disabled -> enabled transitions after start
  std::vector<PluginCallStats> calls;  // only kinds with calls or skips
};

// Something worth a line in `fault run`'s events: a plugin enabled or
// disabled, a call that failed, or one whose answer changed the traffic.
struct PluginEvent {
  int64_t time_ns = 0;  // CLOCK_REALTIME
  int plugin = 0;
  std::string rpc;      // "HealthCheck", "ProcessTunnelData", ...
  std::string outcome;  // "enabled", "disabled", "failed", "deadline",
                        // "abort", "modified", "replace", "buffer", "close"
  std::string detail;
  std::string connection;  // the tunnel id, when there is one
  int64_t latency_ns = 0;
};

struct PluginOptions {
  // "http://host:port", "https://host:port" (TLS is not offered: an
  // error) or "host:port", in order.
  std::vector<std::string> addresses;
  int64_t call_timeout_ns = 100'000'000;       // deadline of each hook call
  int64_t startup_timeout_ns = 2'000'000'000;  // of the info/capability/health calls
  int64_t health_interval_ns = 10'000'000'000;
};

class PluginClient {
 public:
  using Done = std::function<void(PluginResult)>;
  virtual ~PluginClient() = default;

  virtual size_t size() const = 0;
  virtual uint32_t Flags(size_t plugin) const = 0;
  virtual PluginDescription Describe(size_t plugin) const = 0;

  virtual void ProcessHttpRequest(size_t plugin, const PluginHttpRequest& request,
                                  Done done) = 0;
  virtual void ProcessHttpResponse(size_t plugin, const PluginHttpResponse& response,
                                   Done done) = 0;
  // `side`: kPluginSide*; `direction`: kPluginIngress or kPluginEgress.
  virtual void ProcessTunnelData(size_t plugin, const std::string& id, int side,
                                 int direction, const std::string& chunk, Done done) = 0;

  virtual std::vector<PluginStats> Stats() const = 0;
  // The events since the last call; `dropped` gets how many did not fit.
  virtual std::vector<PluginEvent> TakeEvents(uint64_t* dropped) = 0;
};

struct PluginApi {
  // Connects to options.addresses and makes the start-up calls (waiting at
  // most startup_timeout_ns for each plugin). nullptr when an address is
  // not one (`error` names it and why); a plugin that is down is not an
  // error (it starts disabled).
  PluginClient* (*start)(const PluginOptions& options, std::string* error);
};

}  // namespace fault::grpc_module

#endif  // FAULT_SUPERVISOR_GRPC_PLUGIN_API_H_
