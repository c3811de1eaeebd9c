// Internal to the policy module: the one parser from a YAML node tree to
// fault.v1.Policy, shared by policy files and `fault exec` flags, and the
// model validation. Front ends (loader.cc) turn the collected problems into
// messages that name a file position or a flag.
#ifndef FAULT_SUPERVISOR_POLICY_PARSER_H_
#define FAULT_SUPERVISOR_POLICY_PARSER_H_

#include <yaml-cpp/yaml.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "fault/v1/policy.pb.h"
#include "supervisor/policy/loader.h"

namespace fault::policy::internal {

// One thing wrong with one policy. `path` is the field path inside the
// policy ("latency.min", "targets[1]", "syscalls[0].write.probability"),
// empty for the policy as a whole.
struct Problem {
  std::string policy;
  std::string path;
  YAML::Mark mark;  // null_mark() when unknown
  std::string message;
};

inline bool HasMark(const YAML::Mark& m) { return m.line >= 0 && m.pos >= 0; }

// Collects problems while parsing and validating one policy. Remembers where
// every field path was written so that model-level rules can point at it.
class ParseContext {
 public:
  ParseContext(std::string policy, YAML::Mark policy_mark,
               std::vector<Problem>* problems)
      : policy_(std::move(policy)),
        policy_mark_(policy_mark),
        problems_(problems) {}

  const std::string& policy() const { return policy_; }

  // Records that `path` was written at `node` (for later Fail(path, ...)).
  void Note(const std::string& path, const YAML::Node& node);
  // A problem with the value `node` at `path`.
  void Fail(const YAML::Node& node, const std::string& path,
            std::string message);
  // A problem found on the model: located through the noted paths.
  void Fail(const std::string& path, std::string message);

  // Nodes synthesized from a string ("deny(ENOSPC)") have no position; their
  // problems are reported at this mark while set.
  void set_fallback(YAML::Mark m) { fallback_ = m; }

  size_t problem_count() const { return problems_->size(); }

 private:
  YAML::Mark Locate(const std::string& path) const;

  std::string policy_;
  YAML::Mark policy_mark_;
  YAML::Mark fallback_ = YAML::Mark::null_mark();
  std::vector<Problem>* problems_;
  absl::flat_hash_map<std::string, YAML::Mark> marks_;
};

// The body of one policy (the map under its name) -> `out`. Problems go to
// `ctx`; `out` is meaningful only when none were added.
void ParsePolicyBody(const YAML::Node& body, ParseContext& ctx,
                     fault::v1::Policy* out);

// The model rules (targets, observability, budgets, ranges, ...).
void ValidateModel(const fault::v1::Policy& policy, ParseContext& ctx);

// The interval grammar of schedules (ParseIntervals in loader.h).
absl::StatusOr<std::vector<fault::v1::Interval>> ParseIntervalList(
    std::string_view text, const IntervalGrammar& grammar);

// Policy names: letters, digits, '_', '-', '.'; at most 63 bytes.
absl::Status CheckPolicyName(std::string_view name);

// "tcp://10.0.0.0/8:443", "udp://[::1]:53", "any://:8000-8100",
// "tcp://api.example.com:443" -> a Target (protocol, cidr or hostname, ports).
absl::StatusOr<fault::v1::Target> ParseTargetUrl(std::string_view url);
// The inverse, for `fault policy show`: "tcp://10.0.0.0/8:443".
std::string FormatTargetUrl(const fault::v1::Target& target);

// strace's when= grammar: "3", "3+", "3+2", "2..5", "2..10+3".
absl::StatusOr<fault::v1::When> ParseWhen(std::string_view text);
std::string FormatWhen(const fault::v1::When& when);

// Names as written in files and flags.
std::string_view FamilyName(fault::v1::SyscallFault::Family family);
bool IsFileFamily(fault::v1::SyscallFault::Family family);

// Closest candidate within a small edit distance, or "".
std::string Suggest(std::string_view word,
                    const std::vector<std::string_view>& candidates);

// The line and column (1-based) of the first byte of `text` that is not
// valid UTF-8, if any.
std::optional<std::pair<size_t, size_t>> InvalidUtf8(std::string_view text);

}  // namespace fault::policy::internal

#endif  // FAULT_SUPERVISOR_POLICY_PARSER_H_
