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

// The effect flags of `fault exec` (--latency, --jitter, --packet-loss,
// --rate, --dns-nxdomain, --deny write=ENOSPC,path=*.db, --target, --seed,
// ...). Add them to a subcommand, then convert what was given.
struct EffectFlags {
  // Raw values as typed, keyed by flag name; repeated flags keep every value.
  std::vector<std::pair<std::string, std::string>> given;
};
void AddEffectFlags(CLI::App* command, EffectFlags* flags);

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
