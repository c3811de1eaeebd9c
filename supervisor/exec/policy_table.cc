#include "supervisor/exec/policy_table.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "shim/engine/engine.h"

namespace fault::exec {
namespace {

static_assert(sizeof(fault_config) % sizeof(uint64_t) == 0,
              "the seqlock copies fault_config in 8-byte words");
static_assert(alignof(fault_config) >= alignof(uint64_t));
static_assert((FAULT_EVENT_RING_SIZE & (FAULT_EVENT_RING_SIZE - 1)) == 0);

absl::Status Errno(absl::string_view what) {
  return absl::ErrnoToStatus(errno, what);
}

}  // namespace

int64_t MonotonicNowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

std::string TablePath(pid_t pid, int fd) {
  return absl::StrCat("/proc/", pid, "/fd/", fd);
}

bool ClearCloseOnExec(int fd) {
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0) return false;
  return fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) == 0;
}

absl::StatusOr<std::unique_ptr<PolicyTable>> PolicyTable::Create(const Options& options) {
  int fd = memfd_create("fault-policy-table", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return Errno("memfd_create");
  // With stdin, stdout or stderr closed the memfd lands on 0..2, where the
  // program would read it or write over the live table: keep it above.
  if (fd <= 2) {
    int high = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int err = errno;
    close(fd);
    if (high < 0)
      return absl::ErrnoToStatus(err, "moving the policy table above fd 2");
    fd = high;
  }
  if (ftruncate(fd, sizeof(fault_table)) != 0) {
    absl::Status s = Errno("ftruncate of the policy table");
    close(fd);
    return s;
  }
  // The target holds the fd: it must not be able to shrink the segment under
  // the supervisor (SIGBUS) or grow it.
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    absl::Status s = Errno("sealing the policy table");
    close(fd);
    return s;
  }
  void* p = mmap(nullptr, sizeof(fault_table), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    absl::Status s = Errno("mmap of the policy table");
    close(fd);
    return s;
  }
  auto* t = static_cast<fault_table*>(p);  // zero-filled by ftruncate
  t->version = FAULT_TABLE_VERSION;
  t->size = sizeof(fault_table);
  t->start_ns = options.start_ns;
  t->stub_page = options.stub_page;
  t->supervisor_pid = options.supervisor_pid != 0 ? options.supervisor_pid
                                                  : static_cast<uint32_t>(getpid());
  // The empty configuration, published: what engine::Publish of an all-zero
  // fault_config leaves, without copying 180 KB of zeros over zero pages
  // (which would fault them all in at every start).
  t->config.generation = 1;
  __atomic_store_n(&t->seq, 2, __ATOMIC_RELAXED);
  // Magic last: a reader that sees it sees a complete header.
  __atomic_store_n(&t->magic, FAULT_TABLE_MAGIC, __ATOMIC_RELEASE);
  return std::unique_ptr<PolicyTable>(new PolicyTable(fd, t));
}

absl::StatusOr<std::unique_ptr<PolicyTable>> PolicyTable::Attach(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return Errno("fstat of the policy table");
  if (st.st_size < static_cast<off_t>(sizeof(fault_table))) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy table fd ", fd, " is ", st.st_size, " bytes, expected ",
                     sizeof(fault_table)));
  }
  int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (own < 0) return Errno("dup of the policy table fd");
  void* p = mmap(nullptr, sizeof(fault_table), PROT_READ | PROT_WRITE, MAP_SHARED, own, 0);
  if (p == MAP_FAILED) {
    absl::Status s = Errno("mmap of the policy table");
    close(own);
    return s;
  }
  auto* t = static_cast<fault_table*>(p);
  if (__atomic_load_n(&t->magic, __ATOMIC_ACQUIRE) != FAULT_TABLE_MAGIC ||
      t->version != FAULT_TABLE_VERSION || t->size != sizeof(fault_table)) {
    munmap(p, sizeof(fault_table));
    close(own);
    return absl::InvalidArgumentError(absl::StrCat(
        "fd ", fd, " is not a policy table of layout version ", FAULT_TABLE_VERSION));
  }
  return std::unique_ptr<PolicyTable>(new PolicyTable(own, t));
}

PolicyTable::~PolicyTable() {
  munmap(table_, sizeof(fault_table));
  close(fd_);
}

uint64_t PolicyTable::Publish(const fault_config& config) {
  absl::MutexLock lock(&write_mu_);
  // The engine's writer is the one seqlock protocol every reader follows.
  engine::Publish(table_, &config);
  return __atomic_load_n(&table_->config.generation, __ATOMIC_RELAXED);
}

uint64_t PolicyTable::ReadConfig(fault_config* out) const {
  for (;;) {
    uint64_t seq = engine::LoadSeq(table_);
    if (seq & 1) {
      sched_yield();
      continue;
    }
    if (engine::ReadConfigBytes(table_, seq, &table_->config, sizeof(fault_config), out)) {
      return out->generation;
    }
  }
}

CounterSnapshot PolicyTable::ReadCounters() const {
  uint32_t n_rules = __atomic_load_n(&table_->config.n_rules, __ATOMIC_RELAXED);
  uint32_t n_sys = __atomic_load_n(&table_->config.n_syscall_rules, __ATOMIC_RELAXED);
  if (n_rules > FAULT_MAX_RULES) n_rules = FAULT_MAX_RULES;
  if (n_sys > FAULT_MAX_SYSCALL_RULES) n_sys = FAULT_MAX_SYSCALL_RULES;
  const fault_counters& c = table_->counters;
  CounterSnapshot s;
  for (uint32_t i = 0; i < n_rules; ++i) {
    s.rule_matched.push_back(__atomic_load_n(&c.rule_matched[i], __ATOMIC_RELAXED));
    s.rule_fired.push_back(__atomic_load_n(&c.rule_fired[i], __ATOMIC_RELAXED));
  }
  for (uint32_t i = 0; i < n_sys; ++i) {
    s.syscall_matched.push_back(__atomic_load_n(&c.syscall_matched[i], __ATOMIC_RELAXED));
    s.syscall_fired.push_back(__atomic_load_n(&c.syscall_fired[i], __ATOMIC_RELAXED));
  }
  return s;
}

size_t PolicyTable::DrainEvents(std::vector<fault_event>* out, bool final) {
  absl::MutexLock lock(&drain_mu_);
  fault_event_ring& ring = table_->ring;
  uint64_t tail = __atomic_load_n(&ring.tail, __ATOMIC_RELAXED);
  uint64_t head = __atomic_load_n(&ring.head, __ATOMIC_ACQUIRE);
  size_t n = 0;
  while (tail < head) {
    fault_event& slot = ring.events[tail & (FAULT_EVENT_RING_SIZE - 1)];
    uint64_t seq = __atomic_load_n(&slot.seq, __ATOMIC_ACQUIRE);
    if (seq != tail + 1) {
      // Claimed, not yet written. Wait for it unless its writer is gone.
      int64_t now = MonotonicNowNs();
      if (stuck_index_ != tail) {
        stuck_index_ = tail;
        stuck_since_ns_ = now;
      }
      if (!final && now - stuck_since_ns_ < 1000000000) break;
      ++incomplete_;
    } else {
      out->push_back(slot);
      out->back().seq = seq;
      ++n;
    }
    ++tail;
    // Releases the slot to producers only after it has been copied.
    __atomic_store_n(&ring.tail, tail, __ATOMIC_RELEASE);
  }
  return n;
}

uint64_t PolicyTable::dropped_events() const {
  return __atomic_load_n(&table_->ring.drops, __ATOMIC_RELAXED);
}

uint64_t PolicyTable::incomplete_events() const {
  absl::MutexLock lock(&drain_mu_);
  return incomplete_;
}

}  // namespace fault::exec
