// The production Decider: the shared decision engine (shim/engine) over the
// policy table, so a notified syscall is decided exactly as the preload shim
// decides the same call (same rules, same `when` counters, same seeded
// random stream, same counters).
//
// Thread-safety: one instance per NotifyLoop thread; the table may be
// republished concurrently by the supervisor and read by the shim.
#ifndef FAULT_SUPERVISOR_SECCOMP_ENGINE_DECIDER_H_
#define FAULT_SUPERVISOR_SECCOMP_ENGINE_DECIDER_H_

#include "fault/table.h"
#include "shim/engine/engine.h"
#include "supervisor/seccomp/decider.h"
#include "supervisor/seccomp/partition.h"

namespace fault::seccomp {

class EngineDecider : public Decider {
 public:
  // `table` must outlive the decider. `partitions` (optional) knows which
  // launched program listens where, for partition(a, b) rules.
  explicit EngineDecider(fault_table* table,
                         PartitionMap* partitions = nullptr);

  bool NeedsDetail(Family family) override;
  Decision Decide(const SyscallContext& call) override;
  uint64_t generation() const override { return have_index_ ? idx_.generation : 0; }

 private:
  bool Refresh();
  Decision DecidePartition(const SyscallContext& call);
  // The syscall rules of one family (the call's own, or fsync's for an
  // fdatasync call, as the shim does).
  // connect() of a destination a rule with stream effects selects: the
  // connect-time decision, then kRedirect.
  Decision DecideStream(const SyscallContext& call);
  Decision DecideFamily(const SyscallContext& call, int family);

  fault_table* table_;
  PartitionMap* partitions_;
  fault::engine::Index idx_;
  bool have_index_ = false;
  // Per family: some syscall rule of it has a path glob, or (connect/send)
  // its owning rule has targets.
  uint64_t detail_families_ = 0;
  // Rules (bit i: rules[i]) with targets.
  uint64_t targeted_rules_ = 0;
};

}  // namespace fault::seccomp

#endif  // FAULT_SUPERVISOR_SECCOMP_ENGINE_DECIDER_H_
