// What a run did: per-rule counters and the fired faults by kind and
// target, folded across policy reloads by rule name, and the one-screen
// summary `fault exec` prints at exit.
//
//   RunReport report;
//   report.BeginGeneration(names, syscall_owners);
//   report.AddEvent(event);                     // for every drained event
//   report.AddCounters(snapshot, baseline);     // before a reload and at exit
//   std::cerr << report.Summary(info);
//
// Thread-compatible.
#ifndef FAULT_SUPERVISOR_EXEC_RUN_REPORT_H_
#define FAULT_SUPERVISOR_EXEC_RUN_REPORT_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "fault/table.h"
#include "fault/v1/control.pb.h"
#include "supervisor/exec/policy_table.h"

namespace fault::exec {

struct RuleStats {
  uint64_t matched = 0;
  uint64_t fired = 0;
  // (effect name, target) -> events.
  std::map<std::pair<std::string, std::string>, uint64_t> by_kind_and_target;
};

struct SummaryInfo {
  uint64_t events = 0;       // events written
  uint64_t dropped = 0;      // the ring was full
  uint64_t incomplete = 0;   // claimed but never written
  uint64_t events_lost = 0;  // drained but not in the --events file
  // The seed policies without their own used; has_run_seed false when all
  // had one.
  bool has_run_seed = false;
  uint64_t run_seed = 0;
  bool run_seed_random = false;
  // Ways the run's traffic may have gone past fault ("io_uring: ..."),
  // said under a policy that never matched so that it is not blamed on
  // the policy's targets alone.
  std::vector<std::string> blind_spots;
};

class RunReport {
 public:
  // The rules of a newly published configuration: names[i] is rules[i];
  // syscall_owner[j] is the rules[] index owning syscall_rules[j].
  void BeginGeneration(std::vector<std::string> names,
                       std::vector<uint16_t> syscall_owner);

  // Adds the counters of the current generation that grew since `baseline`
  // (a rule "matched" when the rule or one of its syscall faults matched).
  void AddCounters(const CounterSnapshot& now, const CounterSnapshot& baseline);

  void AddEvent(const fault_event& event);
  // The same, naming the rule from `names` (the rules of the generation the
  // event was decided under).
  void AddEvent(const fault_event& event, const std::vector<std::string>& names);

  const std::vector<std::string>& current_names() const { return names_; }
  const std::map<std::string, RuleStats>& stats() const { return stats_; }

  // Rules (in first-seen order) that never fired.
  std::vector<std::string> NeverFired() const;

  // Every rule's counters so far, in first-seen order, as the control plane
  // reports them (GetCounters).
  std::vector<fault::v1::RuleCounters> Counters() const;

  // The summary, one "fault: ..." line per entry, newline-terminated.
  std::string Summary(const SummaryInfo& info) const;

 private:
  std::vector<std::string> names_;
  std::vector<uint16_t> syscall_owner_;
  std::vector<std::string> order_;  // every rule name ever seen, first-seen order
  std::map<std::string, RuleStats> stats_;
};

}  // namespace fault::exec

#endif  // FAULT_SUPERVISOR_EXEC_RUN_REPORT_H_
