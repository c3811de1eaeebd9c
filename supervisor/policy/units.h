// Human units at the edges of fault: "50ms", "1%", "250ppm", "10mbps", "1mb",
// "ENOSPC". Everything inside is canonical (ns, ppm, bits/s, bytes, errno).
// Errors quote the value and say why: "\"7 ms\" is not a duration: unknown
// unit \" ms\" (use ns, us, ms, s, m or h)"; callers prefix where it was.
// All functions are pure and thread-safe. See docs/policy.md.
#ifndef FAULT_SUPERVISOR_POLICY_UNITS_H_
#define FAULT_SUPERVISOR_POLICY_UNITS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace fault::policy {

// "250us", "50ms", "1.5s", "2m", "1h", "0" -> nanoseconds. Errors say why
// (no unit, unknown unit, negative, overflow).
absl::StatusOr<int64_t> ParseDuration(std::string_view text);

// "1%", "0.2%", "250ppm", "0.5" (a fraction) -> parts per million, 0..1e6.
absl::StatusOr<uint32_t> ParseProbability(std::string_view text);

// "500bps", "64kbps", "10mbps", "1gbps" -> bits per second (decimal SI).
absl::StatusOr<uint64_t> ParseRate(std::string_view text);

// "512", "512b", "16kb", "1mb", "2gb" -> bytes (binary: 1kb = 1024 bytes).
absl::StatusOr<uint64_t> ParseSize(std::string_view text);

// "ENOSPC" -> 28 (this platform's number). Case-sensitive errno names.
absl::StatusOr<int> ErrnoFromName(std::string_view name);
// 28 -> "ENOSPC"; "" when unknown.
std::string_view ErrnoName(int err);

// Inverse formatting for `fault policy show` and reports.
std::string FormatDuration(int64_t ns);       // "7ms", "1.5s"
std::string FormatProbability(uint32_t ppm);  // "0.2%", "250ppm"
std::string FormatRate(uint64_t bps);         // "1mbps"
std::string FormatSize(uint64_t bytes);       // "16kb"

}  // namespace fault::policy

#endif  // FAULT_SUPERVISOR_POLICY_UNITS_H_
