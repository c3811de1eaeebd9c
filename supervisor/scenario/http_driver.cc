#include "supervisor/scenario/http_driver.h"

#include <time.h>

#include <algorithm>
#include <memory>
#include <queue>
#include <random>
#include <unordered_set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "supervisor/exec/policy_table.h"

namespace fault::scenario {
namespace {

using fault::exec::MonotonicNowNs;

// One request, across its attempts.
struct Transfer {
  RequestResult result;
  CURL* easy = nullptr;
  int64_t attempt_started_ns = 0;
  int64_t last_progress_ns = 0;
  curl_off_t seen_down = 0, seen_up = 0;
  uint64_t bytes = 0;
  char error[CURL_ERROR_SIZE] = {};
};

size_t Discard(char* /*data*/, size_t size, size_t n, void* user) {
  static_cast<Transfer*>(user)->bytes += size * n;
  return size * n;
}

int Progress(void* user, curl_off_t /*dltotal*/, curl_off_t dlnow, curl_off_t /*ultotal*/,
             curl_off_t ulnow) {
  auto* t = static_cast<Transfer*>(user);
  if (dlnow != t->seen_down || ulnow != t->seen_up) {
    t->seen_down = dlnow;
    t->seen_up = ulnow;
    t->last_progress_ns = MonotonicNowNs();
  }
  return 0;
}

struct Pending {
  int64_t at;
  Transfer* t;
  bool operator>(const Pending& o) const { return at > o.at; }
};

}  // namespace

const char* FailureName(Failure f) {
  switch (f) {
    case Failure::kNone:
      return "none";
    case Failure::kTransport:
      return "transport";
    case Failure::kTimeout:
      return "timeout";
    case Failure::kWatchdog:
      return "watchdog";
  }
  return "?";
}

bool IsError(Failure failure, int status, const ErrorClasses& c) {
  switch (failure) {
    case Failure::kTransport:
      return c.transport;
    case Failure::kTimeout:
      return c.timeout;
    case Failure::kWatchdog:
      return c.watchdog;
    case Failure::kNone:
      break;
  }
  return (status >= 500 && c.status_5xx) || (status >= 400 && status < 500 && c.status_4xx);
}

bool IsError(const RequestResult& r, const ErrorClasses& c) {
  return IsError(r.failure, r.status, c);
}

absl::StatusOr<std::unique_ptr<HttpDriver>> HttpDriver::Create(const CurlApi& curl) {
  CURLM* multi = curl.multi_init();
  if (multi == nullptr) return absl::InternalError("curl_multi_init failed");
  curl.multi_setopt(multi, CURLMOPT_MAXCONNECTS, 256L);
  return std::unique_ptr<HttpDriver>(new HttpDriver(curl, multi));
}

HttpDriver::~HttpDriver() { curl_.multi_cleanup(multi_); }

absl::StatusOr<HttpDriver::Outcome> HttpDriver::Run(const Plan& plan) {
  Outcome out;
  const CurlApi& curl = curl_;
  CURLM* multi = multi_;
  curl.multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, static_cast<long>(plan.max_connections));
  curl.multi_setopt(multi, CURLMOPT_MAXCONNECTS,
                    static_cast<long>(std::max<int64_t>(256, plan.max_connections)));
  std::mt19937_64 rng(plan.seed);
  const HttpRequest& req = plan.request;

  std::priority_queue<Pending, std::vector<Pending>, std::greater<>> retries;
  std::unordered_set<Transfer*> running;
  size_t next = 0;
  uint64_t started_requests = 0;
  const int64_t last_start = plan.starts.empty() ? MonotonicNowNs() : plan.starts.back();
  bool stop = false;
  const bool watch = plan.watchdog.enabled;
  // One header list and a pool of configured handles for every request.
  curl_slist* headers = nullptr;
  for (const std::string& h : req.headers) headers = curl.slist_append(headers, h.c_str());
  std::vector<CURL*> idle;
  auto new_easy = [&]() {
    CURL* e = curl.easy_init();
    curl.easy_setopt(e, CURLOPT_URL, req.url.c_str());
    curl.easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    if (req.method == "GET") {
      curl.easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (req.method == "HEAD") {
      curl.easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
      curl.easy_setopt(e, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    }
    if (req.body.has_value()) {
      curl.easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body->size()));
      curl.easy_setopt(e, CURLOPT_POSTFIELDS, req.body->data());
      if (req.method != "POST") curl.easy_setopt(e, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    }
    if (headers != nullptr) curl.easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    // Only the proxy we started; never one from the environment.
    curl.easy_setopt(e, CURLOPT_PROXY, req.proxy.c_str());
    curl.easy_setopt(e, CURLOPT_NOPROXY, "");
    if (req.timeout_ms > 0)
      curl.easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(req.timeout_ms));
    curl.easy_setopt(e, CURLOPT_WRITEFUNCTION, Discard);
    if (watch) {
      curl.easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
      curl.easy_setopt(e, CURLOPT_XFERINFOFUNCTION, Progress);
    }
    return e;
  };

  auto start_attempt = [&](Transfer* t) {
    if (t->easy == nullptr) {
      if (idle.empty()) {
        t->easy = new_easy();
      } else {
        t->easy = idle.back();
        idle.pop_back();
      }
      CURL* e = t->easy;
      curl.easy_setopt(e, CURLOPT_WRITEDATA, t);
      if (watch) curl.easy_setopt(e, CURLOPT_XFERINFODATA, t);
      curl.easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
      curl.easy_setopt(e, CURLOPT_PRIVATE, t);
    }
    t->error[0] = '\0';
    t->bytes = 0;
    t->seen_down = t->seen_up = 0;
    t->attempt_started_ns = t->last_progress_ns = MonotonicNowNs();
    if (t->result.sent_ns == 0) t->result.sent_ns = t->attempt_started_ns;
    curl.multi_add_handle(multi, t->easy);
    running.insert(t);
  };

  auto finish = [&](Transfer* t) {
    if (t->easy != nullptr) idle.push_back(t->easy);
    t->easy = nullptr;
    out.results.push_back(std::move(t->result));
    delete t;
    if (plan.on_done && !plan.on_done(out.results.back()) && !stop) {
      stop = true;
      out.stopped = true;
      out.stopped_ns = MonotonicNowNs();
    }
  };

  // An attempt ended: retry it, or the request is done.
  auto attempt_ended = [&](Transfer* t, Failure failure, int status, const std::string& error) {
    RequestResult& r = t->result;
    r.failure = failure;
    r.status = status;
    r.error = error;
    r.done_ns = MonotonicNowNs();
    r.body_bytes = t->bytes;
    if (t->easy != nullptr && failure != Failure::kWatchdog) {
      curl_off_t us = 0;
      curl.easy_getinfo(t->easy, CURLINFO_STARTTRANSFER_TIME_T, &us);
      r.ttfb_ms = us / 1e3;
      long conns = 0;
      curl.easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &conns);
      out.connections += conns;
    }
    if (plan.retry.enabled && !stop && IsError(failure, status, plan.retry.on) &&
        r.attempts < plan.retry.attempts) {
      const double allowed = plan.retry.budget * started_requests + plan.retry.budget_min;
      if (static_cast<double>(out.retries) + 1 <= allowed) {
        ++out.retries;
        const int shift = std::min(r.attempts - 1, 30);
        int64_t delay =
            std::min<int64_t>(plan.retry.max_backoff_ns, plan.retry.backoff_ns << shift);
        if (plan.retry.jitter && delay > 0)
          delay = std::uniform_int_distribution<int64_t>(0, delay)(rng);
        ++r.attempts;
        retries.push({MonotonicNowNs() + delay, t});
        return;
      }
      ++out.retries_denied;
      r.retry_denied = true;
    }
    finish(t);
  };

  while (true) {
    int64_t now = MonotonicNowNs();
    if (plan.interrupted != nullptr && plan.interrupted->load(std::memory_order_relaxed))
      stop = true;
    if (stop) break;
    // Planned starts and retries that are due.
    while (next < plan.starts.size() && plan.starts[next] <= now &&
           running.size() < plan.max_in_flight) {
      auto* t = new Transfer();
      t->result.intended_ns = plan.starts[next++];
      ++started_requests;
      start_attempt(t);
    }
    while (!retries.empty() && retries.top().at <= now && running.size() < plan.max_in_flight) {
      Transfer* t = retries.top().t;
      retries.pop();
      start_attempt(t);
    }
    if (plan.send_until_ns != 0 && now >= plan.send_until_ns && next < plan.starts.size()) {
      out.unsent += plan.starts.size() - next;
      next = plan.starts.size();
    }
    int still = 0;
    curl.multi_perform(multi, &still);
    int left = 0;
    while (CURLMsg* m = curl.multi_info_read(multi, &left)) {
      if (m->msg != CURLMSG_DONE) continue;
      Transfer* t = nullptr;
      curl.easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &t);
      const CURLcode code = m->data.result;
      curl.multi_remove_handle(multi, m->easy_handle);
      running.erase(t);
      long status = 0;
      Failure failure = Failure::kNone;
      std::string error;
      if (code == CURLE_OK) {
        curl.easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
      } else {
        failure = code == CURLE_OPERATION_TIMEDOUT ? Failure::kTimeout : Failure::kTransport;
        error = t->error[0] != '\0' ? t->error : curl.easy_strerror(code);
      }
      attempt_ended(t, failure, static_cast<int>(status), error);
    }
    now = MonotonicNowNs();
    // The watchdog.
    if (plan.watchdog.enabled) {
      std::vector<Transfer*> stuck;
      for (Transfer* t : running)
        if (now - t->last_progress_ns >= plan.watchdog.max_stall_ns) stuck.push_back(t);
      for (Transfer* t : stuck) {
        curl.multi_remove_handle(multi, t->easy);
        running.erase(t);
        ++out.watchdog_cancels;
        attempt_ended(t, Failure::kWatchdog, 0,
                      absl::StrCat("no byte moved for ", plan.watchdog.max_stall_ns / 1e6,
                                   " ms: cancelled by the watchdog"));
      }
    }
    if (stop) break;
    const bool planned_left = next < plan.starts.size();
    if (!planned_left && retries.empty() && running.empty()) break;
    if (!planned_left && retries.empty() && now > last_start + plan.drain_ns) {
      for (Transfer* t : std::vector<Transfer*>(running.begin(), running.end())) {
        curl.multi_remove_handle(multi, t->easy);
        running.erase(t);
        RequestResult& r = t->result;
        r.failure = Failure::kTimeout;
        r.error = "still running when the run ended";
        r.done_ns = now;
        finish(t);
      }
      break;
    }
    // Sleep until the next due start, retry or watchdog check.
    int64_t due = now + 100'000'000;
    if (planned_left && running.size() < plan.max_in_flight) due = std::min(due, plan.starts[next]);
    if (!retries.empty()) due = std::min(due, retries.top().at);
    if (plan.watchdog.enabled) {
      for (Transfer* t : running)
        due = std::min(due, t->last_progress_ns + plan.watchdog.max_stall_ns);
    }
    if (!planned_left && retries.empty()) due = std::min(due, last_start + plan.drain_ns + 1);
    const int64_t wait_ns = due - MonotonicNowNs();
    if (wait_ns > 0) {
      int numfds = 0;
      // Below a millisecond, poll without waiting: curl_multi_poll counts
      // in whole milliseconds.
      curl.multi_poll(multi, nullptr, 0, static_cast<int>(wait_ns / 1'000'000), &numfds);
    }
  }
  // A stop: drop what is under way and what was waiting.
  for (Transfer* t : running) {
    curl.multi_remove_handle(multi, t->easy);
    curl.easy_cleanup(t->easy);
    delete t;
    ++out.cancelled;
  }
  while (!retries.empty()) {
    Transfer* t = retries.top().t;
    retries.pop();
    if (t->easy != nullptr) curl.easy_cleanup(t->easy);
    delete t;
    ++out.cancelled;
  }
  for (CURL* e : idle) curl.easy_cleanup(e);
  if (headers != nullptr) curl.slist_free_all(headers);
  return out;
}

}  // namespace fault::scenario
