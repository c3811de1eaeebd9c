// Loading policies: files (YAML or JSON) and `fault exec` flags both become
// fault.v1.Policy messages through one parser, and are validated with the
// same rules. Every error names where (file:line:column and field, or the
// flag) and why; a failed load returns no policy at all. Loads collect every
// error (up to 50 are reported), one per line of the status message.
//
// Thread safety: every function is reentrant; EffectFlags is filled by CLI11
// while it parses and read afterwards, from one thread.
#ifndef FAULT_SUPERVISOR_POLICY_LOADER_H_
#define FAULT_SUPERVISOR_POLICY_LOADER_H_

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fault/v1/policy.pb.h"

namespace fault::policy {

// Parses the text of a policy file (root: an object keyed by policy name).
// `filename` is used in messages only. YAML and JSON are both accepted.
absl::StatusOr<fault::v1::PolicySet> ParsePolicyText(std::string_view text,
                                                     std::string_view filename);

// Reads and parses each file; policy names must be unique across them.
absl::StatusOr<fault::v1::PolicySet> LoadPolicyFiles(
    const std::vector<std::string>& paths);

// Model-level validation (target rules, observability, budget rules, ...),
// shared by every front end. `where` prefixes messages ("file.yaml:3:5" or
// "flags").
absl::Status ValidatePolicy(const fault::v1::Policy& policy,
                            std::string_view where);

// The same rules for front ends that name their own inputs instead of
// fields (`fault run` names its flags): each problem with the field path it
// is about ("downlink.latency.min", "schedule.intervals"; "" for the policy
// as a whole). Empty when the policy is valid.
struct PolicyProblem {
  std::string path;
  std::string message;
};
std::vector<PolicyProblem> PolicyProblems(const fault::v1::Policy& policy);

// The interval grammar of schedules, "start:10%,duration:50%;start:75%,
// duration:20%": `schedule.intervals` in policy files, and the --*-sched
// flags of `fault run` with the proxy's rules.
struct IntervalGrammar {
  // The proxy's rules: a missing start is 0; a missing duration lasts until
  // the end of the run (for ever when run_duration_ns is 0: INT64_MAX - start
  // ns); percentages need run_duration_ns, and a list that mixes them with
  // durations is resolved to durations against it. Without these rules
  // (policy files) every interval needs both keys, one list holds one kind,
  // and percentages are checked against a run duration later.
  bool proxy_rules = false;
  int64_t run_duration_ns = 0;
  // How messages name the run duration ("percentages need --duration").
  std::string run_duration_name = "run_duration";
  // Parses a duration value; ParseDuration (units.h) when empty.
  std::function<absl::StatusOr<int64_t>(std::string_view)> duration;
};
absl::StatusOr<std::vector<fault::v1::Interval>> ParseIntervals(
    std::string_view text, const IntervalGrammar& grammar = {});

// The effect flags of `fault exec` (--latency, --jitter, --packet-loss,
// --rate, --dns-nxdomain, --deny write=ENOSPC,path=*.db, --target, --seed,
// ...). Add them to a subcommand, then convert what was given.
struct EffectFlags {
  // Raw values as typed, keyed by flag name; repeated flags keep every value.
  std::vector<std::pair<std::string, std::string>> given;
};
// `except`: flags to leave out (names without "--"), for commands whose own
// flags have those names.
void AddEffectFlags(CLI::App* command, EffectFlags* flags,
                    const std::vector<std::string_view>& except = {});

// The inline policy the flags describe, named `name`; std::nullopt when no
// effect flag was given.
absl::StatusOr<std::optional<fault::v1::Policy>> PolicyFromFlags(
    const EffectFlags& flags, std::string_view name = "cli");

// `fault exec` runs either a named policy (`--use NAME`, from `--policy`
// files) or the inline policy its effect flags describe, never both: an error
// naming the flags when both were given.
absl::Status CheckNamedOrInline(std::string_view use_name,
                                const EffectFlags& flags);

// The canonical form of policies as a policy file (YAML, canonical units),
// for `fault policy show`. Parsing it gives back the same policies.
std::string FormatPolicySet(const fault::v1::PolicySet& set);

}  // namespace fault::policy

#endif  // FAULT_SUPERVISOR_POLICY_LOADER_H_
