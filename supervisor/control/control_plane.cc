#include "supervisor/control/control_plane.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace fault::control {
namespace {

using grpc_module::CallResult;

constexpr size_t kMaxEventsPerMessage = 4096;

CallResult Error(const absl::Status& s) {
  return {static_cast<int>(s.code()), std::string(s.message()), ""};
}

CallResult Ok(const google::protobuf::Message& m) {
  return {0, "", m.SerializeAsString()};
}

template <typename T>
absl::StatusOr<T> Parse(const std::string& bytes) {
  T m;
  if (!m.ParseFromString(bytes))
    return absl::InvalidArgumentError("malformed request");
  return m;
}

class Subscription : public grpc_module::EventSubscription {
 public:
  Subscription(std::unique_ptr<EventHub::Watcher> watcher,
               const EventConverter* convert)
      : watcher_(std::move(watcher)), convert_(convert) {}

  bool Next(std::string* message, int timeout_ms) override {
    EventHub::Batch batch;
    bool more = watcher_->Next(&batch, kMaxEventsPerMessage,
                               absl::Milliseconds(timeout_ms));
    const bool news =
        !batch.events.empty() || batch.dropped_for_watcher != sent_dropped_ ||
        batch.dropped_in_program != sent_program_dropped_ || first_;
    if (news) {
      fault::v1::WatchEventsResponse r;
      for (const HubEvent& e : batch.events) (*convert_)(e, r.add_events());
      r.set_dropped_for_watcher(batch.dropped_for_watcher);
      r.set_dropped_in_program(batch.dropped_in_program);
      r.set_last_sequence(batch.last_sequence);
      r.SerializeToString(message);
      sent_dropped_ = batch.dropped_for_watcher;
      sent_program_dropped_ = batch.dropped_in_program;
      first_ = false;
    }
    return more || news;
  }

 private:
  std::unique_ptr<EventHub::Watcher> watcher_;
  const EventConverter* convert_;
  uint64_t sent_dropped_ = 0;
  uint64_t sent_program_dropped_ = 0;
  // The first message tells the client the stream is established.
  bool first_ = true;
};

}  // namespace

ControlPlane::ControlPlane(std::function<void()> wake, EventConverter convert,
                           EffectLookup effect)
    : wake_(std::move(wake)),
      convert_(std::move(convert)),
      effect_(std::move(effect)) {}

ControlPlane::~ControlPlane() { Stop(); }

CallResult ControlPlane::Call(const std::string& method,
                              const std::string& request) {
  if (method == "WaitGeneration") return WaitGeneration(request);
  Pending pending{method, request, {}, false};
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (stopped_) return {14, "the run has ended", ""};  // UNAVAILABLE
    queue_.push_back(&pending);
  }
  wake_();
  std::unique_lock<std::mutex> lock(mu_);
  const auto deadline = std::chrono::steady_clock::now() +
                        absl::ToChronoNanoseconds(kRunnerTimeout);
  while (!pending.done) {
    if (changed_.wait_until(lock, deadline) == std::cv_status::timeout &&
        !pending.done && std::erase(queue_, &pending) != 0) {
      // Still queued, so the runner thread never saw it. (One it took up
      // is always finished, and waited for.)
      return {4,
              "fault did not take up the call in time (it is busy starting or "
              "stopping "
              "programs)",
              ""};
    }
  }
  return std::move(pending.result);
}

CallResult ControlPlane::WaitGeneration(const std::string& request) {
  absl::StatusOr<fault::v1::WaitGenerationRequest> q =
      Parse<fault::v1::WaitGenerationRequest>(request);
  if (!q.ok()) return Error(q.status());
  if (q->timeout_ns() < 0 || q->timeout_ns() > 60'000'000'000) {
    return {3, "timeout_ns: must be 0 (10 s) or up to 60 s", ""};
  }
  const absl::Duration timeout = q->timeout_ns() == 0
                                     ? absl::Seconds(10)
                                     : absl::Nanoseconds(q->timeout_ns());
  const auto deadline =
      std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(timeout);
  std::unique_lock<std::mutex> lock(mu_);
  while (generation_ < q->generation()) {
    if (stopped_) return {14, "the run has ended", ""};
    if (changed_.wait_until(lock, deadline) == std::cv_status::timeout &&
        generation_ < q->generation()) {
      return {4,
              absl::StrCat("generation ", q->generation(),
                           " was not published within ",
                           absl::FormatDuration(timeout), " (the table is at ",
                           generation_, ")"),
              ""};
    }
  }
  fault::v1::WaitGenerationResponse r;
  r.set_generation(generation_);
  return Ok(r);
}

std::unique_ptr<grpc_module::EventSubscription> ControlPlane::Watch(
    const std::string& request, std::string* error) {
  absl::StatusOr<fault::v1::WatchEventsRequest> q =
      Parse<fault::v1::WatchEventsRequest>(request);
  if (!q.ok()) {
    *error = std::string(q.status().message());
    return nullptr;
  }
  EventHub::Filter filter;
  if (q->has_after_sequence()) filter.after_sequence = q->after_sequence();
  filter.policies.insert(q->policies().begin(), q->policies().end());
  for (int i = 0; i < q->effects_size(); ++i) {
    int effect = effect_(q->effects(i));
    if (effect < 0) {
      *error =
          absl::StrCat("effects[", i, "]: \"", q->effects(i),
                       "\" is not an effect (latency, loss, deny, delay, ...)");
      return nullptr;
    }
    filter.effects.insert(static_cast<uint16_t>(effect));
  }
  return std::make_unique<Subscription>(hub_.Subscribe(std::move(filter)),
                                        &convert_);
}

void ControlPlane::Serve(ControlledRun* run) {
  for (;;) {
    Pending* p = nullptr;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (queue_.empty()) return;
      p = queue_.front();
      queue_.pop_front();
    }
    // The caller waits on `p` and cannot leave before done is set.
    CallResult result = Handle(run, p->method, p->request);
    std::unique_lock<std::mutex> lock(mu_);
    p->result = std::move(result);
    p->done = true;
    changed_.notify_all();
  }
}

void ControlPlane::Published(uint64_t generation) {
  std::unique_lock<std::mutex> lock(mu_);
  generation_ = std::max(generation_, generation);
  changed_.notify_all();
}

void ControlPlane::Stop() {
  hub_.Close();
  {
    std::unique_lock<std::mutex> lock(mu_);
    stopped_ = true;
    for (Pending* p : queue_) {
      p->result = {14, "the run has ended", ""};
      p->done = true;
    }
    queue_.clear();
    changed_.notify_all();
  }
  // Watchers get the events they hold before the listener closes.
  hub_.WaitForWatchers(kStreamsGrace);
}

CallResult ControlPlane::Handle(ControlledRun* run, const std::string& method,
                                const std::string& request) {
  auto current_generation = [this] {
    std::unique_lock<std::mutex> lock(mu_);
    return generation_;
  };
  // Publishes the overlay `next`; on success it becomes the overlay.
  auto change = [&](PolicyOverlay next,
                    const fault::v1::PolicySet* put = nullptr) -> CallResult {
    fault::v1::PolicySet effective = next.Apply(run->BasePolicies());
    absl::StatusOr<uint64_t> generation = run->Publish(effective);
    if (!generation.ok()) return Error(generation.status());
    overlay_ = std::move(next);
    Published(*generation);
    fault::v1::ChangeResponse r;
    r.set_generation(*generation);
    for (const std::string& n : run->CurrentNames()) r.add_policies(n);
    if (put != nullptr) {
      for (const fault::v1::Policy& p : put->policies()) r.add_put(p.name());
    }
    return Ok(r);
  };
  auto infos = [&]() {
    std::vector<fault::v1::PolicyOrigin> origins;
    fault::v1::PolicySet set = overlay_.Apply(run->BasePolicies(), &origins);
    std::map<std::string, fault::v1::RuleCounters> counters;
    for (fault::v1::RuleCounters& c : run->Counters()) counters[c.policy()] = c;
    std::vector<fault::v1::PolicyInfo> out;
    for (int i = 0; i < set.policies_size(); ++i) {
      fault::v1::PolicyInfo info;
      *info.mutable_policy() = set.policies(i);
      info.set_origin(origins[i]);
      auto it = counters.find(set.policies(i).name());
      if (it != counters.end()) {
        *info.mutable_counters() = it->second;
      } else {
        info.mutable_counters()->set_policy(set.policies(i).name());
      }
      out.push_back(std::move(info));
    }
    return out;
  };

  if (method == "Status") {
    fault::v1::StatusResponse r = run->Status();
    r.set_generation(current_generation());
    for (const std::string& n : run->CurrentNames()) r.add_policies(n);
    return Ok(r);
  }
  if (method == "ListPolicies") {
    fault::v1::ListPoliciesResponse r;
    for (fault::v1::PolicyInfo& i : infos()) *r.add_policies() = std::move(i);
    r.set_generation(current_generation());
    return Ok(r);
  }
  if (method == "GetPolicy") {
    absl::StatusOr<fault::v1::GetPolicyRequest> q =
        Parse<fault::v1::GetPolicyRequest>(request);
    if (!q.ok()) return Error(q.status());
    std::vector<std::string> names;
    for (fault::v1::PolicyInfo& i : infos()) {
      if (i.policy().name() == q->name()) return Ok(i);
      names.push_back(i.policy().name());
    }
    return {5,
            absl::StrCat(
                "name: no policy named \"", q->name(), "\" is in effect",
                names.empty() ? " (none is)"
                              : absl::StrCat(" (in effect: ",
                                             absl::StrJoin(names, ", "), ")")),
            ""};
  }
  if (method == "PutPolicies") {
    absl::StatusOr<fault::v1::PutPoliciesRequest> q =
        Parse<fault::v1::PutPoliciesRequest>(request);
    if (!q.ok()) return Error(q.status());
    absl::StatusOr<fault::v1::PolicySet> set = DecodePut(*q);
    if (!set.ok()) return Error(set.status());
    PolicyOverlay next = overlay_;
    next.Put(*set);
    return change(std::move(next), &*set);
  }
  if (method == "DeletePolicy") {
    absl::StatusOr<fault::v1::DeletePolicyRequest> q =
        Parse<fault::v1::DeletePolicyRequest>(request);
    if (!q.ok()) return Error(q.status());
    fault::v1::PolicySet now = overlay_.Apply(run->BasePolicies());
    std::vector<std::string> names;
    for (const fault::v1::Policy& p : now.policies()) names.push_back(p.name());
    if (std::find(names.begin(), names.end(), q->name()) == names.end()) {
      return {5,
              absl::StrCat(
                  "name: no policy named \"", q->name(), "\" is in effect",
                  names.empty()
                      ? " (none is)"
                      : absl::StrCat(
                            " (in effect: ", absl::StrJoin(names, ", "), ")")),
              ""};
    }
    PolicyOverlay next = overlay_;
    next.Delete(q->name());
    return change(std::move(next));
  }
  if (method == "Clear") {
    PolicyOverlay next = overlay_;
    next.Clear();
    return change(std::move(next));
  }
  if (method == "GetCounters") {
    fault::v1::GetCountersResponse r;
    for (fault::v1::RuleCounters& c : run->Counters())
      *r.add_counters() = std::move(c);
    r.set_generation(current_generation());
    return Ok(r);
  }
  return {12, absl::StrCat("no such method: ", method), ""};  // UNIMPLEMENTED
}

}  // namespace fault::control
