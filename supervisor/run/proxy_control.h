// `fault run --control`: the control plane (docs/control.md) for the fault
// proxy. Changes apply to the proxy's policy table as in `fault exec`,
// checked with the proxy's own rules (ProxyPolicyProblem) on top of the
// file rules; the connections a change's policies select are found by
// their targets, except that a replaced --with-* flag policy keeps applying
// to every mapping.
//
//   std::unique_ptr<ProxyControl> c = ProxyControl::Start(config, state, err);
//   ... on SIGURG in the main loop:   c->Serve();
//   ... for each drained batch:       c->Drained(events, dropped);
//   c->NamesOf(gen) c->Stop();
//
// Not thread-safe: everything but the gRPC threads' calls into the
// ControlPlane happens on the proxy's main thread.
#ifndef FAULT_SUPERVISOR_RUN_PROXY_CONTROL_H_
#define FAULT_SUPERVISOR_RUN_PROXY_CONTROL_H_

#include <csignal>
#include <cstdint>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "supervisor/control/control_listener.h"
#include "supervisor/control/control_plane.h"
#include "supervisor/exec/policy_table.h"
#include "supervisor/exec/run_report.h"
#include "supervisor/exec/table_compiler.h"
#include "supervisor/run/run_config.h"

namespace fault::run {

// The signal that wakes the main thread for a control call.
inline constexpr int kControlSignal = SIGURG;

class ProxyControl : private fault::control::ControlledRun {
 public:
  // The proxy's state the control plane reads and changes; owned by
  // RunProxy, which outlives this.
  struct State {
    fault::exec::PolicyTable* table = nullptr;
    fault::exec::CompileOptions compile;  // as for the first load
    fault::exec::RunReport* report = nullptr;
    fault::exec::CounterSnapshot* baseline = nullptr;
    std::vector<std::string>* names = nullptr;  // of the current generation
    uint64_t generation = 0;                    // published at start
    std::vector<std::string> layers;            // "proxy", "stealth"
    const uint64_t* events = nullptr;           // drained so far
  };

  // Serves config.control; null after saying why on `err`. Call with
  // kControlSignal blocked (the server's threads inherit the mask).
  static std::unique_ptr<ProxyControl> Start(const RunConfig& config,
                                             State state, std::ostream& err);

  // Handles the queued calls (on kControlSignal).
  void Serve() { plane_.Serve(this); }
  // The rule names of `generation` (events carry it).
  const std::vector<std::string>& NamesOf(uint32_t generation) const;
  // A drained batch, for watchers.
  void Drained(const std::vector<fault_event>& events,
               uint64_t dropped_in_program);
  // Ends calls and streams and closes the listener. Idempotent.
  void Stop();

 private:
  ProxyControl(const RunConfig& config, State state);
  fault::v1::PolicySet BasePolicies() override;
  absl::StatusOr<uint64_t> Publish(const fault::v1::PolicySet& set) override;
  fault::v1::StatusResponse Status() override;
  std::vector<fault::v1::RuleCounters> Counters() override;
  std::vector<std::string> CurrentNames() override { return *state_.names; }

  const RunConfig& config_;
  State state_;
  int64_t start_ns_;
  fault::control::ControlPlane plane_;
  std::unique_ptr<fault::control::ControlListener> listener_;
  std::map<uint32_t, std::shared_ptr<const std::vector<std::string>>>
      names_by_generation_;
};

// Why the proxy cannot apply `policy` ("" when it can): syscall faults,
// partitions, payload mutation and sni targets belong to fault exec.
std::string ProxyPolicyProblem(const fault::v1::Policy& policy);

}  // namespace fault::run

#endif  // FAULT_SUPERVISOR_RUN_PROXY_CONTROL_H_
