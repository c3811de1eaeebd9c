// The fault proxy of one scenario item, in this process: a policy table,
// the stream engine with an HTTP forward proxy on a loopback port the
// kernel picks (and the item's TCP mappings), the item's faults applied to
// its upstreams as `fault run` applies its flag faults.
//
//   absl::StatusOr<std::unique_ptr<FaultProxy>> p = FaultProxy::Start(opts);
//   ... send requests through http://127.0.0.1:(*p)->http_port() ...
//   (*p)->Republish(next_faults);   // same names: the repeat strategy's step
//   std::vector<FaultProxy::Event> events = (*p)->Stop();
//
// Thread-compatible.
#ifndef FAULT_SUPERVISOR_SCENARIO_FAULT_PROXY_H_
#define FAULT_SUPERVISOR_SCENARIO_FAULT_PROXY_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "supervisor/exec/policy_table.h"
#include "supervisor/exec/table_compiler.h"
#include "supervisor/scenario/item_faults.h"
#include "supervisor/stream/stream_engine.h"

namespace fault::scenario {

class FaultProxy {
 public:
  struct Options {
    ItemFaults faults;
    std::vector<std::string> upstreams;  // normalised; see run::UpstreamMatches
    std::vector<std::string> mappings;   // "PORT=HOST:PORT"
    bool http_proxy = true;
    int64_t start_ns = 0;         // CLOCK_MONOTONIC origin of the periods
    int64_t run_duration_ns = 0;  // for percentage periods
    std::optional<uint64_t> seed;
  };
  // A fault the engine applied, from the start of the run.
  struct Event {
    int64_t offset_ns = 0;
    std::string fault;   // policy name
    std::string effect;  // latency, loss, rate, blackhole, http_error, ...
    int64_t value = 0;   // ns of delay, status, bytes... per effect
  };

  static absl::StatusOr<std::unique_ptr<FaultProxy>> Start(const Options& options);
  ~FaultProxy();

  uint16_t http_port() const { return http_port_; }
  uint64_t seed() const { return seed_; }
  // Publishes other values for the same faults (names unchanged).
  absl::Status Republish(const ItemFaults& faults);
  // Stops the engine; the faults it applied, in order.
  std::vector<Event> Stop();

 private:
  FaultProxy() = default;
  void Drain();
  absl::StatusOr<fault::exec::CompiledTable> Compile(const ItemFaults& faults);

  Options options_;
  std::unique_ptr<fault::exec::PolicyTable> table_;
  std::unique_ptr<fault::stream::StreamEngine> engine_;
  uint16_t http_port_ = 0;
  uint64_t seed_ = 0;
  int64_t realtime_origin_ns_ = 0;
  std::vector<std::string> names_;
  std::vector<Event> events_;
};

}  // namespace fault::scenario

#endif  // FAULT_SUPERVISOR_SCENARIO_FAULT_PROXY_H_
