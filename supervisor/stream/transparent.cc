// Transparent listeners: connections and datagrams that a capture layer
// (an eBPF program on connect()/sendto(), outside the engine) sent to the
// engine's loopback listeners instead of where they were going. The
// capture layer answers, through Options::origin_lookup, where that was;
// from there a captured connection is a TCP mapping to that one address
// (stream_engine.cc) and a captured datagram a UDP mapping's
// (udp_relay.cc). The upstream sockets carry Options::upstream_mark so that
// the capture layer does not take the engine's own traffic back.
#include "supervisor/stream/transparent.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

#include "supervisor/stream/stream_loop.h"

namespace fault::stream {

int UpstreamSocket(int family, int type, uint32_t mark) {
  int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  // Best effort: without CAP_NET_ADMIN the mark cannot be set, and the
  // capture layer still knows the engine by its pid.
  if (fd >= 0 && mark != 0) setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
  return fd;
}

bool OriginAddress(const sockaddr_storage& origin, sockaddr_storage* out, socklen_t* len) {
  memset(out, 0, sizeof(*out));
  if (origin.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(origin);
    auto* o = reinterpret_cast<sockaddr_in*>(out);
    o->sin_family = AF_INET;
    o->sin_port = in.sin_port;
    o->sin_addr = in.sin_addr;
    *len = sizeof(sockaddr_in);
    return true;
  }
  if (origin.ss_family != AF_INET6) return false;
  const auto& in6 = reinterpret_cast<const sockaddr_in6&>(origin);
  if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
    // An AF_INET6 socket could reach it too, but the far end would then
    // meet a dual-stack socket where the client had an IPv4 one.
    auto* o = reinterpret_cast<sockaddr_in*>(out);
    o->sin_family = AF_INET;
    o->sin_port = in6.sin6_port;
    memcpy(&o->sin_addr, in6.sin6_addr.s6_addr + 12, 4);
    *len = sizeof(sockaddr_in);
    return true;
  }
  // Field by field, so that two datagrams to one destination give the
  // same bytes (UDP sessions are keyed by them); the scope stays, since a
  // link-local address means nothing without it.
  auto* o = reinterpret_cast<sockaddr_in6*>(out);
  o->sin6_family = AF_INET6;
  o->sin6_port = in6.sin6_port;
  o->sin6_addr = in6.sin6_addr;
  o->sin6_scope_id = in6.sin6_scope_id;
  *len = sizeof(sockaddr_in6);
  return true;
}

bool StreamEngine::Loop::Captured(const sockaddr_storage& client, int protocol,
                                  sockaddr_storage* dest, socklen_t* dest_len, int32_t* pid) {
  StreamEngine::Origin origin;
  if (!o_.origin_lookup(client, protocol, &origin) ||
      !OriginAddress(origin.destination, dest, dest_len)) {
    unclaimed_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  *pid = static_cast<int32_t>(origin.pid);
  return true;
}

bool StreamEngine::Loop::AlwaysRulesFor(const eng::Endpoint& far) const {
  if (!o_.capture_filter) return true;
  char host[INET6_ADDRSTRLEN] = {};
  inet_ntop(far.family, far.addr, host, sizeof(host));
  return o_.capture_filter(host, far.port);
}

void StreamEngine::Loop::AcceptCaptured(int fd, const sockaddr_storage& peer) {
  sockaddr_storage dest;
  socklen_t dest_len = 0;
  int32_t pid = 0;
  if (!Captured(peer, IPPROTO_TCP, &dest, &dest_len, &pid)) {
    // Nobody knows where it was going: reset, as an unannounced redirect
    // is (OnListener).
    CloseWithReset(fd);
    return;
  }
  captured_.fetch_add(1, std::memory_order_relaxed);
  Conn* c = NewConn(Conn::kRelay, fd);
  c->pid = pid;
  c->far_addrs.push_back(dest);
  eng::Endpoint far;
  eng::SetEndpointAddress(&far, &dest, dest_len);
  far.protocol = FAULT_PROTO_TCP;
  StartRelay(c, far, AlwaysRulesFor(far));
}

}  // namespace fault::stream
