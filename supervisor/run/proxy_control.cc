#include "supervisor/run/proxy_control.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "supervisor/cli/version.h"
#include "supervisor/control/event_convert.h"

namespace fault::run {

std::string ProxyPolicyProblem(const fault::v1::Policy& p) {
  if (p.syscalls_size() > 0)
    return "syscall faults apply to a program's own calls: use fault exec";
  if (p.partitions_size() > 0) {
    return "partitions cut programs of one run off from each other: use fault "
           "exec";
  }
  if (p.http_faults_size() > 0 || p.redis_faults_size() > 0 ||
      p.postgres_faults_size() > 0) {
    return "http_faults, redis_faults and postgres_faults are applied to the "
           "connections of fault exec (the stream engine); the proxy answers "
           "HTTP requests with http_error";
  }
  if (p.has_payload_mutation() && p.payload_mutation().kind() != 0) {
    return "payload_mutation is applied by fault exec's shim, not by the proxy";
  }
  for (const fault::v1::Target& t : p.targets()) {
    if (!t.sni().empty()) {
      return "sni targets are matched on the TLS ClientHello a program sends: "
             "use fault exec";
    }
  }
  return "";
}

ProxyControl::ProxyControl(const RunConfig& config, State state)
    : config_(config),
      state_(std::move(state)),
      start_ns_(fault::exec::MonotonicNowNs()),
      plane_(
          [pid = getpid(), tid = static_cast<pid_t>(syscall(SYS_gettid))] {
            syscall(SYS_tgkill, pid, tid, kControlSignal);
          },
          fault::control::ConvertEvent, fault::control::EffectNumber) {
  names_by_generation_[static_cast<uint32_t>(state_.generation)] =
      std::make_shared<const std::vector<std::string>>(*state_.names);
  plane_.Published(state_.generation);
}

std::unique_ptr<ProxyControl> ProxyControl::Start(const RunConfig& config,
                                                  State state,
                                                  std::ostream& err) {
  std::unique_ptr<ProxyControl> c(new ProxyControl(config, std::move(state)));
  absl::StatusOr<std::unique_ptr<fault::control::ControlListener>> listener =
      fault::control::ControlListener::Start(*config.control,
                                             config.control_token, &c->plane_);
  if (!listener.ok()) {
    err << "fault run: --control " << config.control->Text() << ": "
        << listener.status().message() << "\n";
    c->plane_.Stop();
    return nullptr;
  }
  c->listener_ = *std::move(listener);
  if (!config.quiet) {
    err << "fault run: control plane on " << c->listener_->endpoint().Text()
        << "\n";
  }
  return c;
}

const std::vector<std::string>& ProxyControl::NamesOf(
    uint32_t generation) const {
  auto it = names_by_generation_.find(generation);
  return it != names_by_generation_.end() ? *it->second : *state_.names;
}

void ProxyControl::Drained(const std::vector<fault_event>& events,
                           uint64_t dropped) {
  std::vector<fault::control::HubEvent> hub;
  hub.reserve(events.size());
  auto current =
      std::make_shared<const std::vector<std::string>>(*state_.names);
  for (const fault_event& e : events) {
    auto it = names_by_generation_.find(e.generation);
    hub.push_back(
        {0, e, it != names_by_generation_.end() ? it->second : current});
  }
  plane_.hub().Publish(std::move(hub), dropped);
}

void ProxyControl::Stop() {
  plane_.Stop();
  if (listener_ != nullptr) listener_->Stop();
}

fault::v1::PolicySet ProxyControl::BasePolicies() { return config_.policies; }

absl::StatusOr<uint64_t> ProxyControl::Publish(
    const fault::v1::PolicySet& set) {
  for (const fault::v1::Policy& p : set.policies()) {
    if (std::string why = ProxyPolicyProblem(p); !why.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("policy \"", p.name(), "\": ", why));
    }
    // The HTTP path takes response bodies from the command line
    // (--http-response-body), not from the table.
    if (p.has_http_error() && !p.http_error().body().empty()) {
      auto known = config_.http_bodies.find(p.name());
      if (known == config_.http_bodies.end() ||
          known->second != p.http_error().body()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "policy \"", p.name(),
            "\": http_error.body: the proxy's response bodies are fixed when "
            "it starts; a "
            "change may set the status and probability (leave the body out)"));
      }
    }
  }
  absl::StatusOr<fault::exec::CompiledTable> compiled =
      fault::exec::CompileTable(set, state_.compile);
  if (!compiled.ok())
    return absl::InvalidArgumentError(compiled.status().message());
  state_.report->AddCounters(state_.table->ReadCounters(), *state_.baseline);
  std::vector<std::string> names;
  for (const auto& r : compiled->rules) names.push_back(r.name);
  const uint64_t generation = state_.table->Publish(*compiled->config);
  *state_.names = names;
  names_by_generation_[static_cast<uint32_t>(generation)] =
      std::make_shared<const std::vector<std::string>>(names);
  state_.report->BeginGeneration(names, {});
  *state_.baseline = state_.table->ReadCounters();
  return generation;
}

fault::v1::StatusResponse ProxyControl::Status() {
  fault::v1::StatusResponse r;
  r.set_supervisor_pid(static_cast<uint32_t>(getpid()));
  for (const std::string& l : state_.layers) r.add_layers(l);
  r.set_uptime_ns(fault::exec::MonotonicNowNs() - start_ns_);
  if (state_.events != nullptr) r.set_events(*state_.events);
  r.set_events_dropped(state_.table->dropped_events());
  r.set_version(FAULT_VERSION_STRING);
  r.set_running(true);
  return r;
}

std::vector<fault::v1::RuleCounters> ProxyControl::Counters() {
  fault::exec::CounterSnapshot now = state_.table->ReadCounters();
  state_.report->AddCounters(now, *state_.baseline);
  *state_.baseline = std::move(now);
  return state_.report->Counters();
}

}  // namespace fault::run
