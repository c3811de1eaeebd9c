// An item's context.faults as policies for the fault proxy. Each fault is
// what the `fault run` flags of its type would make (BuildRunConfig, so the
// units, defaults and checks are those of docs/run.md), one policy per
// fault, named after its type ("latency", "latency-2", ...), all applied
// together to the item's upstreams.
//
//   absl::StatusOr<ItemFaults> f = BuildItemFaults(item, load_duration_ns, 0);
//
// Thread-compatible; no I/O.
#ifndef FAULT_SUPERVISOR_SCENARIO_ITEM_FAULTS_H_
#define FAULT_SUPERVISOR_SCENARIO_ITEM_FAULTS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "fault/v1/policy.pb.h"
#include "supervisor/scenario/scenario.h"

namespace fault::scenario {

struct ItemFaults {
  fault::v1::PolicySet policies;
  std::vector<std::string> names;  // in the order of context.faults
  std::map<std::string, std::string> http_bodies;
  // When each fault is in force, from the start of the run (period).
  struct Window {
    std::string name;
    std::string type;
    int64_t start_ns = 0;
    int64_t end_ns = 0;  // the run's end when the period has no duration
  };
  std::vector<Window> windows;
};

// `run_duration_ns`: the load strategy's duration, over which periods are
// laid out; 0 for single and repeat, where a period is ignored (the fault
// applies throughout, as in the Rust tool). `latency_add_ms` is added to the
// mean of every latency fault (the repeat strategy's step).
absl::StatusOr<ItemFaults> BuildItemFaults(const Item& item, int64_t run_duration_ns,
                                           double latency_add_ms);

// The problems BuildItemFaults would find, as "FILE:LINE: PATH: why" lines.
std::vector<std::string> CheckItemFaults(const Item& item, int64_t run_duration_ns);

}  // namespace fault::scenario

#endif  // FAULT_SUPERVISOR_SCENARIO_ITEM_FAULTS_H_
