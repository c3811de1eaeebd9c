// UDP mappings of the proxy (`fault run --proxy udp:PORT=HOST:PORT`): each
// client gets a socket of its own toward the upstream, and every datagram,
// either way, meets the rules as the shim's UDP datagrams do (DecideNet with
// FAULT_PROTO_UDP): a lost datagram is not delivered, a delayed one is held
// back, a duplicated one arrives twice. Idle clients are forgotten after
// Options::udp_idle_ns (a minute).
//
// A transparent UDP listener takes datagrams a capture layer sent there
// instead of where they were going, and asks where that was for each one
// (an unconnected socket may send every datagram somewhere else): a
// session is a client and one destination. Answers go back from the
// listener's socket; the capture layer gives them the destination's
// address on the client's side.
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "supervisor/stream/stream_loop.h"

namespace fault::stream {
namespace {

constexpr size_t kMaxDatagram = 65536;
constexpr size_t kMaxSessions = 4096;
constexpr size_t kMaxHeld = 65536;  // datagrams waiting for their delay

std::string SessionKey(int listener, const sockaddr_storage& ss, socklen_t len) {
  std::string key(reinterpret_cast<const char*>(&listener), sizeof(listener));
  key.append(reinterpret_cast<const char*>(&ss), len);
  return key;
}

}  // namespace

void StreamEngine::Loop::OnUdpListener(int index) {
  ProxyListener& l = *listeners_[index];
  if (l.fd < 0) return;
  const bool transparent = l.config.kind == Listener::Kind::kTransparentUdp;
  for (int k = 0; k < 256; ++k) {
    sockaddr_storage from;
    socklen_t len = sizeof(from);
    ssize_t n = recvfrom(l.fd, scratch_.get(), kMaxDatagram, MSG_DONTWAIT,
                         reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      continue;
    }
    const int64_t now = NowNs();
    std::string key = SessionKey(index, from, len);
    sockaddr_storage dest;
    socklen_t dest_len = 0;
    int32_t pid = 0;
    if (transparent) {
      if (!Captured(from, IPPROTO_UDP, &dest, &dest_len, &pid)) continue;  // dropped
      key.append(reinterpret_cast<const char*>(&dest), dest_len);
    }
    auto it = udp_sessions_.find(key);
    UdpSession* s = nullptr;
    if (it != udp_sessions_.end()) {
      s = it->second.get();
    } else {
      if (udp_sessions_.size() >= kMaxSessions) continue;  // dropped: too many clients
      const sockaddr_storage& up =
          transparent ? dest : l.upstream[l.next++ % l.upstream.size()];
      int fd = UpstreamSocket(up.ss_family, SOCK_DGRAM, o_.upstream_mark);
      socklen_t ulen = up.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
      if (fd < 0 || connect(fd, reinterpret_cast<const sockaddr*>(&up), ulen) != 0) {
        if (fd >= 0) close(fd);
        continue;
      }
      auto owned = std::make_unique<UdpSession>();
      s = owned.get();
      s->id = next_id_++;
      s->listener = index;
      s->transparent = transparent;
      s->client = from;
      s->client_len = len;
      s->fd = fd;
      s->h.kind = Handle::kUdpUpstream;
      s->h.udp = s;
      s->conn.pid = pid;
      eng::Endpoint far;
      eng::SetEndpointAddress(&far, &up, sizeof(up));
      far.protocol = FAULT_PROTO_UDP;
      eng::FormatEndpoint(far, s->conn.target, sizeof(s->conn.target));
      SelectRulesOnly(&s->conn, far, transparent ? AlwaysRulesFor(far) : true);
      if (transparent) {
        captured_.fetch_add(1, std::memory_order_relaxed);
        ++udp_clients_[SessionKey(index, from, len)];
      }
      udp_by_id_[s->id] = s;
      udp_sessions_.emplace(std::move(key), std::move(owned));
      // Level-triggered, as the listener: a burst longer than one turn's
      // 256 datagrams is read on the next turn.
      Register(fd, &s->h, EPOLLIN);
    }
    s->last_ns = now;
    UdpForward(s, 0, scratch_.get(), static_cast<size_t>(n), now);
  }
}

void StreamEngine::Loop::OnUdpUpstream(UdpSession* s) {
  for (int k = 0; k < 256; ++k) {
    ssize_t n = recv(s->fd, scratch_.get(), kMaxDatagram, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      continue;  // an ICMP error (the client sees silence); answers may follow it
    }
    const int64_t now = NowNs();
    s->last_ns = now;
    UdpForward(s, 1, scratch_.get(), static_cast<size_t>(n), now);
  }
}

void StreamEngine::Loop::UdpForward(UdpSession* s, int d, const char* buf, size_t n,
                                    int64_t now) {
  int64_t delay = 0;
  int copies = 1;
  if (CurrentRules(&s->conn)) {
    for (RuleRef& ref : s->conn.rules) {
      if (ref.index < 0) continue;
      double factor = eng::ScheduleFactor(ref.r.schedule, now - t_->start_ns);
      eng::NetDecision dec;
      eng::DecideNet(t_, ref.r, ref.index, d == 0 ? eng::NetOp::kSend : eng::NetOp::kRecv,
                     FAULT_PROTO_UDP, &ref.cs, n, now, factor, &dec);
      if (dec.rule < 0) continue;
      if (dec.fired) Emit(&s->conn, d, ref, dec);
      // Lost, black-holed or failed: not delivered (UDP has nothing else
      // to say).
      if (dec.drop || dec.stall_ns >= 0 || dec.err != 0 || dec.eof) return;
      if (dec.duplicate) copies = 2;
      delay += dec.delay_ns;
    }
  }
  for (int i = 0; i < copies; ++i) {
    if (delay <= 0) {
      UdpSend(s, d, buf, n);
    } else if (udp_due_.size() < kMaxHeld) {
      udp_due_.push(Datagram{now + delay, s->id, d, std::string(buf, n)});
    }
  }
}

void StreamEngine::Loop::UdpSend(UdpSession* s, int d, const char* buf, size_t n) {
  ssize_t w;
  if (d == 0) {
    w = send(s->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
  } else {
    const ProxyListener& l = *listeners_[s->listener];
    if (l.fd < 0) return;
    w = sendto(l.fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL,
               reinterpret_cast<const sockaddr*>(&s->client), s->client_len);
  }
  if (w < 0) return;  // a full buffer loses the datagram, as the kernel would
  datagrams_.fetch_add(1, std::memory_order_relaxed);
  bytes_[d].fetch_add(static_cast<uint64_t>(w), std::memory_order_relaxed);
}

void StreamEngine::Loop::UdpDue(int64_t now) {
  for (int k = 0; k < 4096 && !udp_due_.empty() && udp_due_.top().at <= now; ++k) {
    Datagram dg = udp_due_.top();
    udp_due_.pop();
    auto it = udp_by_id_.find(dg.session);
    if (it == udp_by_id_.end()) continue;
    UdpSend(it->second, dg.dir, dg.data.data(), dg.data.size());
  }
}

void StreamEngine::Loop::ExpireUdp(int64_t now) {
  for (auto it = udp_sessions_.begin(); it != udp_sessions_.end();) {
    UdpSession* s = it->second.get();
    if (now - s->last_ns < o_.udp_idle_ns) {
      ++it;
      continue;
    }
    epoll_ctl(ep_, EPOLL_CTL_DEL, s->fd, nullptr);
    close(s->fd);
    s->fd = -1;
    udp_by_id_.erase(s->id);
    if (s->transparent) {
      // The capture layer may forget the client once none of its
      // destinations has a session: an answer to any of them would need it.
      auto c = udp_clients_.find(SessionKey(s->listener, s->client, s->client_len));
      if (c != udp_clients_.end() && --c->second <= 0) {
        udp_clients_.erase(c);
        if (o_.origin_release) o_.origin_release(s->client, IPPROTO_UDP);
      }
    }
    dead_udp_.push_back(std::move(it->second));  // an event of this batch may name it
    it = udp_sessions_.erase(it);
  }
}

}  // namespace fault::stream
