#include "supervisor/scenario/report.h"

#include <fcntl.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "supervisor/cli/markup.h"

namespace fault::scenario {
namespace {

// `unix_ns` in UTC, as strftime(3) `format` writes it.
std::string Utc(int64_t unix_ns, const char* format) {
  time_t t = unix_ns / 1'000'000'000;
  tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  strftime(buf, sizeof(buf), format, &tm);
  return buf;
}

std::string Time(int64_t unix_ns) { return Utc(unix_ns, "%Y-%m-%d %H:%M:%S UTC"); }

// JUnit's timestamp: ISO 8601 without a zone (UTC here).
std::string IsoTime(int64_t unix_ns) { return Utc(unix_ns, "%Y-%m-%dT%H:%M:%S"); }

std::string Ms(double ms) { return absl::StrFormat("%.1fms", ms); }

std::string Dur(int64_t ns) {
  if (ns % 1'000'000'000 == 0) return absl::StrCat(ns / 1'000'000'000, "s");
  if (ns % 1'000'000 == 0) return absl::StrCat(ns / 1'000'000, "ms");
  return absl::StrFormat("%.3fms", ns / 1e6);
}

std::string StrategyText(const Item& item) {
  const Strategy& s = item.strategy;
  std::string t;
  if (!item.has_strategy || s.mode == Strategy::Mode::kSingle) {
    t = "single shot";
  } else if (s.mode == Strategy::Mode::kRepeat) {
    t = absl::StrFormat("repeat %d times with a step of %gms", s.count, s.step_ms);
    if (s.add_baseline_call) t += ", after a fault-free baseline call";
    if (s.wait_ms > 0) t += absl::StrFormat(", %gms between calls", s.wait_ms);
  } else {
    t = absl::StrFormat("load for %s with %d clients @ %d RPS", s.duration_text, s.clients, s.rps);
  }
  return t;
}

std::vector<std::string> ControlsText(const Strategy& s) {
  std::vector<std::string> out;
  if (s.retry.enabled)
    out.push_back(absl::StrFormat(
        "retries: up to %d attempts on %s, backoff %s doubling to %s%s, budget %g retries per "
        "request + %d",
        s.retry.attempts, s.retry.on.ToString(), Dur(s.retry.backoff_ns),
        Dur(s.retry.max_backoff_ns), s.retry.jitter ? " with full jitter" : "", s.retry.budget,
        s.retry.budget_min));
  if (s.failure_budget.enabled) {
    std::vector<std::string> lim;
    if (s.failure_budget.max_failures >= 0)
      lim.push_back(absl::StrCat("more than ", s.failure_budget.max_failures, " failures"));
    if (s.failure_budget.max_rate >= 0)
      lim.push_back(absl::StrFormat("more than %g%% failed after %d requests",
                                    100 * s.failure_budget.max_rate,
                                    s.failure_budget.min_requests));
    out.push_back(absl::StrCat("failure budget: stop at ", absl::StrJoin(lim, " or "),
                               " (counting ", s.failure_budget.errors.ToString(), ")"));
  }
  if (s.watchdog.enabled)
    out.push_back(absl::StrCat("watchdog: cancel a request with no byte moved for ",
                               Dur(s.watchdog.max_stall_ns)));
  return out;
}

std::string FaultText(const Fault& f) {
  std::vector<std::string> kv;
  for (const auto& [k, v] : f.values) kv.push_back(absl::StrCat(k, "=", v));
  if (!f.period.empty()) kv.push_back(absl::StrCat("period=", f.period));
  return absl::StrCat(f.type, kv.empty() ? "" : absl::StrCat(" (", absl::StrJoin(kv, ", "), ")"));
}

// The span a timeline covers: the load's duration, else the item's time.
int64_t Span(const ItemRun& r) {
  int64_t span = r.run_duration_ns > 0 ? r.run_duration_ns : r.total_ns;
  for (const RequestRecord& q : r.requests)
    span = std::max(span, q.offset_ns + static_cast<int64_t>(q.r.LatencyMs() * 1e6));
  return std::max<int64_t>(span, 1'000'000);
}

std::map<std::string, uint64_t> EventCounts(const ItemRun& r) {
  std::map<std::string, uint64_t> m;
  for (const FaultProxy::Event& e : r.events) ++m[e.fault];
  return m;
}


std::string Cell(std::string s) { return absl::StrReplaceAll(s, {{"|", "\\|"}, {"\n", " "}}); }

}  // namespace

// ---------------------------------------------------------------- Markdown

std::string MarkdownReport(const RunSummary& s) {
  std::string md = "# Scenarios Report\n\n";
  absl::StrAppend(&md, "Start: ", Time(s.start_unix_ns), "\n\nEnd: ", Time(s.end_unix_ns), "\n\n");
  absl::StrAppend(&md, "Items: ", s.items.size(), ", passed: ", s.items.size() - s.failed,
                  ", failed: ", s.failed, "\n\n");
  const Scenario* current = nullptr;
  for (const ItemRun& r : s.items) {
    const Item& item = *r.item;
    if (r.scenario != current) {
      current = r.scenario;
      absl::StrAppend(&md, "## Scenario: ", current->title, "  (items: ", current->items.size(),
                      ")\n\n");
      if (current->description.has_value())
        absl::StrAppend(&md, "_Description:_ ", *current->description, "\n\n");
    }
    absl::StrAppend(&md, "### 🎯 `", item.call.method, "` ", item.call.url, " | ",
                    r.passed ? "Passed" : "Failed", "\n\n");
    if (!r.passed) {
      absl::StrAppend(&md, "**Failed because**:\n\n");
      for (const std::string& why : r.reasons) absl::StrAppend(&md, "- ", why, "\n");
      md += "\n";
    }
    md += "**Call**:\n\n";
    absl::StrAppend(&md, "- Method: `", item.call.method, "`\n");
    absl::StrAppend(&md, "- Timeout: ",
                    item.call.timeout_ms ? absl::StrCat(*item.call.timeout_ms, "ms") : "-", "\n");
    std::vector<std::string> hs;
    for (const auto& [k, v] : item.call.headers)
      hs.push_back(
          absl::StrCat(k, ": ", absl::AsciiStrToLower(k) == "authorization" ? "xxxxxx" : v));
    absl::StrAppend(&md, "- Headers: ", hs.empty() ? "-" : absl::StrJoin(hs, ", "), "\n");
    absl::StrAppend(&md, "- Body?: ", item.call.body ? "Yes" : "No", "\n\n");
    absl::StrAppend(&md, "**Strategy**: ", StrategyText(item), "\n\n");
    for (const std::string& c : ControlsText(item.strategy)) absl::StrAppend(&md, "- ", c, "\n");
    if (!ControlsText(item.strategy).empty()) md += "\n";
    // Faults and their timeline.
    md += "**Faults Applied**:\n\n";
    if (item.faults.empty()) md += "- none\n\n";
    const std::map<std::string, uint64_t> counts = EventCounts(r);
    const int64_t span = Span(r);
    constexpr int kWidth = 50;
    if (!item.faults.empty()) {
      absl::StrAppend(&md, "| Fault | Timeline (0 to ", absl::StrFormat("%.1fs", span / 1e9),
                      ") | Applied |\n|---|---|---|\n");
      for (size_t i = 0; i < item.faults.size() && i < r.faults.names.size(); ++i) {
        const std::string& name = r.faults.names[i];
        std::string line(kWidth, '.');
        for (const ItemFaults::Window& w : r.faults.windows) {
          if (w.name != name) continue;
          const int64_t end = w.end_ns > 0 ? w.end_ns : span;
          for (int c = 0; c < kWidth; ++c) {
            const int64_t at = span * (2 * c + 1) / (2 * kWidth);
            if (at >= w.start_ns && at < end) line[c] = 'x';
          }
        }
        absl::StrAppend(&md, "| ", Cell(FaultText(item.faults[i])), " | `", line, "` | ",
                        counts.count(name) ? counts.at(name) : 0, " |\n");
      }
      md += "\n";
    }
    md += "**Expectation**: ";
    std::vector<std::string> ex;
    if (item.expect.status) ex.push_back(absl::StrCat("Status Code ", *item.expect.status));
    if (item.expect.response_time_under_ms)
      ex.push_back(absl::StrCat("Response time Under ", *item.expect.response_time_under_ms, "ms"));
    if (item.expect.all_slo_are_valid)
      ex.push_back(absl::StrCat("All SLOs valid: ", *item.expect.all_slo_are_valid ? "yes" : "no"));
    absl::StrAppend(&md, ex.empty() ? "-" : absl::StrJoin(ex, " | "), "\n\n");
    if (!r.setup_error.empty()) {
      absl::StrAppend(&md, "**Could not run**: ", r.setup_error, "\n\n");
      continue;
    }
    md += "**Run Overview**:\n\n";
    md +=
        "| Num. Requests | Num. Errors | Min. Response Time | Max Response Time | Mean Latency | "
        "Median Latency | Expectation Failures | Total Time |\n|---|---|---|---|---|---|---|---|\n";
    const uint64_t errors = r.transport_errors + r.timeouts + r.watchdog_cancels;
    const size_t n = r.requests.size();
    absl::StrAppend(
        &md, "| ", n, " | ", errors, absl::StrFormat(" (%.1f%%)", n ? 100.0 * errors / n : 0.0),
        " | ", Ms(r.min_ms), " | ", Ms(r.max_ms), " | ", Ms(r.mean_ms), " | ",
        Ms(r.percentiles.size() > 1 ? r.percentiles[1].ms : 0), " | ", r.expectation_failures,
        " | ", absl::StrFormat("%.2fs", r.total_ns / 1e9), " |\n\n");
    absl::StrAppend(&md, "Errors: ", r.transport_errors, " transport, ", r.timeouts, " timeouts, ",
                    r.watchdog_cancels, " cancelled by the watchdog; responses: ", r.status_5xx,
                    " 5xx, ", r.status_4xx,
                    " 4xx. Latency counts from each request's planned start.\n\n");
    md += "| Percentile | Response Time | Num. Requests | % of total |\n|---|---|---|---|\n";
    for (const Percentile& p : r.percentiles)
      absl::StrAppend(&md, absl::StrFormat("| p%g | %s | %d | %.1f%% |\n", p.q, Ms(p.ms),
                                           p.at_or_below, n ? 100.0 * p.at_or_below / n : 0.0));
    md += "\n";
    if (!r.slos.empty()) {
      md +=
          "| Type | Objective | Margin | Num. Requests Over Threshold | % Over Threshold |\n"
          "|---|---|---|---|---|\n";
      for (const SloResult& slo : r.slos)
        absl::StrAppend(
            &md,
            absl::StrFormat(
                "| %s %s | %s | %s | %d | %.1f%% |\n", slo.pass ? "✅" : "❌", Cell(slo.slo.title),
                slo.slo.type == Slo::Type::kLatency
                    ? absl::StrFormat("p%g ≤ %gms", slo.slo.objective, slo.slo.threshold)
                    : absl::StrFormat("errors (%s) < %g%%", slo.slo.errors.ToString(),
                                      slo.slo.threshold),
                slo.margin, slo.over, n ? 100.0 * slo.over / n : 0.0));
      md += "\n";
    }
    if (!ControlsText(item.strategy).empty()) {
      md += "**Reliability Controls**:\n\n";
      if (item.strategy.retry.enabled)
        absl::StrAppend(&md, "- Retries: ", r.retries, " sent, ", r.retries_denied,
                        " refused by the retry budget\n");
      if (item.strategy.failure_budget.enabled)
        absl::StrAppend(&md, "- Failure budget: ",
                        r.budget_exhausted
                            ? absl::StrFormat("%s; stopped at %.2fs", r.budget_reason,
                                              r.budget_stopped_at_ns / 1e9)
                            : std::string("not spent"),
                        "\n");
      if (item.strategy.watchdog.enabled)
        absl::StrAppend(&md, "- Watchdog: ", r.watchdog_cancels, " requests cancelled\n");
      md += "\n";
    }
  }
  return md;
}

// ------------------------------------------------------------------- JSON

nlohmann::json ResultsJson(const RunSummary& s) {
  using nlohmann::json;
  json root;
  root["start"] = s.start_unix_ns / 1'000'000'000;
  root["end"] = s.end_unix_ns / 1'000'000'000;
  root["results"] = json::array();
  const Scenario* current = nullptr;
  json* scen = nullptr;
  for (const ItemRun& r : s.items) {
    const Item& item = *r.item;
    if (r.scenario != current || scen == nullptr) {
      current = r.scenario;
      root["results"].push_back(
          {{"scenario", current != nullptr ? current->json : json()}, {"results", json::array()}});
      scen = &root["results"].back();
    }
    json ir;
    ir["target"] = {{"address", item.call.url}};
    ir["requests_count"] = r.requests.size();
    ir["failure_counts"] = r.expectation_failures;
    ir["total_time"] = {{"secs", r.total_ns / 1'000'000'000},
                        {"nanos", r.total_ns % 1'000'000'000}};
    json faults_as_written = json::array();
    for (const Fault& f : item.faults) faults_as_written.push_back(f.json);
    ir["results"] = json::array();
    for (const RequestRecord& q : r.requests) {
      json j;
      j["start"] = (r.start_unix_ns + q.offset_ns) / 1000;
      if (item.has_expect) {
        j["expect"] = {
            {"type", "http"},
            {"wanted",
             {{"status_code", item.expect.status ? json(*item.expect.status) : json()},
              {"response_time_under", item.expect.response_time_under_ms
                                          ? json(*item.expect.response_time_under_ms)
                                          : json()},
              {"all_slo_are_valid",
               item.expect.all_slo_are_valid ? json(*item.expect.all_slo_are_valid) : json()}}},
            {"got",
             {{"status_code", q.r.status ? json(q.r.status) : json()},
              {"response_time", q.r.LatencyMs()},
              {"all_slo_are_valid", r.all_slo_pass},
              {"decision", q.expect_pass ? "success" : "failure"}}}};
      } else {
        j["expect"] = nullptr;
      }
      json m;
      m["dns"] = json::array();
      m["protocol"] =
          q.r.failure == Failure::kNone
              ? json{{"type", "http"}, {"code", q.r.status}, {"body_length", q.r.body_bytes}}
              : json();
      m["ttfb"] = q.r.ttfb_ms;
      m["total_time"] = q.r.LatencyMs();
      m["faults"] = json::array();
      m["errored"] = q.r.failure == Failure::kTransport || q.r.failure == Failure::kWatchdog;
      m["timed_out"] = q.r.failure == Failure::kTimeout;
      j["metrics"] = m;
      j["faults"] = faults_as_written;
      j["errors"] = q.r.error.empty() ? json::array() : json::array({q.r.error});
      j["fault"] = {{"failure", FailureName(q.r.failure)},
                    {"offset_ms", q.offset_ns / 1e6},
                    {"service_time_ms", q.r.ServiceMs()},
                    {"attempts", q.r.attempts},
                    {"retry_denied", q.r.retry_denied},
                    {"iteration", q.iteration},
                    {"baseline", q.baseline},
                    {"latency_added_ms", q.latency_add_ms},
                    {"expectation", q.expect_pass ? "" : q.expect_why}};
      ir["results"].push_back(j);
    }
    json ours;
    ours["passed"] = r.passed;
    ours["reasons"] = r.reasons;
    ours["strategy"] = StrategyText(item);
    ours["proxy"] = {{"port", r.proxy_port}, {"seed", r.proxy_seed}};
    ours["errors"] = {{"transport", r.transport_errors},
                      {"timeout", r.timeouts},
                      {"watchdog", r.watchdog_cancels},
                      {"status_5xx", r.status_5xx},
                      {"status_4xx", r.status_4xx}};
    ours["latency_ms"] = {{"min", r.min_ms}, {"max", r.max_ms}, {"mean", r.mean_ms}};
    ours["percentiles"] = json::array();
    for (const Percentile& p : r.percentiles)
      ours["percentiles"].push_back({{"percentile", p.q}, {"ms", p.ms}, {"count", p.at_or_below}});
    ours["slo"] = json::array();
    for (const SloResult& slo : r.slos)
      ours["slo"].push_back(
          {{"title", slo.slo.title},
           {"type", slo.slo.type == Slo::Type::kLatency ? "latency" : "error"},
           {"objective", slo.slo.objective},
           {"threshold", slo.slo.threshold},
           {"value", slo.value},
           {"pass", slo.pass},
           {"margin", slo.margin},
           {"over", slo.over},
           {"counts", slo.slo.type == Slo::Type::kError ? slo.slo.errors.ToString() : ""}});
    ours["reliability"] = {
        {"retry",
         {{"enabled", item.strategy.retry.enabled},
          {"retries", r.retries},
          {"denied_by_budget", r.retries_denied}}},
        {"failure_budget",
         {{"enabled", item.strategy.failure_budget.enabled},
          {"exhausted", r.budget_exhausted},
          {"reason", r.budget_reason},
          {"stopped_at_ms", r.budget_stopped_at_ns / 1e6},
          {"cancelled_requests", r.cancelled}}},
        {"watchdog",
         {{"enabled", item.strategy.watchdog.enabled}, {"cancelled", r.watchdog_cancels}}}};
    ours["connections"] = r.connections;
    ours["unsent"] = r.unsent;
    ours["fault_windows"] = json::array();
    for (const ItemFaults::Window& w : r.faults.windows)
      ours["fault_windows"].push_back({{"fault", w.name},
                                       {"type", w.type},
                                       {"start_ms", w.start_ns / 1e6},
                                       {"end_ms", (w.end_ns > 0 ? w.end_ns : r.total_ns) / 1e6}});
    std::map<std::string, uint64_t> counts = EventCounts(r);
    ours["fault_events"] = counts;
    if (!r.setup_error.empty()) ours["setup_error"] = r.setup_error;
    ir["fault"] = ours;
    (*scen)["results"].push_back(ir);
  }
  root["fault"] = {{"items", s.items.size()}, {"failed", s.failed}};
  return root;
}

// ------------------------------------------------------------------ JUnit

std::string JunitReport(const RunSummary& s) {
  std::string x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  double total = (s.end_unix_ns - s.start_unix_ns) / 1e9;
  absl::StrAppend(
      &x, absl::StrFormat(
              "<testsuites name=\"fault scenario\" tests=\"%d\" failures=\"%d\" time=\"%.3f\">\n",
              s.items.size(), s.failed, total));
  size_t i = 0;
  while (i < s.items.size()) {
    const Scenario* sc = s.items[i].scenario;
    size_t j = i, failures = 0;
    double time = 0;
    while (j < s.items.size() && s.items[j].scenario == sc) {
      failures += !s.items[j].passed;
      time += s.items[j].total_ns / 1e9;
      ++j;
    }
    absl::StrAppend(&x, absl::StrFormat("  <testsuite name=\"%s\" tests=\"%d\" failures=\"%d\" "
                                        "time=\"%.3f\" timestamp=\"%s\">\n",
                                        cli::MarkupEscape(sc->title), j - i, failures, time,
                                        IsoTime(s.items[i].start_unix_ns)));
    for (size_t k = i; k < j; ++k) {
      const ItemRun& r = s.items[k];
      absl::StrAppend(
          &x, absl::StrFormat("    <testcase classname=\"%s\" name=\"%s\" time=\"%.3f\">\n",
                              cli::MarkupEscape(sc->title),
                              cli::MarkupEscape(absl::StrCat("items[", k - i, "] ", r.item->call.method, " ",
                                                  r.item->call.url)),
                              r.total_ns / 1e9));
      if (!r.passed)
        absl::StrAppend(
            &x, "      <failure message=\"", cli::MarkupEscape(r.reasons.empty() ? "failed" : r.reasons[0]),
            "\" type=\"scenario\">", cli::MarkupEscape(absl::StrJoin(r.reasons, "\n")), "</failure>\n");
      absl::StrAppend(
          &x, "      <system-out>",
          cli::MarkupEscape(absl::StrFormat("%s; %d requests; p50 %s, p95 %s; errors: %d transport, %d "
                                 "timeouts, %d watchdog, %d 5xx; retries %d",
                                 StrategyText(*r.item), r.requests.size(),
                                 Ms(r.percentiles.size() > 1 ? r.percentiles[1].ms : 0),
                                 Ms(r.percentiles.size() > 3 ? r.percentiles[3].ms : 0),
                                 r.transport_errors, r.timeouts, r.watchdog_cancels, r.status_5xx,
                                 r.retries)),
          "</system-out>\n    </testcase>\n");
    }
    x += "  </testsuite>\n";
    i = j;
  }
  x += "</testsuites>\n";
  return x;
}

// ------------------------------------------------------------------- HTML

namespace {

constexpr int kW = 760, kH = 220, kL = 56, kR = 16, kT = 14, kB = 34;

std::string Axis(double xmax_s, double ymax, const std::string& ylabel) {
  std::string a;
  absl::StrAppend(
      &a, absl::StrFormat("<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>", kL,
                          kH - kB, kW - kR, kH - kB));
  absl::StrAppend(
      &a, absl::StrFormat("<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>", kL, kT,
                          kL, kH - kB));
  for (int i = 0; i <= 4; ++i) {
    const double x = kL + (kW - kL - kR) * i / 4.0;
    const double y = kH - kB - (kH - kT - kB) * i / 4.0;
    absl::StrAppend(
        &a, absl::StrFormat(
                "<text x=\"%.1f\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">%.2gs</text>", x,
                kH - kB + 14, xmax_s * i / 4));
    absl::StrAppend(
        &a,
        absl::StrFormat("<text x=\"%d\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">%.3g</text>",
                        kL - 4, y + 4, ymax * i / 4));
  }
  absl::StrAppend(&a,
                  absl::StrFormat("<text x=\"12\" y=\"%d\" class=\"label\" transform=\"rotate(-90 "
                                  "12 %d)\" text-anchor=\"middle\">%s</text>",
                                  kH / 2, kH / 2, ylabel));
  return a;
}

std::string Windows(const ItemRun& r, int64_t span) {
  std::string out;
  static const char* kColours[] = {"#f5a623", "#bd10e0", "#4a90e2",
                                   "#50e3c2", "#b8e986", "#d0021b"};
  for (size_t i = 0; i < r.faults.windows.size(); ++i) {
    const ItemFaults::Window& w = r.faults.windows[i];
    const int64_t end = w.end_ns > 0 ? w.end_ns : span;
    const double x0 = kL + (kW - kL - kR) * static_cast<double>(w.start_ns) / span;
    const double x1 = kL + (kW - kL - kR) * static_cast<double>(std::min(end, span)) / span;
    size_t colour = 0;
    for (size_t k = 0; k < r.faults.names.size(); ++k)
      if (r.faults.names[k] == w.name) colour = k;
    absl::StrAppend(
        &out, absl::StrFormat("<rect class=\"fault-window\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" "
                              "height=\"%d\" fill=\"%s\" "
                              "fill-opacity=\"0.18\"><title>%s: %.2fs to %.2fs</title></rect>",
                              x0, kT, std::max(1.0, x1 - x0), kH - kT - kB, kColours[colour % 6],
                              cli::MarkupEscape(w.name), w.start_ns / 1e9, end / 1e9));
  }
  return out;
}

std::string LatencyPlot(const ItemRun& r) {
  const int64_t span = Span(r);
  double ymax = 1;
  for (const RequestRecord& q : r.requests) ymax = std::max(ymax, q.r.LatencyMs());
  ymax *= 1.1;
  std::string svg = absl::StrFormat(
      "<svg class=\"plot latency\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
      "viewBox=\"0 0 %d %d\" role=\"img\"><title>Latency over time</title>",
      kW, kH, kW, kH);
  svg += Windows(r, span);
  svg += Axis(span / 1e9, ymax, "latency (ms)");
  const size_t stride = std::max<size_t>(1, r.requests.size() / 4000);
  for (size_t i = 0; i < r.requests.size(); i += stride) {
    const RequestRecord& q = r.requests[i];
    const double x =
        kL + (kW - kL - kR) * static_cast<double>(std::max<int64_t>(0, q.offset_ns)) / span;
    const double y = kH - kB - (kH - kT - kB) * q.r.LatencyMs() / ymax;
    const bool bad = q.r.failure != Failure::kNone || q.r.status >= 500 || !q.expect_pass;
    absl::StrAppend(&svg,
                    absl::StrFormat("<circle class=\"%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\"/>",
                                    bad ? "pt bad" : "pt", x, y));
  }
  svg += "</svg>";
  return svg;
}

std::string PercentilePlot(const ItemRun& r) {
  double ymax = 1;
  for (const Percentile& p : r.percentiles) ymax = std::max(ymax, p.ms);
  for (const SloResult& s : r.slos)
    if (s.slo.type == Slo::Type::kLatency) ymax = std::max(ymax, s.slo.threshold);
  ymax *= 1.15;
  std::string svg = absl::StrFormat(
      "<svg class=\"plot percentiles\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
      "height=\"%d\" "
      "viewBox=\"0 0 %d %d\" role=\"img\"><title>Latency percentiles</title>",
      kW, kH, kW, kH);
  absl::StrAppend(
      &svg, absl::StrFormat("<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>", kL,
                            kH - kB, kW - kR, kH - kB));
  const int n = static_cast<int>(r.percentiles.size());
  const double slot = n ? (kW - kL - kR) / static_cast<double>(n) : 0;
  for (int i = 0; i < n; ++i) {
    const Percentile& p = r.percentiles[i];
    const double h = (kH - kT - kB) * p.ms / ymax;
    const double x = kL + slot * i + slot * 0.2;
    absl::StrAppend(
        &svg,
        absl::StrFormat(
            "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"><title>p%g: "
            "%.1f ms</title></rect>"
            "<text x=\"%.1f\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">p%g</text>"
            "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"middle\">%.1f ms</text>",
            x, kH - kB - h, slot * 0.6, h, p.q, p.ms, x + slot * 0.3, kH - kB + 14, p.q,
            x + slot * 0.3, kH - kB - h - 4, p.ms));
  }
  for (const SloResult& s : r.slos) {
    if (s.slo.type != Slo::Type::kLatency) continue;
    const double y = kH - kB - (kH - kT - kB) * s.slo.threshold / ymax;
    absl::StrAppend(
        &svg,
        absl::StrFormat("<line class=\"slo %s\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" "
                        "y2=\"%.1f\"><title>%s</title></line>"
                        "<text x=\"%d\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">%s</text>",
                        s.pass ? "ok" : "failed", kL, y, kW - kR, y, cli::MarkupEscape(s.slo.title), kW - kR,
                        y - 3, cli::MarkupEscape(s.slo.title)));
  }
  svg += "</svg>";
  return svg;
}

std::string ErrorPlot(const ItemRun& r) {
  const int64_t span = Span(r);
  constexpr int kBuckets = 20;
  std::vector<int> total(kBuckets), bad(kBuckets);
  for (const RequestRecord& q : r.requests) {
    const int b = std::clamp<int>(
        static_cast<int>(kBuckets * std::max<int64_t>(0, q.offset_ns) / span), 0, kBuckets - 1);
    ++total[b];
    bad[b] += q.r.failure != Failure::kNone || q.r.status >= 500;
  }
  std::string svg = absl::StrFormat(
      "<svg class=\"plot errors\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
      "viewBox=\"0 0 %d %d\" role=\"img\"><title>Error rate over time</title>",
      kW, kH, kW, kH);
  svg += Windows(r, span);
  svg += Axis(span / 1e9, 100, "errors (%)");
  const double slot = (kW - kL - kR) / static_cast<double>(kBuckets);
  for (int b = 0; b < kBuckets; ++b) {
    if (total[b] == 0) continue;
    const double pct = 100.0 * bad[b] / total[b];
    const double h = (kH - kT - kB) * pct / 100;
    absl::StrAppend(
        &svg,
        absl::StrFormat("<rect class=\"errbar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                        "height=\"%.1f\"><title>%.1f%% of %d "
                        "requests (transport, timeout, watchdog or 5xx)</title></rect>",
                        kL + slot * b + 1, kH - kB - h, slot - 2, std::max(h, 0.5), pct, total[b]));
  }
  svg += "</svg>";
  return svg;
}

}  // namespace

std::string HtmlReport(const RunSummary& s) {
  std::string h =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<title>fault scenario report</title><style>"
      "body{font-family:sans-serif;margin:2em;color:#222;max-width:900px}"
      "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 6px;"
      "font-size:12px;text-align:left}.pass{color:#1a7f37}.fail{color:#cf222e}"
      "svg{display:block;margin:.5em 0;background:#fafafa;border:1px solid #eee}"
      ".axis{stroke:#888}.tick,.label{font-size:10px;fill:#555}.pt{fill:#4a6fe3}.pt.bad{fill:#"
      "cf222e}"
      ".bar{fill:#4a6fe3}.errbar{fill:#cf222e}.slo{stroke-width:1.5;stroke-dasharray:4 3}"
      ".slo.ok{stroke:#1a7f37}.slo.failed{stroke:#cf222e}section{border-top:2px solid "
      "#ddd;margin-top:1.5em}"
      "</style></head><body>\n";
  absl::StrAppend(&h, "<h1>Scenarios Report</h1><p>Start: ", Time(s.start_unix_ns),
                  "<br>End: ", Time(s.end_unix_ns), "<br>Items: ", s.items.size(),
                  ", <span class=\"pass\">passed: ", s.items.size() - s.failed,
                  "</span>, <span class=\"fail\">failed: ", s.failed, "</span></p>\n");
  const Scenario* current = nullptr;
  for (const ItemRun& r : s.items) {
    const Item& item = *r.item;
    if (r.scenario != current) {
      current = r.scenario;
      absl::StrAppend(&h, "<h2>Scenario: ", cli::MarkupEscape(current->title), "</h2>");
      if (current->description)
        absl::StrAppend(&h, "<p><em>", cli::MarkupEscape(*current->description), "</em></p>");
    }
    absl::StrAppend(&h, "<section class=\"item\"><h3><code>", cli::MarkupEscape(item.call.method), "</code> ",
                    cli::MarkupEscape(item.call.url), " — <span class=\"",
                    r.passed ? "pass\">Passed" : "fail\">Failed", "</span></h3>\n");
    if (!r.passed) {
      h += "<ul class=\"reasons\">";
      for (const std::string& why : r.reasons)
        absl::StrAppend(&h, "<li class=\"fail\">", cli::MarkupEscape(why), "</li>");
      h += "</ul>";
    }
    absl::StrAppend(&h, "<p>Strategy: ", cli::MarkupEscape(StrategyText(item)), "</p>");
    for (const std::string& c : ControlsText(item.strategy))
      absl::StrAppend(&h, "<p>", cli::MarkupEscape(c), "</p>");
    if (!item.faults.empty()) {
      const std::map<std::string, uint64_t> counts = EventCounts(r);
      h += "<table><tr><th>Fault</th><th>In force</th><th>Applied</th></tr>";
      for (size_t i = 0; i < item.faults.size() && i < r.faults.names.size(); ++i) {
        std::vector<std::string> when;
        for (const ItemFaults::Window& w : r.faults.windows)
          if (w.name == r.faults.names[i])
            when.push_back(w.end_ns > 0
                               ? absl::StrFormat("%.2fs–%.2fs", w.start_ns / 1e9, w.end_ns / 1e9)
                               : std::string("throughout"));
        absl::StrAppend(&h, "<tr><td>", cli::MarkupEscape(FaultText(item.faults[i])), "</td><td>",
                        cli::MarkupEscape(absl::StrJoin(when, ", ")), "</td><td>",
                        counts.count(r.faults.names[i]) ? counts.at(r.faults.names[i]) : 0,
                        "</td></tr>");
      }
      h += "</table>";
    }
    if (!r.setup_error.empty()) {
      absl::StrAppend(&h, "<p class=\"fail\">Could not run: ", cli::MarkupEscape(r.setup_error),
                      "</p></section>\n");
      continue;
    }
    const size_t n = r.requests.size();
    absl::StrAppend(
        &h, absl::StrFormat("<table><tr><th>Requests</th><th>Transport "
                            "errors</th><th>Timeouts</th><th>Watchdog</th><th>5xx</th>"
                            "<th>Min</th><th>Mean</th><th>Max</th><th>Expectation "
                            "failures</th><th>Retries</th><th>Total time</th></tr>"
                            "<tr><td>%d</td><td>%d</td><td>%d</td><td>%d</td><td>%d</td><td>%s</"
                            "td><td>%s</td><td>%s</td><td>%d</td>"
                            "<td>%d (%d refused)</td><td>%.2fs</td></tr></table>",
                            n, r.transport_errors, r.timeouts, r.watchdog_cancels, r.status_5xx,
                            Ms(r.min_ms), Ms(r.mean_ms), Ms(r.max_ms), r.expectation_failures,
                            r.retries, r.retries_denied, r.total_ns / 1e9));
    if (r.budget_exhausted)
      absl::StrAppend(&h, "<p class=\"fail\">", cli::MarkupEscape(r.budget_reason),
                      absl::StrFormat("; stopped at %.2fs", r.budget_stopped_at_ns / 1e9), "</p>");
    if (!r.slos.empty()) {
      h += "<table><tr><th>SLO</th><th>Value</th><th>Margin</th><th>Result</th></tr>";
      for (const SloResult& slo : r.slos)
        absl::StrAppend(&h, "<tr><td>", cli::MarkupEscape(slo.slo.title), "</td><td>",
                        slo.slo.type == Slo::Type::kLatency ? Ms(slo.value)
                                                            : absl::StrFormat("%.2f%%", slo.value),
                        "</td><td>", cli::MarkupEscape(slo.margin), "</td><td class=\"",
                        slo.pass ? "pass\">pass" : "fail\">fail", "</td></tr>");
      h += "</table>";
    }
    h += "<h4>Latency over time (fault windows shaded)</h4>" + LatencyPlot(r);
    h += "<h4>Latency percentiles</h4>" + PercentilePlot(r);
    h += "<h4>Error rate over time</h4>" + ErrorPlot(r);
    h += "</section>\n";
  }
  h += "</body></html>\n";
  return h;
}

// ------------------------------------------------------------------ files

absl::Status WriteFileAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return absl::InvalidArgumentError(absl::StrCat(path, ": ", strerror(errno)));
  size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = write(fd, text.data() + off, text.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      close(fd);
      unlink(tmp.c_str());
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", strerror(err)));
    }
    off += n;
  }
  if (close(fd) != 0 || rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    unlink(tmp.c_str());
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", strerror(err)));
  }
  return absl::OkStatus();
}

namespace {
void EmitYaml(YAML::Emitter& e, const nlohmann::json& j) {
  if (j.is_object()) {
    e << YAML::BeginMap;
    for (auto it = j.begin(); it != j.end(); ++it) {
      e << YAML::Key << it.key() << YAML::Value;
      EmitYaml(e, it.value());
    }
    e << YAML::EndMap;
  } else if (j.is_array()) {
    e << YAML::BeginSeq;
    for (const auto& v : j) EmitYaml(e, v);
    e << YAML::EndSeq;
  } else if (j.is_null()) {
    e << YAML::Null;
  } else if (j.is_string()) {
    e << j.get<std::string>();
  } else {
    e << j.dump();
  }
}
}  // namespace

std::string JsonToYaml(const nlohmann::json& j) {
  YAML::Emitter e;
  EmitYaml(e, j);
  return std::string(e.c_str()) + "\n";
}

}  // namespace fault::scenario
