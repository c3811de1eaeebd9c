#include "supervisor/scenario/runner.h"

#include <time.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "shim/engine/engine.h"
#include "supervisor/exec/policy_table.h"

namespace fault::scenario {
namespace {

HttpRequest RequestOf(const Item& item, uint16_t proxy_port) {
  HttpRequest r;
  r.method = item.call.method;
  r.url = item.call.url;
  for (const auto& [k, v] : item.call.headers) r.headers.push_back(absl::StrCat(k, ": ", v));
  r.body = item.call.body;
  r.timeout_ms = item.call.timeout_ms.value_or(0);
  if (!item.disable_http_proxy && proxy_port != 0)
    r.proxy = absl::StrCat("http://127.0.0.1:", proxy_port);
  return r;
}

// Tracks the failure budget across an item's requests.
class BudgetTracker {
 public:
  explicit BudgetTracker(const FailureBudget& b) : b_(b) {}
  // False once the budget is spent.
  bool Add(const RequestResult& r) {
    if (!b_.enabled || spent_) return !spent_;
    ++ended_;
    if (IsError(r, b_.errors)) ++failed_;
    if (b_.max_failures >= 0 && failed_ > b_.max_failures) {
      spent_ = true;
      reason_ = absl::StrCat("failure budget spent: ", failed_, " failed requests (more than ",
                             b_.max_failures, ") after ", ended_, " requests");
    } else if (b_.max_rate >= 0 && ended_ >= b_.min_requests &&
               static_cast<double>(failed_) / ended_ > b_.max_rate) {
      spent_ = true;
      reason_ = absl::StrFormat(
          "failure budget spent: %d of %d requests failed (%.1f%%, more than %.1f%%)", failed_,
          ended_, 100.0 * failed_ / ended_, 100.0 * b_.max_rate);
    }
    return !spent_;
  }
  bool spent() const { return spent_; }
  const std::string& reason() const { return reason_; }

 private:
  FailureBudget b_;
  bool spent_ = false;
  int64_t ended_ = 0, failed_ = 0;
  std::string reason_;
};

class Progress {
 public:
  Progress(const RunOptions& o, std::string label, std::mutex* mu)
      : o_(o), label_(std::move(label)), mu_(mu) {}
  // Whether a live line is due (at most five a second).
  bool Due() {
    if (!o_.progress || o_.out == nullptr) return false;
    const int64_t now = fault::exec::MonotonicNowNs();
    if (now - last_ < 200'000'000) return false;
    last_ = now;
    return true;
  }
  void Update(const std::string& what) {
    if (Due()) *o_.out << "\r\033[K" << label_ << " " << what << std::flush;
  }
  void Show(const std::string& what) {
    if (o_.progress && o_.out != nullptr)
      *o_.out << "\r\033[K" << label_ << " " << what << std::flush;
  }
  void Done(const std::string& line) {
    if (o_.out == nullptr) return;
    std::lock_guard<std::mutex> lock(*mu_);
    if (o_.progress) *o_.out << "\r\033[K";
    *o_.out << line << "\n" << std::flush;
  }

 private:
  const RunOptions& o_;
  std::string label_;
  std::mutex* mu_;
  int64_t last_ = 0;
};

void Absorb(const HttpDriver::Outcome& o, ItemRun* run) {
  run->retries += o.retries;
  run->retries_denied += o.retries_denied;
  run->cancelled += o.cancelled;
  run->connections += o.connections;
  run->unsent += o.unsent;
}

void Evaluate(ItemRun* run) {
  const Item& item = *run->item;
  const Expect& e = item.expect;
  std::vector<double> lat;
  double sum = 0;
  for (RequestRecord& rec : run->requests) {
    const RequestResult& r = rec.r;
    switch (r.failure) {
      case Failure::kTransport:
        ++run->transport_errors;
        break;
      case Failure::kTimeout:
        ++run->timeouts;
        break;
      case Failure::kWatchdog:
        ++run->watchdog_cancels;
        break;
      case Failure::kNone:
        break;
    }
    if (r.status >= 500)
      ++run->status_5xx;
    else if (r.status >= 400)
      ++run->status_4xx;
    std::vector<std::string> why;
    if (e.status.has_value() && r.status != *e.status) {
      why.push_back(r.failure == Failure::kNone
                        ? absl::StrCat("status ", r.status, ", expected ", *e.status)
                        : absl::StrCat(FailureName(r.failure), " error (", r.error,
                                       "), expected status ", *e.status));
    }
    if (e.response_time_under_ms.has_value() && r.LatencyMs() > *e.response_time_under_ms)
      why.push_back(absl::StrFormat("%.1f ms, expected at most %.1f ms", r.LatencyMs(),
                                    *e.response_time_under_ms));
    rec.expect_pass = why.empty();
    rec.expect_why = absl::StrJoin(why, "; ");
    if (!rec.expect_pass) ++run->expectation_failures;
    lat.push_back(r.LatencyMs());
    sum += r.LatencyMs();
  }
  std::sort(lat.begin(), lat.end());
  if (!lat.empty()) {
    run->min_ms = lat.front();
    run->max_ms = lat.back();
    run->mean_ms = sum / lat.size();
  }
  for (double q : {25.0, 50.0, 75.0, 95.0, 99.0}) {
    Percentile p{q, Quantile(lat, q), 0};
    p.at_or_below = std::upper_bound(lat.begin(), lat.end(), p.ms) - lat.begin();
    run->percentiles.push_back(p);
  }
  const uint64_t n = run->requests.size();
  for (const Slo& slo : item.slos) {
    SloResult s;
    s.slo = slo;
    if (slo.type == Slo::Type::kLatency) {
      s.value = Quantile(lat, slo.objective);
      s.pass = n > 0 && slo.threshold - s.value >= 0;
      s.margin = s.value <= slo.threshold
                     ? absl::StrFormat("Below by %.1fms", slo.threshold - s.value)
                     : absl::StrFormat("Above by %.1fms", s.value - slo.threshold);
      s.over = lat.end() - std::upper_bound(lat.begin(), lat.end(), slo.threshold);
    } else {
      for (const RequestRecord& rec : run->requests) s.over += IsError(rec.r, slo.errors);
      s.value = n == 0 ? 0 : 100.0 * s.over / n;
      s.pass = n > 0 && s.value < slo.threshold;
      s.margin = s.value < slo.threshold
                     ? absl::StrFormat("Below by %.2f%%", slo.threshold - s.value)
                     : absl::StrFormat("Above by %.2f%%", s.value - slo.threshold);
    }
    if (n == 0) s.margin = "no request ended";
    run->all_slo_pass &= s.pass;
    run->slos.push_back(s);
  }
  // The verdict.
  if (!run->setup_error.empty()) run->reasons.push_back(run->setup_error);
  if (run->expectation_failures > 0)
    run->reasons.push_back(
        absl::StrCat(run->expectation_failures, " of ", n, " requests failed the expectation"));
  const bool want_valid = e.all_slo_are_valid.value_or(true);
  if (want_valid) {
    for (const SloResult& s : run->slos)
      if (!s.pass)
        run->reasons.push_back(absl::StrCat("SLO \"", s.slo.title, "\" failed: ", s.margin));
  } else if (run->all_slo_pass) {
    run->reasons.push_back("expected some SLO to fail (all_slo_are_valid: false), and all passed");
  }
  if (run->budget_exhausted) run->reasons.push_back(run->budget_reason);
  // A load the client could not offer measured something else.
  if (run->unsent * 100 > n + run->unsent)
    run->reasons.push_back(absl::StrCat("the load was not offered: ", run->unsent,
                                        " planned requests could not be sent in time"));
  if (n == 0 && run->setup_error.empty()) run->reasons.push_back("no request ended");
  run->passed = run->reasons.empty();
}

std::string Label(size_t i, size_t n, const Scenario& s, const Item& item) {
  return absl::StrCat("[", i, "/", n, "] ", s.title, ": ", item.call.method, " ", item.call.url);
}

void RunItem(const Item& item, const RunOptions& options, const CurlApi& curl, Progress& progress,
             ItemRun* run) {
  const Strategy& st = item.strategy;
  const bool load = item.has_strategy && st.mode == Strategy::Mode::kLoad;
  const bool repeat = item.has_strategy && st.mode == Strategy::Mode::kRepeat;
  run->run_duration_ns = load ? st.duration_ns : 0;
  absl::StatusOr<ItemFaults> faults = BuildItemFaults(item, run->run_duration_ns, 0);
  if (!faults.ok()) {
    run->setup_error = std::string(faults.status().message());
    return;
  }
  run->faults = *faults;
  // The periods count from the first planned request.
  const int64_t t0 = fault::exec::MonotonicNowNs() + 20'000'000;
  FaultProxy::Options po;
  po.faults = *faults;
  po.upstreams = item.upstreams;
  po.mappings = item.mappings;
  po.http_proxy = !item.disable_http_proxy;
  po.start_ns = t0;
  po.run_duration_ns = run->run_duration_ns;
  po.seed = options.seed;
  // Nothing to fault: the calls go straight to the server.
  std::unique_ptr<FaultProxy> proxy;
  if (!item.faults.empty() || !item.mappings.empty()) {
    absl::StatusOr<std::unique_ptr<FaultProxy>> started = FaultProxy::Start(po);
    if (!started.ok()) {
      run->setup_error = absl::StrCat("cannot start the fault proxy: ", started.status().message());
      return;
    }
    proxy = std::move(*started);
    run->proxy_seed = proxy->seed();
    run->proxy_port = proxy->http_port();
  }
  run->start_unix_ns = fault::engine::RealtimeNs() + (t0 - fault::exec::MonotonicNowNs());

  absl::StatusOr<std::unique_ptr<HttpDriver>> driver = HttpDriver::Create(curl);
  if (!driver.ok()) {
    run->setup_error = std::string(driver.status().message());
    return;
  }
  BudgetTracker budget(st.failure_budget);
  HttpDriver::Plan plan;
  plan.request = RequestOf(item, run->proxy_port);
  plan.retry = st.retry;
  plan.watchdog = st.watchdog;
  plan.interrupted = options.interrupted;
  plan.max_connections = load ? st.connections : 0;
  // With bounded connections, requests wait here rather than in libcurl,
  // which walks every handle it holds on each call.
  if (plan.max_connections > 0) plan.max_in_flight = plan.max_connections;
  plan.seed = options.seed.value_or(run->proxy_seed ? run->proxy_seed : 1) ^ 0x5ce7a110;
  plan.drain_ns = item.call.timeout_ms.has_value()
                      ? static_cast<int64_t>(*item.call.timeout_ms) * 1'000'000 + 5'000'000'000
                      : 60'000'000'000;
  uint64_t ended = 0;
  plan.on_done = [&](const RequestResult& r) {
    ++ended;
    if (load && progress.Due())
      progress.Show(absl::StrFormat("load %.1fs/%.0fs, %d requests",
                                    (fault::exec::MonotonicNowNs() - t0) / 1e9,
                                    st.duration_ns / 1e9, ended));
    return budget.Add(r);
  };
  auto record = [&](const HttpDriver::Outcome& o, int iteration, bool baseline, double add) {
    Absorb(o, run);
    for (const RequestResult& r : o.results) {
      RequestRecord rec;
      rec.r = r;
      rec.offset_ns = r.intended_ns - t0;
      rec.iteration = iteration;
      rec.baseline = baseline;
      rec.latency_add_ms = add;
      run->requests.push_back(rec);
    }
  };

  if (load) {
    // Each client sends rps requests a second, on its own phase, whatever
    // the answers do (open loop): duration x rps requests per client.
    for (int64_t c = 0; c < st.clients; ++c) {
      const int64_t phase =
          static_cast<int64_t>(static_cast<__int128>(c) * 1'000'000'000 / (st.rps * st.clients));
      for (int64_t k = 0;; ++k) {
        const int64_t at = static_cast<int64_t>(static_cast<__int128>(k) * 1'000'000'000 / st.rps);
        if (at >= st.duration_ns) break;
        plan.starts.push_back(t0 + at + phase);
      }
    }
    std::sort(plan.starts.begin(), plan.starts.end());
    plan.send_until_ns = t0 + st.duration_ns + 100'000'000;
    absl::StatusOr<HttpDriver::Outcome> o = (*driver)->Run(plan);
    if (!o.ok())
      run->setup_error = std::string(o.status().message());
    else {
      record(*o, 0, false, 0);
      if (o->stopped) run->budget_stopped_at_ns = o->stopped_ns - t0;
    }
  } else {
    // single, or repeat: one call at a time.
    struct Call {
      int iteration;
      bool baseline;
      double add;
    };
    std::vector<Call> calls;
    if (repeat) {
      if (st.add_baseline_call) calls.push_back({0, true, 0});
      for (int64_t i = 0; i < st.count; ++i)
        calls.push_back(
            {static_cast<int>(i + (st.add_baseline_call ? 1 : 0)), false, st.step_ms * i});
    } else {
      calls.push_back({0, false, 0});
    }
    bool published_plain = true;
    for (size_t k = 0; k < calls.size(); ++k) {
      if (options.interrupted != nullptr && options.interrupted->load()) break;
      const Call& c = calls[k];
      if (repeat && proxy != nullptr) {
        progress.Update(absl::StrCat("call ", k + 1, "/", calls.size()));
        // The baseline call has no fault; the others step the latency mean.
        absl::StatusOr<ItemFaults> f = BuildItemFaults(item, 0, c.add);
        if (!f.ok()) {
          run->setup_error = std::string(f.status().message());
          break;
        }
        if (c.baseline) {
          ItemFaults none = *f;
          none.policies.clear_policies();
          (void)proxy->Republish(none);
          published_plain = false;
        } else if (c.add != 0 || !published_plain) {
          absl::Status s = proxy->Republish(*f);
          if (!s.ok()) {
            run->setup_error = std::string(s.message());
            break;
          }
          published_plain = c.add == 0;
        }
      }
      if (repeat && k > 0) {
        // A connection meets the faults in force when it opens: each step
        // of a repeat gets a new one.
        driver = HttpDriver::Create(curl);
        if (!driver.ok()) {
          run->setup_error = std::string(driver.status().message());
          break;
        }
      }
      plan.starts = {std::max(t0, fault::exec::MonotonicNowNs())};
      absl::StatusOr<HttpDriver::Outcome> o = (*driver)->Run(plan);
      if (!o.ok()) {
        run->setup_error = std::string(o.status().message());
        break;
      }
      record(*o, c.iteration, c.baseline, c.add);
      if (o->stopped) {
        run->budget_stopped_at_ns = o->stopped_ns - t0;
        break;
      }
      if (repeat && st.failfast && !o->results.empty()) {
        const RequestResult& r = o->results.back();
        const Expect& e = item.expect;
        if ((e.status.has_value() && r.status != *e.status) ||
            (e.response_time_under_ms.has_value() && r.LatencyMs() > *e.response_time_under_ms))
          break;
      }
      if (repeat && st.wait_ms > 0 && k + 1 < calls.size()) {
        const int64_t ns = static_cast<int64_t>(st.wait_ms * 1e6);
        timespec ts{ns / 1'000'000'000, ns % 1'000'000'000};
        nanosleep(&ts, nullptr);
      }
    }
  }
  if (proxy != nullptr) run->events = proxy->Stop();
  run->budget_exhausted = budget.spent();
  run->budget_reason = budget.reason();
  std::sort(run->requests.begin(), run->requests.end(),
            [](const RequestRecord& a, const RequestRecord& b) {
              return a.r.intended_ns < b.r.intended_ns;
            });
}

}  // namespace

double Quantile(const std::vector<double>& sorted, double q) {
  const size_t n = sorted.size();
  if (n == 0) return 0;
  const double h = (n + 1) * (q / 100.0);
  if (h <= 1) return sorted.front();
  if (h >= n) return sorted.back();
  const size_t lo = static_cast<size_t>(std::floor(h));
  return sorted[lo - 1] + (h - lo) * (sorted[lo] - sorted[lo - 1]);
}

RunSummary RunScenarios(const std::vector<Scenario>& scenarios, const RunOptions& options,
                        const CurlApi& curl) {
  RunSummary summary;
  summary.start_unix_ns = fault::engine::RealtimeNs();
  struct Work {
    const Scenario* scenario;
    const Item* item;
  };
  std::vector<Work> work;
  for (const Scenario& s : scenarios)
    for (const Item& item : s.items) work.push_back({&s, &item});
  const size_t total = work.size();
  const int jobs =
      static_cast<int>(std::clamp<size_t>(options.jobs, 1, std::max<size_t>(total, 1)));
  // Several items at a time share the terminal: no live line then.
  RunOptions o = options;
  if (jobs > 1) o.progress = false;
  auto interrupted = [&] { return options.interrupted != nullptr && options.interrupted->load(); };
  std::vector<std::optional<ItemRun>> runs(total);
  std::atomic<size_t> next{0};
  std::mutex out_mu;
  auto worker = [&] {
    while (true) {
      const size_t k = next.fetch_add(1);
      if (k >= total || interrupted()) return;
      const Scenario& s = *work[k].scenario;
      const Item& item = *work[k].item;
      ItemRun run;
      run.scenario = &s;
      run.item = &item;
      Progress progress(o, Label(k + 1, total, s, item), &out_mu);
      progress.Update("starting");
      const int64_t started = fault::exec::MonotonicNowNs();
      RunItem(item, o, curl, progress, &run);
      if (interrupted()) run.setup_error = "interrupted";
      run.total_ns = fault::exec::MonotonicNowNs() - started;
      if (run.start_unix_ns == 0) run.start_unix_ns = fault::engine::RealtimeNs();
      Evaluate(&run);
      progress.Done(absl::StrFormat(
          "%s %s: %d requests, %.1fs%s", run.passed ? "PASS" : "FAIL", Label(k + 1, total, s, item),
          run.requests.size(), run.total_ns / 1e9,
          run.passed ? "" : absl::StrCat(" (", absl::StrJoin(run.reasons, "; "), ")")));
      runs[k] = std::move(run);
    }
  };
  if (jobs == 1) {
    worker();
  } else {
    std::vector<std::thread> threads;
    for (int j = 0; j < jobs; ++j) threads.emplace_back(worker);
    for (std::thread& t : threads) t.join();
  }
  for (std::optional<ItemRun>& r : runs) {
    if (!r.has_value()) continue;
    if (!r->passed) ++summary.failed;
    summary.items.push_back(std::move(*r));
  }
  summary.interrupted = interrupted();
  summary.end_unix_ns = fault::engine::RealtimeNs();
  return summary;
}

}  // namespace fault::scenario
