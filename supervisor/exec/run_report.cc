#include "supervisor/exec/run_report.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "supervisor/exec/event_log.h"

namespace fault::exec {
namespace {

uint64_t Delta(const std::vector<uint64_t>& now, const std::vector<uint64_t>& base,
               size_t i) {
  uint64_t n = i < now.size() ? now[i] : 0;
  uint64_t b = i < base.size() ? base[i] : 0;
  return n > b ? n - b : 0;
}

// Breakdown lines per rule; the rest is summed up in one line.
constexpr size_t kMaxBreakdownLines = 6;

}  // namespace

void RunReport::BeginGeneration(std::vector<std::string> names,
                                std::vector<uint16_t> syscall_owner) {
  names_ = std::move(names);
  syscall_owner_ = std::move(syscall_owner);
  for (const std::string& n : names_) {
    if (stats_.emplace(n, RuleStats{}).second) order_.push_back(n);
  }
}

void RunReport::AddCounters(const CounterSnapshot& now, const CounterSnapshot& baseline) {
  for (size_t i = 0; i < names_.size(); ++i) {
    uint64_t matched = Delta(now.rule_matched, baseline.rule_matched, i);
    uint64_t fired = Delta(now.rule_fired, baseline.rule_fired, i);
    // A syscall fault counts on its own record; whether the reader also
    // counts its owning rule is the reader's business, so take the larger.
    uint64_t sys_matched = 0, sys_fired = 0;
    for (size_t j = 0; j < syscall_owner_.size(); ++j) {
      if (syscall_owner_[j] != i) continue;
      sys_matched += Delta(now.syscall_matched, baseline.syscall_matched, j);
      sys_fired += Delta(now.syscall_fired, baseline.syscall_fired, j);
    }
    RuleStats& s = stats_[names_[i]];
    s.matched += std::max(matched, sys_matched);
    s.fired += std::max(fired, sys_fired);
  }
}

void RunReport::AddEvent(const fault_event& e) { AddEvent(e, names_); }

void RunReport::AddEvent(const fault_event& e, const std::vector<std::string>& names) {
  std::string name =
      e.rule < names.size() ? names[e.rule] : absl::StrCat("rule", e.rule);
  if (stats_.emplace(name, RuleStats{}).second) order_.push_back(name);
  std::string target(e.target, strnlen(e.target, sizeof(e.target)));
  ++stats_[name].by_kind_and_target[{EffectName(e.effect), target}];
}

std::vector<fault::v1::RuleCounters> RunReport::Counters() const {
  std::vector<fault::v1::RuleCounters> out;
  for (const std::string& name : order_) {
    const RuleStats& s = stats_.at(name);
    fault::v1::RuleCounters c;
    c.set_policy(name);
    c.set_matched(s.matched);
    c.set_fired(s.fired);
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<std::string> RunReport::NeverFired() const {
  std::vector<std::string> out;
  for (const std::string& n : order_) {
    const RuleStats& s = stats_.at(n);
    if (s.fired == 0 && s.by_kind_and_target.empty()) out.push_back(n);
  }
  return out;
}

std::string RunReport::Summary(const SummaryInfo& info) const {
  std::string out;
  if (order_.empty()) {
    absl::StrAppend(&out, "fault: no policies were loaded; nothing was injected\n");
  }
  for (const std::string& n : order_) {
    const RuleStats& s = stats_.at(n);
    uint64_t event_fired = 0;
    for (const auto& [key, count] : s.by_kind_and_target) event_fired += count;
    // Events can outnumber the counters when the counters of an older
    // generation were lost in a reload; report what is known.
    uint64_t fired = std::max(s.fired, event_fired);
    if (s.matched == 0 && fired == 0) {
      absl::StrAppend(&out, "fault: policy \"", n,
                      "\": never matched \xE2\x80\x94 check its targets\n");
      for (const std::string& b : info.blind_spots) {
        absl::StrAppend(&out, "fault:   or traffic fault could not see: ", b, "\n");
      }
      continue;
    }
    if (fired == 0) {
      absl::StrAppend(&out, "fault: policy \"", n, "\": matched ", s.matched,
                      ", never fired\n");
      continue;
    }
    absl::StrAppend(&out, "fault: policy \"", n, "\": matched ",
                    std::max(s.matched, fired), ", fired ", fired, "\n");
    std::vector<std::pair<uint64_t, std::pair<std::string, std::string>>> lines;
    for (const auto& [key, count] : s.by_kind_and_target) lines.push_back({count, key});
    std::stable_sort(lines.begin(), lines.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    for (size_t i = 0; i < lines.size() && i < kMaxBreakdownLines; ++i) {
      const auto& [count, key] = lines[i];
      absl::StrAppend(&out, "fault:   ", key.first, " ",
                      key.second.empty() ? "(no target)" : key.second, ": ", count,
                      "\n");
    }
    if (lines.size() > kMaxBreakdownLines) {
      uint64_t rest = 0;
      for (size_t i = kMaxBreakdownLines; i < lines.size(); ++i) rest += lines[i].first;
      absl::StrAppend(&out, "fault:   ... ", lines.size() - kMaxBreakdownLines,
                      " more kinds and targets: ", rest, "\n");
    }
  }
  absl::StrAppend(&out, "fault: ", info.events, " events, ", info.dropped, " dropped");
  if (info.incomplete != 0) absl::StrAppend(&out, ", ", info.incomplete, " incomplete");
  if (info.events_lost != 0) {
    absl::StrAppend(&out, ", ", info.events_lost, " not written to --events");
  }
  if (info.has_run_seed) {
    if (info.run_seed_random) {
      absl::StrAppend(&out, "; seed ", info.run_seed,
                      " (random; repeat the run with --seed ", info.run_seed, ")");
    } else {
      absl::StrAppend(&out, "; seed ", info.run_seed, " (--seed)");
    }
  } else if (!order_.empty()) {
    absl::StrAppend(&out, "; every policy has its own seed");
  }
  absl::StrAppend(&out, "\n");
  if (info.dropped != 0) {
    absl::StrAppend(&out,
                    "fault: the event ring was full at times; the per-policy "
                    "counts above are exact, the breakdowns and --events miss ",
                    info.dropped, " events\n");
  }
  return out;
}

}  // namespace fault::exec
