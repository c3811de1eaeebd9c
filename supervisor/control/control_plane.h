// The host side of the control plane (proto/fault/v1/control.proto) in
// `fault exec`: the gRPC module hands it every call, serialized
// (supervisor/grpc/control_api.h); it decodes and validates the request and
// has the run apply it on the runner thread, which owns the policy table.
//
//   ControlPlane plane([&] { /* make the runner thread call Serve() */ });
//   server = module->control->start_server(options, &plane, &error);
//   ... in the runner's loop, when woken:  plane.Serve(&run);
//   ... after each publish:                plane.Published(generation);
//   ... each drained batch:                plane.hub().Publish(...);
//   plane.Stop();  server->Shutdown(...);
//
// Thread-safety: Call() and Watch() from any thread; Serve(), overlay() and
// Stop() from the runner thread only.
#ifndef FAULT_SUPERVISOR_CONTROL_CONTROL_PLANE_H_
#define FAULT_SUPERVISOR_CONTROL_CONTROL_PLANE_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fault/v1/control.pb.h"
#include "fault/v1/policy.pb.h"
#include "supervisor/control/event_hub.h"
#include "supervisor/control/policy_overlay.h"
#include "supervisor/grpc/control_api.h"

namespace fault::control {

// What the run offers the control plane. Called on the runner thread only.
class ControlledRun {
 public:
  virtual ~ControlledRun() = default;
  // The policies the command line gives, as last loaded (start or reload).
  virtual fault::v1::PolicySet BasePolicies() = 0;
  // Compiles `set`, checks it against the run's layers and publishes it;
  // returns the new generation, or why not (and then nothing changed).
  virtual absl::StatusOr<uint64_t> Publish(const fault::v1::PolicySet& set) = 0;
  // Status without `generation` and `policies` (filled in here).
  virtual fault::v1::StatusResponse Status() = 0;
  // Counters of every policy the run has had, in first-seen order.
  virtual std::vector<fault::v1::RuleCounters> Counters() = 0;
  // The policy names of the current generation, in table order.
  virtual std::vector<std::string> CurrentNames() = 0;
};

// Converts drained events for watchers (the names of table.h).
using EventConverter = std::function<void(const HubEvent&, fault::v1::Event*)>;
// The fault_effect number of an effect name; -1 when unknown.
using EffectLookup = std::function<int(const std::string&)>;

class ControlPlane : public grpc_module::ControlHost {
 public:
  // `wake` makes the runner thread call Serve() soon; called from the
  // module's threads with no lock held.
  ControlPlane(std::function<void()> wake, EventConverter convert,
               EffectLookup effect);
  ~ControlPlane() override;

  // grpc_module::ControlHost.
  grpc_module::CallResult Call(const std::string& method,
                               const std::string& request) override;
  std::unique_ptr<grpc_module::EventSubscription> Watch(
      const std::string& request, std::string* error) override;

  // Handles every queued call against `run`.
  void Serve(ControlledRun* run);
  // The table now holds `generation` (also for reloads and the first load).
  void Published(uint64_t generation);
  // The changes made so far, for loads of the files (reloads).
  const PolicyOverlay& overlay() const { return overlay_; }
  EventHub& hub() { return hub_; }
  // The run is ending: queued and later calls fail with UNAVAILABLE, and
  // event streams end once they have sent what they hold, which this waits
  // for (at most kStreamsGrace: a watcher that reads slowly).
  void Stop();

  // How long a call waits for the runner thread before it fails.
  static constexpr absl::Duration kRunnerTimeout = absl::Seconds(30);
  // How long Stop() waits for event streams to deliver what they hold.
  static constexpr absl::Duration kStreamsGrace = absl::Seconds(5);

 private:
  struct Pending {
    std::string method;
    std::string request;
    grpc_module::CallResult result;
    bool done = false;
  };
  grpc_module::CallResult Handle(ControlledRun* run, const std::string& method,
                                 const std::string& request);
  grpc_module::CallResult WaitGeneration(const std::string& request);

  const std::function<void()> wake_;
  const EventConverter convert_;
  const EffectLookup effect_;
  EventHub hub_;
  PolicyOverlay overlay_;  // runner thread only

  // Guards everything below.
  std::mutex mu_;
  std::condition_variable changed_;
  std::deque<Pending*> queue_;
  bool stopped_ = false;
  uint64_t generation_ = 0;
};

}  // namespace fault::control

#endif  // FAULT_SUPERVISOR_CONTROL_CONTROL_PLANE_H_
