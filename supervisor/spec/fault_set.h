// The effects of a fault assumption, as policy-file fields, and their
// conversion to a fault.v1.Policy.
//
// A spec's fault values (deny(...), delay(...), latency="50ms", dns_nxdomain=
// "100%", ...) are collected into a FaultSet: the fields of one policy in the
// policy-file format of docs/policy.md. A FaultSet becomes a policy by
// printing it as JSON and parsing that with fault::policy::ParsePolicyText, so
// specs, policy files and flags share one parser and one set of messages.
//
//   FaultSet disk;
//   disk.SetField("latency", "50ms", "slow_disk");
//   disk.AddSyscallRule("write", {{"deny", "ENOSPC"}}, "slow_disk");
//   absl::Status st = Merge(&composed, disk, "slow_disk");    // conflicts
//   absl::StatusOr<fault::v1::Policy> p = ToPolicy("x", composed,
//   "a.star:3:1");
//
// Thread safety: plain values; no shared state.
#ifndef FAULT_SUPERVISOR_SPEC_FAULT_SET_H_
#define FAULT_SUPERVISOR_SPEC_FAULT_SET_H_

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fault/v1/policy.pb.h"

namespace fault::spec {

// One syscall rule: {"deny": "EIO", "path": "*.db", "probability": "50%",
// "when": "3+"} or {"delay": "2s", ...}, as in a policy file.
using SyscallRule = nlohmann::json;

class FaultSet {
 public:
  // A policy field ("latency") or, for the fields whose parts compose
  // independently (dns, timeout, uplink, downlink), a part ("dns.nxdomain").
  // Setting a field another assumption set to a different value is a
  // conflict: the error names both assumptions.
  absl::Status SetField(const std::string& path, const nlohmann::json& value,
                        absl::string_view origin);
  // The rules of one syscall family. A family takes its rules from one
  // assumption; the same rules again are fine, different ones conflict.
  absl::Status SetSyscallRules(const std::string& family,
                               std::vector<SyscallRule> rules,
                               absl::string_view origin);
  absl::Status SetTargets(const nlohmann::json& targets,
                          absl::string_view origin);
  // partition(a, b) between two services; the same pair again (either
  // order) is fine.
  void AddPartition(const std::string& a, const std::string& b);

  // True when no effect was given (targets alone are not an effect).
  bool empty() const {
    return fields_.empty() && syscalls_.empty() && partitions_.empty();
  }
  bool has_partitions() const { return !partitions_.empty(); }
  // True when some effect other than a partition is given.
  bool HasOtherThanPartitions() const {
    return !fields_.empty() || !syscalls_.empty();
  }
  // True when some effect is one only the preload shim applies (network,
  // DNS): statically linked programs cannot observe it.
  bool HasShimOnlyEffects() const { return !fields_.empty(); }
  const std::vector<std::pair<std::string, std::vector<SyscallRule>>>&
  syscalls() const {
    return syscalls_;
  }
  bool has_targets() const { return targets_.has_value(); }

  // The policy's fields as a JSON object in the policy-file format.
  nlohmann::json ToJson() const;

 private:
  friend absl::Status Merge(FaultSet* into, const FaultSet& from);
  struct Field {
    nlohmann::json value;
    std::string origin;
  };
  std::map<std::string, Field> fields_;  // path -> value
  std::vector<std::pair<std::string, std::vector<SyscallRule>>> syscalls_;
  std::map<std::string, std::string> syscall_origin_;
  std::optional<Field> targets_;
  std::vector<std::pair<std::string, std::string>> partitions_;
};

// Adds every effect of `from` to `into`; the first conflict is the error.
absl::Status Merge(FaultSet* into, const FaultSet& from);

// The policy named `name`, parsed and validated by the policy loader. Error
// lines name `where` (e.g. "spec.star:12:5") instead of a position in the
// generated text.
absl::StatusOr<fault::v1::Policy> ToPolicy(absl::string_view name,
                                           const FaultSet& set,
                                           absl::string_view where);

// Why `fault exec` would not apply the effect at `path` (a field path as
// EffectFieldPath gives, or a part such as "uplink.packet_reorder"), or ""
// when it applies it. The policy format accepts these effects, but neither
// the preload shim nor the stream engine implements them: the shim only
// warns, and the fault would do nothing.
std::string NotAppliedByExec(absl::string_view path);

// Why the rules of syscall family `family` cannot be narrowed by a
// policy's targets, or "" when they can. Targets select connections by
// their peer: the preload shim matches them against the peer of a TCP/UDP
// socket for every family, the seccomp layer against the destination of
// connect and sendto. A family that acts on files (read, write, fsync,
// ...) would still apply to every file, and one whose calls have no peer
// when they are decided (accept, io_uring) to none.
std::string TargetsCannotNarrow(absl::string_view family);

// Syscall families a spec may name as keywords (docs/policy.md).
bool IsSyscallFamily(absl::string_view name);
// Keywords of fault_assumption that set policy fields, and where they go
// ("dns_nxdomain" -> "dns.nxdomain"); std::nullopt when not an effect.
std::optional<std::string> EffectFieldPath(absl::string_view keyword);
// Every keyword fault_assumption accepts (for suggestions in errors).
const std::vector<std::string>& AssumptionKeywords();
// Every keyword fault(...) and fault_start(...) accept in a scenario.
const std::vector<std::string>& WindowKeywords();
// The closest keyword within edit distance 2, or "".
std::string SuggestKeyword(absl::string_view word,
                           const std::vector<std::string>& known);

}  // namespace fault::spec

#endif  // FAULT_SUPERVISOR_SPEC_FAULT_SET_H_
