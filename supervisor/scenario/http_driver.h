// The scenarios' HTTP client: libcurl's multi interface on one thread,
// sending requests at the times a plan gives (open loop: a slow answer does
// not delay the next request), through the fault proxy, with connections
// kept alive and reused, per-request timeouts, and the reliability controls
// of a strategy (retries under a retry budget, a watchdog for stuck
// requests, a stop asked for by the caller's failure budget).
//
//   HttpDriver::Plan plan;
//   plan.request = {...};
//   plan.starts = {now, now + 100ms, ...};   // CLOCK_MONOTONIC, ascending
//   auto driver = HttpDriver::Create(*curl);
//   absl::StatusOr<HttpDriver::Outcome> o = (*driver)->Run(plan);
//
// Latencies are measured from the planned start (`intended_ns`), so time a
// request spent waiting to be sent counts (no coordinated omission), and
// also from the first byte sent (`sent_ns`).
//
// Thread-compatible: Run blocks its thread until the plan is done.
#ifndef FAULT_SUPERVISOR_SCENARIO_HTTP_DRIVER_H_
#define FAULT_SUPERVISOR_SCENARIO_HTTP_DRIVER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "supervisor/scenario/curl_api.h"
#include "supervisor/scenario/scenario.h"

namespace fault::scenario {

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::optional<std::string> body;
  int64_t timeout_ms = 0;  // 0: none
  std::string proxy;       // "http://127.0.0.1:PORT"; "": direct
};

// How a request ended.
enum class Failure {
  kNone,       // a response (any status)
  kTransport,  // no response: refused, reset, closed early, bad answer
  kTimeout,    // call.timeout passed, or still running when the run ended
  kWatchdog,   // no byte moved for the watchdog's max_stall: cancelled
};
const char* FailureName(Failure f);

struct RequestResult {
  int64_t intended_ns = 0;  // planned start (CLOCK_MONOTONIC)
  int64_t sent_ns = 0;      // first attempt handed to the client
  int64_t done_ns = 0;      // last attempt ended
  int status = 0;           // 0 without a response
  Failure failure = Failure::kNone;
  std::string error;  // why, without a response
  uint64_t body_bytes = 0;
  double ttfb_ms = 0;  // of the last attempt
  int attempts = 1;
  bool retry_denied = false;  // a retry the budget refused

  double LatencyMs() const { return (done_ns - intended_ns) / 1e6; }
  double ServiceMs() const { return (done_ns - sent_ns) / 1e6; }
};

// Whether `r` counts as an error for `classes`.
bool IsError(const RequestResult& r, const ErrorClasses& classes);
bool IsError(Failure failure, int status, const ErrorClasses& classes);

class HttpDriver {
 public:
  struct Plan {
    HttpRequest request;
    std::vector<int64_t> starts;  // planned starts, CLOCK_MONOTONIC, ascending
    RetryPolicy retry;
    Watchdog watchdog;
    // After the last planned start, requests still running get this long
    // and are then cancelled as timed out.
    int64_t drain_ns = 30'000'000'000;
    size_t max_in_flight = 4096;  // beyond: wait (their latency counts)
    // Planned starts not sent by then (CLOCK_MONOTONIC; 0: no limit) are
    // dropped and counted in Outcome::unsent: the client fell behind.
    int64_t send_until_ns = 0;
    // Connections at most (0: as many as requests under way need); more
    // requests wait in libcurl for one to be free.
    int64_t max_connections = 0;
    uint64_t seed = 1;  // retry jitter
    // Called as each request ends; false stops the run (the failure
    // budget): requests under way are cancelled and dropped.
    std::function<bool(const RequestResult&)> on_done;
    // Set (by a signal handler): stop as on_done's stop does.
    const std::atomic<bool>* interrupted = nullptr;
  };
  struct Outcome {
    std::vector<RequestResult> results;  // in the order they ended
    uint64_t retries = 0;                // attempts beyond the first
    uint64_t retries_denied = 0;         // failed attempts the retry budget did not retry
    uint64_t watchdog_cancels = 0;
    uint64_t cancelled = 0;  // dropped by a stop
    uint64_t unsent = 0;     // planned, not sent by send_until_ns
    bool stopped = false;    // on_done asked to stop
    int64_t stopped_ns = 0;
    uint64_t connections = 0;  // new connections libcurl opened
  };

  // One client: its connections are kept from one Run to the next.
  static absl::StatusOr<std::unique_ptr<HttpDriver>> Create(const CurlApi& curl);
  ~HttpDriver();
  HttpDriver(const HttpDriver&) = delete;
  HttpDriver& operator=(const HttpDriver&) = delete;

  absl::StatusOr<Outcome> Run(const Plan& plan);

 private:
  HttpDriver(const CurlApi& curl, CURLM* multi) : curl_(curl), multi_(multi) {}
  const CurlApi& curl_;
  CURLM* multi_;
};

}  // namespace fault::scenario

#endif  // FAULT_SUPERVISOR_SCENARIO_HTTP_DRIVER_H_
