// libFuzzer target: arbitrary bytes as a scenario file (first byte even) or
// as an OpenAPI document for `fault scenario generate` (odd). Besides not
// crashing: an error always says why, the faults of every item that parses
// can be checked, and every generated file parses back to eight scenarios.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "supervisor/scenario/generate.h"
#include "supervisor/scenario/item_faults.h"
#include "supervisor/scenario/scenario.h"

namespace {

void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "%s\n%s\n", what, detail.c_str());
  std::abort();
}

void Scenarios(const std::string& text) {
  auto scenarios = fault::scenario::ParseScenarios(text, "fuzz.yaml");
  if (!scenarios.ok()) {
    if (scenarios.status().message().empty()) Fail("error without a message", text);
    return;
  }
  for (const fault::scenario::Scenario& s : *scenarios) {
    for (const fault::scenario::Item& item : s.items) {
      (void)fault::scenario::CheckItemFaults(item, item.strategy.duration_ns);
    }
  }
}

void Generate(const std::string& text) {
  auto files = fault::scenario::GenerateScenarios(text, "openapi.yaml");
  if (!files.ok()) {
    if (files.status().message().empty()) Fail("error without a message", text);
    return;
  }
  for (const fault::scenario::GeneratedFile& f : *files) {
    auto back = fault::scenario::ParseScenarios(f.text, f.name);
    if (!back.ok()) Fail("a generated file does not parse", f.text + "\n" + std::string(back.status().message()));
    if (back->size() != 8) Fail("a generated file has not eight scenarios", f.text);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    Scenarios(text);
  } else {
    Generate(text);
  }
  return 0;
}
