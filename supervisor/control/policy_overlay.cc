#include "supervisor/control/policy_overlay.h"

#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "supervisor/policy/loader.h"
#include "supervisor/policy/parser.h"

namespace fault::control {

absl::StatusOr<fault::v1::PolicySet> DecodePut(
    const fault::v1::PutPoliciesRequest& request) {
  fault::v1::PolicySet set;
  switch (request.source_case()) {
    case fault::v1::PutPoliciesRequest::kText: {
      const std::string filename =
          request.filename().empty() ? "control" : request.filename();
      absl::StatusOr<fault::v1::PolicySet> parsed =
          fault::policy::ParsePolicyText(request.text(), filename);
      if (!parsed.ok()) return parsed.status();
      set = *std::move(parsed);
      break;
    }
    case fault::v1::PutPoliciesRequest::kPolicies: {
      set = request.policies();
      std::vector<std::string> errors;
      std::set<std::string> names;
      for (int i = 0; i < set.policies_size(); ++i) {
        const fault::v1::Policy& p = set.policies(i);
        const std::string where = absl::StrCat("policies[", i, "]");
        if (absl::Status name =
                fault::policy::internal::CheckPolicyName(p.name());
            !name.ok()) {
          errors.push_back(absl::StrCat(where, ": name: ", name.message()));
          continue;
        }
        if (!names.insert(p.name()).second) {
          errors.push_back(absl::StrCat(where, ": name: \"", p.name(),
                                        "\" is given twice in this request"));
        }
        if (absl::Status s = fault::policy::ValidatePolicy(p, where); !s.ok()) {
          errors.emplace_back(s.message());
        }
      }
      if (!errors.empty())
        return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
      break;
    }
    default:
      return absl::InvalidArgumentError(
          "source: give the policies, either as `policies` or as the `text` of "
          "a policy file");
  }
  if (set.policies_size() == 0) {
    return absl::InvalidArgumentError(
        "the request has no policies (to remove policies use DeletePolicy or "
        "Clear)");
  }
  return set;
}

void PolicyOverlay::Put(const fault::v1::PolicySet& set) {
  changes_.push_back({Change::kPut, set, ""});
}

void PolicyOverlay::Delete(const std::string& name) {
  changes_.push_back({Change::kDelete, {}, name});
}

void PolicyOverlay::Clear() {
  // Nothing before a clear can matter any more.
  changes_.clear();
  changes_.push_back({Change::kClear, {}, ""});
}

fault::v1::PolicySet PolicyOverlay::Apply(
    const fault::v1::PolicySet& base,
    std::vector<fault::v1::PolicyOrigin>* origins) const {
  std::vector<std::pair<fault::v1::Policy, fault::v1::PolicyOrigin>> out;
  for (const fault::v1::Policy& p : base.policies()) {
    out.emplace_back(p, fault::v1::POLICY_ORIGIN_COMMAND_LINE);
  }
  for (const Change& c : changes_) {
    switch (c.kind) {
      case Change::kPut:
        for (const fault::v1::Policy& p : c.put.policies()) {
          bool replaced = false;
          for (auto& [q, origin] : out) {
            if (q.name() != p.name()) continue;
            q = p;
            origin = fault::v1::POLICY_ORIGIN_CONTROL;
            replaced = true;
          }
          if (!replaced) out.emplace_back(p, fault::v1::POLICY_ORIGIN_CONTROL);
        }
        break;
      case Change::kDelete:
        std::erase_if(out,
                      [&](const auto& e) { return e.first.name() == c.name; });
        break;
      case Change::kClear:
        out.clear();
        break;
    }
  }
  fault::v1::PolicySet set;
  if (origins != nullptr) origins->clear();
  for (auto& [p, origin] : out) {
    *set.add_policies() = std::move(p);
    if (origins != nullptr) origins->push_back(origin);
  }
  return set;
}

}  // namespace fault::control
