// DNS: getaddrinfo and gethostbyname faults, and the resolved-address
// cache that hostname targets match against.

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

// --------------------------------------------------------------------- dns ---

// Decides a lookup of `name`. Returns 0 or an EAI_* code to fail with.
int DnsFault(const Slow& s, const char* name) {
  const eng::Index& idx = s.idx();
  uint64_t cand = idx.dns & s.mask;
  if (!cand || name == nullptr) return 0;
  eng::Endpoint ep;
  ep.hostname = name;
  int rule = eng::PickRule(g_table, idx, cand, ep);
  if (rule < 0) return 0;
  fault_rule r;
  if (!eng::ReadRule(g_table, idx.seq, rule, &r)) return 0;
  double factor = eng::ScheduleFactor(r.schedule, NowNs() - g_start_ns);
  eng::DnsDecision d;
  eng::DecideDns(g_table, r, rule, factor, &d);
  if (d.delay_ns > 0)
    Emit(rule, -1, FAULT_OP_DNS, FAULT_EFFECT_DNS_DELAY, d.delay_ns, name);
  if (d.eai) Emit(rule, -1, FAULT_OP_DNS, d.effect, d.eai, name);
  SleepNs(d.delay_ns);
  return d.eai;
}

void RememberAnswers(const char* name, const addrinfo* res) {
  for (const addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family == AF_INET && ai->ai_addrlen >= sizeof(sockaddr_in)) {
      eng::HostCacheAdd(
          &g_hosts, name, AF_INET,
          &reinterpret_cast<const sockaddr_in*>(ai->ai_addr)->sin_addr);
    } else if (ai->ai_family == AF_INET6 &&
               ai->ai_addrlen >= sizeof(sockaddr_in6)) {
      eng::HostCacheAdd(
          &g_hosts, name, AF_INET6,
          &reinterpret_cast<const sockaddr_in6*>(ai->ai_addr)->sin6_addr);
    }
  }
}

void RememberHostent(const char* name, const hostent* h) {
  if (h == nullptr || h->h_addr_list == nullptr) return;
  for (char** a = h->h_addr_list; *a != nullptr; ++a)
    eng::HostCacheAdd(&g_hosts, name, h->h_addrtype, *a);
}

}  // namespace fault::shim

using namespace fault::shim;  // NOLINT: the wrappers are the C ABI
namespace eng = ::fault::engine;

// ---- dns ----

FAULT_EXPORT int getaddrinfo(const char* node, const char* service,
                             const addrinfo* hints, addrinfo** res) {
  EnsureReal();
  if (node == nullptr || !MaybeFault(kHotDns, kHotDnsScoped))
    return real.getaddrinfo(node, service, hints, res);
  {
    Slow s;
    if (s.ok) {
      int eai = DnsFault(s, node);
      if (eai != 0) return eai;
    }
  }
  int rc = real.getaddrinfo(node, service, hints, res);
  if (rc == 0 && res != nullptr && g_table != nullptr)
    RememberAnswers(node, *res);
  return rc;
}

FAULT_EXPORT hostent* gethostbyname(const char* name) {
  EnsureReal();
  if (name == nullptr || !MaybeFault(kHotDns, kHotDnsScoped))
    return real.gethostbyname(name);
  {
    Slow s;
    if (s.ok) {
      int eai = DnsFault(s, name);
      if (eai != 0) {
        h_errno = eai == EAI_AGAIN ? TRY_AGAIN : HOST_NOT_FOUND;
        return nullptr;
      }
    }
  }
  hostent* h = real.gethostbyname(name);
  if (h != nullptr) RememberHostent(name, h);
  return h;
}

FAULT_EXPORT int gethostbyname_r(const char* name, hostent* ret, char* buf,
                                 size_t buflen, hostent** result,
                                 int* h_errnop) {
  EnsureReal();
  if (name == nullptr || !MaybeFault(kHotDns, kHotDnsScoped))
    return real.gethostbyname_r(name, ret, buf, buflen, result, h_errnop);
  {
    Slow s;
    if (s.ok) {
      int eai = DnsFault(s, name);
      if (eai != 0) {
        if (result) *result = nullptr;
        if (h_errnop) *h_errnop = eai == EAI_AGAIN ? TRY_AGAIN : HOST_NOT_FOUND;
        return eai == EAI_AGAIN ? EAGAIN : 0;
      }
    }
  }
  int rc = real.gethostbyname_r(name, ret, buf, buflen, result, h_errnop);
  if (rc == 0 && result != nullptr && *result != nullptr)
    RememberHostent(name, *result);
  return rc;
}

