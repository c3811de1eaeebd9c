// Readiness: gates that hide a delayed direction from poll, select and
// epoll, and their wrappers.

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
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

// ---------------------------------------------------------------- readiness
// ---

// For fd: events to hide now, events to add now, and the next time this
// changes (0: never).
void GateView(int fd, int64_t now, uint32_t* hide, uint32_t* add,
              int64_t* next) {
  *hide = 0;
  *add = 0;
  if (fd < 0 || fd >= kMaxFds) return;
  FdState& st = g_fds[fd];
  if (!st.valid || !st.in_gate_list) return;
  // The normal-data variants are the same readiness (curl polls for
  // POLLWRNORM, for instance).
  static const uint32_t kDirEvents[2] = {POLLOUT | POLLWRNORM | POLLWRBAND,
                                         POLLIN | POLLRDNORM | POLLRDBAND};
  for (int dir = 0; dir < 2; ++dir) {
    int64_t g = st.gate_ns[dir];
    if (g == 0) continue;
    if (now < g) {
      *hide |= kDirEvents[dir];
      if (st.fake_connect)
        *hide |= POLLIN | POLLOUT | POLLERR | POLLHUP | POLLRDHUP;
      if (*next == 0 || g < *next) *next = g;
    } else if (st.synth[dir]) {
      uint32_t e = st.synth[dir];
      if (e & POLLOUT) e |= POLLWRNORM;
      if (e & POLLIN) e |= POLLRDNORM;
      *add |= e;
    } else {
      GateClear(fd, st, dir);  // a plain gate that passed
    }
  }
}

int64_t TimeoutToDeadline(int timeout_ms, int64_t now) {
  if (timeout_ms < 0) return kForever;
  return now + int64_t{timeout_ms} * 1000000;
}

int MsUntil(int64_t deadline, int64_t now) {
  if (deadline == kForever) return -1;
  int64_t d = deadline - now;
  if (d <= 0) return 0;
  int64_t ms = (d + 999999) / 1000000;
  return ms > INT32_MAX ? INT32_MAX : static_cast<int>(ms);
}

// poll with gates. `call(ms)` performs the real poll with a timeout.
template <typename Call>
int GatedPoll(pollfd* fds, nfds_t nfds, int64_t deadline, Call call) {
  constexpr int kSaved = 128;
  for (int round = 0; round < 100000; ++round) {
    int64_t now = NowNs();
    int64_t next = 0;
    struct {
      nfds_t i;
      int fd;
      short events;
      uint32_t add;
    } saved[kSaved];
    int ns = 0;
    int synth_ready = 0;
    for (nfds_t i = 0; i < nfds && ns < kSaved; ++i) {
      uint32_t hide, add;
      GateView(fds[i].fd, now, &hide, &add, &next);
      if (!hide && !add) continue;
      saved[ns] = {i, fds[i].fd, fds[i].events,
                   add & (fds[i].events | POLLERR | POLLHUP)};
      if (saved[ns].add) ++synth_ready;
      if (hide & POLLHUP)
        fds[i].fd = ~fds[i].fd;  // hide the fd entirely
      else
        fds[i].events = static_cast<short>(fds[i].events & ~hide);
      ++ns;
    }
    int64_t until = deadline;
    if (next != 0 && next < until) until = next;
    int ms = synth_ready ? 0 : MsUntil(until, now);
    int n = call(ms);
    int err = errno;
    for (int k = 0; k < ns; ++k) {
      pollfd& p = fds[saved[k].i];
      p.fd = saved[k].fd;
      p.events = saved[k].events;
      if (saved[k].add) {
        if (p.revents == 0 && n >= 0) ++n;
        p.revents = static_cast<short>(p.revents | saved[k].add);
      }
    }
    if (n != 0) {
      errno = err;
      return n;
    }
    now = NowNs();
    if (now >= deadline) return 0;
  }
  return 0;
}

template <typename Call>
int GatedSelect(int nfds, fd_set* r, fd_set* w, fd_set* e, int64_t deadline,
                Call call) {
  for (int round = 0; round < 100000; ++round) {
    int64_t now = NowNs();
    int64_t next = 0;
    fd_set rs, ws, es;
    if (r) rs = *r;
    if (w) ws = *w;
    if (e) es = *e;
    fd_set add_r, add_w;
    FD_ZERO(&add_r);
    FD_ZERO(&add_w);
    int synth = 0;
    int lim = nfds < kMaxFds ? nfds : kMaxFds;
    for (int fd = 0; fd < lim && fd < FD_SETSIZE; ++fd) {
      bool in_r = r && FD_ISSET(fd, r), in_w = w && FD_ISSET(fd, w);
      if (!in_r && !in_w) continue;
      uint32_t hide, add;
      GateView(fd, now, &hide, &add, &next);
      if (in_r && (hide & POLLIN)) FD_CLR(fd, &rs);
      if (in_w && (hide & POLLOUT)) FD_CLR(fd, &ws);
      if (in_r && (add & (POLLIN | POLLERR | POLLHUP))) {
        FD_SET(fd, &add_r);
        ++synth;
      }
      if (in_w && (add & (POLLOUT | POLLERR | POLLHUP))) {
        FD_SET(fd, &add_w);
        ++synth;
      }
    }
    int64_t until = deadline;
    if (next != 0 && next < until) until = next;
    int64_t wait_ns = synth ? 0 : (until == kForever ? -1 : until - now);
    if (wait_ns < -1) wait_ns = 0;
    int n = call(nfds, r ? &rs : nullptr, w ? &ws : nullptr, e ? &es : nullptr,
                 wait_ns);
    if (n < 0) return n;
    int total = 0;
    fd_set outr, outw, oute;
    FD_ZERO(&outr);
    FD_ZERO(&outw);
    FD_ZERO(&oute);
    for (int fd = 0; fd < nfds && fd < FD_SETSIZE; ++fd) {
      if (r && (FD_ISSET(fd, &rs) || FD_ISSET(fd, &add_r))) {
        FD_SET(fd, &outr);
        ++total;
      }
      if (w && (FD_ISSET(fd, &ws) || FD_ISSET(fd, &add_w))) {
        FD_SET(fd, &outw);
        ++total;
      }
      if (e && FD_ISSET(fd, &es)) {
        FD_SET(fd, &oute);
        ++total;
      }
    }
    if (total > 0 || NowNs() >= deadline) {
      if (r) *r = outr;
      if (w) *w = outw;
      if (e) *e = oute;
      return total;
    }
  }
  return 0;
}

template <typename Call>
int GatedEpoll(int epfd, epoll_event* events, int maxevents, int64_t deadline,
               Call call) {
  for (int round = 0; round < 100000; ++round) {
    int64_t now = NowNs();
    int64_t next = 0;
    // Gated fds registered with this epoll instance.
    int gated[kMaxGates];
    uint32_t hide[kMaxGates], add[kMaxGates];
    int ng = 0, synth = 0;
    for (int i = 0; i < kMaxGates; ++i) {
      int v = __atomic_load_n(&g_gate_list[i], __ATOMIC_ACQUIRE);
      if (v == 0) continue;
      int fd = v - 1;
      FdState& st = g_fds[fd];
      if (st.epfd != epfd) continue;
      GateView(fd, now, &hide[ng], &add[ng], &next);
      if (st.ep_removed && hide[ng] == 0) {
        epoll_event back;
        back.events = st.epevents;
        back.data.u64 = st.epdata;
        if (real.epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &back) == 0 ||
            errno == EEXIST)
          st.ep_removed = 0;
      }
      add[ng] &= st.epevents | EPOLLERR | EPOLLHUP;
      if (add[ng]) ++synth;
      gated[ng++] = fd;
    }
    if (ng == 0) return call(events, maxevents, MsUntil(deadline, now));
    int64_t until = deadline;
    if (next != 0 && next < until) until = next;
    int n = call(events, maxevents, synth ? 0 : MsUntil(until, now));
    if (n < 0) return n;
    bool reported[kMaxGates] = {};
    bool dropped[kMaxGates] = {};
    int out = 0;
    for (int i = 0; i < n; ++i) {
      epoll_event ev = events[i];
      bool keep = true;
      for (int k = 0; k < ng; ++k) {
        if (g_fds[gated[k]].epdata != ev.data.u64) continue;
        reported[k] = true;
        if (hide[k] & POLLHUP) keep = false;
        ev.events &= ~hide[k];
        ev.events |= add[k];
        if ((ev.events & ~(EPOLLET | EPOLLONESHOT)) == 0) keep = false;
        if (!keep && hide[k]) dropped[k] = true;
      }
      if (keep) events[out++] = ev;
    }
    for (int k = 0; k < ng; ++k) {
      FdState& st = g_fds[gated[k]];
      if (dropped[k] && !st.ep_removed) {
        // The kernel keeps reporting it (level-triggered): take it out of
        // the set until its gate passes, so that waiting does not spin.
        if (real.epoll_ctl(epfd, EPOLL_CTL_DEL, gated[k], nullptr) == 0)
          st.ep_removed = 1;
      }
    }
    for (int k = 0; k < ng && out < maxevents; ++k) {
      if (reported[k] || add[k] == 0) continue;
      events[out].events = add[k];
      events[out].data.u64 = g_fds[gated[k]].epdata;
      ++out;
    }
    if (out > 0) return out;
    if (NowNs() >= deadline) return 0;
  }
  return 0;
}

}  // namespace fault::shim

using namespace fault::shim;  // NOLINT: the wrappers are the C ABI
namespace eng = ::fault::engine;

// ---- readiness ----

FAULT_EXPORT int poll(pollfd* fds, nfds_t nfds, int timeout) {
  EnsureReal();
  if (!GatesPossible() || t_state.in_shim) return real.poll(fds, nfds, timeout);
  int64_t deadline = TimeoutToDeadline(timeout, NowNs());
  return GatedPoll(fds, nfds, deadline,
                   [&](int ms) { return real.poll(fds, nfds, ms); });
}

FAULT_EXPORT int __poll_chk(pollfd* fds, nfds_t nfds, int timeout, size_t) {
  return poll(fds, nfds, timeout);
}

FAULT_EXPORT int ppoll(pollfd* fds, nfds_t nfds, const timespec* ts,
                       const sigset_t* mask) {
  EnsureReal();
  if (!GatesPossible() || t_state.in_shim)
    return real.ppoll(fds, nfds, ts, mask);
  int64_t now = NowNs();
  int64_t deadline = ts == nullptr
                         ? INT64_MAX
                         : now + int64_t{ts->tv_sec} * 1000000000 + ts->tv_nsec;
  return GatedPoll(fds, nfds, deadline, [&](int ms) {
    if (ms < 0) return real.ppoll(fds, nfds, nullptr, mask);
    timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    return real.ppoll(fds, nfds, &t, mask);
  });
}

FAULT_EXPORT int select(int nfds, fd_set* r, fd_set* w, fd_set* e,
                        timeval* tv) {
  EnsureReal();
  if (!GatesPossible() || t_state.in_shim)
    return real.select(nfds, r, w, e, tv);
  int64_t now = NowNs();
  int64_t deadline = tv == nullptr ? INT64_MAX
                                   : now + int64_t{tv->tv_sec} * 1000000000 +
                                         tv->tv_usec * 1000;
  return GatedSelect(
      nfds, r, w, e, deadline,
      [&](int n, fd_set* rs, fd_set* ws, fd_set* es, int64_t wait_ns) {
        if (wait_ns < 0) return real.select(n, rs, ws, es, nullptr);
        timeval t = {
            static_cast<time_t>(wait_ns / 1000000000),
            static_cast<suseconds_t>((wait_ns % 1000000000 + 999) / 1000)};
        return real.select(n, rs, ws, es, &t);
      });
}

FAULT_EXPORT int pselect(int nfds, fd_set* r, fd_set* w, fd_set* e,
                         const timespec* ts, const sigset_t* mask) {
  EnsureReal();
  if (!GatesPossible() || t_state.in_shim)
    return real.pselect(nfds, r, w, e, ts, mask);
  int64_t now = NowNs();
  int64_t deadline = ts == nullptr
                         ? INT64_MAX
                         : now + int64_t{ts->tv_sec} * 1000000000 + ts->tv_nsec;
  return GatedSelect(
      nfds, r, w, e, deadline,
      [&](int n, fd_set* rs, fd_set* ws, fd_set* es, int64_t wait_ns) {
        if (wait_ns < 0) return real.pselect(n, rs, ws, es, nullptr, mask);
        timespec t = {static_cast<time_t>(wait_ns / 1000000000),
                      static_cast<long>(wait_ns % 1000000000)};
        return real.pselect(n, rs, ws, es, &t, mask);
      });
}

FAULT_EXPORT int epoll_ctl(int epfd, int op, int fd, epoll_event* ev) {
  EnsureReal();
  if (fd >= 0 && fd < kMaxFds && g_fds[fd].valid && g_fds[fd].ep_removed &&
      g_fds[fd].epfd == epfd && op != EPOLL_CTL_ADD) {
    // The shim holds it out of the set while hidden: apply the change to
    // what it will put back.
    FdState& st = g_fds[fd];
    if (op == EPOLL_CTL_DEL) {
      st.ep_removed = 0;
      st.epfd = -1;
    } else if (ev != nullptr) {
      st.epevents = ev->events;
      st.epdata = ev->data.u64;
    }
    return 0;
  }
  int r = real.epoll_ctl(epfd, op, fd, ev);
  if (r == 0 && fd >= 0 && fd < kMaxFds) {
    FdState& st = State(fd);
    if (op == EPOLL_CTL_DEL) {
      if (st.epfd == epfd) st.epfd = -1;
    } else if (ev != nullptr) {
      st.epfd = epfd;
      st.epdata = ev->data.u64;
      st.epevents = ev->events;
    }
  }
  return r;
}

FAULT_EXPORT int epoll_wait(int epfd, epoll_event* events, int maxevents,
                            int timeout) {
  EnsureReal();
  if (!GatesPossible() || t_state.in_shim)
    return real.epoll_wait(epfd, events, maxevents, timeout);
  int64_t deadline = TimeoutToDeadline(timeout, NowNs());
  return GatedEpoll(epfd, events, maxevents, deadline,
                    [&](epoll_event* ev, int max, int ms) {
                      return real.epoll_wait(epfd, ev, max, ms);
                    });
}

FAULT_EXPORT int epoll_pwait(int epfd, epoll_event* events, int maxevents,
                             int timeout, const sigset_t* mask) {
  EnsureReal();
  if (!GatesPossible() || t_state.in_shim)
    return real.epoll_pwait(epfd, events, maxevents, timeout, mask);
  int64_t deadline = TimeoutToDeadline(timeout, NowNs());
  return GatedEpoll(epfd, events, maxevents, deadline,
                    [&](epoll_event* ev, int max, int ms) {
                      return real.epoll_pwait(epfd, ev, max, ms, mask);
                    });
}

