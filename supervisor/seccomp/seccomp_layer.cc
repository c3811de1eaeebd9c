#include "supervisor/seccomp/seccomp_layer.h"

#include <errno.h>
#include <linux/filter.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "supervisor/seccomp/seccomp_abi.h"

namespace fault::seccomp {
namespace {

// Sends `fd` (or, when fd < 0, just `err`) over `sock`. Async-signal-safe.
int SendFdOrErrno(int sock, int fd, int32_t err) {
  int32_t payload = err;
  iovec iov{&payload, sizeof(payload)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  memset(control, 0, sizeof(control));
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  while (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0) {
    if (errno != EINTR) return -errno;
  }
  return 0;
}

}  // namespace

absl::StatusOr<CompiledFilter> CompileSeccompPlan(const SeccompPlan& plan) {
  FilterSpec spec(NativeArch());
  spec.NotifyFamilies(plan.families_mask).AllowFromStubPage(plan.stub_page);
  spec.OnWrongArch(plan.on_wrong_arch);
  spec.EvenFromStubFamilies(plan.even_from_stub_mask & plan.families_mask);
  if (plan.handoff_fd >= 0 && (plan.families_mask & FamilyBit(Family::kSend))) {
    spec.NotifyIf(SYS_sendmsg,
                  ArgMatch{.index = 0,
                           .mask = 0xffffffffU,
                           .value = static_cast<uint32_t>(plan.handoff_fd),
                           .not_equal = true});
  }
  return spec.Compile();
}

int InstallFilterInChild(const CompiledFilter& filter, int sock_fd) {
  sock_fprog prog{};
  prog.len = static_cast<unsigned short>(filter.program.size());
  prog.filter = const_cast<sock_filter*>(filter.program.data());
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    int err = errno;
    SendFdOrErrno(sock_fd, -1, err);
    return -err;
  }
  // SPEC_ALLOW: installing the filter must not switch on speculative-store-
  // bypass mitigations for the target and change its performance; the
  // filter is for fault injection, not a security boundary.
  long fd = syscall(
      SYS_seccomp, SECCOMP_SET_MODE_FILTER,
      SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_SPEC_ALLOW, &prog);
  if (fd < 0) {
    int err = errno;
    SendFdOrErrno(sock_fd, -1, err);
    return -err;
  }
  // The listener is created close-on-exec: no close() here, which the
  // filter might notify before the parent holds the listener.
  return SendFdOrErrno(sock_fd, static_cast<int>(fd), 0);
}

absl::StatusOr<int> ReceiveListener(int sock_fd, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    pollfd p{sock_fd, POLLIN, 0};
    const int64_t left_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    int n = poll(&p, 1, static_cast<int>(std::max<int64_t>(left_ms, 0)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return absl::InternalError(
          absl::StrCat("seccomp handoff: poll: ", strerror(errno)));
    if (n == 0) {
      return absl::DeadlineExceededError(
          absl::StrCat("seccomp handoff: the launched program sent no seccomp "
                       "listener within ",
                       absl::FormatDuration(timeout)));
    }
    break;
  }
  int32_t payload = 0;
  iovec iov{&payload, sizeof(payload)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t got;
  do {
    got = recvmsg(sock_fd, &msg, MSG_CMSG_CLOEXEC);
  } while (got < 0 && errno == EINTR);
  if (got < 0) {
    return absl::InternalError(
        absl::StrCat("seccomp handoff: recvmsg: ", strerror(errno)));
  }
  int fd = -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr;
       c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      memcpy(&fd, CMSG_DATA(c), sizeof(int));
    }
  }
  if (fd >= 0) return fd;
  if (got == 0) {
    return absl::AbortedError(
        "seccomp handoff: the launched program exited before sending its "
        "seccomp listener");
  }
  return absl::FailedPreconditionError(
      absl::StrCat("seccomp handoff: installing the seccomp filter in the "
                   "launched program failed: ",
                   strerror(payload)));
}

absl::StatusOr<SeccompSupport> ProbeSeccompSupport() {
  SeccompSupport support;
  FilterSpec spec(NativeArch());
  spec.Notify(SYS_getppid);
  absl::StatusOr<CompiledFilter> filter = spec.Compile();
  if (!filter.ok()) return filter.status();

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    return absl::InternalError(
        absl::StrCat("probe: socketpair: ", strerror(errno)));
  }
  const pid_t parent = getpid();
  const pid_t child = fork();
  if (child < 0) {
    close(sv[0]);
    close(sv[1]);
    return absl::InternalError(absl::StrCat("probe: fork: ", strerror(errno)));
  }
  if (child == 0) {
    close(sv[0]);
    if (InstallFilterInChild(*filter, sv[1]) != 0) _exit(2);
    // Notified: answered with CONTINUE, the real getppid runs.
    _exit(syscall(SYS_getppid) == parent ? 0 : 1);
  }
  close(sv[1]);
  absl::Cleanup reap = [&] {
    close(sv[0]);
    int status;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
  };
  absl::StatusOr<int> listener = ReceiveListener(sv[0], absl::Seconds(5));
  if (!listener.ok()) {
    kill(child, SIGKILL);
    return support;  // no user notification here
  }
  support.user_notification = true;
  uint64_t flags = SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP;
  support.sync_wakeup =
      ioctl(*listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, flags) == 0;

  pollfd p{*listener, POLLIN, 0};
  if (poll(&p, 1, 5000) == 1 && (p.revents & POLLIN)) {
    seccomp_notif req;
    memset(&req, 0, sizeof(req));
    if (ioctl(*listener, SECCOMP_IOCTL_NOTIF_RECV, &req) == 0) {
      seccomp_notif_resp resp{};
      resp.id = req.id;
      resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
      support.continue_flag =
          ioctl(*listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) == 0;
    }
  }
  close(*listener);
  if (!support.continue_flag) kill(child, SIGKILL);
  return support;
}

}  // namespace fault::seccomp
