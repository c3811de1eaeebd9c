#include "supervisor/run/proxy_runner.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "ebpf/capture.h"
#include "supervisor/exec/event_log.h"
#include "supervisor/exec/events_file.h"
#include "supervisor/exec/policy_table.h"
#include "supervisor/exec/run_report.h"
#include "supervisor/exec/seed_source.h"
#include "supervisor/exec/table_compiler.h"
#include "supervisor/grpc/loader.h"
#include "supervisor/grpc/plugin_api.h"
#include "supervisor/run/proxy_control.h"
#include "supervisor/stream/stream_engine.h"

namespace fault::run {
namespace {

using fault::exec::CompiledTable;
using fault::exec::CounterSnapshot;
using fault::exec::EventsFile;
using fault::exec::PolicyTable;
using fault::exec::RunReport;
using fault::stream::StreamEngine;

std::string Bytes(uint64_t n) {
  if (n >= 10'000'000'000ULL) return absl::StrFormat("%.1f GB", n / 1e9);
  if (n >= 10'000'000ULL) return absl::StrFormat("%.1f MB", n / 1e6);
  if (n >= 10'000ULL) return absl::StrFormat("%.1f kB", n / 1e3);
  return absl::StrCat(n, " B");
}

// Half the cores: the proxy usually shares the machine with the client and
// the server it stands between, and a loop that has to wait for a core
// costs more than it brings (docs/benchmarks.md, tools/bench/proxy.py).
int EventLoops(int asked) {
  if (asked > 0) return asked;
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return static_cast<int>(std::clamp<long>(n / 2, 1, 8));
}

// The SO_MARK of the proxy's upstream sockets, which capture leaves alone.
constexpr uint32_t kUpstreamMark = 0xfa017;

bool HasIpv6Loopback() {
  int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in6 a = {};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  close(fd);
  return ok;
}

// What --stealth selects, for the start-up lines.
std::string Selection(const StealthConfig& s) {
  std::vector<std::string> parts;
  if (!s.processes.empty()) parts.push_back("processes named " + absl::StrJoin(s.processes, ", "));
  if (!s.pids.empty()) parts.push_back("the process trees of " + absl::StrJoin(s.pids, ", "));
  if (!s.exec_names.empty()) parts.push_back("programs " + absl::StrJoin(s.exec_names, ", ") + " from exec");
  if (!s.cgroups.empty()) parts.push_back("cgroups " + absl::StrJoin(s.cgroups, ", "));
  return absl::StrJoin(parts, "; ") + (s.all_netns ? " (every network namespace)" : "");
}

// The capture, once attached, shared with the engine's loops. Lookups wait
// for it briefly, since the first redirected connection can arrive before
// Start returns; a lookup under way keeps it alive while the runner lets
// go of it (Take) to detach.
class CaptureHolder {
 public:
  void Set(std::shared_ptr<fault::ebpf::Capture> capture) {
    {
      absl::MutexLock lock(&mu_);
      capture_ = std::move(capture);
    }
    ready_.Notify();
  }
  std::shared_ptr<fault::ebpf::Capture> Get() {
    if (!ready_.WaitForNotificationWithTimeout(absl::Seconds(2))) return nullptr;
    absl::MutexLock lock(&mu_);
    return capture_;
  }
  std::shared_ptr<fault::ebpf::Capture> Take() {
    absl::MutexLock lock(&mu_);
    return std::move(capture_);
  }

 private:
  absl::Notification ready_;
  absl::Mutex mu_;
  std::shared_ptr<fault::ebpf::Capture> capture_;
};

std::string Micros(int64_t ns) {
  if (ns >= 10'000'000) return absl::StrFormat("%.0f ms", ns / 1e6);
  if (ns >= 1'000'000) return absl::StrFormat("%.1f ms", ns / 1e6);
  return absl::StrFormat("%.0f us", ns / 1e3);
}

std::string PluginLabel(const fault::grpc_module::PluginDescription& d) {
  if (d.name.empty()) return d.address;
  return absl::StrCat(d.name, d.version.empty() ? "" : " ", d.version, " (", d.address, ")");
}

// What a plugin takes, for the start-up lines.
std::string PluginRole(const fault::grpc_module::PluginDescription& d) {
  std::vector<std::string> parts;
  if (d.http) parts.push_back("HTTP requests and responses");
  if (d.tunnel)
    parts.push_back(absl::StrCat("tunnel data on the ", d.side == 0 ? "client" : "server",
                                 " side"));
  return parts.empty() ? "nothing it can handle here" : absl::StrJoin(parts, ", ");
}

nlohmann::json PluginEventToJson(const fault::grpc_module::PluginEvent& e,
                                 const fault::grpc_module::PluginClient& plugins) {
  nlohmann::json j;
  j["time"] = absl::FormatTime("%Y-%m-%dT%H:%M:%E9SZ", absl::FromUnixNanos(e.time_ns),
                               absl::UTCTimeZone());
  j["time_ns"] = e.time_ns;
  j["layer"] = "plugin";
  fault::grpc_module::PluginDescription d = plugins.Describe(static_cast<size_t>(e.plugin));
  j["plugin"] = d.name.empty() ? d.address : d.name;
  j["address"] = d.address;
  j["rpc"] = e.rpc;
  j["outcome"] = e.outcome;
  if (!e.detail.empty()) j["detail"] = e.detail;
  if (!e.connection.empty()) j["connection"] = e.connection;
  if (e.latency_ns > 0) j["latency_ns"] = e.latency_ns;
  return j;
}

}  // namespace

int RunProxy(const RunConfig& config, std::ostream& out, std::ostream& err) {
  // Signals are taken here, synchronously; the engine's threads block them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // What the proxy cannot apply is refused, never ignored.
  for (const fault::v1::Policy& p : config.policies.policies()) {
    if (std::string why = ProxyPolicyProblem(p); !why.empty()) {
      err << "fault run: policy \"" << p.name() << "\": " << why << "\n";
      return kExitUsage;
    }
  }

  absl::StatusOr<std::unique_ptr<PolicyTable>> table =
      PolicyTable::Create({.start_ns = fault::exec::MonotonicNowNs()});
  if (!table.ok()) {
    err << "fault run: " << table.status().message() << "\n";
    return 125;
  }
  fault::exec::RandomSeedSource random_seeds;
  fault::exec::CompileOptions compile;
  compile.global_seed = config.seed;
  compile.seeds = &random_seeds;
  compile.run_duration_ns = config.duration_ns;
  absl::StatusOr<CompiledTable> compiled = fault::exec::CompileTable(config.policies, compile);
  if (!compiled.ok()) {
    err << "fault run: " << compiled.status().message() << "\n";
    return kExitUsage;
  }
  const uint64_t first_generation = (*table)->Publish(*compiled->config);
  std::vector<std::string> names;
  for (const auto& r : compiled->rules) names.push_back(r.name);
  RunReport report;
  report.BeginGeneration(names, {});
  CounterSnapshot baseline = (*table)->ReadCounters();

  std::optional<EventsFile> events;
  if (!config.events_path.empty()) {
    absl::StatusOr<EventsFile> file = EventsFile::Open(config.events_path);
    if (!file.ok()) {
      err << "fault run: --events " << config.events_path << ": " << file.status().message()
          << "\n";
      return kExitUsage;
    }
    events.emplace(std::move(*file));
  }

  // Plugins: the gRPC module, then each plugin's start-up calls (a plugin
  // that is down starts disabled and is retried).
  std::unique_ptr<fault::grpc_module::PluginClient> plugins;
  if (!config.plugins.empty()) {
    absl::StatusOr<const fault::grpc_module::Module*> module = fault::grpc_module::Load();
    if (!module.ok()) {
      err << "fault run: --grpc-plugin: " << module.status().message() << "\n";
      return kExitCannotListen;
    }
    if ((*module)->plugins == nullptr) {
      err << "fault run: --grpc-plugin: this build's gRPC module has no plugin client\n";
      return kExitCannotListen;
    }
    fault::grpc_module::PluginOptions po;
    po.addresses = config.plugins;
    po.call_timeout_ns = config.plugin_timeout_ns;
    po.startup_timeout_ns = std::max<int64_t>(config.plugin_timeout_ns, 1'000'000'000);
    po.health_interval_ns = config.plugin_health_interval_ns;
    std::string error;
    plugins.reset((*module)->plugins->start(po, &error));
    if (plugins == nullptr) {
      err << "fault run: " << error << "\n";
      return kExitUsage;
    }
  }

  StreamEngine::Options o;
  o.table = (*table)->table();
  o.plugins = plugins.get();
  o.plugin_fail_closed = config.plugin_fail_closed;
  o.redirects = false;
  o.advertise = false;
  o.loops = EventLoops(config.event_loops);
  o.max_connections = config.max_connections;
  {
    // A proxy holds two descriptors per connection (four more while it
    // splices): take what the hard limit allows, and stay within it.
    rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
      nofile.rlim_cur = nofile.rlim_max;
      setrlimit(RLIMIT_NOFILE, &nofile);
      getrlimit(RLIMIT_NOFILE, &nofile);
      // Two per connection, four more while it splices, and room for the
      // upstream pool, UDP clients and the process's own.
      const size_t fit = nofile.rlim_cur > 1280 ? (nofile.rlim_cur - 1024) / 8 : 32;
      if (o.max_connections == 0 || o.max_connections > fit) {
        if (o.max_connections > fit)
          err << "fault run: warning: --max-connections " << o.max_connections
              << " is more than the descriptor limit allows; using " << fit << "\n";
        o.max_connections = fit;
      }
    }
  }
  o.always_rules = config.flag_policies;
  o.match_targets = true;
  o.http_bodies = config.http_bodies;
  const std::vector<std::string> upstreams = config.upstreams;
  o.upstream_filter = [upstreams](std::string_view host, uint16_t port) {
    return UpstreamMatches(upstreams, host, port);
  };
  if (config.proxy_address.has_value()) {
    StreamEngine::Listener l;
    l.kind = StreamEngine::Listener::Kind::kHttpProxy;
    l.host = config.proxy_address->host;
    l.port = config.proxy_address->port;
    l.name = absl::StrCat("--proxy-address ", ListenAddress{l.host, l.port}.ToString());
    o.listeners.push_back(l);
  }
  for (const Mapping& m : config.mappings) {
    StreamEngine::Listener l;
    l.kind = m.udp ? StreamEngine::Listener::Kind::kUdp : StreamEngine::Listener::Kind::kTcp;
    l.host = m.listen.host;
    l.port = m.listen.port;
    l.upstream_host = m.upstream.host;
    l.upstream_port = m.upstream.port;
    l.name = absl::StrCat("--proxy ", m.text);
    o.listeners.push_back(l);
  }
  // Stealth: loopback listeners the capture sends selected processes to.
  const size_t first_capture_listener = o.listeners.size();
  auto holder = std::make_shared<CaptureHolder>();
  const bool ipv6 = HasIpv6Loopback();
  if (config.stealth.has_value()) {
    using Kind = StreamEngine::Listener::Kind;
    for (Kind kind : {Kind::kTransparentTcp, Kind::kTransparentUdp}) {
      for (const char* host : {"127.0.0.1", "::1"}) {
        if (host[0] == ':' && !ipv6) continue;
        StreamEngine::Listener l;
        l.kind = kind;
        l.host = host;
        l.port = config.stealth->port;
        l.name = absl::StrCat("--stealth (", kind == Kind::kTransparentTcp ? "TCP" : "UDP",
                              " on ", ListenAddress{l.host, l.port}.ToString(), ")");
        o.listeners.push_back(l);
      }
    }
    o.upstream_mark = kUpstreamMark;
    // The selection already names what to fault: without --upstream every
    // captured connection gets the flag faults; with it, only those whose
    // original destination it names.
    if (!upstreams.empty()) o.capture_filter = o.upstream_filter;
    o.origin_lookup = [holder](const sockaddr_storage& client, int protocol,
                               StreamEngine::Origin* out) {
      std::shared_ptr<fault::ebpf::Capture> c = holder->Get();
      fault::ebpf::Origin origin;
      if (c == nullptr || !c->TakeOrigin(client, protocol, &origin)) return false;
      out->destination = origin.destination;
      out->pid = origin.pid;
      std::memcpy(out->comm, origin.comm, sizeof(out->comm));
      return true;
    };
    o.origin_release = [holder](const sockaddr_storage& client, int protocol) {
      if (std::shared_ptr<fault::ebpf::Capture> c = holder->Get()) c->Release(client, protocol);
    };
  }
  if (o.listeners.empty()) {
    err << "fault run: nothing to listen on (--disable-http-proxy and no --proxy mapping)\n";
    return kExitUsage;
  }
  absl::StatusOr<std::unique_ptr<StreamEngine>> engine = StreamEngine::Start(o);
  if (!engine.ok()) {
    err << "fault run: " << engine.status().message() << "\n";
    return kExitCannotListen;
  }
  if (config.stealth.has_value()) {
    const std::vector<uint16_t>& ports = (*engine)->ports();
    size_t li = first_capture_listener;
    fault::ebpf::CaptureOptions co;
    co.process_names = config.stealth->processes;
    co.pids.assign(config.stealth->pids.begin(), config.stealth->pids.end());
    co.exec_names = config.stealth->exec_names;
    co.cgroups = config.stealth->cgroups;
    co.all_netns = config.stealth->all_netns;
    co.tcp_port4 = ports[li++];
    if (ipv6) co.tcp_port6 = ports[li++];
    co.udp_port4 = ports[li++];
    if (ipv6) co.udp_port6 = ports[li++];
    co.mark = kUpstreamMark;
    absl::StatusOr<std::unique_ptr<fault::ebpf::Capture>> started =
        fault::ebpf::Capture::Start(co);
    if (!started.ok()) {
      holder->Set(nullptr);
      err << "fault run: --stealth: " << started.status().message() << "\n";
      (*engine)->Finish(0);
      return kExitCannotListen;
    }
    holder->Set(std::shared_ptr<fault::ebpf::Capture>(std::move(*started)));
  }

  const bool tty = isatty(STDOUT_FILENO) == 1 && &out == &std::cout;
  const bool show = !config.no_ui && !config.quiet;
  if (show) {
    size_t li = 0;
    if (config.proxy_address.has_value()) {
      out << "fault run: HTTP proxy on http://"
          << ListenAddress{config.proxy_address->host, (*engine)->ports()[li++]}.ToString();
      if (config.upstreams.empty())
        out << " (no --upstream: forwarded requests get no faults)";
      else
        out << " (faults for " << absl::StrJoin(config.upstreams, ", ") << ")";
      out << "\n";
    }
    for (const Mapping& m : config.mappings) {
      out << "fault run: " << (m.udp ? "udp " : "")
          << ListenAddress{m.listen.host, (*engine)->ports()[li++]}.ToString() << " -> "
          << ListenAddress{m.upstream.host, m.upstream.port}.ToString() << "\n";
    }
    if (config.stealth.has_value()) {
      const std::vector<uint16_t>& ports = (*engine)->ports();
      out << "fault run: stealth: capturing " << Selection(*config.stealth) << " (TCP to "
          << ListenAddress{"127.0.0.1", ports[first_capture_listener]}.ToString() << ")";
      if (!config.upstreams.empty())
        out << "; faults for " << absl::StrJoin(config.upstreams, ", ");
      out << "\n";
    }
    if (!names.empty()) out << "fault run: policies " << absl::StrJoin(names, ", ") << "\n";
    for (size_t i = 0; plugins != nullptr && i < plugins->size(); ++i) {
      fault::grpc_module::PluginDescription d = plugins->Describe(i);
      if (d.enabled)
        out << "fault run: plugin " << PluginLabel(d) << ": " << PluginRole(d) << "\n";
      else
        out << "fault run: plugin " << d.address << " is not answering (" << d.last_error
            << "); checked again every "
            << absl::StrFormat("%.3gs", config.plugin_health_interval_ns / 1e9) << "\n";
    }
    if (plugins != nullptr && config.proxy_address.has_value() && config.upstreams.empty())
      out << "fault run: plugins see forwarded HTTP requests only to --upstream targets "
             "(none given)\n";
    if (config.duration_ns > 0)
      out << absl::StrFormat("fault run: stops after %.3gs; Ctrl-C stops it sooner\n",
                             config.duration_ns / 1e9);
    else
      out << "fault run: Ctrl-C stops it\n";
    out.flush();
  }

  uint64_t events_seen = 0;
  // --control (proxy_control.h): changes published from this thread on
  // kControlSignal.
  std::unique_ptr<ProxyControl> control;
  if (config.control.has_value()) {
    sigaddset(&stop_signals, kControlSignal);
    sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
    ProxyControl::State state;
    state.table = table->get();
    state.compile = compile;
    if (!state.compile.global_seed.has_value()) state.compile.global_seed = compiled->run_seed;
    state.report = &report;
    state.baseline = &baseline;
    state.names = &names;
    state.generation = first_generation;
    state.layers = {"proxy"};
    if (config.stealth.has_value()) state.layers.push_back("stealth");
    state.events = &events_seen;
    control = ProxyControl::Start(config, std::move(state), err);
    if (control == nullptr) {
      holder->Take();
      (*engine)->Finish(0);
      return kExitUsage;
    }
  }
  uint64_t plugin_events = 0, plugin_events_dropped = 0;
  bool events_failure_reported = false;
  auto drain = [&](bool final) {
    std::vector<fault_event> evs;
    (*table)->DrainEvents(&evs, final);
    std::vector<std::string> lines;
    for (const fault_event& e : evs) {
      const std::vector<std::string>& rule_names =
          control != nullptr ? control->NamesOf(e.generation) : names;
      report.AddEvent(e, rule_names);
      nlohmann::json j = fault::exec::EventToJson(e, rule_names);
      if (events.has_value()) lines.push_back(j.dump() + "\n");
      if (config.tail && !config.quiet) out << j.dump() << "\n";
      ++events_seen;
    }
    if (plugins != nullptr) {
      uint64_t dropped = 0;
      for (const fault::grpc_module::PluginEvent& e : plugins->TakeEvents(&dropped)) {
        nlohmann::json j = PluginEventToJson(e, *plugins);
        if (events.has_value()) lines.push_back(j.dump() + "\n");
        if (config.tail && !config.quiet) out << j.dump() << "\n";
        ++plugin_events;
      }
      plugin_events_dropped = dropped;
    }
    if (config.tail) out.flush();
    if (control != nullptr) control->Drained(evs, (*table)->dropped_events());
    if (events.has_value()) {
      events->Append(lines);
      if (events->failed() && !events_failure_reported) {
        events_failure_reported = true;
        err << "fault run: writing --events " << config.events_path << ": " << events->error()
            << "; no further events are written and the run will fail (exit status "
            << kExitEventsLost << ")\n";
      }
    }
  };

  const int64_t started = fault::exec::MonotonicNowNs();
  const int64_t deadline = config.duration_ns > 0 ? started + config.duration_ns : 0;
  int64_t last_view = started;
  uint64_t last_events = 0;
  StreamEngine::Stats last_stats;
  int stop_signal = 0;
  while (true) {
    int64_t now = fault::exec::MonotonicNowNs();
    if (deadline != 0 && now >= deadline) break;
    int64_t wait = 100'000'000;
    if (deadline != 0) wait = std::min(wait, deadline - now);
    timespec ts{wait / 1'000'000'000, wait % 1'000'000'000};
    int sig = sigtimedwait(&stop_signals, nullptr, &ts);
    if (sig == SIGINT || sig == SIGTERM) {
      stop_signal = sig;
      break;
    }
    if (sig == kControlSignal && control != nullptr) control->Serve();
    drain(false);
    now = fault::exec::MonotonicNowNs();
    const int64_t period = tty ? 1'000'000'000 : 10'000'000'000;
    if (show && !config.tail && now - last_view >= period) {
      StreamEngine::Stats s = (*engine)->stats();
      const double secs = (now - last_view) / 1e9;
      const uint64_t fired = events_seen - last_events;
      std::string line = absl::StrFormat(
          "fault run: %llu open, %llu accepted, %llu HTTP requests, up %s, down %s, "
          "%.1f faults/s",
          static_cast<unsigned long long>(s.open), static_cast<unsigned long long>(s.accepted),
          static_cast<unsigned long long>(s.http_requests), Bytes(s.bytes_up),
          Bytes(s.bytes_down), fired / secs);
      const bool changed = s.accepted != last_stats.accepted ||
                           s.bytes_up != last_stats.bytes_up ||
                           s.bytes_down != last_stats.bytes_down || fired != 0;
      if (tty) {
        out << "\r\033[K" << line << std::flush;
      } else if (changed) {
        out << line << "\n" << std::flush;
      }
      last_view = now;
      last_events = events_seen;
      last_stats = s;
    }
  }
  if (show && tty && !config.tail) out << "\n";
  if (show && stop_signal != 0)
    out << "fault run: " << (stop_signal == SIGINT ? "SIGINT" : "SIGTERM")
        << ": stopping\n" << std::flush;

  // Stop: capture first (selected processes connect directly again), then
  // no new connections; what is already on its way gets a second.
  fault::ebpf::CaptureCounters captured;
  if (std::shared_ptr<fault::ebpf::Capture> capture = holder->Take()) {
    captured = capture->counters();
  }  // detached here, or by the last lookup under way
  size_t cut = (*engine)->Finish(1'000'000'000);
  StreamEngine::Stats final_stats = (*engine)->stats();
  engine->reset();
  drain(true);
  if (control != nullptr) control->Stop();
  report.AddCounters((*table)->ReadCounters(), baseline);
  if (events.has_value()) events->Close();

  int status = kExitOk;
  if (!config.quiet) {
    err << absl::StrFormat(
        "fault: proxy: %llu connections, %llu HTTP requests (%llu on a reused upstream), "
        "%s up, %s down%s\n",
        static_cast<unsigned long long>(final_stats.accepted),
        static_cast<unsigned long long>(final_stats.http_requests),
        static_cast<unsigned long long>(final_stats.upstream_reused),
        Bytes(final_stats.bytes_up), Bytes(final_stats.bytes_down),
        cut > 0 ? absl::StrCat("; ", cut, " closed with bytes still on their way") : "");
    if (config.stealth.has_value()) {
      err << absl::StrFormat(
          "fault: stealth: captured %llu TCP connections (%llu IPv6) and %llu UDP "
          "connects or datagrams (%llu IPv6)%s\n",
          static_cast<unsigned long long>(captured.tcp4 + captured.tcp6),
          static_cast<unsigned long long>(captured.tcp6),
          static_cast<unsigned long long>(captured.udp4 + captured.udp6),
          static_cast<unsigned long long>(captured.udp6),
          captured.no_storage + captured.map_full > 0
              ? absl::StrCat("; ", captured.no_storage + captured.map_full,
                             " left uncaptured (kernel maps full)")
              : "");
    }
    if (plugins != nullptr) {
      for (const fault::grpc_module::PluginStats& ps : plugins->Stats()) {
        // The hooks' calls, each kind with its latencies; the start-up and
        // health calls together.
        std::vector<std::string> calls;
        uint64_t failures = 0, deadline = 0, checks = 0, checks_failed = 0;
        for (const fault::grpc_module::PluginCallStats& cs : ps.calls) {
          if (cs.rpc.rfind("Process", 0) != 0) {
            checks += cs.calls;
            checks_failed += cs.failures;
            continue;
          }
          failures += cs.failures;
          deadline += cs.deadline_exceeded;
          if (cs.calls == 0) continue;
          calls.push_back(absl::StrFormat("%s %llu (p50 %s, p99 %s, max %s)", cs.rpc,
                                          static_cast<unsigned long long>(cs.calls),
                                          Micros(cs.p50_ns), Micros(cs.p99_ns),
                                          Micros(cs.max_ns)));
        }
        err << "fault: plugin " << PluginLabel(ps.plugin) << ": "
            << (ps.plugin.enabled ? "enabled" : "disabled") << "; "
            << (calls.empty() ? "no hook calls" : absl::StrJoin(calls, ", ")) << "; "
            << failures << (failures == 1 ? " failure" : " failures");
        if (deadline > 0) err << " (" << deadline << " past the deadline)";
        err << "; " << checks << " start-up and health calls";
        if (checks_failed > 0) err << " (" << checks_failed << " failed)";
        if (ps.disabled_times > 0 || ps.enabled_times > 0)
          err << "; disabled " << ps.disabled_times << "x, enabled again " << ps.enabled_times
              << "x";
        if (!ps.plugin.enabled && !ps.plugin.last_error.empty())
          err << "; last: " << ps.plugin.last_error;
        err << "\n";
      }
      err << absl::StrFormat(
          "fault: plugins: %llu failed calls passed on unchanged, %llu requests or "
          "connections refused (--plugin-failure %s); %llu plugin events%s\n",
          static_cast<unsigned long long>(final_stats.plugin_bypassed),
          static_cast<unsigned long long>(final_stats.plugin_refused),
          config.plugin_fail_closed ? "closed" : "open",
          static_cast<unsigned long long>(plugin_events),
          plugin_events_dropped > 0 ? absl::StrCat(" (", plugin_events_dropped, " dropped)")
                                    : "");
    }
    fault::exec::SummaryInfo info;
    info.events = events_seen;
    info.events_lost = events.has_value() ? events->lost() : 0;
    info.dropped = (*table)->dropped_events();
    info.incomplete = (*table)->incomplete_events();
    info.has_run_seed = compiled->run_seed.has_value();
    info.run_seed = compiled->run_seed.value_or(0);
    info.run_seed_random = compiled->run_seed_random;
    err << report.Summary(info);
  }
  const bool events_lost = events.has_value() && events->failed();
  if (events_lost) {
    err << "fault run: --events " << config.events_path << ": " << events->error() << "; "
        << events->lost() << " of " << events_seen << " events are missing from the file\n";
    status = kExitEventsLost;
  }
  if (config.expect_faults) {
    std::vector<std::string> never = report.NeverFired();
    if (report.stats().empty()) {
      err << "fault: --expect-faults: no policies were loaded\n";
      if (status == kExitOk) status = kExitNeverFired;
    }
    for (const std::string& n : never)
      err << "fault: --expect-faults: policy \"" << n << "\" never fired\n";
    if (!never.empty() && status == kExitOk) status = kExitNeverFired;
  }
  return status;
}

}  // namespace fault::run
