// `fault scenario generate`: from an OpenAPI 3.0/3.1 document (YAML or
// JSON), the Rust tool's eight scenario templates for every endpoint:
// a single 800 ms latency spike; a stair-step repeat (5 x 100 ms); latency
// pulses at 10/40/70% under load; packet loss in a 30%..70% window; jitter
// (80 ms at 8); a 512 KBps bandwidth cap under load; 5% HTTP 500 under load;
// a black hole at 45% for 10% of a load.
//
//   absl::StatusOr<std::vector<GeneratedFile>> f = GenerateScenarios(text, "api.yaml");
//
// Thread-compatible; no I/O.
#ifndef FAULT_SUPERVISOR_SCENARIO_GENERATE_H_
#define FAULT_SUPERVISOR_SCENARIO_GENERATE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace fault::scenario {

struct GeneratedFile {
  std::string name;  // "<operation id>.yaml"
  std::string text;  // eight YAML documents
};

absl::StatusOr<std::vector<GeneratedFile>> GenerateScenarios(const std::string& spec_text,
                                                             const std::string& spec_name);

}  // namespace fault::scenario

#endif  // FAULT_SUPERVISOR_SCENARIO_GENERATE_H_
