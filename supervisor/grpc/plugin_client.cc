// fault-grpc.so's plugin client (plugin_api.h): the PluginService of
// proto/plugin/plugin.proto over gRPC's asynchronous API, so that a hook
// call costs its caller no thread and no wait. One thread waits on the
// completion queue (and so reads the plugins' sockets itself); one more
// makes the health checks.
#include <grpcpp/grpcpp.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "plugin/plugin.grpc.pb.h"
#include "supervisor/grpc/plugin_address.h"
#include "supervisor/grpc/plugin_api.h"
#include "supervisor/grpc/status_name.h"

namespace fault::grpc_module {
namespace {

int64_t ClockNs(clockid_t id) {
  timespec ts;
  clock_gettime(id, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}
int64_t MonoNs() { return ClockNs(CLOCK_MONOTONIC); }
int64_t RealNs() { return ClockNs(CLOCK_REALTIME); }

enum Rpc { kHealth, kInfo, kCaps, kHttpRequest, kHttpResponse, kTunnel, kRpcs };
constexpr const char* kRpcNames[kRpcs] = {"HealthCheck",        "GetPluginInfo",
                                          "GetPluginCapabilities", "ProcessHttpRequest",
                                          "ProcessHttpResponse", "ProcessTunnelData"};
// Latency samples kept per plugin and kind: a uniform sample of all the
// calls (reservoir sampling), enough for a p50 and a p99.
constexpr size_t kMaxSamples = 1 << 16;
constexpr size_t kMaxEvents = 1 << 16;

std::chrono::system_clock::time_point Deadline(int64_t timeout_ns) {
  return std::chrono::system_clock::now() + std::chrono::nanoseconds(timeout_ns);
}

struct CallCounters {
  uint64_t calls = 0, failures = 0, deadline = 0, skipped = 0;
  int64_t max_ns = 0;
  std::vector<int64_t> samples;
  uint64_t rng = 0x9e3779b97f4a7c15ULL;

  // Counts a call that took `ns`.
  void Add(int64_t ns, bool failed, bool deadline_exceeded) {
    ++calls;
    if (failed) ++failures;
    if (deadline_exceeded) ++deadline;
    max_ns = std::max(max_ns, ns);
    if (samples.size() < kMaxSamples) {
      samples.push_back(ns);
      return;
    }
    // Keep this one with probability kMaxSamples / calls (xorshift64).
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    const uint64_t slot = rng % calls;
    if (slot < kMaxSamples) samples[slot] = ns;
  }
};

struct Plugin {
  std::string address;
  std::string target;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<plugin::PluginService::Stub> stub;
  std::atomic<uint32_t> flags{0};
  mutable std::mutex mu;  // guards what follows
  PluginDescription desc;
  CallCounters counters[kRpcs];
  uint64_t disabled_times = 0, enabled_times = 0;
};

// `s` as valid UTF-8, each invalid byte replaced by U+FFFD: proto3 string
// fields must be UTF-8 (the Rust tool converts headers the same lossy way).
std::string Lossy(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    size_t n = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xe ? 3 : (b >> 3) == 0x1e ? 4 : 0;
    bool ok = n != 0 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k)
      ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
    if (ok && n > 1) {
      // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8.
      uint32_t cp = b & (0xff >> (n + 1));
      for (size_t k = 1; k < n; ++k) cp = cp << 6 | (static_cast<unsigned char>(s[i + k]) & 0x3f);
      static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= kMin[n] && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff);
    }
    if (ok) {
      out.append(s, i, n);
      i += n;
    } else {
      out += "\xef\xbf\xbd";
      ++i;
    }
  }
  return out;
}

std::vector<PluginHeader> FromProto(
    const google::protobuf::RepeatedPtrField<plugin::HttpHeader>& in) {
  std::vector<PluginHeader> out;
  out.reserve(in.size());
  for (const plugin::HttpHeader& h : in) out.push_back({h.name(), h.value()});
  return out;
}

PluginHttpResponse FromProto(const plugin::HttpResponse& r) {
  PluginHttpResponse out;
  out.status = r.status_code();
  out.headers = FromProto(r.headers());
  out.body = r.body();
  return out;
}

std::string StatusText(const grpc::Status& s) {
  std::string out = grpc_status::StatusCodeName(static_cast<int>(s.error_code()));
  if (!s.error_message().empty()) out += ": " + s.error_message();
  return out;
}

class Client final : public PluginClient {
 public:
  explicit Client(const PluginOptions& options) : options_(options) {}

  ~Client() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      // A health check under way ends now, not at its deadline.
      if (blocking_ctx_ != nullptr) blocking_ctx_->TryCancel();
    }
    cv_.notify_all();
    if (health_.joinable()) health_.join();
    // Calls under way reach into the plugins: every one has a deadline.
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return pending_ == 0; });
    }
    cq_.Shutdown();
    if (cq_thread_.joinable()) {
      cq_thread_.join();
    } else {
      void* tag = nullptr;
      bool ok = false;
      while (cq_.Next(&tag, &ok)) delete static_cast<Completion*>(tag);
    }
  }

  bool Init(std::string* error) {
    for (const std::string& a : options_.addresses) {
      auto p = std::make_unique<Plugin>();
      p->address = a;
      std::string why;
      if (!PluginTarget(a, &p->target, &why)) {
        *error = "--grpc-plugin " + a + ": " + why;
        return false;
      }
      grpc::ChannelArguments args;
      // A plugin that comes up late is reached soon after, not after
      // gRPC's default back-off (up to two minutes).
      args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
      args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
      args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
      args.SetMaxReceiveMessageSize(64 << 20);
      p->channel =
          grpc::CreateCustomChannel(p->target, grpc::InsecureChannelCredentials(), args);
      p->stub = plugin::PluginService::NewStub(p->channel);
      p->desc.address = a;
      p->desc.target = p->target;
      plugins_.push_back(std::move(p));
    }
    for (size_t i = 0; i < plugins_.size(); ++i) {
      std::string why;
      if (!Refresh(i, &why)) SetEnabled(i, false, "GetPluginInfo", why, /*start=*/true);
    }
    cq_thread_ = std::thread([this] { CqLoop(); });
    health_ = std::thread([this] { HealthLoop(); });
    return true;
  }

  size_t size() const override { return plugins_.size(); }

  uint32_t Flags(size_t i) const override {
    return plugins_[i]->flags.load(std::memory_order_acquire);
  }

  PluginDescription Describe(size_t i) const override {
    std::lock_guard<std::mutex> lock(plugins_[i]->mu);
    return plugins_[i]->desc;
  }

  void ProcessHttpRequest(size_t i, const PluginHttpRequest& r, Done done) override {
    if (Skipped(i, kHttpRequest, &done)) return;
    auto call = std::make_shared<Call<plugin::ProcessHttpRequestRequest,
                                      plugin::ProcessHttpRequestResponse>>();
    plugin::HttpRequest* req = call->req.mutable_request();
    req->set_method(Lossy(r.method));
    req->set_path(Lossy(r.path));
    for (const PluginHeader& h : r.headers) {
      plugin::HttpHeader* ph = req->add_headers();
      ph->set_name(Lossy(h.name));
      ph->set_value(Lossy(h.value));
    }
    req->set_body(r.body);
    Start(i, kHttpRequest, call, std::move(done), "",
          [](plugin::PluginService::Stub* stub, grpc::ClientContext* ctx, const auto& rq,
             grpc::CompletionQueue* cq) { return stub->PrepareAsyncProcessHttpRequest(ctx, rq, cq); },
          [](const plugin::ProcessHttpRequestResponse& rs, PluginResult* out) {
            if (rs.action() == plugin::ProcessHttpRequestResponse::ABORT) {
              out->kind = PluginResult::kAbort;
              out->has_response = rs.has_abort_response();
              out->response = FromProto(rs.abort_response());
            } else if (rs.action() == plugin::ProcessHttpRequestResponse::CONTINUE) {
              out->kind = PluginResult::kContinue;
              if (rs.has_modified_request()) {
                const plugin::HttpRequest& m = rs.modified_request();
                out->has_request = true;
                out->request.method = m.method();
                out->request.path = m.path();
                out->request.headers = FromProto(m.headers());
                out->request.body = m.body();
              }
            } else {
              out->error = "answered with the unknown action " + std::to_string(rs.action());
            }
          });
  }

  void ProcessHttpResponse(size_t i, const PluginHttpResponse& r, Done done) override {
    if (Skipped(i, kHttpResponse, &done)) return;
    auto call = std::make_shared<Call<plugin::ProcessHttpResponseRequest,
                                      plugin::ProcessHttpResponseResponse>>();
    plugin::HttpResponse* res = call->req.mutable_response();
    res->set_status_code(r.status);
    for (const PluginHeader& h : r.headers) {
      plugin::HttpHeader* ph = res->add_headers();
      ph->set_name(Lossy(h.name));
      ph->set_value(Lossy(h.value));
    }
    res->set_body(r.body);
    Start(i, kHttpResponse, call, std::move(done), "",
          [](plugin::PluginService::Stub* stub, grpc::ClientContext* ctx, const auto& rq,
             grpc::CompletionQueue* cq) { return stub->PrepareAsyncProcessHttpResponse(ctx, rq, cq); },
          [](const plugin::ProcessHttpResponseResponse& rs, PluginResult* out) {
            if (rs.action() == plugin::ProcessHttpResponseResponse::ABORT) {
              out->kind = PluginResult::kAbort;
              out->has_response = rs.has_abort_response();
              out->response = FromProto(rs.abort_response());
            } else if (rs.action() == plugin::ProcessHttpResponseResponse::CONTINUE) {
              out->kind = PluginResult::kContinue;
              out->has_response = rs.has_modified_response();
              out->response = FromProto(rs.modified_response());
            } else {
              out->error = "answered with the unknown action " + std::to_string(rs.action());
            }
          });
  }

  void ProcessTunnelData(size_t i, const std::string& id, int side, int direction,
                         const std::string& chunk, Done done) override {
    if (Skipped(i, kTunnel, &done)) return;
    auto call = std::make_shared<Call<plugin::ProcessTunnelDataRequest,
                                      plugin::ProcessTunnelDataResponse>>();
    call->req.set_id(id);
    call->req.set_side(side == kPluginSideServer ? plugin::ProcessTunnelDataRequest::SERVER
                                                 : plugin::ProcessTunnelDataRequest::CLIENT);
    call->req.set_direction(direction == kPluginEgress
                                ? plugin::ProcessTunnelDataRequest::EGRESS
                                : plugin::ProcessTunnelDataRequest::INGRESS);
    call->req.set_chunk(chunk);
    Start(i, kTunnel, call, std::move(done), id,
          [](plugin::PluginService::Stub* stub, grpc::ClientContext* ctx, const auto& rq,
             grpc::CompletionQueue* cq) { return stub->PrepareAsyncProcessTunnelData(ctx, rq, cq); },
          [](const plugin::ProcessTunnelDataResponse& rs, PluginResult* out) {
            switch (rs.action_case()) {
              case plugin::ProcessTunnelDataResponse::kReplace:
                out->kind = PluginResult::kReplace;
                out->chunk = rs.replace().modified_chunk();
                break;
              case plugin::ProcessTunnelDataResponse::kBuffer:
                out->kind = PluginResult::kBuffer;
                out->buffer_ms = std::max(0, rs.buffer().estimated_time_to_release_ms());
                break;
              case plugin::ProcessTunnelDataResponse::kClose:
                out->kind = PluginResult::kClose;
                out->reason = rs.close().reason();
                break;
              case plugin::ProcessTunnelDataResponse::kPassThrough:
                out->chunk = rs.pass_through().chunk();
                out->kind = PluginResult::kPassThrough;
                break;
              default:  // no action: as pass_through with no chunk
                out->kind = PluginResult::kPassThrough;
                break;
            }
          });
  }

  std::vector<PluginStats> Stats() const override {
    std::vector<PluginStats> out;
    for (const auto& p : plugins_) {
      PluginStats s;
      std::lock_guard<std::mutex> lock(p->mu);
      s.plugin = p->desc;
      s.disabled_times = p->disabled_times;
      s.enabled_times = p->enabled_times;
      for (int k = 0; k < kRpcs; ++k) {
        const CallCounters& c = p->counters[k];
        if (c.calls == 0 && c.skipped == 0) continue;
        PluginCallStats cs;
        cs.rpc = kRpcNames[k];
        cs.calls = c.calls;
        cs.failures = c.failures;
        cs.deadline_exceeded = c.deadline;
        cs.skipped = c.skipped;
        cs.max_ns = c.max_ns;
        std::vector<int64_t> v = c.samples;
        if (!v.empty()) {
          std::sort(v.begin(), v.end());
          cs.p50_ns = v[(v.size() - 1) / 2];
          cs.p99_ns = v[(v.size() - 1) * 99 / 100];
        }
        s.calls.push_back(std::move(cs));
      }
      out.push_back(std::move(s));
    }
    return out;
  }

  std::vector<PluginEvent> TakeEvents(uint64_t* dropped) override {
    std::lock_guard<std::mutex> lock(events_mu_);
    if (dropped != nullptr) *dropped = dropped_;
    return std::exchange(events_, {});
  }

 private:
  template <class Req, class Res>
  struct Call {
    grpc::ClientContext ctx;
    Req req;
    Res res;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<Res>> reader;
    int64_t start_ns = 0;
  };

  // A completion queue tag: what to do when a call ends.
  struct Completion {
    std::function<void()> run;
  };

  // A disabled plugin is not called: `done` gets a failure at once.
  bool Skipped(size_t i, int rpc, Done* done) {
    Plugin& p = *plugins_[i];
    if (p.flags.load(std::memory_order_acquire) & kPluginEnabled) return false;
    {
      std::lock_guard<std::mutex> lock(p.mu);
      ++p.counters[rpc].skipped;
    }
    PluginResult r;
    r.disabled = true;
    r.error = "disabled";
    (*done)(std::move(r));
    return true;
  }

  // Starts the call; its end comes through the completion queue (CqLoop).
  // The thread that waits on the queue also reads the sockets, so an
  // answer reaches `done` without a hop between gRPC's threads.
  template <class CallT, class StartFn, class Translate>
  void Start(size_t i, int rpc, std::shared_ptr<CallT> call, Done done, std::string conn,
             StartFn start, Translate translate) {
    Plugin& p = *plugins_[i];
    call->ctx.set_deadline(Deadline(options_.call_timeout_ns));
    call->start_ns = MonoNs();
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++pending_;
    }
    auto* tag = new Completion;
    tag->run = [this, i, rpc, call, done = std::move(done), conn = std::move(conn),
                translate]() mutable {
      PluginResult r;
      r.latency_ns = MonoNs() - call->start_ns;
      if (call->status.ok()) {
        translate(call->res, &r);
      } else {
        r.error = StatusText(call->status);
        r.deadline_exceeded =
            call->status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
      }
      Account(i, rpc, r, conn);
      done(std::move(r));
      std::lock_guard<std::mutex> lock(mu_);
      if (--pending_ == 0) cv_.notify_all();
    };
    call->reader = start(p.stub.get(), &call->ctx, call->req, &cq_);
    call->reader->StartCall();
    call->reader->Finish(&call->res, &call->status, tag);
  }

  void CqLoop() {
    void* tag = nullptr;
    bool ok = false;
    while (cq_.Next(&tag, &ok)) {
      std::unique_ptr<Completion> c(static_cast<Completion*>(tag));
      c->run();
    }
  }

  void Account(size_t i, int rpc, const PluginResult& r, const std::string& conn) {
    Plugin& p = *plugins_[i];
    const bool failed = r.kind == PluginResult::kFailed;
    {
      std::lock_guard<std::mutex> lock(p.mu);
      p.counters[rpc].Add(r.latency_ns, failed, r.deadline_exceeded);
    }
    std::string outcome, detail;
    switch (r.kind) {
      case PluginResult::kFailed:
        outcome = r.deadline_exceeded ? "deadline" : "failed";
        detail = r.error;
        break;
      case PluginResult::kAbort:
        outcome = "abort";
        detail = "status " + std::to_string(r.response.status);
        break;
      case PluginResult::kContinue:
        if (!r.has_request && !r.has_response) return;
        outcome = "modified";
        if (r.has_response) detail = "status " + std::to_string(r.response.status);
        break;
      case PluginResult::kReplace:
        outcome = "replace";
        detail = std::to_string(r.chunk.size()) + " bytes";
        break;
      case PluginResult::kBuffer:
        outcome = "buffer";
        detail = std::to_string(r.buffer_ms) + " ms";
        break;
      case PluginResult::kClose:
        outcome = "close";
        detail = r.reason;
        break;
      case PluginResult::kPassThrough:
        return;
    }
    Event(static_cast<int>(i), kRpcNames[rpc], outcome, detail, conn, r.latency_ns);
  }

  void Event(int plugin, std::string rpc, std::string outcome, std::string detail,
             std::string conn, int64_t latency_ns) {
    std::lock_guard<std::mutex> lock(events_mu_);
    if (events_.size() >= kMaxEvents) {
      ++dropped_;
      return;
    }
    PluginEvent e;
    e.time_ns = RealNs();
    e.plugin = plugin;
    e.rpc = std::move(rpc);
    e.outcome = std::move(outcome);
    e.detail = std::move(detail);
    e.connection = std::move(conn);
    e.latency_ns = latency_ns;
    events_.push_back(std::move(e));
  }

  // A blocking call of the start-up or health kind, counted.
  template <class Req, class Res, class Method>
  grpc::Status Blocking(size_t i, int rpc, Method method, Res* res) {
    Plugin& p = *plugins_[i];
    grpc::ClientContext ctx;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return grpc::Status(grpc::StatusCode::CANCELLED, "stopping");
      blocking_ctx_ = &ctx;
    }
    ctx.set_deadline(Deadline(options_.startup_timeout_ns));
    Req req;
    const int64_t start = MonoNs();
    grpc::Status s = ((*p.stub).*method)(&ctx, req, res);
    {
      std::lock_guard<std::mutex> lock(mu_);
      blocking_ctx_ = nullptr;
    }
    const int64_t took = MonoNs() - start;
    std::lock_guard<std::mutex> lock(p.mu);
    p.counters[rpc].Add(took, !s.ok(), s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
    return s;
  }

  // GetPluginInfo, then GetPluginCapabilities; enables the plugin when both
  // answer.
  bool Refresh(size_t i, std::string* why) {
    plugin::GetPluginInfoResponse info;
    grpc::Status s = Blocking<plugin::GetPluginInfoRequest>(
        i, kInfo, &plugin::PluginService::Stub::GetPluginInfo, &info);
    if (!s.ok()) {
      *why = "GetPluginInfo: " + StatusText(s);
      return false;
    }
    plugin::GetPluginCapabilitiesResponse caps;
    s = Blocking<plugin::GetPluginCapabilitiesRequest>(
        i, kCaps, &plugin::PluginService::Stub::GetPluginCapabilities, &caps);
    if (!s.ok()) {
      *why = "GetPluginCapabilities: " + StatusText(s);
      return false;
    }
    Plugin& p = *plugins_[i];
    uint32_t flags = kPluginDescribed;
    {
      std::lock_guard<std::mutex> lock(p.mu);
      PluginDescription& d = p.desc;
      d.described = true;
      d.name = info.name();
      d.version = info.version();
      d.author = info.author();
      d.url = info.url();
      d.platform = info.platform();
      d.side = info.side();
      d.direction = info.direction();
      d.http = caps.can_handle_http_forward();
      d.protocols.assign(caps.protocols().begin(), caps.protocols().end());
      // A plugin for a wire protocol (PostgreSQL) reads it in tunnels,
      // whatever can_handle_tunnel says (the Rust tool's own PostgreSQL
      // example says false).
      bool wire = false;
      for (int proto : d.protocols)
        wire |= proto == plugin::GetPluginCapabilitiesResponse::POSTGRESQL;
      d.tunnel = caps.can_handle_tunnel() || wire;
      if (d.http) flags |= kPluginHttp;
      if (d.tunnel) flags |= kPluginTunnel;
      if (d.side != plugin::GetPluginInfoResponse::CLIENT) flags |= kPluginServerSide;
    }
    p.flags.store(flags | (p.flags.load() & kPluginEnabled), std::memory_order_release);
    SetEnabled(i, true, "GetPluginCapabilities", "", /*start=*/false);
    return true;
  }

  void SetEnabled(size_t i, bool on, const char* rpc, const std::string& why, bool start) {
    Plugin& p = *plugins_[i];
    const uint32_t old = p.flags.load();
    const bool was = (old & kPluginEnabled) != 0;
    if (on)
      p.flags.fetch_or(kPluginEnabled, std::memory_order_release);
    else
      p.flags.fetch_and(~kPluginEnabled, std::memory_order_release);
    {
      std::lock_guard<std::mutex> lock(p.mu);
      p.desc.enabled = on;
      if (!on) p.desc.last_error = why;
      if (was && !on) ++p.disabled_times;
      if (!was && on && started_.load()) ++p.enabled_times;
    }
    if (was != on || start) {
      Event(static_cast<int>(i), rpc, on ? "enabled" : "disabled", why, "", 0);
    }
  }

  bool Stopping() {
    std::lock_guard<std::mutex> lock(mu_);
    return stop_;
  }

  void HealthLoop() {
    started_.store(true);
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (cv_.wait_for(lock, std::chrono::nanoseconds(options_.health_interval_ns),
                         [this] { return stop_; }))
          return;
      }
      for (size_t i = 0; i < plugins_.size(); ++i) {
        plugin::HealthCheckResponse res;
        grpc::Status s = Blocking<plugin::HealthCheckRequest>(
            i, kHealth, &plugin::PluginService::Stub::HealthCheck, &res);
        if (Stopping()) return;  // cancelled: says nothing about the plugin
        const bool enabled = Flags(i) & kPluginEnabled;
        if (!s.ok() || !res.healthy()) {
          if (enabled || !Describe(i).described)
            SetEnabled(i, false, "HealthCheck",
                       s.ok() ? "unhealthy: " + res.message() : "HealthCheck: " + StatusText(s),
                       false);
          continue;
        }
        if (enabled) continue;
        std::string why;
        if (!Refresh(i, &why) && !Stopping()) SetEnabled(i, false, "GetPluginInfo", why, false);
      }
    }
  }

  PluginOptions options_;
  std::vector<std::unique_ptr<Plugin>> plugins_;
  std::thread health_;
  grpc::CompletionQueue cq_;
  std::thread cq_thread_;
  std::mutex mu_;  // guards stop_, pending_, blocking_ctx_
  std::condition_variable cv_;
  bool stop_ = false;
  grpc::ClientContext* blocking_ctx_ = nullptr;  // of the blocking call under way
  std::atomic<bool> started_{false};  // the health checks have begun
  uint64_t pending_ = 0;
  std::mutex events_mu_;
  std::vector<PluginEvent> events_;
  uint64_t dropped_ = 0;
};

PluginClient* StartPlugins(const PluginOptions& options, std::string* error) {
  auto c = std::make_unique<Client>(options);
  if (!c->Init(error)) return nullptr;
  return c.release();
}

}  // namespace

extern const PluginApi kPluginApi = {StartPlugins};

}  // namespace fault::grpc_module
