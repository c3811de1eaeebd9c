// libFuzzer target: arbitrary bytes as a policy file. Besides not crashing,
// whatever parses must survive the show round trip: the canonical text parses
// again to the same policies.
#include <google/protobuf/util/message_differencer.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "supervisor/policy/loader.h"

namespace {

void ClearSources(fault::v1::PolicySet* set) {
  for (auto& p : *set->mutable_policies()) {
    for (auto& t : *p.mutable_targets()) t.clear_source();
  }
}

void Check(std::string_view text, std::string_view filename) {
  absl::StatusOr<fault::v1::PolicySet> set =
      fault::policy::ParsePolicyText(text, filename);
  if (!set.ok()) {
    if (set.status().message().empty()) {
      std::fprintf(stderr, "error without a message\n");
      std::abort();
    }
    return;
  }
  const std::string canonical = fault::policy::FormatPolicySet(*set);
  absl::StatusOr<fault::v1::PolicySet> again =
      fault::policy::ParsePolicyText(canonical, "canonical.yaml");
  if (!again.ok()) {
    std::fprintf(stderr, "canonical form does not parse:\n%s\n%s\n",
                 canonical.c_str(),
                 std::string(again.status().message()).c_str());
    std::abort();
  }
  fault::v1::PolicySet a = *set, b = *again;
  ClearSources(&a);
  ClearSources(&b);
  if (!google::protobuf::util::MessageDifferencer::Equals(a, b)) {
    std::fprintf(
        stderr, "round trip changed the policies:\n%s\n---\n%s\n---\n%s\n",
        canonical.c_str(), a.DebugString().c_str(), b.DebugString().c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  Check(text, "fuzz.yaml");
  Check(text, "fuzz.json");
  return 0;
}
