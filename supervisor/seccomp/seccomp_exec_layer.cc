#include "supervisor/seccomp/seccomp_exec_layer.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "supervisor/exec/policy_table.h"

namespace fault::seccomp {

uint64_t SeccompFamilies(const fault::v1::PolicySet& policies) {
  uint64_t mask = 0;
  for (const fault::v1::Policy& p : policies.policies()) {
    for (const fault::v1::SyscallFault& s : p.syscalls()) {
      const int f = static_cast<int>(s.family());
      if (f >= 1 && f <= kMaxFamily) mask |= uint64_t{1} << f;
      // An fsync rule also covers fdatasync (see EngineDecider::Decide).
      if (s.family() == fault::v1::SyscallFault::FAMILY_FSYNC) {
        mask |= FamilyBit(Family::kFdatasync);
      }
    }
    if (p.partitions_size() > 0) {
      mask |= FamilyBit(Family::kConnect) | FamilyBit(Family::kSend);
    }
  }
  return mask;
}

SeccompExecLayer::SeccompExecLayer(Options options)
    : options_(std::move(options)) {}

SeccompExecLayer::~SeccompExecLayer() { Stop(); }

bool SeccompExecLayer::handles_partitions() const {
  const uint64_t need = FamilyBit(Family::kConnect) | FamilyBit(Family::kSend);
  return options_.partitions != nullptr && !options_.program.empty() &&
         (options_.families_mask & need) == need;
}

absl::Status SeccompExecLayer::Prepare(fault::exec::PolicyTable* table) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    return absl::InternalError(absl::StrCat("socketpair: ", strerror(errno)));
  }
  parent_end_ = sv[0];
  child_end_ = sv[1];
  SeccompPlan plan{.families_mask = options_.families_mask,
                   .stub_page = table->table()->stub_page,
                   .handoff_fd = child_end_};
  if (options_.partitions != nullptr) {
    plan.even_from_stub_mask = FamilyBit(Family::kConnect) | FamilyBit(Family::kSend);
  }
  absl::StatusOr<CompiledFilter> filter = CompileSeccompPlan(plan);
  if (!filter.ok()) return filter.status();
  filter_ = *std::move(filter);
  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0)
    return absl::InternalError(absl::StrCat("eventfd: ", strerror(errno)));
  decider_ =
      std::make_unique<EngineDecider>(table->table(), options_.partitions);
  loop_ = std::make_unique<NotifyLoop>(decider_.get(), table->table());
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  receiver_ = std::thread([this] { Receive(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return absl::OkStatus();
}

void SeccompExecLayer::Receive() {
  // The runner waits for SIGCHLD and the signals it forwards with
  // sigtimedwait on its own thread: never take them here.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  pollfd fds[2] = {{parent_end_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
  while (poll(fds, 2, -1) < 0 && errno == EINTR) {
  }
  if (!(fds[0].revents & (POLLIN | POLLHUP))) return;  // stopped first
  absl::StatusOr<int> listener = ReceiveListener(parent_end_, absl::Seconds(1));
  if (!listener.ok()) {
    // The child failed before installing the filter; Spawn reports why.
    return;
  }
  if (loop_->Start(*listener, options_.program).ok()) listening_.store(true);
}

int SeccompExecLayer::InChild() noexcept {
  int r = InstallFilterInChild(filter_, child_end_);
  return r < 0 ? -r : 0;
}

absl::Status SeccompExecLayer::Started(pid_t child) {
  if (child_end_ >= 0) {
    close(child_end_);
    child_end_ = -1;
  }
  if (options_.partitions != nullptr && !options_.program.empty()) {
    options_.partitions->Register(options_.program, child);
  }
  return absl::OkStatus();
}

void SeccompExecLayer::Stop() {
  if (stop_fd_ >= 0) {
    uint64_t one = 1;
    (void)!write(stop_fd_, &one, sizeof(one));
  }
  if (receiver_.joinable()) receiver_.join();
  if (loop_ != nullptr) {
    // The target exited: its listener hangs up at once; bounded anyway.
    if (listening_.load()) loop_->WaitUntilDone(absl::Milliseconds(500));
    loop_->Stop();
  }
  for (int* fd : {&parent_end_, &child_end_, &stop_fd_}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
}

bool SeccompExecLayer::sync_wakeup() const {
  return loop_ != nullptr && listening_.load() && loop_->sync_wakeup();
}

NotifyStats SeccompExecLayer::stats() const {
  return loop_ != nullptr ? loop_->stats() : NotifyStats{};
}

}  // namespace fault::seccomp
