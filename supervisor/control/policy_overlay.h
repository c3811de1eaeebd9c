// The control plane's changes to a run's policies, kept apart from the
// policies the command line gave so that a reload of the files can apply
// them again (docs/control.md, "Semantics").
//
//   PolicyOverlay overlay;
//   absl::StatusOr<fault::v1::PolicySet> set = DecodePut(request);  //
//   validated overlay.Put(*set); fault::v1::PolicySet effective =
//   overlay.Apply(files, &origins);
//
// Thread-compatible.
#ifndef FAULT_SUPERVISOR_CONTROL_POLICY_OVERLAY_H_
#define FAULT_SUPERVISOR_CONTROL_POLICY_OVERLAY_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "fault/v1/control.pb.h"
#include "fault/v1/policy.pb.h"

namespace fault::control {

// The policies of a PutPoliciesRequest, parsed and validated exactly as a
// policy file is: the text form through the file parser (errors name
// filename:line:column and the field), the canonical form through the same
// model rules (errors name "policies[INDEX]" and the field). Names must be
// present and unique within the request. INVALID_ARGUMENT on any problem.
absl::StatusOr<fault::v1::PolicySet> DecodePut(
    const fault::v1::PutPoliciesRequest& request);

class PolicyOverlay {
 public:
  // Each policy replaces the one of the same name, in place, or is added
  // at the end.
  void Put(const fault::v1::PolicySet& set);
  // Removes the policy of that name (a no-op on a set that has none).
  void Delete(const std::string& name);
  // Removes every policy.
  void Clear();

  // `base` with every change applied in the order made. `origins`, when
  // given, gets one entry per resulting policy.
  fault::v1::PolicySet Apply(
      const fault::v1::PolicySet& base,
      std::vector<fault::v1::PolicyOrigin>* origins = nullptr) const;

  bool empty() const { return changes_.empty(); }

 private:
  struct Change {
    enum Kind { kPut, kDelete, kClear } kind;
    fault::v1::PolicySet put;
    std::string name;
  };
  std::vector<Change> changes_;
};

}  // namespace fault::control

#endif  // FAULT_SUPERVISOR_CONTROL_POLICY_OVERLAY_H_
