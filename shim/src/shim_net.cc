// Network effects applied in place (send/receive paths), the redirect of
// TCP connections to the stream engine, and the socket wrappers.

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <linux/futex.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "shim/src/shim_state.h"
#include "shim/src/shim_wrappers.h"

namespace fault::shim {

// ----------------------------------------------------------------- network ---

size_t IovLen(const iovec* iov, size_t n) {
  size_t t = 0;
  for (size_t i = 0; i < n; ++i) t += iov[i].iov_len;
  return t;
}

// Truncates a copy of `m`'s iov to `max` bytes into `iov_out` (capacity
// kIov). Returns the number of entries.
constexpr int kIov = 64;
size_t TruncIov(const iovec* in, size_t n, size_t max, iovec* out) {
  size_t k = 0, left = max;
  for (size_t i = 0; i < n && k < kIov && left > 0; ++i) {
    out[k] = in[i];
    if (out[k].iov_len > left) out[k].iov_len = left;
    left -= out[k].iov_len;
    ++k;
  }
  return k;
}

// Advances an iov copy by `done` bytes.
size_t AdvanceIov(iovec* iov, size_t n, size_t done) {
  size_t i = 0;
  while (i < n && done >= iov[i].iov_len) {
    done -= iov[i].iov_len;
    ++i;
  }
  if (i < n) {
    iov[i].iov_base = static_cast<char*>(iov[i].iov_base) + done;
    iov[i].iov_len -= done;
  }
  for (size_t j = 0; i + j < n; ++j) iov[j] = iov[i + j];
  return n - i;
}

ssize_t RealSendmsg(const eng::Index& idx, int fd, const msghdr* m, int flags) {
  if (ViaStub(idx, eng::kFamilySend))
    return Raw(SYS_sendmsg, fd, reinterpret_cast<long>(m), flags);
  return real.sendmsg(fd, m, flags);
}

ssize_t RealRecvmsg(const eng::Index& idx, int fd, msghdr* m, int flags) {
  if (ViaStub(idx, eng::kFamilyRecv))
    return Raw(SYS_recvmsg, fd, reinterpret_cast<long>(m), flags);
  return real.recvmsg(fd, m, flags);
}

// Records the local port of a socket this process sends through in the
// run-wide loopback port set (see table.h). An unbound UDP socket is bound
// to the wildcard address and port 0 first, as the kernel's autobind would
// do during the send, so that the port is known before the datagram.
void MarkLoopbackSender(int fd, FdState& st, Kind kind) {
  if (st.lb_marked) return;
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return;
  eng::Endpoint local;
  if (!eng::SetEndpointAddress(&local, &ss, len)) return;
  if (local.port == 0 && kind == kUdp) {
    sockaddr_storage any;
    memset(&any, 0, sizeof(any));
    any.ss_family = ss.ss_family;
    socklen_t alen =
        ss.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    if (bind(fd, reinterpret_cast<sockaddr*>(&any), alen) != 0) return;
    len = sizeof(ss);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0 ||
        !eng::SetEndpointAddress(&local, &ss, len))
      return;
  }
  if (local.port == 0) return;
  bool wildcard = true;
  for (int i = 0; i < (local.family == AF_INET ? 4 : 16); ++i)
    wildcard &= local.addr[i] == 0;
  if (!wildcard && !eng::IsLoopback(local)) {
    st.lb_marked = 0;
    return;
  }
  int proto = kind == kUdp ? 1 : 0;
  __atomic_fetch_or(&g_table->loopback_ports[proto][local.port / 64],
                    uint64_t{1} << (local.port % 64), __ATOMIC_RELAXED);
  st.lb_port = local.port;
  st.lb_marked = 1;
}

// True when traffic from `peer` was sent by a shimmed process of this run
// (its uplink effects already applied).
bool FromShimmedLoopback(const eng::Endpoint& peer, Kind kind) {
  if (!eng::IsLoopback(peer) || peer.port == 0) return false;
  int proto = kind == kUdp ? 1 : 0;
  uint64_t w = __atomic_load_n(&g_table->loopback_ports[proto][peer.port / 64],
                               __ATOMIC_RELAXED);
  return (w >> (peer.port % 64)) & 1;
}

// Records that calls of direction `dir` (kVerdictSend or kVerdictRecv) on
// fd, a file or a socket whose connected peer no rule matches, need nothing
// from the shim in s's table generation: they then go straight to the real call
// (MaybeFaultFd). Only for unscoped threads (the rules that apply are then
// the table's active ones, a function of its seq) and only when no syscall
// rule of the direction's families applies and the seccomp layer covers none
// of them (their calls would have to go through the stub).
void VerdictStore(const Slow& s, int fd, uint64_t dir) {
  if (s.ts->depth != 0 || fd < 0 || fd >= kMaxFds) return;
  const eng::Index& idx = s.idx();
  int fa = dir == kVerdictSend ? eng::kFamilySend : eng::kFamilyRecv;
  int fb = dir == kVerdictSend ? eng::kFamilyWrite : eng::kFamilyRead;
  if ((idx.family_owner_rules[fa] | idx.family_owner_rules[fb]) & s.mask)
    return;
  if (idx.families_mask & (eng::FamilyBit(fa) | eng::FamilyBit(fb))) return;
  uint64_t o = s.verdict0;
  uint64_t keep =
      static_cast<uint32_t>(o >> 32) == static_cast<uint32_t>(idx.seq)
          ? (o & (kVerdictSend | kVerdictRecv))
          : 0;
  uint64_t n = (idx.seq << 32) | (o & kVerdictGenMask) | keep | dir;
  // Fails when the entry was reset meanwhile: then nothing is stored.
  __atomic_compare_exchange_n(&g_verdict[fd], &o, n, false, __ATOMIC_RELAXED,
                              __ATOMIC_RELAXED);
}

bool FromEngine(const eng::Endpoint& peer);

// Picks the rule for `ep` (cached per connection for the peer).
int PickFor(const Slow& s, FdState* st, const eng::Endpoint& ep, bool cache) {
  const eng::Index& idx = s.idx();
  uint64_t cand = idx.net & s.mask;
  if (!cand) return -1;
  if (cache && st->rule_seq == idx.seq && st->rule_mask == s.mask)
    return st->rule;
  if (FromEngine(ep)) {  // the engine applies both directions' effects
    if (cache) {
      st->rule = -1;
      st->rule_seq = idx.seq;
      st->rule_mask = s.mask;
    }
    return -1;
  }
  eng::Endpoint e = ep;
  if (st != nullptr && st->sni[0]) e.sni = st->sni;
  char name[FAULT_NAME_MAX];
  if ((idx.hostname & cand) && e.family != 0 &&
      eng::HostCacheLookup(&g_hosts, e.family, e.addr, name))
    e.hostname = name;
  int r = eng::PickRule(g_table, idx, cand, e);
  if (cache) {
    st->rule = r;
    st->rule_seq = idx.seq;
    st->rule_mask = s.mask;
  }
  return r;
}

// Decides one network op for `rule`. False: nothing applies.
bool Decide(const Slow& s, int rule, eng::NetOp op, Kind kind, FdState& st,
            uint64_t bytes, eng::NetDecision* d, fault_rule* r,
            bool skip_downlink_link = false) {
  if (!eng::ReadRule(g_table, s.idx().seq, rule, r)) return false;
  if (skip_downlink_link) memset(&r->downlink, 0, sizeof(r->downlink));
  int64_t now = NowNs();
  double factor = eng::ScheduleFactor(r->schedule, now - g_start_ns);
  eng::DecideNet(g_table, *r, rule, op,
                 kind == kUdp ? FAULT_PROTO_UDP : FAULT_PROTO_TCP, &st.cs,
                 bytes, now, factor, d);
  return d->rule >= 0;
}

// A token bucket made a call wait: the rate changed what the program sees,
// so it fired. `held` is the bytes that had to wait.
void EmitRate(int rule, uint16_t op, const eng::Endpoint& ep, uint64_t held) {
  eng::CountFired(g_table, rule);
  char target[FAULT_NAME_MAX];
  eng::FormatEndpoint(ep, target, sizeof(target));
  Emit(rule, -1, op, FAULT_EFFECT_RATE, static_cast<int64_t>(held), target);
}

void EmitNet(const eng::NetDecision& d, uint16_t op, const eng::Endpoint& ep) {
  if (!d.fired) return;
  char target[FAULT_NAME_MAX];
  eng::FormatEndpoint(ep, target, sizeof(target));
  Emit(d.rule, -1, op, d.effect, d.value, target);
}

// Send path for TCP/UDP sockets with a matching rule. `m` is the caller's
// message (iov, optional destination, control).
ssize_t NetSend(const Slow& s, int fd, Kind kind, const msghdr* m, int flags,
                uint16_t op) {
  const eng::Index& idx = s.idx();
  FdState& st = State(fd);
  eng::Endpoint ep;
  bool cache = true;
  if (m->msg_name != nullptr && m->msg_namelen > 0 &&
      eng::SetEndpointAddress(&ep, m->msg_name, m->msg_namelen)) {
    cache = false;
  } else {
    LearnPeer(fd, st);
    ep = st.peer;
  }
  ep.protocol = kind == kUdp ? FAULT_PROTO_UDP : FAULT_PROTO_TCP;
  if (eng::IsLoopback(ep)) MarkLoopbackSender(fd, st, kind);
  if (kind == kTcp && !st.sni_checked) {
    // The first bytes a TLS client sends are its ClientHello: remember the
    // server name so that sni targets match this connection from now on.
    st.sni_checked = 1;
    if (m->msg_iovlen > 0 && m->msg_iov[0].iov_base != nullptr &&
        eng::ParseTlsSni(static_cast<const uint8_t*>(m->msg_iov[0].iov_base),
                         m->msg_iov[0].iov_len, st.sni)) {
      st.rule_seq = 0;   // pick again with the name
      VerdictReset(fd);  // a receive verdict was decided without it
    }
  }
  int rule = PickFor(s, &st, ep, cache);
  if (rule < 0) {
    // The sender's loopback port is marked (once) before sends may skip
    // the shim: a receiver's rule may still need to know it.
    if (cache && st.has_peer && (!eng::IsLoopback(ep) || st.lb_marked))
      VerdictStore(s, fd, kVerdictSend);
    return RealSendmsg(idx, fd, m, flags);
  }
  size_t total = IovLen(m->msg_iov, m->msg_iovlen);
  bool nonblock = IsNonblock(fd, flags);
  eng::NetDecision d;
  fault_rule r;
  Pending& p = st.pend[eng::kUplink];
  if (p.valid) {
    if (NowNs() < p.ready_ns) {
      errno = EAGAIN;
      return -1;
    }
    d = p.d;
    p.valid = 0;
    GateClear(fd, st, eng::kUplink);
    if (!eng::ReadRule(g_table, idx.seq, rule, &r))
      return RealSendmsg(idx, fd, m, flags);
    if (p.fail_after) {
      errno = d.err ? d.err : ETIMEDOUT;
      return -1;
    }
  } else {
    if (!Decide(s, rule, eng::NetOp::kSend, kind, st, total, &d, &r))
      return RealSendmsg(idx, fd, m, flags);
    EmitNet(d, op, ep);
    int64_t wait = d.stall_ns == kForever
                       ? kForever
                       : d.delay_ns + (d.stall_ns > 0 ? d.stall_ns : 0);
    bool fail_after = d.stall_ns >= 0;
    if (wait > 0 && nonblock) {
      p.d = d;
      p.d.delay_ns = 0;
      p.d.stall_ns = -1;
      p.fail_after = fail_after;
      p.ready_ns = wait == kForever ? kForever : NowNs() + wait;
      p.valid = 1;
      GateSet(fd, st, eng::kUplink, p.ready_ns,
              fail_after ? (POLLOUT | POLLERR) : 0);
      errno = EAGAIN;
      return -1;
    }
    SleepNs(wait);
    if (fail_after) {
      errno = d.err ? d.err : ETIMEDOUT;
      return -1;
    }
  }
  if (d.err) {
    errno = d.err;
    return -1;
  }
  if (d.drop) {
    eng::AccountBytes(&st.cs, eng::kUplink, total);
    return static_cast<ssize_t>(total);
  }
  size_t limit = total;
  if (d.max_bytes < limit) limit = static_cast<size_t>(d.max_bytes);
  const fault_link& l = r.uplink;
  if (l.rate_bps == 0 && limit == total) {  // unchanged: the caller's message
    ssize_t n = RealSendmsg(idx, fd, m, flags);
    if (n > 0)
      eng::AccountBytes(&st.cs, eng::kUplink, static_cast<uint64_t>(n));
    if (n >= 0 && d.duplicate) {
      int saved = errno;
      RealSendmsg(idx, fd, m, flags);  // the copy; its fate is the network's
      errno = saved;
    }
    return n;
  }
  iovec iov[kIov];
  size_t niov = TruncIov(m->msg_iov, m->msg_iovlen, limit, iov);
  msghdr mm = *m;
  if (l.rate_bps == 0) {
    mm.msg_iov = iov;
    mm.msg_iovlen = niov;
    ssize_t n = RealSendmsg(idx, fd, &mm, flags);
    if (n > 0)
      eng::AccountBytes(&st.cs, eng::kUplink, static_cast<uint64_t>(n));
    return n;
  }
  // Token bucket: datagrams go whole; streams in bucket-sized pieces.
  // Paced on virtual time: the bucket is charged at the times the sender
  // was due, and sleeps are absolute, so a late wake-up (a busy machine)
  // does not lose the tokens that accrued meanwhile.
  size_t done = 0;
  size_t left = IovLen(iov, niov);
  int64_t vnow = NowNs();
  if (vnow < st.cs.bucket[eng::kUplink].last_ns)
    vnow = st.cs.bucket[eng::kUplink].last_ns;
  for (int rounds = 0; left > 0; ++rounds) {
    int64_t wait;
    uint64_t want = left;
    uint64_t got;
    if (kind == kUdp) {
      got = eng::TokenBucketTake(&st.cs.bucket[eng::kUplink], l.rate_bps,
                                 l.rate_burst_bytes, vnow, want, &wait);
      if (got > 0 &&
          got < want) {  // take the rest as debt: datagrams are whole
        st.cs.bucket[eng::kUplink].tokens -=
            static_cast<int64_t>(want - got) * 8 * 1000000000LL;
        got = want;
      }
    } else {
      got = eng::TokenBucketTake(&st.cs.bucket[eng::kUplink], l.rate_bps,
                                 l.rate_burst_bytes, vnow, want, &wait);
    }
    if (got == 0) {
      if (rounds == 0) EmitRate(rule, op, ep, left);
      if (done > 0 && nonblock) break;
      if (nonblock) {
        GateSet(fd, st, eng::kUplink, NowNs() + wait, 0);
        errno = EAGAIN;
        return -1;
      }
      vnow += wait;
      SleepUntilNs(vnow);
      continue;
    }
    iovec part[kIov];
    size_t np = TruncIov(iov, niov, got, part);
    mm.msg_iov = part;
    mm.msg_iovlen = np;
    ssize_t n = RealSendmsg(idx, fd, &mm, flags);
    if (n < 0) {
      if (done > 0) break;
      return -1;
    }
    eng::AccountBytes(&st.cs, eng::kUplink, static_cast<uint64_t>(n));
    done += static_cast<size_t>(n);
    left -= static_cast<size_t>(n);
    niov = AdvanceIov(iov, niov, static_cast<size_t>(n));
    mm.msg_control = nullptr;  // ancillary data goes with the first piece
    mm.msg_controllen = 0;
    if (static_cast<uint64_t>(n) < got || nonblock) break;
  }
  if (done > 0 && d.duplicate) {
    int saved = errno;
    RealSendmsg(idx, fd, m, flags);
    errno = saved;
  }
  return static_cast<ssize_t>(done);
}

// Receive path for TCP/UDP sockets. `m` is the caller's message; its
// msg_name (if any) is filled.
ssize_t NetRecv(const Slow& s, int fd, Kind kind, msghdr* m, int flags,
                uint16_t op) {
  const eng::Index& idx = s.idx();
  FdState& st = State(fd);
  LearnPeer(fd, st);
  // O_NONBLOCK costs a syscall: only asked when a rule may apply.
  int nb_known = -1;
  auto nonblock_now = [&]() {
    if (nb_known < 0) nb_known = IsNonblock(fd, flags) ? 1 : 0;
    return nb_known == 1;
  };
  size_t total = IovLen(m->msg_iov, m->msg_iovlen);
  for (int attempt = 0; attempt < 1 << 20; ++attempt) {
    if (st.dup_next) {  // the copy of a duplicated datagram, as it is
      ssize_t n = RealRecvmsg(idx, fd, m, flags);
      if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) st.dup_next = 0;
      return n;
    }
    eng::Endpoint ep = st.peer;
    bool cache = true;
    bool peeked = false;
    if (kind == kUdp && !st.has_peer) {
      // The rule depends on the sender: look at the next datagram first.
      sockaddr_storage from;
      char byte;
      iovec one = {&byte, 1};
      msghdr pm;
      memset(&pm, 0, sizeof(pm));
      pm.msg_name = &from;
      pm.msg_namelen = sizeof(from);
      pm.msg_iov = &one;
      pm.msg_iovlen = 1;
      ssize_t n = RealRecvmsg(idx, fd, &pm,
                              MSG_PEEK | (nonblock_now() ? MSG_DONTWAIT : 0));
      if (n < 0) return -1;
      if (!eng::SetEndpointAddress(&ep, &from, pm.msg_namelen))
        return RealRecvmsg(idx, fd, m, flags);
      cache = false;
      peeked = true;
    }
    ep.protocol = kind == kUdp ? FAULT_PROTO_UDP : FAULT_PROTO_TCP;
    int rule = PickFor(s, &st, ep, cache);
    if (rule < 0) {
      if (cache && st.has_peer) VerdictStore(s, fd, kVerdictRecv);
      return RealRecvmsg(idx, fd, m, flags);
    }
    const bool nonblock = nonblock_now();
    fault_rule r;
    eng::NetDecision d;
    Pending& p = st.pend[eng::kDownlink];
    bool delay_after = false;
    if (p.valid) {
      if (NowNs() < p.ready_ns) {
        errno = EAGAIN;
        return -1;
      }
      d = p.d;
      p.valid = 0;
      GateClear(fd, st, eng::kDownlink);
      if (!eng::ReadRule(g_table, idx.seq, rule, &r))
        return RealRecvmsg(idx, fd, m, flags);
      if (FromShimmedLoopback(ep, kind))
        memset(&r.downlink, 0, sizeof(r.downlink));
      if (p.fail_after) {
        errno = d.err ? d.err : ETIMEDOUT;
        return -1;
      }
    } else {
      if (nonblock && !peeked) {
        // Decide only when there is something to receive, unless the rule
        // stalls receives regardless (timeout, black hole, half-open).
        char byte;
        ssize_t n = real.recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          fault_rule probe;
          if (!eng::ReadRule(g_table, idx.seq, rule, &probe)) return -1;
          if (!(probe.timeout_recv_ns > 0 ||
                (probe.flags & FAULT_RULE_BLACKHOLE) || st.cs.half_open ||
                st.cs.budget_hit || st.cs.reset)) {
            errno = EAGAIN;
            return -1;
          }
        }
      }
      if (!Decide(s, rule, eng::NetOp::kRecv, kind, st, total, &d, &r,
                  FromShimmedLoopback(ep, kind)))
        return RealRecvmsg(idx, fd, m, flags);
      EmitNet(d, op, ep);
      if (d.stall_ns >= 0) {
        int64_t stall = d.stall_ns;
        int err = d.err ? d.err : ETIMEDOUT;
        if (nonblock) {
          p.d = d;
          p.fail_after = 1;
          p.ready_ns = stall == kForever ? kForever : NowNs() + stall;
          p.valid = 1;
          GateSet(fd, st, eng::kDownlink, p.ready_ns,
                  stall == kForever ? 0 : (POLLIN | POLLERR));
          errno = EAGAIN;
          return -1;
        }
        int64_t rcvtimeo = SockTimeoutNs(fd, SO_RCVTIMEO);
        if (rcvtimeo > 0 && rcvtimeo < stall) {
          SleepNs(rcvtimeo);
          errno = EAGAIN;
          return -1;
        }
        SleepNs(stall);
        errno = err;
        return -1;
      }
      if (d.delay_ns > 0) {
        if (nonblock) {
          p.d = d;
          p.d.delay_ns = 0;
          p.fail_after = 0;
          p.ready_ns = NowNs() + d.delay_ns;
          p.valid = 1;
          GateSet(fd, st, eng::kDownlink, p.ready_ns, 0);
          errno = EAGAIN;
          return -1;
        }
        delay_after = true;  // blocking: the data arrives, then is held
      }
    }
    if (d.err) {
      errno = d.err;
      return -1;
    }
    if (d.eof) return 0;
    size_t limit = total;
    if (d.max_bytes < limit) limit = static_cast<size_t>(d.max_bytes);
    const fault_link& l = r.downlink;
    if (l.rate_bps != 0 && kind == kTcp) {
      int64_t vnow = NowNs();
      if (vnow < st.cs.bucket[eng::kDownlink].last_ns)
        vnow = st.cs.bucket[eng::kDownlink].last_ns;
      for (int rounds = 0; rounds < 1 << 20; ++rounds) {
        int64_t wait;
        uint64_t got =
            eng::TokenBucketTake(&st.cs.bucket[eng::kDownlink], l.rate_bps,
                                 l.rate_burst_bytes, vnow, limit, &wait);
        if (got > 0) {
          limit = static_cast<size_t>(got);
          break;
        }
        if (rounds == 0) EmitRate(rule, op, ep, limit);
        if (nonblock) {
          GateSet(fd, st, eng::kDownlink, NowNs() + wait, 0);
          errno = EAGAIN;
          return -1;
        }
        vnow += wait;
        SleepUntilNs(vnow);
      }
    }
    ssize_t n;
    // A duplicated datagram is delivered by peeking: it stays queued and
    // the next receive takes it again.
    int rflags = (d.duplicate && kind == kUdp) ? (flags | MSG_PEEK) : flags;
    if (limit == total) {  // unchanged: the caller's message
      n = RealRecvmsg(idx, fd, m, rflags);
    } else {
      iovec iov[kIov];
      msghdr mm = *m;
      mm.msg_iov = iov;
      mm.msg_iovlen = TruncIov(m->msg_iov, m->msg_iovlen, limit, iov);
      n = RealRecvmsg(idx, fd, &mm, rflags);
      m->msg_namelen = mm.msg_namelen;
      m->msg_controllen = mm.msg_controllen;
      m->msg_flags = mm.msg_flags;
    }
    if (n < 0) return -1;
    if (d.drop) {  // a lost datagram: received and discarded
      if (delay_after) delay_after = false;
      continue;
    }
    if ((rflags & MSG_PEEK) && !(flags & MSG_PEEK)) st.dup_next = 1;
    eng::AccountBytes(&st.cs, eng::kDownlink, static_cast<uint64_t>(n));
    if (l.rate_bps != 0 && kind == kUdp && n > 0) {
      // Datagrams are whole: pay for the received size before returning.
      int64_t wait;
      for (int rounds = 0; rounds < 1 << 20; ++rounds) {
        uint64_t got = eng::TokenBucketTake(
            &st.cs.bucket[eng::kDownlink], l.rate_bps, l.rate_burst_bytes,
            NowNs(), static_cast<uint64_t>(n), &wait);
        if (got > 0) {
          if (got < static_cast<uint64_t>(n))
            st.cs.bucket[eng::kDownlink].tokens -=
                static_cast<int64_t>(static_cast<uint64_t>(n) - got) * 8 *
                1000000000LL;
          break;
        }
        if (rounds == 0) EmitRate(rule, op, ep, static_cast<uint64_t>(n));
        SleepNs(wait);
      }
    }
    if (delay_after) SleepNs(d.delay_ns);
    return n;
  }
  errno = EAGAIN;
  return -1;
}

// ---------------------------------------------------------------- redirect ---
//
// TCP connections that a rule with stream effects selects are handed to the
// stream engine in the supervisor (supervisor/stream): the program's socket
// is connected to the engine, which connects to the real peer and holds the
// bytes back as the rule says. The program then waits on a real kernel
// socket, so edge-triggered epoll, io_uring and every other way of waiting
// see the delay as the network's own.

bool Redirectable(const fault_rule& r) {
  return eng::HasStreamEffects(g_table, r);
}

// The engine's listener for sockets of `family` (0: none).
uint16_t EnginePort(int family) {
  if (family == AF_INET)
    return __atomic_load_n(&g_table->engine_port4, __ATOMIC_ACQUIRE);
  if (family == AF_INET6)
    return __atomic_load_n(&g_table->engine_port6, __ATOMIC_ACQUIRE);
  return 0;
}

socklen_t LoopbackAddress(int family, uint16_t port, sockaddr_storage* ss) {
  return static_cast<socklen_t>(
      eng::EndpointSockaddr(eng::LoopbackEndpoint(family, port), ss, sizeof(*ss)));
}

// True when `peer` is one of the engine's own connections to a far end:
// the engine applies both directions' effects to it.
bool FromEngine(const eng::Endpoint& peer) {
  if (!eng::IsLoopback(peer) || peer.port == 0) return false;
  uint64_t w = __atomic_load_n(&g_table->engine_ports[peer.port / 64],
                               __ATOMIC_RELAXED);
  return (w >> (peer.port % 64)) & 1;
}

// Binds `fd` to a loopback port (unless it is bound to one already) and
// returns that port, or 0 when the socket is bound elsewhere or cannot be.
uint16_t LoopbackPortOf(int fd, int* family) {
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (real.getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    return 0;
  eng::Endpoint local;
  if (!eng::SetEndpointAddress(&local, &ss, len)) return 0;
  *family = ss.ss_family;
  if (local.port != 0) return eng::IsLoopback(local) ? local.port : 0;
  sockaddr_storage lo;
  socklen_t lolen = LoopbackAddress(ss.ss_family, 0, &lo);
  if (bind(fd, reinterpret_cast<sockaddr*>(&lo), lolen) != 0) return 0;
  len = sizeof(ss);
  if (real.getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0 ||
      !eng::SetEndpointAddress(&local, &ss, len))
    return 0;
  return local.port;
}

fault_redirect* Announce(int family, uint16_t port, uint8_t kind, int rule,
                         const eng::Endpoint& far, int64_t handshake_ns) {
  return eng::AnnounceRedirect(g_table, family == AF_INET6, port, kind, rule,
                               far, handshake_ns, getpid());
}

void MarkRedirected(FdState& st, int family, uint16_t port,
                    const eng::Endpoint& peer) {
  st.redirected = 1;
  st.redirect_fi = family == AF_INET6 ? 1 : 0;
  st.redirect_port = port;
  st.peer = peer;
  st.has_peer = 1;
}

// The error the engine ended a redirected connection with, when the kernel
// only says that it was reset (0: nothing better to say).
int RedirectError(const FdState& st) {
  if (!st.valid || !st.redirected) return 0;
  const fault_redirect& r = g_table->redirects[st.redirect_fi][st.redirect_port];
  if (__atomic_load_n(&r.state, __ATOMIC_ACQUIRE) != FAULT_REDIRECT_FAILED)
    return 0;
  return __atomic_load_n(&r.err, __ATOMIC_RELAXED);
}


// Waits while a redirect slot's state is one of `pending` (bit 1 << state),
// until monotonic time `until` or until the supervisor is gone (a dead one
// never wakes us: each wait is at most 100 ms). Returns the last state seen.
inline bool InStates(uint32_t st, uint32_t states) {
  return st < 32 && ((1u << st) & states) != 0;
}

uint32_t AwaitSlot(const fault_redirect& r, uint32_t pending, int64_t until) {
  uint32_t st = __atomic_load_n(&r.state, __ATOMIC_ACQUIRE);
  for (int i = 0; i < 1 << 20 && InStates(st, pending); ++i) {
    int64_t now = NowNs();
    if (now >= until) break;
    int64_t step = until - now < 100000000 ? until - now : 100000000;
    struct timespec ts = {0, static_cast<long>(step)};
    syscall(SYS_futex, &r.state, FUTEX_WAIT, st, &ts, nullptr, 0);
    if (i > 0 && kill(static_cast<pid_t>(g_table->supervisor_pid), 0) != 0 &&
        errno == ESRCH)
      break;
    st = __atomic_load_n(&r.state, __ATOMIC_ACQUIRE);
  }
  return st;
}

// Waits (a blocking connect) until the engine has reached the far end or
// failed to. Returns 0 or an errno.
int AwaitFarEnd(int fd, fault_redirect* r) {
  int64_t sndtimeo = SockTimeoutNs(fd, SO_SNDTIMEO);
  int64_t until = sndtimeo > 0 ? NowNs() + sndtimeo : kForever;
  constexpr uint32_t kPending = 1u << FAULT_REDIRECT_ARMED |
                                1u << FAULT_REDIRECT_CLAIMED |
                                1u << FAULT_REDIRECT_CONNECTED;
  uint32_t st = AwaitSlot(*r, kPending, until);
  if (st == FAULT_REDIRECT_OPEN) return 0;
  if (st == FAULT_REDIRECT_FAILED) {
    int e = __atomic_load_n(&r->err, __ATOMIC_RELAXED);
    return e != 0 ? e : ECONNREFUSED;
  }
  // Still pending: SO_SNDTIMEO ran out (Linux then says EINPROGRESS), or
  // the supervisor is gone.
  if (InStates(st, kPending)) return NowNs() >= until ? EINPROGRESS : ECONNREFUSED;
  return ECONNRESET;  // the port was announced anew: not ours any more
}

// A program asks SO_ERROR once its non-blocking connect to the engine is
// writable (at once, on loopback). Without the engine in between it would
// have become writable only when the far end answered: wait for that answer
// here (bounded), so that a refusal is reported where the program looks for
// it. The emulated handshake time is not waited for: the engine holds the
// first bytes back instead.
void AwaitFarConnect(const FdState& st) {
  AwaitSlot(g_table->redirects[st.redirect_fi][st.redirect_port],
            1u << FAULT_REDIRECT_ARMED | 1u << FAULT_REDIRECT_CLAIMED,
            NowNs() + 10'000'000'000LL);
}

// connect() of a TCP socket whose rule has stream effects: through the
// engine. `connect_to` performs the real connect to another address.
// False: the socket cannot be redirected (no engine for its family, bound
// to a non-loopback address); the caller applies the effects in place.
template <typename ConnectTo>
bool RedirectConnect(int fd, FdState& st, const eng::Endpoint& ep, int rule,
                     int64_t handshake_ns, bool nonblock, ConnectTo connect_to,
                     int* result) {
  int family = 0;
  uint16_t port = LoopbackPortOf(fd, &family);
  uint16_t eport = port != 0 ? EnginePort(family) : 0;
  if (eport == 0) return false;
  fault_redirect* r =
      Announce(family, port, FAULT_REDIRECT_CONNECT, rule, ep, handshake_ns);
  sockaddr_storage engine;
  socklen_t elen = LoopbackAddress(family, eport, &engine);
  int rc = connect_to(reinterpret_cast<sockaddr*>(&engine), elen);
  if (rc != 0 && errno != EINPROGRESS) {
    int e = errno;
    __atomic_store_n(&r->state, FAULT_REDIRECT_FREE, __ATOMIC_RELEASE);
    errno = e;
    *result = -1;
    return true;
  }
  MarkRedirected(st, family, port, ep);
  if (nonblock) {
    *result = rc;
    return true;
  }
  int e = AwaitFarEnd(fd, r);
  *result = e == 0 ? 0 : -1;
  if (e != 0) errno = e;
  return true;
}

// Copies the options a program commonly sets on a listening socket (and
// accepted sockets inherit) from `from` to `to`. Best effort: an option the
// kernel refuses to read or set is left as it is.
void CopySocketOptions(int from, int to) {
  // Not the buffer sizes: setting them, even to what they read, would turn
  // off the kernel's autotuning of the new socket.
  static const struct {
    int level, name;
  } kOptions[] = {
      {SOL_SOCKET, SO_KEEPALIVE},   {IPPROTO_TCP, TCP_NODELAY},
      {IPPROTO_TCP, TCP_KEEPIDLE},  {IPPROTO_TCP, TCP_KEEPINTVL},
      {IPPROTO_TCP, TCP_KEEPCNT},
  };
  for (const auto& o : kOptions) {
    int v = 0;
    socklen_t len = sizeof(v);
    if (real.getsockopt(from, o.level, o.name, &v, &len) != 0) continue;
    setsockopt(to, o.level, o.name, &v, sizeof(v));
  }
}

// accept() returned `nfd`, a connection that a rule with stream effects
// selects: the engine takes it over, and `nfd` becomes a socket connected
// to the engine. False: left as it is (effects in place).
bool RedirectAccepted(const eng::Index& idx, int nfd, int flags, int rule,
                      const eng::Endpoint& peer) {
  sockaddr_storage orig;
  socklen_t olen = sizeof(orig);
  if (real.getsockname(nfd, reinterpret_cast<sockaddr*>(&orig), &olen) != 0)
    return false;
  int family = orig.ss_family;
  uint16_t eport = EnginePort(family);
  const char* name = g_table->engine_control;
  size_t nlen = strnlen(name, FAULT_ENGINE_NAME_MAX);
  if (eport == 0 || nlen == 0 || nlen >= FAULT_ENGINE_NAME_MAX) return false;
  int s = real.socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return false;
  int fam = 0;
  uint16_t port = LoopbackPortOf(s, &fam);
  bool ok = port != 0;
  fault_redirect* r = nullptr;
  // Events name the service that was reached (this listener's address),
  // so that a run's summary adds up per service, not per client port.
  eng::Endpoint service;
  if (ok && !eng::SetEndpointAddress(&service, &orig, olen)) ok = false;
  if (ok) r = Announce(family, port, FAULT_REDIRECT_ACCEPTED, rule, service, 0);
  if (ok) {
    fault_handoff msg = {port, static_cast<uint8_t>(family == AF_INET6), 0,
                         static_cast<int32_t>(getpid())};
    iovec iov = {&msg, sizeof(msg)};
    alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof(cbuf));
    sockaddr_un un;
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    memcpy(un.sun_path + 1, name, nlen);
    msghdr m;
    memset(&m, 0, sizeof(m));
    m.msg_name = &un;
    m.msg_namelen =
        static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + nlen);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = cbuf;
    m.msg_controllen = sizeof(cbuf);
    cmsghdr* cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &nfd, sizeof(int));
    int ctl = real.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ok = ctl >= 0 && real.sendmsg(ctl, &m, MSG_DONTWAIT) ==
                         static_cast<ssize_t>(sizeof(msg));
    if (ctl >= 0) real.close(ctl);
  }
  if (ok) {
    sockaddr_storage engine;
    socklen_t elen = LoopbackAddress(family, eport, &engine);
    // Through the stub when the seccomp filter covers connect: its layer
    // would otherwise take this connect for the program's own and redirect
    // it to the engine a second time.
    auto* ea = reinterpret_cast<sockaddr*>(&engine);
    ok = (ViaStub(idx, eng::kFamilyConnect)
              ? Raw(SYS_connect, s, reinterpret_cast<long>(ea), elen)
              : real.connect(s, ea, elen)) == 0;
  }
  // The engine holds the accepted socket now; `s` takes its number, with
  // the options the accepted socket inherited from its listener.
  if (ok) CopySocketOptions(nfd, s);
  if (ok && (flags & SOCK_NONBLOCK))
    ok = fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK) == 0;
  if (ok)
    ok = real.dup3(s, nfd, (flags & SOCK_CLOEXEC) ? O_CLOEXEC : 0) == nfd;
  if (!ok && r != nullptr)
    __atomic_store_n(&r->state, FAULT_REDIRECT_FREE, __ATOMIC_RELEASE);
  real.close(s);
  if (!ok) return false;
  FdState& st = State(nfd);
  MarkRedirected(st, family, port, peer);
  st.has_local = eng::SetEndpointAddress(&st.local, &orig, olen) ? 1 : 0;
  return true;
}

int NetConnect(const Slow& s, int fd, Kind kind, const sockaddr* addr,
               socklen_t len) {
  const eng::Index& idx = s.idx();
  auto real_connect = [&]() -> int {
    if (ViaStub(idx, eng::kFamilyConnect))
      return static_cast<int>(
          Raw(SYS_connect, fd, reinterpret_cast<long>(addr), len));
    return real.connect(fd, addr, len);
  };
  FdState& st = State(fd);
  if (st.fake_connect) {  // connect() again on a black-holed attempt
    if (NowNs() < st.fake_err_ns) {
      errno = EALREADY;
      return -1;
    }
    st.fake_connect = 0;
    GateClear(fd, st, eng::kUplink);
    GateClear(fd, st, eng::kDownlink);
    errno = st.fake_err;
    return -1;
  }
  eng::Endpoint ep;
  if (!eng::SetEndpointAddress(&ep, addr, len)) return real_connect();
  ep.protocol = kind == kUdp ? FAULT_PROTO_UDP : FAULT_PROTO_TCP;
  st.peer = ep;
  st.has_peer = 1;
  st.rule_seq = 0;
  st.host_looked = 0;
  int rule = PickFor(s, &st, ep, true);
  if (rule < 0) return real_connect();
  eng::NetDecision d;
  fault_rule r;
  if (kind == kUdp) {
    // A UDP connect sends nothing: only set the peer; effects apply per
    // datagram.
    return real_connect();
  }
  auto connect_to = [&](const sockaddr* a, socklen_t l) -> int {
    if (ViaStub(idx, eng::kFamilyConnect))
      return static_cast<int>(
          Raw(SYS_connect, fd, reinterpret_cast<long>(a), l));
    return real.connect(fd, a, l);
  };
  memset(&r, 0, sizeof(r));
  if (!Decide(s, rule, eng::NetOp::kConnect, kind, st, 0, &d, &r)) {
    // Off by its schedule now, maybe not later: the engine decides per
    // chunk.
    int rc;
    if (r.name[0] != 0 && Redirectable(r) &&
        RedirectConnect(fd, st, ep, rule, 0, IsNonblock(fd, 0), connect_to,
                        &rc))
      return rc;
    return real_connect();
  }
  EmitNet(d, FAULT_OP_CONNECT, ep);
  bool nonblock = IsNonblock(fd, 0);
  if (d.stall_ns >= 0) {  // black-holed SYN: never reaches the kernel
    int err = d.err ? d.err : ETIMEDOUT;
    if (nonblock) {
      st.fake_connect = 1;
      st.fake_err = err;
      st.fake_err_ns = NowNs() + d.stall_ns;
      uint32_t ev = POLLIN | POLLOUT | POLLERR | POLLHUP;
      GateSet(fd, st, eng::kUplink, st.fake_err_ns, ev);
      GateSet(fd, st, eng::kDownlink, st.fake_err_ns, ev);
      errno = EINPROGRESS;
      return -1;
    }
    int64_t sndtimeo = SockTimeoutNs(fd, SO_SNDTIMEO);
    if (sndtimeo > 0 && sndtimeo < d.stall_ns) {
      SleepNs(sndtimeo);
      errno =
          EINPROGRESS;  // what Linux reports when SO_SNDTIMEO cuts a connect
      return -1;
    }
    SleepNs(d.stall_ns);
    errno = err;
    return -1;
  }
  if (d.err) {
    errno = d.err;
    return -1;
  }
  if (Redirectable(r)) {
    int rc;
    if (RedirectConnect(fd, st, ep, rule, d.delay_ns, nonblock, connect_to,
                        &rc))
      return rc;
  }
  if (d.delay_ns > 0) {
    if (nonblock) {
      int rc = real_connect();
      if (rc == 0 || errno == EINPROGRESS) {
        GateSet(fd, st, eng::kUplink, NowNs() + d.delay_ns, 0);
        errno = EINPROGRESS;
      }
      return -1;
    }
    SleepNs(d.delay_ns);
  }
  return real_connect();
}

}  // namespace fault::shim

using namespace fault::shim;  // NOLINT: the wrappers are the C ABI
namespace eng = ::fault::engine;

// ---- sockets ----

FAULT_EXPORT int socket(int domain, int type, int protocol) {
  EnsureReal();
  int fd = real.socket(domain, type, protocol);
  if (fd >= 0) {
    int t = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    Kind k = kOther;
    if (domain == AF_INET || domain == AF_INET6)
      k = t == SOCK_STREAM ? kTcp : (t == SOCK_DGRAM ? kUdp : kOther);
    SetKind(fd, k);
  }
  return fd;
}

// connect() again on a socket handed to the stream engine (hiredis asks
// whether its non-blocking connect is done this way): what the kernel
// would answer for the far end, not for the engine.
static int ConnectAgain(int fd) {
  // The socket is writable already (the engine accepted it at once): the
  // program takes the connect as done and asks how it went. Answer for the
  // far end, waiting for it if need be (see AwaitFarConnect).
  FdState& st = g_fds[fd];
  AwaitFarConnect(st);
  int e = RedirectError(st);
  errno = e != 0 ? e : EISCONN;
  return -1;
}

FAULT_EXPORT int connect(int fd, const sockaddr* addr, socklen_t len) {
  EnsureReal();
  if (IsRedirected(fd) && g_table != nullptr) return ConnectAgain(fd);
  VerdictReset(fd);  // the peer the verdict was decided for changes
  if (!FdMaybe(fd, eng::kFamilyConnect) &&
      !(GatesPossible() && fd < kMaxFds && fd >= 0 && g_fds[fd].valid &&
        g_fds[fd].fake_connect))
    return real.connect(fd, addr, len);
  Slow s;
  if (!s.ok || LeftToSeccomp(s.idx(), eng::kFamilyConnect))
    return real.connect(fd, addr, len);
  Kind k = Classify(fd);
  if (k != kTcp && k != kUdp) return real.connect(fd, addr, len);
  if (ApplySocketRules(s, fd, k, eng::kFamilyConnect, FAULT_OP_CONNECT, addr,
                       len))
    return -1;
  if (s.idx().net & s.mask) return NetConnect(s, fd, k, addr, len);
  if (ViaStub(s.idx(), eng::kFamilyConnect))
    return static_cast<int>(
        Raw(SYS_connect, fd, reinterpret_cast<long>(addr), len));
  return real.connect(fd, addr, len);
}

// A connection accepted on a TCP listener: handed to the stream engine when
// a rule with stream effects selects its peer. `addr`/`len`: the peer as
// accept reported it to the caller (null when the caller did not ask, or
// truncated): getpeername is asked only then. The peer is kept in the fd's
// state, so that the first send or receive need not ask again.
static void MaybeRedirectAccepted(int nfd, int flags, const sockaddr* addr,
                                  socklen_t len) {
  Slow s;
  if (!s.ok || !(s.idx().net & s.mask)) return;
  eng::Endpoint peer;
  if (addr == nullptr || !eng::SetEndpointAddress(&peer, addr, len)) {
    sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (real.getpeername(nfd, reinterpret_cast<sockaddr*>(&ss), &sl) != 0 ||
        !eng::SetEndpointAddress(&peer, &ss, sl))
      return;
  }
  FdState& st = State(nfd);
  st.peer = peer;
  st.has_peer = 1;
  peer.protocol = FAULT_PROTO_TCP;
  // From a shimmed sender of this run or from the engine itself: the
  // effects are applied on the other side already.
  if (FromShimmedLoopback(peer, kTcp) || FromEngine(peer)) return;
  int rule = PickFor(s, &st, peer, false);
  if (rule < 0) return;
  fault_rule r;
  if (!eng::ReadRule(g_table, s.idx().seq, rule, &r) || !Redirectable(r))
    return;
  RedirectAccepted(s.idx(), nfd, flags, rule, peer);
}

static int AcceptCommon(int fd, sockaddr* addr, socklen_t* len, int flags,
                        bool four) {
  EnsureReal();
  // The caller's buffer size: accept reports the peer's full length.
  const socklen_t cap = addr != nullptr && len != nullptr ? *len : 0;
  auto pass = [&]() {
    return four ? real.accept4(fd, addr, len, flags)
                : real.accept(fd, addr, len);
  };
  int nfd;
  // Only accept's syscall rules apply to the listener's call itself.
  if (!FdMaybeSys(fd, eng::kFamilyAccept)) {
    nfd = pass();
  } else {
    Slow s;
    if (!s.ok || LeftToSeccomp(s.idx(), eng::kFamilyAccept)) {
      nfd = pass();
    } else {
      Kind lk = Classify(fd);
      if ((lk == kTcp || lk == kUdp) &&
          ApplySocketRules(s, fd, lk, eng::kFamilyAccept, FAULT_OP_ACCEPT,
                           nullptr, 0))
        return -1;
      if (ViaStub(s.idx(), eng::kFamilyAccept))
        nfd = static_cast<int>(
            Raw(SYS_accept4, fd, reinterpret_cast<long>(addr),
                reinterpret_cast<long>(len), four ? flags : 0));
      else
        nfd = pass();
    }
  }
  if (nfd >= 0) {
    Kind lk = KindOf(fd);
    SetKind(nfd, lk == kTcp ? kTcp : kUnknown);
    if (lk == kTcp && MaybeFault(kNetBits, kNetScoped)) {
      // Only what accept wrote in full describes the peer.
      bool whole = cap != 0 && *len <= cap;
      MaybeRedirectAccepted(nfd, four ? flags : 0, whole ? addr : nullptr,
                            whole ? *len : 0);
    }
  }
  return nfd;
}

FAULT_EXPORT int accept(int fd, sockaddr* addr, socklen_t* len) {
  return AcceptCommon(fd, addr, len, 0, false);
}

FAULT_EXPORT int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  return AcceptCommon(fd, addr, len, flags, true);
}

// The part of send that runs only when a rule may apply.
__attribute__((noinline)) static ssize_t SendSlowPath(int fd, const void* buf,
                                                      size_t n, int flags) {
  iovec iov;
  msghdr m = OneBuf(&iov, const_cast<void*>(buf), n, nullptr, 0);
  return SlowSend(
      fd, eng::kFamilySend, FAULT_OP_SEND, &m, flags,
      [&]() { return real.send(fd, buf, n, flags); },
      [&]() {
        return Raw(SYS_sendto, fd, reinterpret_cast<long>(buf), n, flags, 0, 0);
      });
}

FAULT_EXPORT ssize_t send(int fd, const void* buf, size_t n, int flags) {
  EnsureReal();
  if (!FdMaybe(fd, eng::kFamilySend, kVerdictSend))
    return real.send(fd, buf, n, flags);
  return SendSlowPath(fd, buf, n, flags);
}

// The part of sendto that runs only when a rule may apply.
__attribute__((noinline)) static ssize_t SendtoSlowPath(int fd, const void* buf,
                                                        size_t n, int flags,
                                                        const sockaddr* to,
                                                        socklen_t tolen) {
  iovec iov;
  msghdr m = OneBuf(&iov, const_cast<void*>(buf), n, to, tolen);
  return SlowSend(
      fd, eng::kFamilySend, FAULT_OP_SEND, &m, flags,
      [&]() { return real.sendto(fd, buf, n, flags, to, tolen); },
      [&]() {
        return Raw(SYS_sendto, fd, reinterpret_cast<long>(buf), n, flags,
                   reinterpret_cast<long>(to), tolen);
      });
}

FAULT_EXPORT ssize_t sendto(int fd, const void* buf, size_t n, int flags,
                            const sockaddr* to, socklen_t tolen) {
  EnsureReal();
  if (!FdMaybe(fd, eng::kFamilySend, to == nullptr ? kVerdictSend : 0))
    return real.sendto(fd, buf, n, flags, to, tolen);
  return SendtoSlowPath(fd, buf, n, flags, to, tolen);
}

// The part of sendmsg that runs only when a rule may apply.
__attribute__((noinline)) static ssize_t SendmsgSlowPath(int fd,
                                                         const msghdr* msg,
                                                         int flags) {
  msghdr m = *msg;
  return SlowSend(
      fd, eng::kFamilySend, FAULT_OP_SEND, &m, flags,
      [&]() { return real.sendmsg(fd, msg, flags); },
      [&]() {
        return Raw(SYS_sendmsg, fd, reinterpret_cast<long>(msg), flags);
      });
}

FAULT_EXPORT ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  EnsureReal();
  if (!FdMaybe(fd, eng::kFamilySend,
               msg != nullptr && msg->msg_name == nullptr ? kVerdictSend : 0))
    return real.sendmsg(fd, msg, flags);
  return SendmsgSlowPath(fd, msg, flags);
}

// The part of write that runs only when a rule may apply.
__attribute__((noinline)) static ssize_t WriteSlowPath(int fd, const void* buf,
                                                       size_t n) {
  iovec iov;
  msghdr m = OneBuf(&iov, const_cast<void*>(buf), n, nullptr, 0);
  return SlowSend(
      fd, eng::kFamilyWrite, FAULT_OP_WRITE, &m, 0,
      [&]() { return real.write(fd, buf, n); },
      [&]() { return Raw(SYS_write, fd, reinterpret_cast<long>(buf), n); });
}

FAULT_EXPORT ssize_t write(int fd, const void* buf, size_t n) {
  EnsureReal();
  if (!FdMaybe(fd, eng::kFamilyWrite, kVerdictSend))
    return real.write(fd, buf, n);
  return WriteSlowPath(fd, buf, n);
}

// The part of writev that runs only when a rule may apply.
__attribute__((noinline)) static ssize_t WritevSlowPath(int fd,
                                                        const iovec* iov,
                                                        int cnt) {
  msghdr m;
  memset(&m, 0, sizeof(m));
  m.msg_iov = const_cast<iovec*>(iov);
  m.msg_iovlen = static_cast<size_t>(cnt);
  return SlowSend(
      fd, eng::kFamilyWrite, FAULT_OP_WRITE, &m, 0,
      [&]() { return real.writev(fd, iov, cnt); },
      [&]() { return Raw(SYS_writev, fd, reinterpret_cast<long>(iov), cnt); });
}

FAULT_EXPORT ssize_t writev(int fd, const iovec* iov, int cnt) {
  EnsureReal();
  if (!FdMaybe(fd, eng::kFamilyWrite, kVerdictSend) || cnt < 0)
    return real.writev(fd, iov, cnt);
  return WritevSlowPath(fd, iov, cnt);
}

// The part of pwrite that runs only when a rule may apply.
__attribute__((noinline)) static ssize_t PwriteSlowPath(int fd, const void* buf,
                                                        size_t n, off_t off) {
  return SlowPlain(
      fd, eng::kFamilyWrite, FAULT_OP_WRITE,
      [&]() { return real.pwrite(fd, buf, n, off); },
      [&]() {
        return Raw(SYS_pwrite64, fd, reinterpret_cast<long>(buf), n, off);
      },
      kVerdictSend);
}

FAULT_EXPORT ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  EnsureReal();
  if (!FdMaybeSys(fd, eng::kFamilyWrite, kVerdictSend))
    return real.pwrite(fd, buf, n, off);
  return PwriteSlowPath(fd, buf, n, off);
}

// The part of pwrite64 that runs only when a rule may apply.
__attribute__((noinline)) static ssize_t Pwrite64SlowPath(int fd,
                                                          const void* buf,
                                                          size_t n,
                                                          off64_t off) {
  return SlowPlain(
      fd, eng::kFamilyWrite, FAULT_OP_WRITE,
      [&]() { return real.pwrite64(fd, buf, n, off); },
      [&]() {
        return Raw(SYS_pwrite64, fd, reinterpret_cast<long>(buf), n, off);
      },
      kVerdictSend);
}

FAULT_EXPORT ssize_t pwrite64(int fd, const void* buf, size_t n, off64_t off) {
  EnsureReal();
  if (!FdMaybeSys(fd, eng::kFamilyWrite, kVerdictSend))
    return real.pwrite64(fd, buf, n, off);
  return Pwrite64SlowPath(fd, buf, n, off);
}

// The part of recv that runs only when a rule may apply.
__attribute__((noinline)) static ssize_t RecvSlowPath(int fd, void* buf,
                                                      size_t n, int flags) {
  iovec iov;
  msghdr m = OneBuf(&iov, buf, n, nullptr, 0);
  return SlowRecv(
      fd, eng::kFamilyRecv, FAULT_OP_RECV, &m, flags,
      [&]() { return real.recv(fd, buf, n, flags); },
      [&]() {
        return Raw(SYS_recvfrom, fd, reinterpret_cast<long>(buf), n, flags, 0,
                   0);
      });
}

FAULT_EXPORT ssize_t recv(int fd, void* buf, size_t n, int flags) {
  EnsureReal();
  if (!FdMaybe(fd, eng::kFamilyRecv, kVerdictRecv))
    return real.recv(fd, buf, n, flags);
  return RecvSlowPath(fd, buf, n, flags);
}

// The part of recvfrom that runs only when a rule may apply.
__attribute__((noinline)) static ssize_t RecvfromSlowPath(int fd, void* buf,
                                                          size_t n, int flags,
                                                          sockaddr* from,
                                                          socklen_t* fromlen) {
  iovec iov;
  msghdr m = OneBuf(&iov, buf, n, nullptr, 0);
  if (from != nullptr && fromlen != nullptr) {
    m.msg_name = from;
    m.msg_namelen = *fromlen;
  }
  ssize_t r = SlowRecv(
      fd, eng::kFamilyRecv, FAULT_OP_RECV, &m, flags,
      [&]() { return real.recvfrom(fd, buf, n, flags, from, fromlen); },
      [&]() {
        return Raw(SYS_recvfrom, fd, reinterpret_cast<long>(buf), n, flags,
                   reinterpret_cast<long>(from),
                   reinterpret_cast<long>(fromlen));
      });
  if (r >= 0 && from != nullptr && fromlen != nullptr && m.msg_name == from)
    *fromlen = m.msg_namelen;
  return r;
}

FAULT_EXPORT ssize_t recvfrom(int fd, void* buf, size_t n, int flags,
                              sockaddr* from, socklen_t* fromlen) {
  EnsureReal();
  if (!FdMaybe(fd, eng::kFamilyRecv, kVerdictRecv))
    return real.recvfrom(fd, buf, n, flags, from, fromlen);
  return RecvfromSlowPath(fd, buf, n, flags, from, fromlen);
}

// The part of recvmsg that runs only when a rule may apply.
__attribute__((noinline)) static ssize_t RecvmsgSlowPath(int fd, msghdr* msg,
                                                         int flags) {
  return SlowRecv(
      fd, eng::kFamilyRecv, FAULT_OP_RECV, msg, flags,
      [&]() { return real.recvmsg(fd, msg, flags); },
      [&]() {
        return Raw(SYS_recvmsg, fd, reinterpret_cast<long>(msg), flags);
      });
}

FAULT_EXPORT ssize_t recvmsg(int fd, msghdr* msg, int flags) {
  EnsureReal();
  if (!FdMaybe(fd, eng::kFamilyRecv, kVerdictRecv))
    return real.recvmsg(fd, msg, flags);
  return RecvmsgSlowPath(fd, msg, flags);
}

// The part of read that runs only when a rule may apply.
__attribute__((noinline)) static ssize_t ReadSlowPath(int fd, void* buf,
                                                      size_t n) {
  iovec iov;
  msghdr m = OneBuf(&iov, buf, n, nullptr, 0);
  return SlowRecv(
      fd, eng::kFamilyRead, FAULT_OP_READ, &m, 0,
      [&]() { return real.read(fd, buf, n); },
      [&]() { return Raw(SYS_read, fd, reinterpret_cast<long>(buf), n); });
}

FAULT_EXPORT ssize_t read(int fd, void* buf, size_t n) {
  EnsureReal();
  if (!FdMaybe(fd, eng::kFamilyRead, kVerdictRecv))
    return real.read(fd, buf, n);
  return ReadSlowPath(fd, buf, n);
}

// The part of readv that runs only when a rule may apply.
__attribute__((noinline)) static ssize_t ReadvSlowPath(int fd, const iovec* iov,
                                                       int cnt) {
  msghdr m;
  memset(&m, 0, sizeof(m));
  m.msg_iov = const_cast<iovec*>(iov);
  m.msg_iovlen = static_cast<size_t>(cnt);
  return SlowRecv(
      fd, eng::kFamilyRead, FAULT_OP_READ, &m, 0,
      [&]() { return real.readv(fd, iov, cnt); },
      [&]() { return Raw(SYS_readv, fd, reinterpret_cast<long>(iov), cnt); });
}

FAULT_EXPORT ssize_t readv(int fd, const iovec* iov, int cnt) {
  EnsureReal();
  if (!FdMaybe(fd, eng::kFamilyRead, kVerdictRecv) || cnt < 0)
    return real.readv(fd, iov, cnt);
  return ReadvSlowPath(fd, iov, cnt);
}

// The part of pread that runs only when a rule may apply.
__attribute__((noinline)) static ssize_t PreadSlowPath(int fd, void* buf,
                                                       size_t n, off_t off) {
  return SlowPlain(
      fd, eng::kFamilyRead, FAULT_OP_READ,
      [&]() { return real.pread(fd, buf, n, off); },
      [&]() {
        return Raw(SYS_pread64, fd, reinterpret_cast<long>(buf), n, off);
      },
      kVerdictRecv);
}

FAULT_EXPORT ssize_t pread(int fd, void* buf, size_t n, off_t off) {
  EnsureReal();
  if (!FdMaybeSys(fd, eng::kFamilyRead, kVerdictRecv))
    return real.pread(fd, buf, n, off);
  return PreadSlowPath(fd, buf, n, off);
}

// The part of pread64 that runs only when a rule may apply.
__attribute__((noinline)) static ssize_t Pread64SlowPath(int fd, void* buf,
                                                         size_t n,
                                                         off64_t off) {
  return SlowPlain(
      fd, eng::kFamilyRead, FAULT_OP_READ,
      [&]() { return real.pread64(fd, buf, n, off); },
      [&]() {
        return Raw(SYS_pread64, fd, reinterpret_cast<long>(buf), n, off);
      },
      kVerdictRecv);
}

FAULT_EXPORT ssize_t pread64(int fd, void* buf, size_t n, off64_t off) {
  EnsureReal();
  if (!FdMaybeSys(fd, eng::kFamilyRead, kVerdictRecv))
    return real.pread64(fd, buf, n, off);
  return Pread64SlowPath(fd, buf, n, off);
}

// The part of fsync that runs only when a rule may apply.
__attribute__((noinline)) static int FsyncSlowPath(int fd) {
  return static_cast<int>(SlowPlain(
      fd, eng::kFamilyFsync, FAULT_OP_FSYNC, [&]() { return real.fsync(fd); },
      [&]() { return Raw(SYS_fsync, fd); }));
}

FAULT_EXPORT int fsync(int fd) {
  EnsureReal();
  if (!FdMaybeSys(fd, eng::kFamilyFsync)) return real.fsync(fd);
  return FsyncSlowPath(fd);
}

// The part of fdatasync that runs only when a rule may apply.
__attribute__((noinline)) static int FdatasyncSlowPath(int fd) {
  return static_cast<int>(SlowPlain(
      fd, eng::kFamilyFdatasync, FAULT_OP_FDATASYNC,
      [&]() { return real.fdatasync(fd); },
      [&]() { return Raw(SYS_fdatasync, fd); }));
}

FAULT_EXPORT int fdatasync(int fd) {
  EnsureReal();
  if (!FdMaybeSys(fd, eng::kFamilyFdatasync)) return real.fdatasync(fd);
  return FdatasyncSlowPath(fd);
}

FAULT_EXPORT int close(int fd) {
  EnsureReal();
  if (FdMaybeSys(fd, eng::kFamilyClose)) {
    long r = SlowPlain(
        fd, eng::kFamilyClose, FAULT_OP_CLOSE, [&]() { return 1L; },
        [&]() { return 2L; });
    if (r < 0) return -1;  // denied: the fd stays open, as a failed close may
    ResetFd(fd);
    if (r == 2) return static_cast<int>(Raw(SYS_close, fd));
    return real.close(fd);
  }
  ResetFd(fd);
  return real.close(fd);
}

FAULT_EXPORT int close_range(unsigned first, unsigned last, int flags) {
  EnsureReal();
  static auto fn = reinterpret_cast<int (*)(unsigned, unsigned, int)>(
      dlsym(RTLD_NEXT, "close_range"));
  int r = fn ? fn(first, last, flags)
             : static_cast<int>(syscall(SYS_close_range, first, last, flags));
  if (r == 0 && !(flags & 4 /* CLOSE_RANGE_CLOEXEC */)) {
    for (unsigned fd = first; fd <= last && fd < static_cast<unsigned>(kMaxFds);
         ++fd) {
      if (!FdChunkMapped(fd)) {
        fd |= kFdChunk - 1;  // nothing known in this chunk
        continue;
      }
      if (g_kind[fd] != kUnknown || g_fds[fd].valid)
        ResetFd(static_cast<int>(fd));
    }
  }
  return r;
}

FAULT_EXPORT void closefrom(int lowfd) {
  EnsureReal();
  static auto fn =
      reinterpret_cast<void (*)(int)>(dlsym(RTLD_NEXT, "closefrom"));
  if (fn) fn(lowfd);
  for (int fd = lowfd < 0 ? 0 : lowfd; fd < kMaxFds; ++fd) {
    if (!FdChunkMapped(fd)) {
      fd |= kFdChunk - 1;  // nothing known in this chunk
      continue;
    }
    if (g_kind[fd] != kUnknown || g_fds[fd].valid) ResetFd(fd);
  }
}

// stdio opens and closes its descriptors inside libc, where the shim does
// not see them: keep the fd table in step.
FAULT_EXPORT FILE* fopen(const char* path, const char* mode) {
  EnsureReal();
  static auto fn = reinterpret_cast<FILE* (*)(const char*, const char*)>(
      dlsym(RTLD_NEXT, "fopen"));
  FILE* f = fn(path, mode);
  if (f != nullptr) ResetFd(fileno(f));
  return f;
}

FAULT_EXPORT FILE* fopen64(const char* path, const char* mode) {
  EnsureReal();
  static auto fn = reinterpret_cast<FILE* (*)(const char*, const char*)>(
      dlsym(RTLD_NEXT, "fopen64"));
  FILE* f = fn(path, mode);
  if (f != nullptr) ResetFd(fileno(f));
  return f;
}

FAULT_EXPORT int fclose(FILE* f) {
  EnsureReal();
  static auto fn = reinterpret_cast<int (*)(FILE*)>(dlsym(RTLD_NEXT, "fclose"));
  if (f != nullptr) ResetFd(fileno(f));
  return fn(f);
}

FAULT_EXPORT int dup2(int oldfd, int newfd) {
  EnsureReal();
  int r = real.dup2(oldfd, newfd);
  if (r >= 0 && r != oldfd) ResetFd(r);
  return r;
}

FAULT_EXPORT int dup3(int oldfd, int newfd, int flags) {
  EnsureReal();
  int r = real.dup3(oldfd, newfd, flags);
  if (r >= 0) ResetFd(r);
  return r;
}

