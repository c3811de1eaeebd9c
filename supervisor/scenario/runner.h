// Runs scenario items: for each, an in-process fault proxy with the item's
// faults (fault_proxy.h), its strategy's requests through it (http_driver.h),
// then its expectations, SLOs and reliability controls evaluated into an
// ItemRun that the reports (report.h) render.
//
//   RunOptions o{.progress = isatty(2), .out = &std::cerr};
//   RunSummary s = RunScenarios(scenarios, o, *curl);
//   int exit_status = s.failed == 0 ? 0 : 1;
//
// Thread-compatible; runs items one after the other on the calling thread, or
// `jobs` at a time on threads of its own.
#ifndef FAULT_SUPERVISOR_SCENARIO_RUNNER_H_
#define FAULT_SUPERVISOR_SCENARIO_RUNNER_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "supervisor/scenario/curl_api.h"
#include "supervisor/scenario/fault_proxy.h"
#include "supervisor/scenario/http_driver.h"
#include "supervisor/scenario/item_faults.h"
#include "supervisor/scenario/scenario.h"

namespace fault::scenario {

struct RequestRecord {
  RequestResult r;
  int64_t offset_ns = 0;      // planned start, from the item's start
  int iteration = 0;          // repeat: the call's index
  bool baseline = false;      // repeat: the fault-free baseline call
  double latency_add_ms = 0;  // repeat: added to the latency mean
  bool expect_pass = true;
  std::string expect_why;  // when !expect_pass
};

struct Percentile {
  double q = 0;   // 25, 50, 75, 95, 99
  double ms = 0;  // R-6 quantile of the latencies
  uint64_t at_or_below = 0;
};

struct SloResult {
  Slo slo;
  double value = 0;  // latency: the percentile in ms; error: percent of requests
  bool pass = false;
  std::string margin;  // "Below by 12.3ms", "Above by 0.5%"
  uint64_t over = 0;   // latency: requests above the threshold; error: errors
};

struct ItemRun {
  const Scenario* scenario = nullptr;
  const Item* item = nullptr;
  std::string setup_error;  // the item could not run (its proxy, ...)
  int64_t start_unix_ns = 0;
  int64_t total_ns = 0;
  int64_t run_duration_ns = 0;  // load: the planned duration
  uint64_t proxy_seed = 0;
  uint16_t proxy_port = 0;
  std::vector<RequestRecord> requests;  // by planned start
  uint64_t expectation_failures = 0;
  uint64_t transport_errors = 0, timeouts = 0, watchdog_cancels = 0;
  uint64_t status_5xx = 0, status_4xx = 0;
  double min_ms = 0, max_ms = 0, mean_ms = 0;
  std::vector<Percentile> percentiles;
  std::vector<SloResult> slos;
  bool all_slo_pass = true;
  // Reliability controls.
  uint64_t retries = 0, retries_denied = 0, cancelled = 0, connections = 0;
  uint64_t unsent = 0;  // load: planned requests the client could not send in time
  bool budget_exhausted = false;
  std::string budget_reason;
  int64_t budget_stopped_at_ns = 0;  // from the item's start
  // Faults.
  ItemFaults faults;
  std::vector<FaultProxy::Event> events;
  bool passed = false;
  std::vector<std::string> reasons;  // why it failed
};

struct RunSummary {
  int64_t start_unix_ns = 0, end_unix_ns = 0;
  std::vector<ItemRun> items;
  size_t failed = 0;
  bool interrupted = false;
};

struct RunOptions {
  std::optional<uint64_t> seed;  // the proxies' fault decisions
  bool progress = false;         // a live line per item (a terminal)
  std::ostream* out = nullptr;   // progress and one line per item ended
  // Set by a signal handler (Ctrl-C): the item under way stops, no other
  // starts, and the summary holds what ran.
  const std::atomic<bool>* interrupted = nullptr;
  // Items run at a time (each with its own proxy and client). Results and
  // reports keep the files' order whatever the order they end in.
  size_t jobs = 1;
};

RunSummary RunScenarios(const std::vector<Scenario>& scenarios, const RunOptions& options,
                        const CurlApi& curl);

// The R-6 quantile (q in 0..100) of sorted values; 0 when empty.
double Quantile(const std::vector<double>& sorted, double q);

}  // namespace fault::scenario

#endif  // FAULT_SUPERVISOR_SCENARIO_RUNNER_H_
