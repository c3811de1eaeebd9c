// The table compiler: canonical policies (fault.v1.PolicySet) in, the plain
// fixed-size records of shim/include/fault/table.h out.
//
// This is where everything the shim must not do at run time is done once:
// link profiles are merged per direction, CIDRs parsed, errno names turned
// into numbers, percent schedules resolved to absolute nanoseconds, seeds
// assigned. A policy set that does not fit the fixed bounds of the table is
// refused with the bound named; nothing is ever truncated silently.
//
//   FixedSeedSource seeds(42);
//   CompileOptions options{.global_seed = std::nullopt, .seeds = &seeds};
//   absl::StatusOr<CompiledTable> table = CompileTable(set, options);
//   if (!table.ok()) { ...report table.status()...; }
//   segment.Publish(*table->config);
//
// Thread-compatible: no shared state.
#ifndef FAULT_SUPERVISOR_EXEC_TABLE_COMPILER_H_
#define FAULT_SUPERVISOR_EXEC_TABLE_COMPILER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "fault/table.h"
#include "fault/v1/policy.pb.h"
#include "supervisor/exec/seed_source.h"

namespace fault::exec {

struct CompileOptions {
  // `--seed`: applies to every policy that has no seed of its own.
  std::optional<uint64_t> global_seed;
  // Asked once for a run seed when some policy has no seed and there is no
  // global one. Required in that case.
  SeedSource* seeds = nullptr;
  // Used by percent schedule intervals when the policy's schedule has no
  // run_duration_ns of its own. 0: none (such a schedule is an error).
  int64_t run_duration_ns = 0;
  // false: rules are loaded without FAULT_RULE_ACTIVE, so they apply only
  // inside fault_scope_push()/fault::ScopedPolicy scopes (`--scopes-only`).
  bool activate = true;
  // Copied into fault_config.families_mask (the seccomp layer's filter).
  uint64_t families_mask = 0;
};

// What the supervisor keeps about each compiled rule, indexed like
// fault_config.rules[].
struct CompiledRule {
  std::string name;
  uint64_t seed = 0;
  // The policy's protocol faults (http_faults, redis_faults,
  // postgres_faults), which stay out of the table: the stream engine
  // applies them.
  std::shared_ptr<const fault::v1::Policy> protocol;
  // Where the seed came from: "policy", "--seed" or "random".
  std::string seed_origin;
};

struct CompiledTable {
  std::unique_ptr<fault_config> config;  // never null on success
  std::vector<CompiledRule> rules;
  // The seed given to policies without their own (from --seed or chosen at
  // random); nullopt when every policy had one.
  std::optional<uint64_t> run_seed;
  bool run_seed_random = false;
};

absl::StatusOr<CompiledTable> CompileTable(const fault::v1::PolicySet& set,
                                           const CompileOptions& options);

// Compiles `set` as `fault exec` would (no --seed, no --run-duration) and
// throws the table away: the table's bounds (FAULT_MAX_RULES,
// FAULT_MAX_TARGETS_TOTAL, FAULT_MAX_SYSCALL_RULES, FAULT_MAX_PARTITIONS,
// FAULT_MAX_INTERVALS, ...) are checked here and nowhere else, so
// `fault policy validate` calls this to accept exactly what `fault exec`
// accepts.
absl::Status CheckCompiles(const fault::v1::PolicySet& set);

// Bit (1 << family) for every syscall family a rule of `config` uses.
uint64_t SyscallFamiliesMask(const fault_config& config);

}  // namespace fault::exec

#endif  // FAULT_SUPERVISOR_EXEC_TABLE_COMPILER_H_
