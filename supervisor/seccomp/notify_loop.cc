#include "supervisor/seccomp/notify_loop.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "shim/engine/engine.h"
#include "supervisor/seccomp/seccomp_abi.h"
#include "supervisor/seccomp/target_memory.h"

namespace eng = ::fault::engine;

namespace fault::seccomp {
namespace {
// How long a blocking connect through the stream engine waits for the far
// end beyond the emulated handshake (the kernel's own SYN retries give up
// after about two minutes; a test rarely wants that).
constexpr int64_t kRedirectConnectTimeoutNs = 130'000'000'000;
}  // namespace
}  // namespace fault::seccomp

namespace fault::seccomp {
namespace {

constexpr int kMaxSyscallNr = 1024;

uint16_t OpOfFamily(Family f) {
  switch (f) {
    case Family::kOpen:
      return FAULT_OP_OPEN;
    case Family::kRead:
      return FAULT_OP_READ;
    case Family::kWrite:
      return FAULT_OP_WRITE;
    case Family::kFsync:
      return FAULT_OP_FSYNC;
    case Family::kFdatasync:
      return FAULT_OP_FDATASYNC;
    case Family::kConnect:
      return FAULT_OP_CONNECT;
    case Family::kAccept:
      return FAULT_OP_ACCEPT;
    case Family::kSend:
      return FAULT_OP_SEND;
    case Family::kRecv:
      return FAULT_OP_RECV;
    case Family::kClose:
      return FAULT_OP_CLOSE;
    case Family::kUnlink:
      return FAULT_OP_UNLINK;
    case Family::kRename:
      return FAULT_OP_RENAME;
    case Family::kMkdir:
      return FAULT_OP_MKDIR;
    case Family::kFtruncate:
      return FAULT_OP_FTRUNCATE;
    case Family::kIoUring:
      return FAULT_OP_IO_URING;
    default:
      return FAULT_OP_NONE;
  }
}

}  // namespace

NotifyLoop::NotifyLoop(Decider* decider, fault_table* table, Options options)
    : decider_(decider),
      table_(table),
      clock_(options.clock != nullptr ? options.clock : RealClock::Get()),
      want_sync_wakeup_(options.sync_wakeup) {
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  family_of_nr_.assign(kMaxSyscallNr, Family::kUnspecified);
  for (int f = 1; f <= kMaxFamily; ++f) {
    for (int nr : FamilySyscalls(static_cast<Family>(f), NativeArch())) {
      if (nr >= 0 && nr < kMaxSyscallNr)
        family_of_nr_[nr] = static_cast<Family>(f);
    }
  }
}

NotifyLoop::~NotifyLoop() {
  Stop();
  {
    absl::MutexLock lock(&mu_);
    for (Listener& l : incoming_) close(l.fd);
    incoming_.clear();
  }
  if (wake_fd_ >= 0) close(wake_fd_);
  if (timer_fd_ >= 0) close(timer_fd_);
}

absl::Status NotifyLoop::AddListener(int listener_fd, std::string program) {
  if (listener_fd < 0)
    return absl::InvalidArgumentError("invalid seccomp listener fd");
  if (wake_fd_ < 0 || timer_fd_ < 0) {
    return absl::InternalError(
        absl::StrCat("notify loop: eventfd/timerfd: ", strerror(errno)));
  }
  bool sync = false;
  if (want_sync_wakeup_) {
    uint64_t flags = SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP;
    sync = ioctl(listener_fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, flags) == 0;
  }
  {
    absl::MutexLock lock(&mu_);
    sync_wakeup_.store(any_listener_ ? (sync_wakeup_.load() && sync) : sync);
    any_listener_ = true;
    incoming_.push_back(Listener{listener_fd, std::move(program)});
    done_ = false;
  }
  Wake();
  return absl::OkStatus();
}

absl::Status NotifyLoop::Start() {
  if (started_.exchange(true))
    return absl::FailedPreconditionError("notify loop already started");
  // Created with every signal blocked, so no signal is ever delivered to it.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  thread_ = std::thread([this] { Run(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return absl::OkStatus();
}

absl::Status NotifyLoop::Start(int listener_fd, std::string program) {
  absl::Status s = AddListener(listener_fd, std::move(program));
  if (!s.ok()) return s;
  return Start();
}

void NotifyLoop::Wake() {
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
}

void NotifyLoop::Stop() {
  stop_.store(true);
  Wake();
  if (thread_.joinable()) thread_.join();
}

bool NotifyLoop::WaitUntilDone(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&done_), timeout);
}

NotifyStats NotifyLoop::stats() const {
  NotifyStats s;
  s.received = stats_.received.load();
  s.continued = stats_.continued.load();
  s.denied = stats_.denied.load();
  s.delayed = stats_.delayed.load();
  s.redirected = stats_.redirected.load();
  s.restarted = stats_.restarted.load();
  s.stale = stats_.stale.load();
  s.listeners_closed = stats_.listeners_closed.load();
  return s;
}

void NotifyLoop::Respond(int fd, uint64_t id, int err, bool cont) {
  seccomp_notif_resp resp{};
  resp.id = id;
  if (cont) {
    resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
  } else {
    resp.error = -err;
  }
  while (ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp) != 0) {
    if (errno == EINTR) continue;
    // ENOENT: the syscall is gone (a signal interrupted it, or the target
    // died). The kernel re-notifies a restarted syscall with a new id.
    stats_.stale.fetch_add(1, std::memory_order_relaxed);
    return;
  }
}

void NotifyLoop::ArmTimer() {
  // Only when the earliest deadline changed: one syscall saved on every
  // notification that is not delayed.
  const int64_t next = timers_.NextDeadline().value_or(0);
  if (next == armed_ns_) return;
  armed_ns_ = next;
  itimerspec its{};
  if (next != 0) {
    const int64_t at = std::max<int64_t>(next, 1);
    its.it_value.tv_sec = at / 1'000'000'000;
    its.it_value.tv_nsec = at % 1'000'000'000;
  }
  timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &its, nullptr);
}

void NotifyLoop::FireExpired() {
  for (uint64_t id : timers_.PopExpired(clock_->MonotonicNs())) {
    auto it = pending_.find(id);
    if (it == pending_.end()) continue;
    if (const fault_redirect* slot = it->second.slot; slot != nullptr) {
      const uint32_t st = __atomic_load_n(&slot->state, __ATOMIC_ACQUIRE);
      const int64_t now = clock_->MonotonicNs();
      if (st == FAULT_REDIRECT_FAILED) {
        const int e = __atomic_load_n(&slot->err, __ATOMIC_RELAXED);
        it->second.reply = e != 0 ? e : ECONNREFUSED;
      } else if (st != FAULT_REDIRECT_OPEN) {
        const bool pending = st == FAULT_REDIRECT_ARMED || st == FAULT_REDIRECT_CLAIMED ||
                             st == FAULT_REDIRECT_CONNECTED;
        if (pending && now < it->second.give_up_ns) {
          it->second.deadline_ns = now + 1'000'000;  // not yet: look again
          timers_.Schedule(id, it->second.deadline_ns);
          continue;
        }
        // Given up on, or the port announced anew by another connection.
        it->second.reply = pending ? ETIMEDOUT : ECONNRESET;
      }
    }
    const int reply = it->second.reply;
    Respond(it->second.fd, id, reply < 0 ? 0 : reply, /*cont=*/reply < 0);
    auto by_tid = pending_by_tid_.find(it->second.tid);
    if (by_tid != pending_by_tid_.end() && by_tid->second == id)
      pending_by_tid_.erase(by_tid);
    pending_.erase(it);
  }
}

void NotifyLoop::HandleNotification(Listener& l) {
  seccomp_notif req;
  memset(&req, 0, sizeof(req));  // the kernel insists on a zeroed buffer
  if (ioctl(l.fd, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) {
    // ENOENT: the caller was killed between poll and receive.
    return;
  }
  stats_.received.fetch_add(1, std::memory_order_relaxed);
  const pid_t tid = static_cast<pid_t>(req.pid);
  std::array<uint64_t, 6> args;
  std::copy(std::begin(req.data.args), std::end(req.data.args), args.begin());

  // A thread has at most one syscall waiting. A new notification from a
  // thread whose delayed syscall is still pending means a signal
  // interrupted that one and the kernel restarted it (or the handler made
  // another call): the old id is dead. The same call keeps its original
  // deadline and is neither decided nor reported again.
  if (auto by_tid = pending_by_tid_.find(tid);
      by_tid != pending_by_tid_.end()) {
    const uint64_t old_id = by_tid->second;
    pending_by_tid_.erase(by_tid);
    auto old = pending_.find(old_id);
    if (old != pending_.end()) {
      Pending p = old->second;
      pending_.erase(old);
      timers_.Cancel(old_id);
      if (p.fd == l.fd && p.nr == req.data.nr && p.args == args) {
        stats_.restarted.fetch_add(1, std::memory_order_relaxed);
        p.fd = l.fd;
        pending_[req.id] = p;
        pending_by_tid_[tid] = req.id;
        timers_.Schedule(req.id, p.deadline_ns);
        ArmTimer();
        return;
      }
    }
  }

  SyscallContext call;
  call.nr = req.data.nr;
  call.family = (req.data.nr >= 0 && req.data.nr < kMaxSyscallNr)
                    ? family_of_nr_[req.data.nr]
                    : Family::kUnspecified;
  call.tid = tid;
  call.pid = tid;  // resolved to the thread group only when an event is written
  call.args = args;
  call.program = l.program;
  if (table_ != nullptr && table_->stub_page != 0) {
    call.from_stub = (req.data.instruction_pointer & ~uint64_t{4095}) == table_->stub_page;
  }
  if (call.family != Family::kUnspecified &&
      decider_->NeedsDetail(call.family)) {
    SyscallDetail d = ReadSyscallDetail(tid, call.nr, call.family, args);
    call.path = std::move(d.path);
    call.addr = d.addr;
    // What was read belongs to this syscall only if it is still waiting:
    // otherwise the pid may already name another process.
    if (ioctl(l.fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &req.id) != 0) {
      stats_.stale.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }

  const Decision d = call.family == Family::kUnspecified
                         ? Decision::Continue()
                         : decider_->Decide(call);
  if (d.kind == Decision::Kind::kContinue) {
    stats_.continued.fetch_add(1, std::memory_order_relaxed);
    Respond(l.fd, req.id, 0, /*cont=*/true);
    return;
  }

  int redirect_reply = -1;
  bool redirect_blocking = false;
  const fault_redirect* redirect_slot = nullptr;
  if (d.kind == Decision::Kind::kRedirect) {
    redirect_reply = Redirect(tid, call, d, &redirect_blocking, &redirect_slot);
    if (redirect_reply < 0) {  // not a TCP socket: nothing to redirect
      stats_.continued.fetch_add(1, std::memory_order_relaxed);
      Respond(l.fd, req.id, 0, /*cont=*/true);
      return;
    }
  }

  if (table_ != nullptr &&
      (d.kind != Decision::Kind::kRedirect || d.effect != 0)) {
    fault_event ev{};
    ev.time_ns = clock_->RealtimeNs();
    ev.pid = ThreadGroupOf(tid);
    ev.tid = tid;
    ev.rule = static_cast<uint16_t>(d.rule < 0 ? 0 : d.rule);
    ev.syscall_rule =
        static_cast<uint16_t>(d.syscall_rule < 0 ? 0 : d.syscall_rule + 1);
    ev.op = OpOfFamily(call.family);
    ev.effect = d.effect != 0
                    ? d.effect
                    : static_cast<uint16_t>(d.kind == Decision::Kind::kDeny
                                                ? FAULT_EFFECT_DENY
                                                : FAULT_EFFECT_DELAY);
    ev.value = d.kind == Decision::Kind::kDeny ? d.err : d.delay_ns;
    ev.layer = 2;
    ev.generation = static_cast<uint32_t>(decider_->generation());
    if (call.path.empty() && !call.addr.has_value()) {
      // Rules did not need the detail; the event still names the file or
      // the destination (the syscall is still waiting for our answer).
      SyscallDetail detail = ReadSyscallDetail(tid, call.nr, call.family, args);
      call.path = std::move(detail.path);
      call.addr = detail.addr;
    }
    std::string target = call.path;
    if (target.empty() && !call.addr.has_value() &&
        call.family != Family::kOpen && call.family != Family::kUnlink &&
        call.family != Family::kRename && call.family != Family::kMkdir &&
        call.family != Family::kIoUring) {
      target = TargetFdPath(
          tid, static_cast<int>(args[0]));  // "pipe:[123]", "socket:[45]"
    }
    if (call.addr.has_value() &&
        (call.family == Family::kConnect || target.empty())) {
      target = FormatSockaddr(*call.addr);
    }
    if (target.empty()) target = FamilyName(call.family);
    fault::engine::CopyString(ev.target, target.c_str(), sizeof(ev.target));
    fault::engine::EmitEvent(table_, ev);
  }

  if (d.kind == Decision::Kind::kDeny) {
    stats_.denied.fetch_add(1, std::memory_order_relaxed);
    Respond(l.fd, req.id, d.err, /*cont=*/false);
    return;
  }
  int reply = d.kind == Decision::Kind::kDelay && d.err != 0 ? d.err : -1;
  int64_t delay = d.delay_ns;
  if (d.kind == Decision::Kind::kRedirect) {
    stats_.redirected.fetch_add(1, std::memory_order_relaxed);
    // A blocking connect returns once the engine has reached the far end
    // and the emulated handshake is over; a non-blocking one at once (the
    // engine holds its first bytes back).
    if (!redirect_blocking || redirect_reply != 0) {
      Respond(l.fd, req.id, redirect_reply, /*cont=*/false);
      return;
    }
    reply = 0;
  } else {
    stats_.delayed.fetch_add(1, std::memory_order_relaxed);
  }
  const int64_t deadline = clock_->MonotonicNs() + std::max<int64_t>(delay, 0);
  Pending pending{l.fd, tid, call.nr, args, deadline, reply};
  if (redirect_slot != nullptr) {
    pending.slot = redirect_slot;
    pending.give_up_ns = deadline + kRedirectConnectTimeoutNs;
  }
  pending_[req.id] = pending;
  pending_by_tid_[tid] = req.id;
  timers_.Schedule(req.id, deadline);
  ArmTimer();
}

int NotifyLoop::Redirect(pid_t tid, const SyscallContext& call,
                         const Decision& d, bool* blocking,
                         const fault_redirect** slot) {
  if (table_ == nullptr || !call.addr.has_value()) return -1;
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, ThreadGroupOf(tid), 0));
  if (pidfd < 0) return -1;
  int fd = static_cast<int>(
      syscall(SYS_pidfd_getfd, pidfd, static_cast<int>(call.args[0]), 0));
  close(pidfd);
  if (fd < 0) return -1;
  // The same socket (one open file): what is done to `fd` is done to the
  // caller's descriptor.
  int type = 0, domain = 0;
  socklen_t len = sizeof(int);
  int result = -1;
  sockaddr_storage local;
  socklen_t llen = sizeof(local);
  eng::Endpoint far, me;
  uint16_t eport = 0;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM &&
      (len = sizeof(int), getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len)) == 0 &&
      (domain == AF_INET || domain == AF_INET6) &&
      eng::SetEndpointAddress(&far, &*call.addr, sizeof(*call.addr)) &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&local), &llen) == 0 &&
      eng::SetEndpointAddress(&me, &local, llen)) {
    eport = domain == AF_INET ? table_->engine_port4 : table_->engine_port6;
  }
  sockaddr_storage lo;
  socklen_t lolen = 0;
  auto loopback = [&](uint16_t port) {
    lolen = static_cast<socklen_t>(
        eng::EndpointSockaddr(eng::LoopbackEndpoint(domain, port), &lo, sizeof(lo)));
  };

  if (eport != 0 && me.port == 0) {  // bind to a loopback port of its own
    loopback(0);
    llen = sizeof(local);
    if (bind(fd, reinterpret_cast<sockaddr*>(&lo), lolen) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&local), &llen) != 0 ||
        !eng::SetEndpointAddress(&me, &local, llen)) {
      eport = 0;
    }
  }
  if (eport != 0 && me.port != 0 && eng::IsLoopback(me)) {
    int fl = fcntl(fd, F_GETFL);
    *blocking = fl >= 0 && !(fl & O_NONBLOCK);
    *slot = eng::AnnounceRedirect(table_, domain == AF_INET6, me.port,
                                  FAULT_REDIRECT_CONNECT, d.rule, far,
                                  std::max<int64_t>(d.delay_ns, 0), ThreadGroupOf(tid));
    loopback(eport);
    result = connect(fd, reinterpret_cast<sockaddr*>(&lo), lolen) == 0 ? 0 : errno;
  }
  close(fd);
  return result;
}

void NotifyLoop::DropListener(int fd) {
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.fd == fd) {
      timers_.Cancel(it->first);
      pending_by_tid_.erase(it->second.tid);
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  close(fd);
  stats_.listeners_closed.fetch_add(1, std::memory_order_relaxed);
}

void NotifyLoop::Run() {
  // Process-directed signals (SIGTERM to forward, SIGCHLD) belong to the
  // supervisor's main thread, which may wait for them with sigtimedwait.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  std::vector<pollfd> fds;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      for (Listener& l : incoming_) listeners_.push_back(std::move(l));
      incoming_.clear();
    }
    if (stop_.load()) break;

    fds.clear();
    fds.push_back(pollfd{wake_fd_, POLLIN, 0});
    fds.push_back(pollfd{timer_fd_, POLLIN, 0});
    for (const Listener& l : listeners_) fds.push_back(pollfd{l.fd, POLLIN, 0});
    int n = poll(fds.data(), fds.size(), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents & POLLIN) {
      uint64_t v;
      (void)!read(wake_fd_, &v, sizeof(v));
    }
    if (fds[1].revents & POLLIN) {
      uint64_t v;
      (void)!read(timer_fd_, &v, sizeof(v));
      armed_ns_ = 0;  // a fired timerfd is disarmed
    }
    // Timers first: a due delay is answered before new work is taken.
    if (!timers_.empty()) FireExpired();

    std::vector<int> gone;
    for (size_t i = 2; i < fds.size(); ++i) {
      Listener& l = listeners_[i - 2];
      if (fds[i].revents & POLLIN) {
        HandleNotification(l);
      } else if (fds[i].revents & (POLLHUP | POLLERR | POLLNVAL)) {
        // Every process using the filter has exited.
        gone.push_back(l.fd);
      }
    }
    for (int fd : gone) {
      DropListener(fd);
      std::erase_if(listeners_, [fd](const Listener& l) { return l.fd == fd; });
    }
    ArmTimer();
    if (!gone.empty() && listeners_.empty() && pending_.empty()) {
      absl::MutexLock lock(&mu_);
      if (incoming_.empty()) done_ = true;
    }
  }

  // Stopping: let every delayed syscall proceed, then close the listeners so
  // later notified syscalls fail with ENOSYS instead of waiting forever.
  for (auto& [id, p] : pending_) Respond(p.fd, id, 0, /*cont=*/true);
  pending_.clear();
  pending_by_tid_.clear();
  for (Listener& l : listeners_) close(l.fd);
  listeners_.clear();
  absl::MutexLock lock(&mu_);
  done_ = true;
}

}  // namespace fault::seccomp
