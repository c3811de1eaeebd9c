#include "supervisor/scenario/fault_proxy.h"

#include <signal.h>
#include <time.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "supervisor/exec/event_log.h"
#include "supervisor/exec/seed_source.h"
#include "supervisor/exec/table_compiler.h"
#include "supervisor/run/proxy_syntax.h"

namespace fault::scenario {

absl::StatusOr<fault::exec::CompiledTable> FaultProxy::Compile(const ItemFaults& faults) {
  fault::exec::FixedSeedSource fixed(seed_);
  fault::exec::CompileOptions compile;
  compile.global_seed = seed_;
  compile.seeds = &fixed;
  compile.run_duration_ns = options_.run_duration_ns;
  return fault::exec::CompileTable(faults.policies, compile);
}

absl::StatusOr<std::unique_ptr<FaultProxy>> FaultProxy::Start(const Options& options) {
  signal(SIGPIPE, SIG_IGN);
  std::unique_ptr<FaultProxy> p(new FaultProxy());
  p->options_ = options;
  if (options.seed.has_value()) {
    p->seed_ = *options.seed;
  } else {
    fault::exec::RandomSeedSource random;
    p->seed_ = random.NewSeed();
  }
  const int64_t start = options.start_ns != 0 ? options.start_ns : fault::exec::MonotonicNowNs();
  timespec rt, mono;
  clock_gettime(CLOCK_REALTIME, &rt);
  clock_gettime(CLOCK_MONOTONIC, &mono);
  p->realtime_origin_ns_ = rt.tv_sec * 1'000'000'000LL + rt.tv_nsec -
                           (mono.tv_sec * 1'000'000'000LL + mono.tv_nsec - start);
  absl::StatusOr<std::unique_ptr<fault::exec::PolicyTable>> table =
      fault::exec::PolicyTable::Create({.start_ns = start});
  if (!table.ok()) return table.status();
  p->table_ = std::move(*table);
  absl::StatusOr<fault::exec::CompiledTable> compiled = p->Compile(options.faults);
  if (!compiled.ok()) return compiled.status();
  p->table_->Publish(*compiled->config);
  for (const auto& r : compiled->rules) p->names_.push_back(r.name);

  fault::stream::StreamEngine::Options o;
  o.table = p->table_->table();
  o.redirects = false;
  o.advertise = false;
  o.loops = 1;
  o.always_rules = options.faults.names;
  o.match_targets = false;
  o.http_bodies = options.faults.http_bodies;
  const std::vector<std::string> upstreams = options.upstreams;
  o.upstream_filter = [upstreams](std::string_view host, uint16_t port) {
    return fault::run::UpstreamMatches(upstreams, host, port);
  };
  if (options.http_proxy) {
    fault::stream::StreamEngine::Listener l;
    l.kind = fault::stream::StreamEngine::Listener::Kind::kHttpProxy;
    l.host = "127.0.0.1";
    l.port = 0;
    l.name = "the scenario's HTTP proxy";
    o.listeners.push_back(l);
  }
  for (const std::string& text : options.mappings) {
    absl::StatusOr<fault::run::Mapping> m = fault::run::ParseMapping(text);
    if (!m.ok()) return absl::InvalidArgumentError(absl::StrCat(text, ": ", m.status().message()));
    fault::stream::StreamEngine::Listener l;
    l.kind = m->udp ? fault::stream::StreamEngine::Listener::Kind::kUdp
                    : fault::stream::StreamEngine::Listener::Kind::kTcp;
    l.host = m->listen.host;
    l.port = m->listen.port;
    l.upstream_host = m->upstream.host;
    l.upstream_port = m->upstream.port;
    l.name = text;
    o.listeners.push_back(l);
  }
  absl::StatusOr<std::unique_ptr<fault::stream::StreamEngine>> engine =
      fault::stream::StreamEngine::Start(o);
  if (!engine.ok()) return engine.status();
  p->engine_ = std::move(*engine);
  if (options.http_proxy) p->http_port_ = p->engine_->ports()[0];
  return p;
}

FaultProxy::~FaultProxy() {
  if (engine_ != nullptr) Stop();
}

absl::Status FaultProxy::Republish(const ItemFaults& faults) {
  Drain();
  absl::StatusOr<fault::exec::CompiledTable> compiled = Compile(faults);
  if (!compiled.ok()) return compiled.status();
  table_->Publish(*compiled->config);
  return absl::OkStatus();
}

void FaultProxy::Drain() {
  std::vector<fault_event> evs;
  table_->DrainEvents(&evs, engine_ == nullptr);
  for (const fault_event& e : evs) {
    Event ev;
    ev.offset_ns = e.time_ns - realtime_origin_ns_;
    ev.fault = e.rule < names_.size() ? names_[e.rule] : absl::StrCat("rule ", e.rule);
    ev.effect = fault::exec::EffectName(e.effect);
    ev.value = e.value;
    events_.push_back(std::move(ev));
  }
}

std::vector<FaultProxy::Event> FaultProxy::Stop() {
  if (engine_ != nullptr) {
    engine_->Finish(0);
    engine_.reset();
  }
  Drain();
  return std::move(events_);
}

}  // namespace fault::scenario
