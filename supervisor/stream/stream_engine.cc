#include "supervisor/stream/stream_engine.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <deque>
#include <queue>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "shim/engine/engine.h"

namespace fault::stream {
namespace {

namespace eng = ::fault::engine;

constexpr size_t kReadChunk = 64 * 1024;
constexpr int kMaxReadsPerEvent = 64;
constexpr int kMaxEvents = 64;
// An accepted socket handed over without its replacement connection (or
// the reverse) is dropped after this long.
constexpr int64_t kOrphanTtlNs = 10'000'000'000;
constexpr int64_t kForever = INT64_MAX;
// A flight takes a new decision after this many bytes, so that a long
// transfer still meets the rule's loss now and then.
constexpr uint64_t kFlightBytes = 64 * 1024;

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

absl::Status Errno(absl::string_view what) {
  return absl::ErrnoToStatus(errno, what);
}

void FutexWakeAll(uint32_t* word) {
  syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

// Closes with an RST instead of a FIN: the peer sees ECONNRESET, as it
// would from a reset connection.
void CloseWithReset(int fd) {
  if (fd < 0) return;
  linger l = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  close(fd);
}

// Every socket of the engine: no Nagle (chunks leave when they are due),
// and a kernel receive time stamp on what is read, so that a delay counts
// from when the bytes arrived, not from when this thread woke up to read
// them (tens of microseconds later on a virtual machine).
void TuneSocket(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
}

// recv() that also returns when the kernel received the bytes, on
// CLOCK_MONOTONIC (`now` when the kernel gave no time stamp).
ssize_t RecvStamped(int fd, char* buf, size_t n, int64_t now, int64_t* arrived) {
  iovec iov = {buf, n};
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(timespec))];
  msghdr m = {};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = cbuf;
  m.msg_controllen = sizeof(cbuf);
  ssize_t r = recvmsg(fd, &m, MSG_DONTWAIT);
  *arrived = now;
  if (r <= 0) return r;
  for (cmsghdr* cm = CMSG_FIRSTHDR(&m); cm != nullptr; cm = CMSG_NXTHDR(&m, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_TIMESTAMPNS) continue;
    timespec ts;
    memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
    int64_t stamp = int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
    int64_t age = eng::RealtimeNs() - stamp;
    // A stamp from the future or older than a second (a clock step) is
    // not trusted.
    if (age > 0 && age < 1'000'000'000) *arrived = now - age;
  }
  return r;
}

// Where a redirected connection goes (or, accepted, which service it
// reached), as the target side announced it.
eng::Endpoint FarEnd(const fault_redirect& r) {
  eng::Endpoint ep;
  ep.family = r.family == AF_INET6 ? AF_INET6 : AF_INET;
  ep.port = r.port;
  memcpy(ep.addr, r.addr, sizeof(ep.addr));
  return ep;
}

// What the epoll data pointer of every registered fd points at.
struct Handle {
  enum Kind : uint8_t { kListener4, kListener6, kControl, kWake, kSide };
  Kind kind;
  int side = 0;            // kSide: 0 near (the target), 1 far
  struct Conn* conn = nullptr;
};

struct Chunk {
  std::unique_ptr<char[]> data;
  size_t off = 0;
  size_t end = 0;
  int64_t release_ns = 0;
};

// One direction: bytes read from side `d`, written to side `1 - d`
// (0: uplink, target -> far end; 1: downlink).
struct Dir {
  std::deque<Chunk> q;
  size_t queued = 0;
  int64_t last_release = 0;
  bool src_eof = false;     // the source sent its FIN (or a budget ended it)
  bool dst_shut = false;    // the FIN was passed on
  bool paused = false;      // reading stopped above the watermark
  bool stalled = false;     // black-holed: read and discarded
  bool throttled = false;   // a rate episode is under way (one event each)
  // The current flight: bytes that arrive while earlier ones of the
  // direction still wait share their decision (see Ingest).
  int64_t flight_delay = 0;
  uint64_t flight_bytes = 0;
  bool more = false;        // a read burst stopped at its limit: read again
};

struct Conn {
  uint64_t id = 0;
  Handle h[2];
  int fd[2] = {-1, -1};
  Dir dir[2];
  eng::ConnState cs;
  enum State : uint8_t { kAwaitFar, kConnecting, kOpen, kDead } state = kAwaitFar;
  int family_index = 0;
  uint16_t slot_port = 0;
  int32_t pid = 0;
  int rule = -1;               // under rule_seq
  uint64_t rule_seq = 0;
  uint64_t rule_generation = 0;
  fault_rule rule_copy;        // rules[rule] at rule_seq
  char rule_name[FAULT_NAME_MAX] = {};
  int64_t opened_ns = 0;
  int64_t handshake_until = 0;
  bool slot_open = false;      // the redirect slot says OPEN
  int64_t fail_at = kForever;  // a scheduled failure (timeout.recv, stalls)
  int fail_err = 0;
  int64_t timer_at = kForever; // earliest timer queued for this connection
  uint16_t engine_port = 0;    // marked in table->engine_ports
  char target[FAULT_NAME_MAX] = {};
};

struct Timer {
  int64_t at;
  uint64_t conn;
  bool operator>(const Timer& o) const { return at > o.at; }
};

}  // namespace

class StreamEngine::Loop {
 public:
  explicit Loop(const Options& o) : o_(o), t_(o.table) {}
  ~Loop();

  absl::Status Open(uint16_t* port4, uint16_t* port6, std::string* name);
  void Run();
  void RequestStop();
  void RequestFinish(int64_t deadline_ns);
  // How late this machine wakes us after a timed wait (an average): sleeps
  // end that much (and kSpinNs more) before a chunk is due, then the loop
  // polls until it is, so that its bytes leave on time.
  int64_t early_ns() const { return early_ns_; }
  size_t cut_short() const { return cut_short_.load(); }
  Stats stats() const;

 private:
  void Register(int fd, Handle* h, uint32_t events);
  void OnListener(int family_index, int fd);
  void OnControl();
  void OnSide(Conn* c, int side, uint32_t events);
  void ConnectFar(Conn* c, const fault_redirect& r);
  void AttachFar(Conn* c, int fd);
  void ReadFrom(Conn* c, int d);
  void Ingest(Conn* c, int d, const char* buf, size_t n, int64_t now);
  void Enqueue(Conn* c, int d, const char* buf, size_t n, int64_t release);
  void Pump(Conn* c, int d, int64_t now);
  void Service(Conn* c);
  void Fail(Conn* c, int err);
  void Kill(Conn* c);
  void Schedule(Conn* c, int64_t at);
  bool CurrentRule(Conn* c);
  void Emit(Conn* c, int d, const eng::NetDecision& dec);
  void EmitRate(Conn* c, int d, int64_t held);
  fault_redirect* Slot(const Conn* c) {
    return &t_->redirects[c->family_index][c->slot_port];
  }
  void SetSlotState(Conn* c, uint32_t state, int err);
  void ExpireOrphans(int64_t now);

  Options o_;
  fault_table* t_;
  int ep_ = -1;
  int listen_[2] = {-1, -1};
  int control_ = -1;
  int wake_ = -1;
  Handle listen_h_[2] = {{Handle::kListener4}, {Handle::kListener6}};
  Handle control_h_{Handle::kControl};
  Handle wake_h_{Handle::kWake};
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> finish_by_{0};  // 0: not finishing
  uint64_t finish_moved_ = 0;          // bytes written when last looked
  int64_t finish_progress_ns_ = 0;     // when they last changed
  static constexpr int64_t kStallNs = 2'000'000'000;
  std::atomic<size_t> cut_short_{0};
  // Connections that have not yet passed on everything their target sent
  // before closing its side.
  size_t Unflushed() const;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  std::vector<std::unique_ptr<Conn>> dead_;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
  // Accepted sockets handed over before their replacement connection
  // arrived, and connections waiting for their accepted socket, by
  // (family_index << 16 | port).
  struct Orphan {
    int fd;
    int64_t since;
  };
  std::unordered_map<uint32_t, Orphan> handed_;
  std::unordered_map<uint32_t, uint64_t> awaiting_;
  int64_t next_expiry_ = 0;
  int64_t early_ns_ = 0;
  static constexpr int64_t kMaxEarlyNs = 200'000;
  static constexpr int64_t kSpinNs = 30'000;
  std::unique_ptr<char[]> scratch_{new char[kReadChunk]};

  std::atomic<uint64_t> accepted_{0}, unclaimed_{0}, far_failed_{0}, open_{0},
      bytes_[2] = {0, 0};
};

StreamEngine::Loop::~Loop() {
  for (auto& [id, c] : conns_) {
    for (int fd : c->fd)
      if (fd >= 0) close(fd);
    if (c->engine_port != 0)
      __atomic_fetch_and(&t_->engine_ports[c->engine_port / 64],
                         ~(uint64_t{1} << (c->engine_port % 64)),
                         __ATOMIC_RELAXED);
  }
  for (auto& [key, o] : handed_) close(o.fd);
  for (int fd : {ep_, listen_[0], listen_[1], control_, wake_})
    if (fd >= 0) close(fd);
}

absl::Status StreamEngine::Loop::Open(uint16_t* port4, uint16_t* port6,
                                      std::string* name) {
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  if (ep_ < 0) return Errno("epoll_create1");
  wake_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_ < 0) return Errno("eventfd");
  Register(wake_, &wake_h_, EPOLLIN);

  for (int fi = 0; fi < 2; ++fi) {
    int family = fi == 0 ? AF_INET : AF_INET6;
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      if (fi == 1) continue;  // no IPv6 on this machine
      return Errno("socket for the stream engine");
    }
    if (family == AF_INET6) {
      int one = 1;
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    }
    sockaddr_storage ss;
    socklen_t len = static_cast<socklen_t>(
        eng::EndpointSockaddr(eng::LoopbackEndpoint(family, 0), &ss, sizeof(ss)));
    if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
        listen(fd, SOMAXCONN) != 0) {
      int e = errno;
      close(fd);
      if (fi == 1) continue;
      errno = e;
      return Errno("binding the stream engine to 127.0.0.1");
    }
    len = sizeof(ss);
    getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    uint16_t port = ntohs(family == AF_INET
                              ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                              : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    (fi == 0 ? *port4 : *port6) = port;
    listen_[fi] = fd;
    Register(fd, &listen_h_[fi], EPOLLIN);
  }

  control_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (control_ < 0) return Errno("socket for the stream engine's control");
  static std::atomic<uint32_t> serial{0};
  *name = absl::StrCat("fault-engine-", getpid(), "-", serial.fetch_add(1),
                       "-", NowNs() % 1000000);
  sockaddr_un un = {};
  un.sun_family = AF_UNIX;
  memcpy(un.sun_path + 1, name->data(), name->size());
  socklen_t ulen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 +
                                          name->size());
  if (bind(control_, reinterpret_cast<sockaddr*>(&un), ulen) != 0)
    return Errno("binding the stream engine's control socket");
  Register(control_, &control_h_, EPOLLIN);
  return absl::OkStatus();
}

void StreamEngine::Loop::Register(int fd, Handle* h, uint32_t events) {
  epoll_event ev = {};
  ev.events = events;
  ev.data.ptr = h;
  epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
}

void StreamEngine::Loop::RequestFinish(int64_t deadline_ns) {
  finish_by_.store(deadline_ns);
  uint64_t one = 1;
  (void)!write(wake_, &one, sizeof(one));
}

size_t StreamEngine::Loop::Unflushed() const {
  size_t n = 0;
  for (const auto& [id, c] : conns_) {
    const Dir& up = c->dir[0];
    // Still sending what the target wrote, or the target's side not yet
    // closed.
    if ((!up.q.empty() && c->state != Conn::kDead) || (!up.src_eof && c->fd[0] >= 0)) ++n;
  }
  return n;
}

void StreamEngine::Loop::RequestStop() {
  stop_.store(true);
  uint64_t one = 1;
  (void)!write(wake_, &one, sizeof(one));
}

StreamEngine::Stats StreamEngine::Loop::stats() const {
  Stats s;
  s.accepted = accepted_.load(std::memory_order_relaxed);
  s.unclaimed = unclaimed_.load(std::memory_order_relaxed);
  s.far_failed = far_failed_.load(std::memory_order_relaxed);
  s.open = open_.load(std::memory_order_relaxed);
  s.bytes_up = bytes_[0].load(std::memory_order_relaxed);
  s.bytes_down = bytes_[1].load(std::memory_order_relaxed);
  return s;
}

void StreamEngine::Loop::Run() {
  // Timers are the effects: a 50 us default slack would be an error of its own.
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  epoll_event evs[kMaxEvents];
  while (!stop_.load(std::memory_order_relaxed)) {
    int64_t now = NowNs();
    timespec ts;
    // Sleep until shortly before the next chunk is due, then poll: a
    // wake-up on this kind of machine comes tens of microseconds late, a
    // poll does not (the spin lasts kSpinNs at most per release).
    int64_t wait = timers_.empty() ? 1'000'000'000
                                   : timers_.top().at - early_ns_ - kSpinNs - now;
    if (wait < 0) wait = 0;
    ts.tv_sec = wait / 1'000'000'000;
    ts.tv_nsec = wait % 1'000'000'000;
    const int64_t wake = now + wait;
    int n = epoll_pwait2(ep_, evs, kMaxEvents, &ts, nullptr);
    if (n < 0 && errno != EINTR) break;
    if (n == 0 && wait > 0 && !timers_.empty()) {
      // A timed wake-up: learn how late they come (EWMA, 1/8).
      int64_t late = std::clamp<int64_t>(NowNs() - wake, 0, kMaxEarlyNs);
      early_ns_ += (late - early_ns_) / 8;
    }
    for (int i = 0; i < n; ++i) {
      auto* h = static_cast<Handle*>(evs[i].data.ptr);
      switch (h->kind) {
        case Handle::kListener4:
          OnListener(0, listen_[0]);
          break;
        case Handle::kListener6:
          OnListener(1, listen_[1]);
          break;
        case Handle::kControl:
          OnControl();
          break;
        case Handle::kWake: {
          uint64_t v;
          (void)!read(wake_, &v, sizeof(v));
          break;
        }
        case Handle::kSide:
          if (h->conn->state != Conn::kDead) OnSide(h->conn, h->side, evs[i].events);
          break;
      }
    }
    now = NowNs();
    for (int k = 0; k < 4096 && !timers_.empty() && timers_.top().at <= now;
         ++k) {
      Timer tm = timers_.top();
      timers_.pop();
      auto it = conns_.find(tm.conn);
      if (it == conns_.end()) continue;
      Conn* c = it->second.get();
      if (c->timer_at <= now) c->timer_at = kForever;
      Service(c);
    }
    if (now >= next_expiry_) {
      ExpireOrphans(now);
      next_expiry_ = now + 1'000'000'000;
    }
    dead_.clear();
    int64_t finish_by = finish_by_.load(std::memory_order_relaxed);
    if (finish_by != 0) {
      size_t unflushed = Unflushed();
      if (unflushed == 0) break;
      // A far end that stopped reading would hold the flush to its limit:
      // give up once nothing has moved for kStallNs.
      uint64_t moved = bytes_[0].load(std::memory_order_relaxed) +
                       bytes_[1].load(std::memory_order_relaxed);
      if (moved != finish_moved_ || finish_progress_ns_ == 0) {
        finish_moved_ = moved;
        finish_progress_ns_ = now;
      }
      if (now >= finish_by || now - finish_progress_ns_ >= kStallNs) {
        cut_short_.store(unflushed);
        break;
      }
      int64_t check = std::min(finish_by, finish_progress_ns_ + kStallNs);
      if (timers_.empty() || timers_.top().at > check) timers_.push(Timer{check, 0});
    }
  }
}

void StreamEngine::Loop::ExpireOrphans(int64_t now) {
  for (auto it = handed_.begin(); it != handed_.end();) {
    if (now - it->second.since > kOrphanTtlNs) {
      close(it->second.fd);
      it = handed_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = awaiting_.begin(); it != awaiting_.end();) {
    auto c = conns_.find(it->second);
    if (c == conns_.end() || c->second->state != Conn::kAwaitFar) {
      it = awaiting_.erase(it);
    } else if (now - c->second->opened_ns > kOrphanTtlNs) {
      Conn* conn = c->second.get();
      it = awaiting_.erase(it);
      Fail(conn, ECONNRESET);
    } else {
      ++it;
    }
  }
}

void StreamEngine::Loop::OnListener(int fi, int lfd) {
  for (int k = 0; k < 256; ++k) {
    sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = accept4(lfd, reinterpret_cast<sockaddr*>(&ss), &len,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    uint16_t port = ntohs(fi == 0
                              ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                              : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    fault_redirect* slot = &t_->redirects[fi][port];
    uint32_t expect = FAULT_REDIRECT_ARMED;
    if (!__atomic_compare_exchange_n(&slot->state, &expect,
                                     FAULT_REDIRECT_CLAIMED, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
      // Nobody announced this connection: not ours to relay.
      unclaimed_.fetch_add(1, std::memory_order_relaxed);
      CloseWithReset(fd);
      continue;
    }
    fault_redirect r;
    memcpy(&r, slot, sizeof(r));
    accepted_.fetch_add(1, std::memory_order_relaxed);
    open_.fetch_add(1, std::memory_order_relaxed);

    auto owned = std::make_unique<Conn>();
    Conn* c = owned.get();
    c->id = next_id_++;
    c->family_index = fi;
    c->slot_port = port;
    c->pid = r.pid;
    c->opened_ns = NowNs();
    c->fd[0] = fd;
    for (int s = 0; s < 2; ++s) {
      c->h[s].kind = Handle::kSide;
      c->h[s].side = s;
      c->h[s].conn = c;
    }
    eng::FormatEndpoint(FarEnd(r), c->target, sizeof(c->target));
    // The rule the target side picked, as the table is now.
    eng::Index idx;
    if (r.rule < FAULT_MAX_RULES && eng::BuildIndex(t_, &idx) &&
        eng::ReadRule(t_, idx.seq, r.rule, &c->rule_copy)) {
      c->rule = r.rule;
      c->rule_seq = idx.seq;
      c->rule_generation = idx.generation;
      eng::CopyString(c->rule_name, c->rule_copy.name, sizeof(c->rule_name));
    }
    TuneSocket(fd);
    conns_.emplace(c->id, std::move(owned));
    Register(fd, &c->h[0], EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);

    if (c->rule >= 0 && c->rule_copy.timeout_recv_ns > 0) {
      // Every receive waits timeout.recv and fails: nothing is delivered,
      // and the connection fails with ETIMEDOUT once that time has passed.
      c->dir[1].stalled = true;
      c->fail_at = c->opened_ns + c->rule_copy.timeout_recv_ns;
      c->fail_err = ETIMEDOUT;
      Schedule(c, c->fail_at);
    }
    if (r.kind == FAULT_REDIRECT_CONNECT) {
      c->handshake_until = c->opened_ns + std::max<int64_t>(r.handshake_ns, 0);
      ConnectFar(c, r);
    } else {
      uint32_t key = static_cast<uint32_t>(fi) << 16 | port;
      auto it = handed_.find(key);
      if (it != handed_.end()) {
        int far = it->second.fd;
        handed_.erase(it);
        AttachFar(c, far);
      } else {
        awaiting_[key] = c->id;
      }
    }
  }
}

void StreamEngine::Loop::OnControl() {
  for (int k = 0; k < 256; ++k) {
    fault_handoff msg;
    iovec iov = {&msg, sizeof(msg)};
    alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * 4)];
    msghdr m = {};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = cbuf;
    m.msg_controllen = sizeof(cbuf);
    ssize_t n = recvmsg(control_, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) return;
    int fds[4];
    int nfds = 0;
    for (cmsghdr* cm = CMSG_FIRSTHDR(&m); cm != nullptr; cm = CMSG_NXTHDR(&m, cm)) {
      if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
      size_t k2 = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t j = 0; j < k2 && nfds < 4; ++j)
        memcpy(&fds[nfds++], CMSG_DATA(cm) + j * sizeof(int), sizeof(int));
    }
    if (n != static_cast<ssize_t>(sizeof(msg)) || nfds != 1 ||
        msg.family_index > 1) {
      for (int j = 0; j < nfds; ++j) close(fds[j]);
      continue;
    }
    int fd = fds[0];
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    uint32_t key = static_cast<uint32_t>(msg.family_index) << 16 | msg.port;
    auto it = awaiting_.find(key);
    if (it != awaiting_.end()) {
      auto c = conns_.find(it->second);
      awaiting_.erase(it);
      if (c != conns_.end() && c->second->state == Conn::kAwaitFar) {
        AttachFar(c->second.get(), fd);
        continue;
      }
    }
    auto old = handed_.find(key);
    if (old != handed_.end()) close(old->second.fd);
    handed_[key] = Orphan{fd, NowNs()};
  }
}

void StreamEngine::Loop::ConnectFar(Conn* c, const fault_redirect& r) {
  const eng::Endpoint far = FarEnd(r);
  int family = far.family;
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    Fail(c, errno);
    return;
  }
  sockaddr_storage ss;
  socklen_t len = static_cast<socklen_t>(eng::EndpointSockaddr(far, &ss, sizeof(ss)));
  TuneSocket(fd);
  c->fd[1] = fd;
  c->state = Conn::kConnecting;
  int rc = connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
  if (rc != 0 && errno != EINPROGRESS) {
    far_failed_.fetch_add(1, std::memory_order_relaxed);
    Fail(c, errno);
    return;
  }
  if (eng::IsLoopback(far)) {
    // A shimmed server of this run must leave this connection to us.
    sockaddr_storage local;
    socklen_t llen = sizeof(local);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &llen) == 0) {
      uint16_t p = ntohs(family == AF_INET
                             ? reinterpret_cast<sockaddr_in*>(&local)->sin_port
                             : reinterpret_cast<sockaddr_in6*>(&local)->sin6_port);
      if (p != 0) {
        __atomic_fetch_or(&t_->engine_ports[p / 64], uint64_t{1} << (p % 64),
                          __ATOMIC_RELAXED);
        c->engine_port = p;
      }
    }
  }
  Register(fd, &c->h[1], EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
}

void StreamEngine::Loop::AttachFar(Conn* c, int fd) {
  c->fd[1] = fd;
  c->state = Conn::kOpen;
  TuneSocket(fd);
  SetSlotState(c, FAULT_REDIRECT_OPEN, 0);
  Register(fd, &c->h[1], EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
  Service(c);
}

void StreamEngine::Loop::SetSlotState(Conn* c, uint32_t state, int err) {
  fault_redirect* s = Slot(c);
  uint32_t cur = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
  // The port may already carry a newer connection's announcement.
  if (cur != FAULT_REDIRECT_CLAIMED && cur != FAULT_REDIRECT_CONNECTED &&
      cur != FAULT_REDIRECT_OPEN)
    return;
  if (err != 0) __atomic_store_n(&s->err, err, __ATOMIC_RELAXED);
  __atomic_store_n(&s->state, state, __ATOMIC_RELEASE);
  FutexWakeAll(&s->state);
  if (state == FAULT_REDIRECT_OPEN) c->slot_open = true;
}

void StreamEngine::Loop::OnSide(Conn* c, int side, uint32_t events) {
  if (side == 1 && c->state == Conn::kConnecting) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      far_failed_.fetch_add(1, std::memory_order_relaxed);
      Fail(c, err);
      return;
    }
    c->state = Conn::kOpen;
    // The far end is there; a program asking SO_ERROR may go on. OPEN
    // follows once the emulated handshake time has passed (Service).
    if (NowNs() < c->handshake_until) SetSlotState(c, FAULT_REDIRECT_CONNECTED, 0);
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) ReadFrom(c, side);
  if (c->state == Conn::kDead) return;
  Service(c);
}

bool StreamEngine::Loop::CurrentRule(Conn* c) {
  if (c->rule_name[0] == 0) return false;
  uint64_t seq = eng::LoadSeq(t_);
  if (seq == c->rule_seq && c->rule >= 0) return true;
  // Republished (a reload): the policy is looked up again by name.
  eng::Index idx;
  c->rule = -1;
  if (!eng::BuildIndex(t_, &idx)) return false;
  int r = eng::FindRuleByName(t_, idx, c->rule_name);
  if (r < 0 || !eng::ReadRule(t_, idx.seq, r, &c->rule_copy)) return false;
  c->rule = r;
  c->rule_seq = idx.seq;
  c->rule_generation = idx.generation;
  return true;
}

void StreamEngine::Loop::ReadFrom(Conn* c, int d) {
  Dir& dir = c->dir[d];
  int fd = c->fd[d];
  if (fd < 0 || dir.src_eof) return;
  for (int k = 0; k < kMaxReadsPerEvent; ++k) {
    if (dir.queued >= o_.high_watermark) {
      dir.paused = true;
      return;
    }
    int64_t arrived;
    ssize_t n = RecvStamped(fd, scratch_.get(), kReadChunk, NowNs(), &arrived);
    if (n > 0) {
      Ingest(c, d, scratch_.get(), static_cast<size_t>(n), arrived);
      if (c->state == Conn::kDead) return;
      continue;
    }
    if (n == 0) {
      dir.src_eof = true;
      return;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    if (errno == EINTR) continue;
    // The source was reset: so is the other side.
    Fail(c, errno == EPIPE ? ECONNRESET : errno);
    return;
  }
  // Edge-triggered: what is left in the socket brings no new event. Come
  // back to it after the other connections had their turn.
  dir.more = true;
  Schedule(c, NowNs());
}

void StreamEngine::Loop::Ingest(Conn* c, int d, const char* buf, size_t n,
                                int64_t now) {
  Dir& dir = c->dir[d];
  if (dir.stalled) return;  // black-holed: read and discarded
  size_t off = 0;
  for (int k = 0; off < n && k < 8; ++k) {
    if (!CurrentRule(c)) {
      Enqueue(c, d, buf + off, n - off, std::max(now, dir.last_release));
      return;
    }
    const fault_rule& r = c->rule_copy;
    // One decision per flight: bytes that arrive while earlier bytes of
    // the direction still wait in the engine join them, with the same
    // delay. So a message the kernel happened to split into two reads
    // meets the link once, as one burst of packets would, and the same
    // seed gives the same decisions whatever the split. Budgets and
    // half-open count every byte: decided per read, as is everything of a
    // rule that asks for it (per_operation, the proxy's
    // --latency-per-read-write).
    const bool per_read =
        (r.flags & FAULT_RULE_PER_OP) || r.budget_max_tx || r.budget_max_rx ||
        r.budget_max_ops || r.budget_max_duration_ns > 0 ||
        r.half_open_after_bytes > 0 || r.half_open_after_ns > 0;
    if (!per_read && !dir.q.empty() && dir.flight_bytes < kFlightBytes) {
      size_t take = n - off;
      int64_t base = d == 0 ? std::max(now, c->handshake_until) : now;
      Enqueue(c, d, buf + off, take, std::max(base + dir.flight_delay, dir.last_release));
      eng::AccountBytes(&c->cs, d, take);
      dir.flight_bytes += take;
      return;
    }
    double factor = eng::ScheduleFactor(r.schedule, now - t_->start_ns);
    eng::NetDecision dec;
    eng::DecideNet(t_, r, c->rule, d == 0 ? eng::NetOp::kSend : eng::NetOp::kRecv,
                   FAULT_PROTO_TCP, &c->cs, n - off, now, factor, &dec);
    if (dec.rule < 0) {  // the schedule has the rule off
      Enqueue(c, d, buf + off, n - off, std::max(now, dir.last_release));
      return;
    }
    if (dec.fired) Emit(c, d, dec);
    if (dec.stall_ns >= 0) {
      // Stalled (black hole, half-open, timeout): nothing more arrives in
      // this direction; a finite stall then fails the connection.
      dir.stalled = true;
      if (dec.stall_ns != kForever && dec.err != 0) {
        int64_t at = now + dec.stall_ns;
        if (at < c->fail_at) {
          c->fail_at = at;
          c->fail_err = dec.err;
          Schedule(c, at);
        }
      }
      return;
    }
    if (dec.err != 0) {
      Fail(c, dec.err);
      return;
    }
    if (dec.drop) {  // sent into a black hole / a half-open peer
      eng::AccountBytes(&c->cs, d, n - off);
      return;
    }
    if (dec.eof) {  // a budget ended the stream
      dir.src_eof = true;
      dir.stalled = true;
      return;
    }
    size_t take = n - off;
    if (dec.max_bytes < take) take = static_cast<size_t>(dec.max_bytes);
    if (take == 0) continue;  // the next decision sees the limit reached
    // Bytes written before the emulated handshake is over leave when it
    // is: a real client could not have sent them earlier.
    int64_t release = (d == 0 ? std::max(now, c->handshake_until) : now) + dec.delay_ns;
    release = std::max(release, dir.last_release);  // a stream keeps its order
    Enqueue(c, d, buf + off, take, release);
    eng::AccountBytes(&c->cs, d, take);
    dir.flight_delay = dec.delay_ns;
    dir.flight_bytes = take;
    off += take;
  }
  if (off < n) Enqueue(c, d, buf + off, n - off, std::max(now, dir.last_release));
}

void StreamEngine::Loop::Enqueue(Conn* c, int d, const char* buf, size_t n,
                                 int64_t release) {
  Dir& dir = c->dir[d];
  Chunk ch;
  ch.data.reset(new char[n]);
  memcpy(ch.data.get(), buf, n);
  ch.end = n;
  ch.release_ns = release;
  dir.q.push_back(std::move(ch));
  dir.queued += n;
  dir.last_release = release;
}

void StreamEngine::Loop::Pump(Conn* c, int d, int64_t now) {
  Dir& dir = c->dir[d];
  int dst = c->fd[1 - d];
  if (dst < 0 || c->state != Conn::kOpen) return;
  bool rated = c->rule >= 0 &&
               (d == 0 ? c->rule_copy.uplink : c->rule_copy.downlink).rate_bps != 0;
  for (int k = 0; k < 1024 && !dir.q.empty(); ++k) {
    Chunk& ch = dir.q.front();
    if (ch.release_ns > now) {
      Schedule(c, ch.release_ns);
      return;
    }
    size_t want = ch.end - ch.off;
    uint64_t got = want;
    if (rated && CurrentRule(c)) {
      const fault_link& l = d == 0 ? c->rule_copy.uplink : c->rule_copy.downlink;
      int64_t wait = 0;
      got = l.rate_bps == 0 ? want
                            : eng::TokenBucketTake(&c->cs.bucket[d], l.rate_bps,
                                                   l.rate_burst_bytes, now, want,
                                                   &wait);
      if (got == 0) {
        if (!dir.throttled) {
          dir.throttled = true;
          EmitRate(c, d, static_cast<int64_t>(dir.queued));
        }
        Schedule(c, now + std::max<int64_t>(wait, 1000));
        return;
      }
    }
    ssize_t w = send(dst, ch.data.get() + ch.off, got, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w < 0) {
      if (got != want || rated)
        c->cs.bucket[d].tokens += static_cast<int64_t>(got) * 8 * 1'000'000'000LL;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;  // EPOLLOUT resumes
      if (errno == EINTR) continue;
      Fail(c, errno == EPIPE ? ECONNRESET : errno);
      return;
    }
    if (rated && static_cast<uint64_t>(w) < got)
      c->cs.bucket[d].tokens +=
          static_cast<int64_t>(got - static_cast<uint64_t>(w)) * 8 * 1'000'000'000LL;
    ch.off += static_cast<size_t>(w);
    dir.queued -= static_cast<size_t>(w);
    bytes_[d].fetch_add(static_cast<uint64_t>(w), std::memory_order_relaxed);
    if (ch.off == ch.end) dir.q.pop_front();
    if (static_cast<uint64_t>(w) < got) return;  // the socket is full
  }
  if (!dir.q.empty()) {
    // Stopped at the write limit with due chunks left: nothing else would
    // bring us back (the destination is still writable), so come back soon.
    Schedule(c, now);
    return;
  }
  {
    dir.throttled = false;
    if (dir.src_eof && !dir.dst_shut) {
      shutdown(dst, SHUT_WR);
      dir.dst_shut = true;
    }
  }
}

void StreamEngine::Loop::Service(Conn* c) {
  if (c->state == Conn::kDead) return;
  int64_t now = NowNs();
  if (now >= c->fail_at) {
    Fail(c, c->fail_err != 0 ? c->fail_err : ETIMEDOUT);
    return;
  }
  if (c->fail_at != kForever) Schedule(c, c->fail_at);
  if (c->state == Conn::kOpen && !c->slot_open) {
    if (now >= c->handshake_until)
      SetSlotState(c, FAULT_REDIRECT_OPEN, 0);
    else
      Schedule(c, c->handshake_until);
  }
  for (int d = 0; d < 2; ++d) {
    Dir& dir = c->dir[d];
    // Write what is due, then read more if reading had stopped (a burst
    // limit, or the watermark with the queue now low). What was read may be
    // due at once (it waited in the socket while reading was paused), so
    // go round until neither applies.
    for (int round = 0; round < 16; ++round) {
      Pump(c, d, round == 0 ? now : NowNs());
      if (c->state == Conn::kDead) return;
      const bool resume = dir.more || (dir.paused && dir.queued < o_.high_watermark / 2);
      if (!resume) break;
      dir.more = false;
      dir.paused = false;
      ReadFrom(c, d);  // edge-triggered: what waits must be read now
      if (c->state == Conn::kDead) return;
    }
    if (dir.more || (dir.paused && dir.queued < o_.high_watermark / 2))
      Schedule(c, NowNs());
    if (dir.stalled && dir.src_eof && !dir.dst_shut && c->state == Conn::kOpen &&
        dir.q.empty()) {
      shutdown(c->fd[1 - d], SHUT_WR);
      dir.dst_shut = true;
    }
  }
  // Both FINs passed on and nothing left: done.
  if (c->dir[0].dst_shut && c->dir[1].dst_shut) Kill(c);
}

void StreamEngine::Loop::Fail(Conn* c, int err) {
  if (c->state == Conn::kDead) return;
  SetSlotState(c, FAULT_REDIRECT_FAILED, err);
  CloseWithReset(c->fd[0]);
  CloseWithReset(c->fd[1]);
  c->fd[0] = c->fd[1] = -1;
  Kill(c);
}

void StreamEngine::Loop::Kill(Conn* c) {
  if (c->state == Conn::kDead) return;
  c->state = Conn::kDead;
  open_.fetch_sub(1, std::memory_order_relaxed);
  for (int& fd : c->fd) {
    if (fd >= 0) close(fd);  // closing removes it from the epoll set
    fd = -1;
  }
  if (c->engine_port != 0) {
    __atomic_fetch_and(&t_->engine_ports[c->engine_port / 64],
                       ~(uint64_t{1} << (c->engine_port % 64)), __ATOMIC_RELAXED);
    c->engine_port = 0;
  }
  auto it = conns_.find(c->id);
  if (it != conns_.end()) {
    // Events of this batch may still point at it: freed after the batch.
    dead_.push_back(std::move(it->second));
    conns_.erase(it);
  }
}

void StreamEngine::Loop::Schedule(Conn* c, int64_t at) {
  if (at >= c->timer_at) return;
  c->timer_at = at;
  timers_.push(Timer{at, c->id});
}

void StreamEngine::Loop::Emit(Conn* c, int d, const eng::NetDecision& dec) {
  fault_event ev;
  memset(&ev, 0, sizeof(ev));
  ev.time_ns = eng::RealtimeNs();
  ev.pid = c->pid;
  ev.rule = static_cast<uint16_t>(dec.rule);
  ev.op = d == 0 ? FAULT_OP_SEND : FAULT_OP_RECV;
  ev.effect = dec.effect;
  ev.value = dec.value;
  ev.layer = 3;
  ev.generation = static_cast<uint32_t>(c->rule_generation);
  eng::CopyString(ev.target, c->target, sizeof(ev.target));
  eng::EmitEvent(t_, ev);
}

void StreamEngine::Loop::EmitRate(Conn* c, int d, int64_t held) {
  if (c->rule < 0) return;
  eng::CountFired(t_, c->rule);
  eng::NetDecision dec;
  dec.rule = c->rule;
  dec.effect = FAULT_EFFECT_RATE;
  dec.value = held;  // bytes held back when the episode began
  Emit(c, d, dec);
}

absl::StatusOr<std::unique_ptr<StreamEngine>> StreamEngine::Start(
    const Options& options) {
  if (options.table == nullptr)
    return absl::InvalidArgumentError("stream engine without a policy table");
  std::unique_ptr<StreamEngine> e(new StreamEngine());
  e->loop_ = std::make_unique<Loop>(options);
  if (absl::Status s = e->loop_->Open(&e->port4_, &e->port6_, &e->control_name_);
      !s.ok())
    return s;
  if (options.advertise) {
    fault_table* t = options.table;
    eng::CopyString(t->engine_control, e->control_name_.c_str(),
                    sizeof(t->engine_control));
    __atomic_store_n(&t->engine_port6, e->port6_, __ATOMIC_RELEASE);
    __atomic_store_n(&t->engine_port4, e->port4_, __ATOMIC_RELEASE);
  }
  Loop* loop = e->loop_.get();
  // The loop takes no signals: the caller may wait for them (sigtimedwait)
  // with them blocked, and a thread of ours must not take them instead.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  e->thread_ = std::thread([loop] { loop->Run(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return e;
}

StreamEngine::~StreamEngine() {
  if (loop_ == nullptr) return;
  loop_->RequestStop();
  if (thread_.joinable()) thread_.join();
}

StreamEngine::Stats StreamEngine::stats() const { return loop_->stats(); }

size_t StreamEngine::Finish(int64_t timeout_ns) {
  if (loop_ == nullptr || !thread_.joinable()) return 0;
  loop_->RequestFinish(NowNs() + timeout_ns);
  thread_.join();
  return loop_->cut_short();
}

}  // namespace fault::stream
