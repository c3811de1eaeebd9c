// Scenario files (`fault scenario run|validate`): the schema of the Rust
// `fault` tool's scenarios (rebound 0.12, its serde structs, which its
// published JSON schema no longer matches), plus our reliability controls.
//
//   absl::StatusOr<std::vector<Scenario>> s = LoadScenarios("scenarios/");
//   // !ok(): one line per problem, "FILE:LINE: items[0].call.url: why"
//
// A file holds one scenario per YAML document (`---` between them); a
// directory is walked recursively for *.yaml and *.yml, in name order.
// Unknown keys are errors (a misspelt key would otherwise be ignored).
//
// Thread-compatible; LoadScenarios reads files and nothing else.
#ifndef FAULT_SUPERVISOR_SCENARIO_SCENARIO_H_
#define FAULT_SUPERVISOR_SCENARIO_SCENARIO_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace fault::scenario {

// Where something was written, for messages: "file.yaml:12".
struct Where {
  std::string file;
  int line = 0;  // 1-based
  std::string ToString() const;
};

struct Call {
  std::string method;
  std::string url;  // {name} placeholders already substituted
  std::map<std::string, std::string> headers;
  std::optional<std::string> body;
  std::optional<uint64_t> timeout_ms;
  std::optional<std::string> operation_id;
};

// One entry of context.faults, kept as written (for the results) and as
// the `fault run` flags it stands for (item_faults.h turns it into a
// policy).
struct Fault {
  std::string type;  // latency|packetloss|bandwidth|jitter|dns|httperror|blackhole
  Where where;
  std::map<std::string, std::string> values;  // field -> value as text
  std::string period;                         // "" when none
  nlohmann::json json;                        // as written
};

// Which outcomes count as errors for an SLO, a retry or a budget.
struct ErrorClasses {
  bool transport = true;  // no response: refused, reset, closed early
  bool timeout = true;    // call.timeout passed
  bool watchdog = true;   // cancelled by the watchdog
  bool status_5xx = false;
  bool status_4xx = false;
  std::string ToString() const;
};

// Retries (off unless `retry:` is given): each failed attempt of a class in
// `on` is tried again after an exponential backoff with full jitter, while
// the retry budget lasts: retries so far < budget * requests so far +
// budget_min.
struct RetryPolicy {
  bool enabled = false;
  int attempts = 3;                 // tries per request, the first included
  int64_t backoff_ns = 50'000'000;  // before the first retry (doubles)
  int64_t max_backoff_ns = 1'000'000'000;
  bool jitter = true;      // full jitter: uniform 0..backoff
  double budget = 0.2;     // retries per request
  int64_t budget_min = 3;  // retries allowed whatever the ratio
  ErrorClasses on{.transport = true, .timeout = true, .watchdog = true, .status_5xx = true};
};

// The failure budget (off unless given): the item stops early, and fails,
// once more than max_failures requests failed, or once at least
// min_requests ended and more than max_rate of them failed.
struct FailureBudget {
  bool enabled = false;
  int64_t max_failures = -1;  // -1: no count limit
  double max_rate = -1;       // -1: no rate limit
  int64_t min_requests = 10;
  ErrorClasses errors{.transport = true, .timeout = true, .watchdog = true, .status_5xx = true};
};

// The watchdog (off unless given): a request that moves no byte for
// max_stall is cancelled and reported as stuck.
struct Watchdog {
  bool enabled = false;
  int64_t max_stall_ns = 0;
};

struct Strategy {
  enum class Mode { kSingle, kRepeat, kLoad };
  Mode mode = Mode::kSingle;
  Where where;
  // repeat
  double step_ms = 0;
  int64_t count = 1;
  bool failfast = false;
  double wait_ms = 0;
  bool add_baseline_call = false;
  // load
  std::string duration_text;
  int64_t duration_ns = 0;
  int64_t clients = 1;
  int64_t rps = 1;          // per client
  int64_t connections = 0;  // ours: at most this many (0: as needed)
  // ours
  RetryPolicy retry;
  FailureBudget failure_budget;
  Watchdog watchdog;
};

struct Slo {
  enum class Type { kLatency, kError };
  Type type = Type::kLatency;
  std::string title;
  double objective = 0;  // latency: the percentile; error: shown only
  double threshold = 0;  // latency: ms; error: percent
  ErrorClasses errors;   // error SLOs: what counts (`errors:`)
  Where where;
};

struct Expect {
  std::optional<int> status;
  std::optional<double> response_time_under_ms;
  std::optional<bool> all_slo_are_valid;
};

struct Item {
  Where where;
  Call call;
  std::vector<std::string> upstreams;  // normalised (run/proxy_syntax.h)
  std::vector<std::string> upstreams_as_written;
  std::vector<Fault> faults;
  Strategy strategy;
  bool has_strategy = false;
  std::vector<Slo> slos;
  bool disable_http_proxy = false;
  std::vector<std::string> mappings;  // context.proxy.proxies
  Expect expect;
  bool has_expect = false;
  nlohmann::json json;  // the item as written
};

struct Scenario {
  Where where;
  std::string title;
  std::optional<std::string> description;
  std::vector<Item> items;
  nlohmann::json json;  // as written (results.json repeats it)
};

// Loads every scenario of a file or directory. Problems of every file are
// collected, one line each; then nothing is returned.
absl::StatusOr<std::vector<Scenario>> LoadScenarios(const std::string& path);

// One file's text, for tests. `file` names it in messages.
absl::StatusOr<std::vector<Scenario>> ParseScenarios(const std::string& text,
                                                     const std::string& file);

}  // namespace fault::scenario

#endif  // FAULT_SUPERVISOR_SCENARIO_SCENARIO_H_
