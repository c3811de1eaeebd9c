// The shared-memory policy table (shim/include/fault/table.h) from the
// supervisor's side: creating the memfd, publishing configurations with the
// seqlock, reading counters back and draining the event ring.
//
//   absl::StatusOr<std::unique_ptr<PolicyTable>> table =
//       PolicyTable::Create({.start_ns = MonotonicNowNs(), .stub_page = kStubPage});
//   (*table)->Publish(*compiled.config);
//   ... the child gets (*table)->fd() ...
//   std::vector<fault_event> events;
//   (*table)->DrainEvents(&events, /*final=*/false);
//
// Thread-safety: Publish() may be called from any thread (writers serialise
// on a mutex); DrainEvents() has a single consumer at a time (also guarded);
// the other accessors are safe at any time. Readers in other processes never
// block the writer and the writer never waits for them.
#ifndef FAULT_SUPERVISOR_EXEC_POLICY_TABLE_H_
#define FAULT_SUPERVISOR_EXEC_POLICY_TABLE_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "fault/table.h"

namespace fault::exec {

// Per-rule counters, copied out of the segment.
struct CounterSnapshot {
  std::vector<uint64_t> rule_matched, rule_fired;        // [n_rules]
  std::vector<uint64_t> syscall_matched, syscall_fired;  // [n_syscall_rules]
};

class PolicyTable {
 public:
  struct Options {
    int64_t start_ns = 0;         // CLOCK_MONOTONIC at the start of the run
    uint64_t stub_page = 0;       // the raw-syscall stub address, 0: none
    uint32_t supervisor_pid = 0;  // 0: getpid()
  };

  // A new zeroed segment with its header filled in and an empty
  // configuration published (generation 1). The memfd is close-on-exec and
  // never on fd 0..2; programs open it through TablePath(getpid(), fd()).
  static absl::StatusOr<std::unique_ptr<PolicyTable>> Create(const Options& options);

  // Maps an existing segment (another reader, or tests). Checks magic,
  // version and size.
  static absl::StatusOr<std::unique_ptr<PolicyTable>> Attach(int fd);

  ~PolicyTable();
  PolicyTable(const PolicyTable&) = delete;
  PolicyTable& operator=(const PolicyTable&) = delete;

  int fd() const { return fd_; }
  // The mapping itself, for in-process readers such as the seccomp engine.
  fault_table* table() { return table_; }

  // Publishes `config` as a new generation (config.generation is ignored and
  // set to the previous one + 1). Returns the new generation.
  uint64_t Publish(const fault_config& config) ABSL_LOCKS_EXCLUDED(write_mu_);

  // Seqlock read of the current configuration, as every reader does it.
  // Returns the generation copied.
  uint64_t ReadConfig(fault_config* out) const;

  CounterSnapshot ReadCounters() const;

  // Moves every complete event from the ring into `out` in ring order and
  // returns how many. A slot a producer claimed but has not finished stops
  // the drain until it is finished; with `final` (the target has exited) or
  // when it stays unfinished across drains for more than a second, it is
  // skipped and counted in incomplete_events().
  size_t DrainEvents(std::vector<fault_event>* out, bool final)
      ABSL_LOCKS_EXCLUDED(drain_mu_);

  // Events producers could not store because the ring was full.
  uint64_t dropped_events() const;
  uint64_t incomplete_events() const;

 private:
  PolicyTable(int fd, fault_table* table) : fd_(fd), table_(table) {}

  int fd_;
  fault_table* table_;
  absl::Mutex write_mu_;
  mutable absl::Mutex drain_mu_;
  uint64_t stuck_index_ ABSL_GUARDED_BY(drain_mu_) = UINT64_MAX;
  int64_t stuck_since_ns_ ABSL_GUARDED_BY(drain_mu_) = 0;
  uint64_t incomplete_ ABSL_GUARDED_BY(drain_mu_) = 0;
};

// "/proc/PID/fd/FD": the path through which programs of the run open the
// table the supervisor PID holds as FD (FAULT_TABLE). Opening it needs
// ptrace read access to PID: a process of the same user can.
std::string TablePath(pid_t pid, int fd);

// Clears FD_CLOEXEC on `fd`. Async-signal-safe: for the child between fork
// and exec. Returns false (errno set) on failure.
bool ClearCloseOnExec(int fd);

int64_t MonotonicNowNs();

}  // namespace fault::exec

#endif  // FAULT_SUPERVISOR_EXEC_POLICY_TABLE_H_
