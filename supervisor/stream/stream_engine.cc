#include "supervisor/stream/stream_engine.h"

#include "supervisor/stream/stream_loop.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <netdb.h>
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

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void CloseWithReset(int fd) {
  if (fd < 0) return;
  linger l = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  close(fd);
}

namespace {

constexpr size_t kReadChunk = 64 * 1024;
constexpr int kMaxReadsPerEvent = 64;
constexpr int kMaxEvents = 64;
// An accepted socket handed over without its replacement connection (or
// the reverse) is dropped after this long.
constexpr int64_t kOrphanTtlNs = 10'000'000'000;
// A flight takes a new decision after this many bytes, so that a long
// transfer still meets the rule's loss now and then.
constexpr uint64_t kFlightBytes = 64 * 1024;

absl::Status Errno(absl::string_view what) {
  return absl::ErrnoToStatus(errno, what);
}

void FutexWakeAll(uint32_t* word) {
  syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
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

}  // namespace


// ------------------------------------------------------------ lifecycle ---

StreamEngine::Loop::~Loop() {
  for (auto& [id, c] : conns_) {
    for (int fd : c->fd)
      if (fd >= 0) close(fd);
    for (Dir& d : c->dir)
      for (int fd : d.pipe)
        if (fd >= 0) close(fd);
    if (c->engine_port != 0)
      __atomic_fetch_and(&t_->engine_ports[c->engine_port / 64],
                         ~(uint64_t{1} << (c->engine_port % 64)),
                         __ATOMIC_RELAXED);
  }
  for (auto& [key, o] : handed_) close(o.fd);
  for (auto& [key, v] : pool_)
    for (auto& p : v)
      if (p->fd >= 0) close(p->fd);
  for (auto& l : listeners_)
    if (l->fd >= 0) close(l->fd);
  for (auto& [key, u] : udp_sessions_)
    if (u->fd >= 0) close(u->fd);
  for (int fd : {ep_, listen_[0], listen_[1], control_, wake_})
    if (fd >= 0) close(fd);
}

namespace {

// A listening socket for a proxy listener; SO_REUSEPORT so that every loop
// has one of its own on the same address.
absl::StatusOr<int> BindListener(const StreamEngine::Listener& l, bool reuseport,
                                 uint16_t* port) {
  const bool udp = IsDatagramListener(l.kind);
  sockaddr_storage ss;
  if (!Resolver::Literal(l.host, l.port, &ss))
    return absl::InvalidArgumentError(
        absl::StrCat(l.name, ": ", l.host, " is not an IP address to listen on"));
  int fd = socket(ss.ss_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  0);
  if (fd < 0) return Errno(absl::StrCat(l.name, ": socket"));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  socklen_t len = ss.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || (!udp && listen(fd, 4096) != 0)) {
    int e = errno;
    close(fd);
    errno = e;
    return Errno(absl::StrCat(l.name, ": cannot listen on ",
                              ss.ss_family == AF_INET6 ? "[" + l.host + "]" : l.host,
                              ":", l.port));
  }
  len = sizeof(ss);
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  *port = ntohs(ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                        : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return fd;
}

}  // namespace

absl::Status StreamEngine::Loop::Open(bool first, uint16_t* port4, uint16_t* port6,
                                      std::string* name, std::vector<uint16_t>* ports) {
  scratch_.reset(new char[kReadChunk]);
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  if (ep_ < 0) return Errno("epoll_create1");
  wake_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_ < 0) return Errno("eventfd");
  Register(wake_, &wake_h_, EPOLLIN);
  if (o_.plugins != nullptr) {
    mailbox_ = std::make_shared<PluginMailbox>();
    if (mailbox_->fd < 0) return Errno("eventfd for the plugins");
    Register(mailbox_->fd, &mailbox_h_, EPOLLIN);
  }

  // The proxy's listeners: the first loop binds the given ports (0: the
  // kernel picks one), the others bind the same ones.
  const bool reuseport = o_.loops > 1;
  for (size_t i = 0; i < o_.listeners.size(); ++i) {
    auto l = std::make_unique<ProxyListener>();
    l->config = o_.listeners[i];
    if (!first) l->config.port = (*ports)[i];
    uint16_t port = 0;
    absl::StatusOr<int> fd = BindListener(l->config, reuseport, &port);
    if (!fd.ok()) return fd.status();
    l->fd = *fd;
    if (first) ports->push_back(port);
    if (l->config.kind == Listener::Kind::kTcp || l->config.kind == Listener::Kind::kUdp) {
      sockaddr_storage ss;
      if (Resolver::Literal(l->config.upstream_host, l->config.upstream_port, &ss)) {
        l->upstream.push_back(ss);
      } else {
        addrinfo hints = {};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* res = nullptr;
        std::string port_text = std::to_string(l->config.upstream_port);
        int rc = getaddrinfo(l->config.upstream_host.c_str(), port_text.c_str(), &hints, &res);
        if (rc != 0)
          return absl::InvalidArgumentError(absl::StrCat(
              l->config.name, ": cannot resolve ", l->config.upstream_host, ": ",
              gai_strerror(rc)));
        for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
          if (ai->ai_addrlen > sizeof(ss)) continue;
          memset(&ss, 0, sizeof(ss));
          memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
          l->upstream.push_back(ss);
        }
        freeaddrinfo(res);
      }
    } else if (l->config.kind == Listener::Kind::kHttpProxy && resolver_ == nullptr) {
      resolver_ = std::make_unique<Resolver>(2);
      Register(resolver_->fd(), &resolver_h_, EPOLLIN);
    }
    const bool udp = IsDatagramListener(l->config.kind);
    l->h.kind = udp ? Handle::kUdpListener : Handle::kProxyListener;
    l->h.index = static_cast<int>(i);
    listeners_.push_back(std::move(l));
    Register(listeners_.back()->fd, &listeners_.back()->h,
             udp ? EPOLLIN : EPOLLIN | EPOLLEXCLUSIVE);
  }
  if (!first || !o_.redirects) return absl::OkStatus();

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
    if (c->kind != Conn::kRedirect) {
      // The proxy: what was received and not yet passed on, either way.
      if (c->state != Conn::kDead && (!c->dir[0].q.empty() || !c->dir[1].q.empty() ||
                                      c->dir[0].piped || c->dir[1].piped ||
                                      c->dir[0].plug_queued || c->dir[1].plug_queued))
        ++n;
      continue;
    }
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

void StreamEngine::Loop::AddStats(Stats* s) const {
  s->accepted += accepted_.load(std::memory_order_relaxed);
  s->unclaimed += unclaimed_.load(std::memory_order_relaxed);
  s->far_failed += far_failed_.load(std::memory_order_relaxed);
  s->open += open_.load(std::memory_order_relaxed);
  s->bytes_up += bytes_[0].load(std::memory_order_relaxed);
  s->bytes_down += bytes_[1].load(std::memory_order_relaxed);
  s->http_requests += http_requests_.load(std::memory_order_relaxed);
  s->upstream_reused += upstream_reused_.load(std::memory_order_relaxed);
  s->spliced += spliced_.load(std::memory_order_relaxed);
  s->datagrams += datagrams_.load(std::memory_order_relaxed);
  s->limited += limited_.load(std::memory_order_relaxed);
  s->captured += captured_.load(std::memory_order_relaxed);
  s->plugin_bypassed += plugin_bypassed_.load(std::memory_order_relaxed);
  s->plugin_refused += plugin_refused_.load(std::memory_order_relaxed);
}

void StreamEngine::Loop::Run() {
  // Timers are the effects: a 50 us default slack would be an error of its own.
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  epoll_event evs[kMaxEvents];
  bool listening = true;
  while (!stop_.load(std::memory_order_relaxed)) {
    int64_t now = NowNs();
    timespec ts;
    // Sleep until shortly before the next chunk is due, then poll: a
    // wake-up on this kind of machine comes tens of microseconds late, a
    // poll does not (the spin lasts kSpinNs at most per release).
    int64_t next = std::min(timers_.empty() ? kForever : timers_.top().at, NextUdpDue());
    int64_t wait = next == kForever ? 1'000'000'000 : next - early_ns_ - kSpinNs - now;
    if (wait < 0) wait = 0;
    ts.tv_sec = wait / 1'000'000'000;
    ts.tv_nsec = wait % 1'000'000'000;
    const int64_t wake = now + wait;
    int n = epoll_pwait2(ep_, evs, kMaxEvents, &ts, nullptr);
    if (n < 0 && errno != EINTR) break;
    if (n == 0 && wait > 0 && next != kForever) {
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
        case Handle::kProxyListener:
          OnProxyListener(h->index);
          break;
        case Handle::kControl:
          OnControl();
          break;
        case Handle::kWake: {
          uint64_t v;
          (void)!read(wake_, &v, sizeof(v));
          break;
        }
        case Handle::kResolver:
          OnResolver();
          break;
        case Handle::kPluginMail:
          OnPluginMail();
          break;
        case Handle::kUdpListener:
          OnUdpListener(h->index);
          break;
        case Handle::kUdpUpstream:
          if (h->udp->fd >= 0) OnUdpUpstream(h->udp);
          break;
        case Handle::kPooled:
          OnPooled(h->pooled);
          break;
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
    UdpDue(now);
    if (now >= next_expiry_) {
      // Listeners stopped at the limit (or out of descriptors) when a
      // connection of another loop closed: accepting again.
      if (listeners_paused_ && !AtLimit() && finish_by_.load(std::memory_order_relaxed) == 0)
        PauseListeners(false);
      ExpireOrphans(now);
      ExpirePool(now);
      ExpireUdp(now);
      next_expiry_ = now + 1'000'000'000;
    }
    dead_.clear();
    dead_pooled_.clear();
    dead_udp_.clear();
    int64_t finish_by = finish_by_.load(std::memory_order_relaxed);
    if (finish_by != 0) {
      if (listening) {
        // Finishing: no new connections.
        for (auto& l : listeners_) {
          epoll_ctl(ep_, EPOLL_CTL_DEL, l->fd, nullptr);
          close(l->fd);
          l->fd = -1;
        }
        listening = false;
      }
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

// ---------------------------------------------------------- connections ---

Conn* StreamEngine::Loop::NewConn(Conn::Kind kind, int near_fd) {
  auto owned = std::make_unique<Conn>();
  Conn* c = owned.get();
  c->id = next_id_++;
  c->kind = kind;
  c->opened_ns = NowNs();
  c->fd[0] = near_fd;
  for (int s = 0; s < 2; ++s) {
    c->h[s].kind = Handle::kSide;
    c->h[s].side = s;
    c->h[s].conn = c;
  }
  accepted_.fetch_add(1, std::memory_order_relaxed);
  open_.fetch_add(1, std::memory_order_relaxed);
  if (total_open_ != nullptr) total_open_->fetch_add(1, std::memory_order_relaxed);
  conns_.emplace(c->id, std::move(owned));
  return c;
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

    Conn* c = NewConn(Conn::kRedirect, fd);
    c->has_slot = true;
    c->family_index = fi;
    c->slot_port = port;
    c->pid = r.pid;
    eng::FormatEndpoint(FarEnd(r), c->target, sizeof(c->target));
    // The rule the target side picked, as the table is now.
    eng::Index idx;
    if (r.rule < FAULT_MAX_RULES && eng::BuildIndex(t_, &idx)) AddRule(c, r.rule, idx);
    ProtoStart(c, r.kind == FAULT_REDIRECT_CONNECT ? 0 : 1);
    TuneSocket(fd);
    Register(fd, &c->h[0], EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);

    if (!c->rules.empty() && c->rules[0].r.timeout_recv_ns > 0) {
      // Every receive waits timeout.recv and fails: nothing is delivered,
      // and the connection fails with ETIMEDOUT once that time has passed.
      c->dir[1].stalled = true;
      c->fail_at = c->opened_ns + c->rules[0].r.timeout_recv_ns;
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

bool StreamEngine::Loop::AtLimit() const {
  if (o_.max_connections == 0 || total_open_ == nullptr) return false;
  return total_open_->load(std::memory_order_relaxed) >= o_.max_connections;
}

void StreamEngine::Loop::PauseListeners(bool pause) {
  if (pause == listeners_paused_) return;
  listeners_paused_ = pause;
  if (pause) limited_.fetch_add(1, std::memory_order_relaxed);
  for (auto& l : listeners_) {
    if (l->fd < 0 || IsDatagramListener(l->config.kind)) continue;
    epoll_event ev = {};
    ev.events = pause ? 0 : EPOLLIN | EPOLLEXCLUSIVE;
    ev.data.ptr = &l->h;
    // EPOLLEXCLUSIVE cannot be modified: remove and add again.
    epoll_ctl(ep_, EPOLL_CTL_DEL, l->fd, nullptr);
    if (!pause) epoll_ctl(ep_, EPOLL_CTL_ADD, l->fd, &ev);
  }
}

void StreamEngine::Loop::OnProxyListener(int index) {
  ProxyListener& l = *listeners_[index];
  if (l.fd < 0) return;
  for (int k = 0; k < 256; ++k) {
    if (AtLimit()) {
      PauseListeners(true);
      return;
    }
    sockaddr_storage peer;
    socklen_t plen = sizeof(peer);
    int fd = accept4(l.fd, reinterpret_cast<sockaddr*>(&peer), &plen,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: a level-triggered listener would wake us at
        // once again. Stop accepting; the next second's tick tries again.
        PauseListeners(true);
      }
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (l.config.kind == Listener::Kind::kHttpProxy) {
      Conn* c = NewConn(Conn::kHttp, fd);
      Register(fd, &c->h[0], EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
      HttpStart(c);
      continue;
    }
    if (l.config.kind == Listener::Kind::kTransparentTcp) {
      AcceptCaptured(fd, peer);
      continue;
    }
    Conn* c = NewConn(Conn::kRelay, fd);
    // The upstream's addresses in turn, the next one first; the others are
    // tried when it cannot be reached.
    const size_t first = l.next++ % l.upstream.size();
    for (size_t i = 0; i < l.upstream.size(); ++i)
      c->far_addrs.push_back(l.upstream[(first + i) % l.upstream.size()]);
    const sockaddr_storage& up = c->far_addrs[0];
    eng::Endpoint far;
    eng::SetEndpointAddress(&far, &up, sizeof(up));
    far.protocol = FAULT_PROTO_TCP;
    StartRelay(c, far, /*always=*/true);
  }
}

void StreamEngine::Loop::StartRelay(Conn* c, const eng::Endpoint& far, bool always) {
  const int fd = c->fd[0];
  eng::FormatEndpoint(far, c->target, sizeof(c->target));
  SelectRules(c, far, always);
  int err = 0;
  if (!DecideConnect(c, &err)) {
    CloseWithReset(fd);
    c->fd[0] = -1;
    Kill(c);
    return;
  }
  if (always) PlugTunnelStart(c);
  // No rule and no plugin: pass-through (pipes come with the first bulk
  // read, ReadSplice).
  c->splice = c->rules.empty() && c->plug == nullptr;
  if (!c->splice) TuneSocket(fd);
  Register(fd, &c->h[0], EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
  // A far end that refuses or cannot be reached resets the client: the
  // nearest a proxy can come to the refused connect the client would have
  // seen, since its own connect already succeeded.
  if (int e = ConnectAny(c); e != 0) Fail(c, e);
}

int StreamEngine::Loop::ConnectTo(Conn* c, const sockaddr_storage& ss) {
  int fd = UpstreamSocket(ss.ss_family, SOCK_STREAM, o_.upstream_mark);
  if (fd < 0) return errno;
  if (c->splice) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  } else {
    TuneSocket(fd);
  }
  socklen_t len = ss.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  int rc = connect(fd, reinterpret_cast<const sockaddr*>(&ss), len);
  if (rc != 0 && errno != EINPROGRESS) {
    int e = errno;
    close(fd);
    far_failed_.fetch_add(1, std::memory_order_relaxed);
    return e;
  }
  c->fd[1] = fd;
  c->state = Conn::kConnecting;
  Register(fd, &c->h[1], EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
  return 0;
}

int StreamEngine::Loop::ConnectAny(Conn* c) {
  int err = EHOSTUNREACH;
  while (c->far_next < c->far_addrs.size()) {
    err = ConnectTo(c, c->far_addrs[c->far_next++]);
    if (err == 0) return 0;
  }
  return err;
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
  sockaddr_storage ss;
  eng::EndpointSockaddr(far, &ss, sizeof(ss));
  if (int e = ConnectTo(c, ss); e != 0) {
    Fail(c, e);
    return;
  }
  if (!eng::IsLoopback(far)) return;
  // A shimmed server of this run must leave this connection to us.
  sockaddr_storage local;
  socklen_t llen = sizeof(local);
  if (getsockname(c->fd[1], reinterpret_cast<sockaddr*>(&local), &llen) == 0) {
    uint16_t p = ntohs(far.family == AF_INET
                           ? reinterpret_cast<sockaddr_in*>(&local)->sin_port
                           : reinterpret_cast<sockaddr_in6*>(&local)->sin6_port);
    if (p != 0) {
      __atomic_fetch_or(&t_->engine_ports[p / 64], uint64_t{1} << (p % 64),
                        __ATOMIC_RELAXED);
      c->engine_port = p;
    }
  }
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
  if (!c->has_slot) {
    if (state == FAULT_REDIRECT_OPEN) c->slot_open = true;
    return;
  }
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
    if (err == 0) {
      // An event left from a socket this one replaced: still connecting?
      sockaddr_storage peer;
      socklen_t plen = sizeof(peer);
      if (getpeername(c->fd[1], reinterpret_cast<sockaddr*>(&peer), &plen) != 0) {
        if (errno == ENOTCONN) return;
        err = errno;
      }
    }
    if (err != 0) {
      far_failed_.fetch_add(1, std::memory_order_relaxed);
      // Another address of the upstream, if there is one.
      epoll_ctl(ep_, EPOLL_CTL_DEL, c->fd[1], nullptr);
      close(c->fd[1]);
      c->fd[1] = -1;
      c->state = Conn::kAwaitFar;
      if (ConnectAny(c) == 0) return;
      if (c->kind == Conn::kHttp) return HttpUpstreamFailed(c, err);
      Fail(c, err);
      return;
    }
    c->state = Conn::kOpen;
    // The far end is there; a program asking SO_ERROR may go on. OPEN
    // follows once the emulated handshake time has passed (Service).
    if (NowNs() < c->handshake_until) SetSlotState(c, FAULT_REDIRECT_CONNECTED, 0);
    if (c->kind == Conn::kHttp) HttpFarConnected(c);
    if (c->state == Conn::kDead) return;
  }
  if (side == 0 && c->kind == Conn::kHttp && c->http_blocked &&
      (events & (EPOLLHUP | EPOLLERR))) {
    // The client went away while its request waited: nobody to answer.
    Fail(c, ECONNRESET);
    return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
    ReadFrom(c, side, !(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)));
  if (c->state == Conn::kDead) return;
  Service(c);
}

// --------------------------------------------------------------- rules ---

bool StreamEngine::Loop::AddRule(Conn* c, int index, const eng::Index& idx) {
  if (c->rules.size() >= 16) return false;
  for (const RuleRef& ref : c->rules)
    if (ref.index == index) return false;
  RuleRef ref;
  if (!eng::ReadRule(t_, idx.seq, index, &ref.r)) return false;
  ref.index = index;
  ref.seq = idx.seq;
  ref.generation = idx.generation;
  eng::CopyString(ref.name, ref.r.name, sizeof(ref.name));
  c->rules.push_back(ref);
  UpdateRates(c);
  return true;
}

void StreamEngine::Loop::UpdateRates(Conn* c) {
  // Several rules with a rate on one direction: the lowest limits it.
  for (int d = 0; d < 2; ++d) {
    c->rate_rule[d] = -1;
    uint64_t best = UINT64_MAX;
    for (size_t i = 0; i < c->rules.size(); ++i) {
      const fault_rule& r = c->rules[i].r;
      uint64_t rate = (d == 0 ? r.uplink : r.downlink).rate_bps;
      if (c->rules[i].index >= 0 && rate != 0 && rate < best) {
        best = rate;
        c->rate_rule[d] = static_cast<int>(i);
      }
    }
  }
}

void StreamEngine::Loop::SelectRules(Conn* c, const eng::Endpoint& far, bool always) {
  SelectRulesOnly(c, far, always);
  for (const RuleRef& ref : c->rules) {
    if (ref.r.timeout_recv_ns <= 0) continue;
    // Every receive waits timeout.recv and fails: nothing reaches the
    // client, and the connection is reset once that time has passed.
    c->dir[1].stalled = true;
    int64_t at = NowNs() + ref.r.timeout_recv_ns;
    if (at < c->fail_at) {
      c->fail_at = at;
      c->fail_err = ETIMEDOUT;
      Schedule(c, at);
    }
  }
}

void StreamEngine::Loop::SelectRulesOnly(Conn* c, const eng::Endpoint& far, bool always) {
  c->rules.clear();
  c->rate_rule[0] = c->rate_rule[1] = -1;
  eng::Index idx;
  for (int attempt = 0; attempt < 4; ++attempt) {
    if (!eng::BuildIndex(t_, &idx)) return;
    uint64_t named = 0;
    for (const std::string& name : o_.always_rules) {
      int i = eng::FindRuleByName(t_, idx, name.c_str());
      if (i >= 0) named |= uint64_t{1} << i;
    }
    if (always) {
      for (int i = 0; i < FAULT_MAX_RULES; ++i)
        if (named & (uint64_t{1} << i)) AddRule(c, i, idx);
    }
    if (!o_.match_targets) return;
    const uint64_t candidates = idx.net & idx.active & ~named;
    if (candidates == 0) return;
    int pick = eng::PickRule(t_, idx, candidates, far);
    if (pick >= 0) {
      AddRule(c, pick, idx);
      return;
    }
    if (eng::LoadSeq(t_) == idx.seq) return;  // no rule matches
    c->rules.clear();                         // republished: again
  }
}

bool StreamEngine::Loop::CurrentRules(Conn* c) {
  if (c->rules.empty()) return false;
  uint64_t seq = eng::LoadSeq(t_);
  bool any = false;
  bool changed = false;
  eng::Index idx;
  bool have_idx = false;
  for (RuleRef& ref : c->rules) {
    if (ref.seq == seq) {
      any |= ref.index >= 0;
      continue;
    }
    // Republished (a reload): the policy is looked up again by name.
    if (!have_idx) {
      if (!eng::BuildIndex(t_, &idx)) return false;
      have_idx = true;
    }
    ref.index = -1;
    ref.seq = idx.seq;
    changed = true;
    int r = eng::FindRuleByName(t_, idx, ref.name);
    if (r < 0 || !eng::ReadRule(t_, idx.seq, r, &ref.r)) continue;
    ref.index = r;
    ref.generation = idx.generation;
    any = true;
  }
  if (changed) UpdateRates(c);
  return any;
}

bool StreamEngine::Loop::DecideConnect(Conn* c, int* err) {
  *err = 0;
  const int64_t now = NowNs();
  for (RuleRef& ref : c->rules) {
    if (ref.index < 0) continue;
    double factor = eng::ScheduleFactor(ref.r.schedule, now - t_->start_ns);
    // Only what happens to the connection itself: refusals, resets,
    // black-holed and timed-out connects. The link's latency and loss
    // apply to the bytes, not to the set-up as well (the handshake's round
    // trip is not added, drawn or reported): a request through a mapping
    // with 300 ms of latency takes 300 ms more, as users of proxies expect.
    fault_rule connect_only = ref.r;
    connect_only.uplink = fault_link{};
    connect_only.downlink = fault_link{};
    eng::NetDecision dec;
    eng::DecideNet(t_, connect_only, ref.index, eng::NetOp::kConnect, FAULT_PROTO_TCP, &ref.cs,
                   0, now, factor, &dec);
    if (dec.rule < 0) continue;
    if (dec.fired) Emit(c, 0, ref, dec);
    if (dec.err != 0 || dec.stall_ns >= 0) {
      // A refused or black-holed connect: the client's connection is
      // reset (a proxy cannot make its accept fail).
      *err = dec.err != 0 ? dec.err : ETIMEDOUT;
      return false;
    }
  }
  return true;
}

// ------------------------------------------------------------- relaying ---

void StreamEngine::Loop::ReadFrom(Conn* c, int d, bool edge) {
  if (c->splice) return ReadSplice(c, d, edge);
  Dir& dir = c->dir[d];
  int fd = c->fd[d];
  if (fd < 0 || dir.src_eof) return;
  for (int k = 0; k < kMaxReadsPerEvent; ++k) {
    if (dir.queued + dir.plug_queued >= o_.high_watermark) {
      dir.paused = true;
      return;
    }
    if (c->kind == Conn::kHttp && d == 0 && c->http_blocked) {
      dir.paused = true;
      return;
    }
    int64_t arrived;
    ssize_t n = RecvStamped(fd, scratch_.get(), kReadChunk, NowNs(), &arrived);
    if (n > 0) {
      if (c->kind == Conn::kHttp) {
        if (d == 0)
          HttpRead(c, scratch_.get(), static_cast<size_t>(n), arrived);
        else
          HttpFromUpstream(c, scratch_.get(), static_cast<size_t>(n), arrived);
      } else {
        Relay(c, d, scratch_.get(), static_cast<size_t>(n), arrived);
      }
      if (c->state == Conn::kDead) return;
      if (c->fd[d] != fd) return;  // the HTTP proxy let this upstream go
      if (edge && static_cast<size_t>(n) < kReadChunk) return;  // drained
      continue;
    }
    if (n == 0) {
      dir.src_eof = true;
      if (c->kind == Conn::kHttp && d == 1) HttpFromUpstream(c, nullptr, 0, NowNs());
      return;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    if (errno == EINTR) continue;
    // The source was reset: so is the other side.
    if (c->kind == Conn::kHttp && d == 1) {
      HttpUpstreamFailed(c, errno);
      return;
    }
    Fail(c, errno == EPIPE ? ECONNRESET : errno);
    return;
  }
  // Edge-triggered: what is left in the socket brings no new event. Come
  // back to it after the other connections had their turn.
  dir.more = true;
  Schedule(c, NowNs());
}

// A connection no rule applies to. Bytes are passed on as they come: a
// read is written at once (nothing queued, nothing time-stamped); once a
// direction reads a whole buffer at a time (a bulk transfer), it goes
// through a pipe with splice() and its bytes stay in the kernel.
void StreamEngine::Loop::ReadSplice(Conn* c, int d, bool edge) {
  Dir& dir = c->dir[d];
  int fd = c->fd[d];
  if (fd < 0 || dir.src_eof) return;
  for (int k = 0; k < kMaxReadsPerEvent; ++k) {
    if (dir.pipe[0] >= 0 && dir.q.empty()) {
      ssize_t n = splice(fd, nullptr, dir.pipe[1], nullptr, 1 << 20,
                         SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
      if (n > 0) {
        dir.piped += static_cast<size_t>(n);
        PumpSplice(c, d);
        if (c->state == Conn::kDead) return;
        continue;
      }
      if (n == 0) {
        dir.src_eof = true;
        PumpSplice(c, d);
        return;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        // Either the socket is empty or the pipe is full; in the second
        // case no new edge comes: read again once the pipe drains.
        if (dir.piped > 0) dir.in_blocked = true;
        return;
      }
      if (errno == EINTR) continue;
      Fail(c, errno == EPIPE ? ECONNRESET : errno);
      return;
    }
    if (dir.queued >= o_.high_watermark) {
      dir.paused = true;
      return;
    }
    ssize_t n = recv(fd, scratch_.get(), kReadChunk, MSG_DONTWAIT);
    if (n > 0) {
      size_t sent = 0;
      const int dst = c->fd[1 - d];
      if (dir.q.empty() && dst >= 0 && c->state == Conn::kOpen) {
        ssize_t w = send(dst, scratch_.get(), static_cast<size_t>(n), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) {
          sent = static_cast<size_t>(w);
          bytes_[d].fetch_add(sent, std::memory_order_relaxed);
        } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          Fail(c, errno == EPIPE ? ECONNRESET : errno);
          return;
        }
      }
      if (sent < static_cast<size_t>(n))
        Enqueue(c, d, scratch_.get() + sent, static_cast<size_t>(n) - sent, 0);
      if (static_cast<size_t>(n) == kReadChunk && dir.q.empty() && dir.pipe[0] < 0 &&
          pipe2(dir.pipe, O_NONBLOCK | O_CLOEXEC) == 0) {
        // Room for a burst: 1 MiB where the system allows it.
        fcntl(dir.pipe[1], F_SETPIPE_SZ, 1 << 20);
        if (!c->spliced) {
          c->spliced = true;
          spliced_.fetch_add(1, std::memory_order_relaxed);
        }
      }
      if (edge && static_cast<size_t>(n) < kReadChunk) return;  // drained
      continue;
    }
    if (n == 0) {
      dir.src_eof = true;
      Pump(c, d, NowNs());  // passes the FIN on once nothing waits
      return;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    if (errno == EINTR) continue;
    Fail(c, errno == EPIPE ? ECONNRESET : errno);
    return;
  }
  dir.more = true;
  Schedule(c, NowNs());
}

void StreamEngine::Loop::PumpSplice(Conn* c, int d) {
  Dir& dir = c->dir[d];
  int dst = c->fd[1 - d];
  if (dst < 0 || c->state != Conn::kOpen) return;
  for (int k = 0; k < 64 && dir.piped > 0; ++k) {
    ssize_t n = splice(dir.pipe[0], nullptr, dst, nullptr, dir.piped,
                       SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
    if (n > 0) {
      dir.piped -= static_cast<size_t>(n);
      bytes_[d].fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
      if (dir.in_blocked) {
        dir.in_blocked = false;
        dir.more = true;
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // EPOLLOUT resumes
    Fail(c, n < 0 && errno != EPIPE ? errno : ECONNRESET);
    return;
  }
  if (dir.piped == 0 && dir.q.empty() && dir.src_eof && !dir.dst_shut) {
    shutdown(dst, SHUT_WR);
    dir.dst_shut = true;
  }
}

void StreamEngine::Loop::Ingest(Conn* c, int d, const char* buf, size_t n,
                                int64_t now) {
  Dir& dir = c->dir[d];
  if (dir.stalled) return;  // black-holed: read and discarded
  const int64_t base = d == 0 ? std::max(now, c->handshake_until) : now;
  if (!CurrentRules(c)) {
    Enqueue(c, d, buf, n, std::max(base, dir.last_release));
    return;
  }
  // One decision per flight: bytes that arrive while earlier bytes of the
  // direction still wait in the engine join them, with the same delay. So a
  // message the kernel happened to split into two reads meets the link
  // once, as one burst of packets would, and the same seed gives the same
  // decisions whatever the split. Budgets, half-open and per-operation
  // rules count every read: decided per read.
  bool per_read = false;
  for (const RuleRef& ref : c->rules) {
    const fault_rule& r = ref.r;
    per_read |= ref.index >= 0 &&
                (r.budget_max_tx || r.budget_max_rx || r.budget_max_ops ||
                 r.budget_max_duration_ns > 0 || r.half_open_after_bytes > 0 ||
                 r.half_open_after_ns > 0 || (r.flags & FAULT_RULE_PER_OP) != 0);
  }
  if (!per_read && !dir.q.empty() && dir.flight_bytes < kFlightBytes) {
    Enqueue(c, d, buf, n, std::max(base + dir.flight_delay, dir.last_release));
    for (RuleRef& ref : c->rules) eng::AccountBytes(&ref.cs, d, n);
    dir.flight_bytes += n;
    return;
  }
  size_t off = 0;
  for (int k = 0; off < n && k < 8; ++k) {
    // Every rule decides; their effects add up (delays sum, the smallest
    // byte limit wins, any stall or error ends the direction).
    int64_t delay = 0;
    uint64_t max_bytes = UINT64_MAX;
    bool decided = false;
    for (RuleRef& ref : c->rules) {
      if (ref.index < 0) continue;
      double factor = eng::ScheduleFactor(ref.r.schedule, now - t_->start_ns);
      eng::NetDecision dec;
      eng::DecideNet(t_, ref.r, ref.index,
                     d == 0 ? eng::NetOp::kSend : eng::NetOp::kRecv, FAULT_PROTO_TCP,
                     &ref.cs, n - off, now, factor, &dec);
      if (dec.rule < 0) continue;  // the schedule has the rule off
      decided = true;
      if (dec.fired) Emit(c, d, ref, dec);
      if (dec.stall_ns >= 0) {
        // Stalled (black hole, half-open, timeout): nothing more arrives
        // in this direction; a finite stall then fails the connection.
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
        for (RuleRef& r2 : c->rules) eng::AccountBytes(&r2.cs, d, n - off);
        return;
      }
      if (dec.eof) {  // a budget ended the stream
        dir.src_eof = true;
        dir.stalled = true;
        return;
      }
      delay += dec.delay_ns;
      max_bytes = std::min(max_bytes, dec.max_bytes);
    }
    if (!decided) break;
    size_t take = n - off;
    if (max_bytes < take) take = static_cast<size_t>(max_bytes);
    if (take == 0) continue;  // the next decision sees the limit reached
    // Bytes written before the emulated handshake is over leave when it
    // is: a real client could not have sent them earlier.
    int64_t release = std::max(base + delay, dir.last_release);  // keeps order
    Enqueue(c, d, buf + off, take, release);
    for (RuleRef& ref : c->rules) eng::AccountBytes(&ref.cs, d, take);
    dir.flight_delay = delay;
    dir.flight_bytes = take;
    off += take;
  }
  if (off < n) Enqueue(c, d, buf + off, n - off, std::max(base, dir.last_release));
}

void StreamEngine::Loop::Enqueue(Conn* c, int d, const char* buf, size_t n,
                                 int64_t release) {
  Dir& dir = c->dir[d];
  if (n == 0) return;
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
  if (c->splice && dir.q.empty()) return PumpSplice(c, d);
  int dst = c->fd[1 - d];
  // Toward the far end only once it is connected; toward the target (or
  // the HTTP client) whenever there is something.
  if (dst < 0 || (d == 0 && c->state != Conn::kOpen) || c->state == Conn::kDead) return;
  const int rated = c->rate_rule[d];
  for (int k = 0; k < 1024 && !dir.q.empty(); ++k) {
    Chunk& ch = dir.q.front();
    if (ch.release_ns > now) {
      Schedule(c, ch.release_ns);
      return;
    }
    size_t want = ch.end - ch.off;
    uint64_t got = want;
    RuleRef* rr = nullptr;
    if (rated >= 0 && CurrentRules(c) && c->rate_rule[d] == rated &&
        c->rules[rated].index >= 0) {
      rr = &c->rules[rated];
      const fault_link& l = d == 0 ? rr->r.uplink : rr->r.downlink;
      int64_t wait = 0;
      got = eng::TokenBucketTake(&rr->cs.bucket[d], l.rate_bps, l.rate_burst_bytes, now,
                                 want, &wait);
      if (got == 0) {
        if (!dir.throttled) {
          dir.throttled = true;
          EmitRate(c, d, rated);
        }
        Schedule(c, now + std::max<int64_t>(wait, 1000));
        return;
      }
    }
    ssize_t w = send(dst, ch.data.get() + ch.off, got, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w < 0) {
      if (rr != nullptr)
        rr->cs.bucket[d].tokens += static_cast<int64_t>(got) * 8 * 1'000'000'000LL;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;  // EPOLLOUT resumes
      if (errno == EINTR) continue;
      if (c->kind == Conn::kHttp && d == 0) {
        HttpUpstreamFailed(c, errno);
        return;
      }
      Fail(c, errno == EPIPE ? ECONNRESET : errno);
      return;
    }
    if (rr != nullptr && static_cast<uint64_t>(w) < got)
      rr->cs.bucket[d].tokens +=
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
  dir.throttled = false;
  if (c->splice) return PumpSplice(c, d);
  if (c->kind != Conn::kHttp && dir.src_eof && !dir.dst_shut && dir.plug_queued == 0) {
    shutdown(dst, SHUT_WR);
    dir.dst_shut = true;
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
  if (c->plug != nullptr) {
    PlugService(c, now);
    if (c->state == Conn::kDead) return;
  }
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
      const bool resume = dir.more || (dir.paused && !(c->http_blocked && d == 0) &&
                                       dir.queued + dir.plug_queued < o_.high_watermark / 2);
      if (!resume) break;
      dir.more = false;
      dir.paused = false;
      ReadFrom(c, d);  // edge-triggered: what waits must be read now
      if (c->state == Conn::kDead) return;
    }
    if (dir.more || (dir.paused && !(c->http_blocked && d == 0) &&
                     dir.queued + dir.plug_queued < o_.high_watermark / 2))
      Schedule(c, NowNs());
    if (c->kind != Conn::kHttp && dir.stalled && dir.src_eof && !dir.dst_shut &&
        c->state == Conn::kOpen && dir.q.empty() && dir.plug_queued == 0) {
      shutdown(c->fd[1 - d], SHUT_WR);
      dir.dst_shut = true;
    }
  }
  if (c->kind == Conn::kHttp) return HttpService(c);
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
  if (total_open_ != nullptr) total_open_->fetch_sub(1, std::memory_order_relaxed);
  for (int& fd : c->fd) {
    if (fd >= 0) close(fd);  // closing removes it from the epoll set
    fd = -1;
  }
  for (Dir& d : c->dir)
    for (int& fd : d.pipe)
      if (fd >= 0) close(fd), fd = -1;
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
  if (listeners_paused_ && !AtLimit() && finish_by_.load(std::memory_order_relaxed) == 0)
    PauseListeners(false);
}

void StreamEngine::Loop::Schedule(Conn* c, int64_t at) {
  if (at >= c->timer_at) return;
  c->timer_at = at;
  timers_.push(Timer{at, c->id});
}

// --------------------------------------------------------- protocol faults ---

void StreamEngine::Loop::ProtoStart(Conn* c, int requests) {
  if (o_.protocol_faults == nullptr) return;
  for (size_t i = 0; i < c->rules.size(); ++i) {
    if (!(c->rules[i].r.flags & FAULT_RULE_PROTOCOL)) continue;
    std::shared_ptr<const ProtocolFaults> f = o_.protocol_faults->Find(c->rules[i].name);
    if (f == nullptr || f->empty()) continue;
    c->proto = std::make_unique<ProtocolFilter>(std::move(f), c->id);
    c->proto_rule = i;
    c->proto_dir = requests;
    return;
  }
}

void StreamEngine::Loop::ProtoRelay(Conn* c, const char* buf, size_t n, int64_t now) {
  std::vector<ProtocolFilter::Action> actions;
  c->proto->Feed(std::string_view(buf, n), &actions);
  const ProtocolFilter::Protocol protocol = c->proto->protocol();
  const int d = c->proto_dir;
  int64_t hold_until = 0;  // a delayed request's bytes leave then
  for (ProtocolFilter::Action& a : actions) {
    if (c->state == Conn::kDead) return;
    if (a.kind == ProtocolFilter::Action::kForward) {
      if (hold_until == 0) {
        RelayRaw(c, d, a.bytes.data(), a.bytes.size(), now);
        continue;
      }
      // Later bytes of the direction queue behind these (Ingest keeps
      // the order), so the rest of the request waits too.
      Dir& dir = c->dir[d];
      int64_t release = std::max({hold_until, dir.last_release,
                                  d == 0 ? c->handshake_until : int64_t{0}});
      Enqueue(c, d, a.bytes.data(), a.bytes.size(), release);
      Schedule(c, release);
      hold_until = 0;
      continue;
    }
    if (a.kind == ProtocolFilter::Action::kDelay) {
      hold_until = now + a.delay_ns;
      const RuleRef* ref =
          c->proto_rule < c->rules.size() ? &c->rules[c->proto_rule] : nullptr;
      if (ref != nullptr && ref->index >= 0) {
        eng::CountFired(t_, ref->index);
        EmitEvent(ref->index, ref->generation, c->pid, d == 0 ? FAULT_OP_SEND : FAULT_OP_RECV,
                  FAULT_EFFECT_DELAY, a.delay_ns, c->target);
      }
      continue;
    }
    if (a.kind == ProtocolFilter::Action::kDrop || a.fault) {
      uint16_t effect = a.kind == ProtocolFilter::Action::kDrop ? FAULT_EFFECT_PROTOCOL_DROP
                        : protocol == ProtocolFilter::Protocol::kHttp ? FAULT_EFFECT_HTTP_ERROR
                        : protocol == ProtocolFilter::Protocol::kRedis ? FAULT_EFFECT_REDIS_ERROR
                                                                       : FAULT_EFFECT_POSTGRES_ERROR;
      const RuleRef* ref =
          c->proto_rule < c->rules.size() ? &c->rules[c->proto_rule] : nullptr;
      if (ref != nullptr && ref->index >= 0) {
        eng::CountFired(t_, ref->index);
        EmitEvent(ref->index, ref->generation, c->pid, d == 0 ? FAULT_OP_SEND : FAULT_OP_RECV,
                  effect, a.status,
                  c->target);
      }
    }
    if (a.kind == ProtocolFilter::Action::kDrop) {
      Fail(c, ECONNRESET);
      return;
    }
    // The answer goes to the client as if the server had sent it, behind
    // what the server has sent so far.
    Ingest(c, 1 - d, a.bytes.data(), a.bytes.size(), now);
    if (a.close) {
      // The FIN follows the answer (Pump passes it on once the queue is
      // empty); the server's side has nothing more to say to this client.
      c->dir[1 - d].src_eof = true;
      Pump(c, 1 - d, now);
      return;
    }
  }
}

void StreamEngine::Loop::EmitEvent(int rule, uint64_t generation, int32_t pid, uint16_t op,
                                   uint16_t effect, int64_t value, const char* target) {
  fault_event ev;
  memset(&ev, 0, sizeof(ev));
  ev.time_ns = eng::RealtimeNs();
  ev.pid = pid;
  ev.rule = static_cast<uint16_t>(rule);
  ev.op = op;
  ev.effect = effect;
  ev.value = value;
  ev.layer = 3;
  ev.generation = static_cast<uint32_t>(generation);
  eng::CopyString(ev.target, target, sizeof(ev.target));
  eng::EmitEvent(t_, ev);
}

void StreamEngine::Loop::Emit(Conn* c, int d, const RuleRef& ref,
                              const eng::NetDecision& dec) {
  EmitEvent(dec.rule, ref.generation, c->pid, d == 0 ? FAULT_OP_SEND : FAULT_OP_RECV,
            dec.effect, dec.value, c->target);
}

void StreamEngine::Loop::EmitRate(Conn* c, int d, int ref) {
  RuleRef& rr = c->rules[ref];
  if (rr.index < 0) return;
  eng::CountFired(t_, rr.index);
  eng::NetDecision dec;
  dec.rule = rr.index;
  dec.effect = FAULT_EFFECT_RATE;
  dec.value = static_cast<int64_t>(c->dir[d].queued);  // bytes held back
  Emit(c, d, rr, dec);
}

// -------------------------------------------------------------- public ---

absl::StatusOr<std::unique_ptr<StreamEngine>> StreamEngine::Start(
    const Options& options) {
  if (options.table == nullptr)
    return absl::InvalidArgumentError("stream engine without a policy table");
  if (options.loops < 1 || options.loops > 64 || (options.redirects && options.loops != 1))
    return absl::InvalidArgumentError("stream engine: bad number of loops");
  if (options.udp_idle_ns <= 0)
    return absl::InvalidArgumentError("stream engine: UDP sessions need an idle time");
  for (const Listener& l : options.listeners) {
    if (l.kind != Listener::Kind::kTransparentTcp && l.kind != Listener::Kind::kTransparentUdp)
      continue;
    if (!options.origin_lookup)
      return absl::InvalidArgumentError(
          absl::StrCat(l.name, ": a transparent listener needs an origin lookup"));
    // Off loopback, anyone who can reach the listener could have the
    // engine connect wherever a lookup of their address leads.
    sockaddr_storage ss;
    eng::Endpoint ep;
    if (!Resolver::Literal(l.host, l.port, &ss) ||
        !eng::SetEndpointAddress(&ep, &ss, sizeof(ss)) || !eng::IsLoopback(ep))
      return absl::InvalidArgumentError(absl::StrCat(
          l.name, ": a transparent listener listens on loopback, not on ", l.host));
  }
  std::unique_ptr<StreamEngine> e(new StreamEngine());
  auto total_open = std::make_shared<std::atomic<size_t>>(0);
  for (int i = 0; i < options.loops; ++i) {
    e->loops_.push_back(std::make_unique<Loop>(options));
    e->loops_.back()->index_ = i;
    e->loops_.back()->total_open_ = total_open;
    if (absl::Status s = e->loops_.back()->Open(i == 0, &e->port4_, &e->port6_,
                                                &e->control_name_, &e->ports_);
        !s.ok())
      return s;
  }
  if (options.advertise && options.redirects) {
    fault_table* t = options.table;
    eng::CopyString(t->engine_control, e->control_name_.c_str(),
                    sizeof(t->engine_control));
    __atomic_store_n(&t->engine_port6, e->port6_, __ATOMIC_RELEASE);
    __atomic_store_n(&t->engine_port4, e->port4_, __ATOMIC_RELEASE);
  }
  // The loops take no signals: the caller may wait for them (sigtimedwait)
  // with them blocked, and a thread of ours must not take them instead.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  for (auto& loop : e->loops_) {
    Loop* l = loop.get();
    e->threads_.emplace_back([l] { l->Run(); });
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return e;
}

StreamEngine::~StreamEngine() {
  for (auto& l : loops_) l->RequestStop();
  for (std::thread& t : threads_)
    if (t.joinable()) t.join();
}

StreamEngine::Stats StreamEngine::stats() const {
  Stats s;
  for (const auto& l : loops_) l->AddStats(&s);
  return s;
}

size_t StreamEngine::Finish(int64_t timeout_ns) {
  size_t cut = 0;
  const int64_t deadline = NowNs() + timeout_ns;
  for (auto& l : loops_) l->RequestFinish(deadline);
  for (size_t i = 0; i < threads_.size(); ++i) {
    if (!threads_[i].joinable()) continue;
    threads_[i].join();
    cut += loops_[i]->cut_short();
  }
  return cut;
}

}  // namespace fault::stream
