// Reading the files a user names on the command line: policy files, spec
// files, Starlark scripts and the modules they load.
//
// Such a path may name anything: `--policy /dev/zero` would otherwise be
// read until memory runs out, a FIFO would block forever, a directory gives
// an obscure stream error. ReadInputFile opens without blocking, refuses
// what is not a regular file and what is larger than the limit from fstat,
// before reading a byte, and then reads at most the limit (a file that grows
// meanwhile is refused too).
//
//   absl::StatusOr<std::string> text = ReadInputFile(path, kMaxPolicyBytes);
//   if (!text.ok()) { ...print text.status().message()... }
//
// Errors start with the path: "p.yaml: too large (5242880 bytes; policy
// files are at most 1 MiB)". Thread-safe (no shared state).
#ifndef FAULT_SUPERVISOR_CLI_INPUT_FILE_H_
#define FAULT_SUPERVISOR_CLI_INPUT_FILE_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace fault::cli {

// Policy files (docs/policy.md): the YAML parser's worst cases stay small.
inline constexpr size_t kMaxPolicyBytes = size_t{1} << 20;
// Spec files and Starlark scripts (docs/spec.md, docs/starlark.md).
inline constexpr size_t kMaxScriptBytes = size_t{4} << 20;

// The contents of the regular file `path`, at most `max_bytes` long. `what`
// names the kind of file in the size error ("policy files").
absl::StatusOr<std::string> ReadInputFile(const std::string& path,
                                          size_t max_bytes,
                                          std::string_view what);

}  // namespace fault::cli

#endif  // FAULT_SUPERVISOR_CLI_INPUT_FILE_H_
