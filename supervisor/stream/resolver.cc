#include "supervisor/stream/resolver.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>
#include <utility>

namespace fault::stream {

Resolver::Shared::~Shared() {
  if (event_fd >= 0) close(event_fd);
}

Resolver::Resolver(int threads) : shared_(std::make_shared<Shared>()) {
  shared_->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  // The workers take no signals (the caller waits for them with them
  // blocked).
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  for (int i = 0; i < threads; ++i) std::thread(Work, shared_).detach();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

Resolver::~Resolver() {
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->stop = true;
  }
  shared_->cv.notify_all();
}

bool Resolver::Literal(const std::string& host, uint16_t port, sockaddr_storage* out) {
  memset(out, 0, sizeof(*out));
  auto* in4 = reinterpret_cast<sockaddr_in*>(out);
  if (inet_pton(AF_INET, host.c_str(), &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons(port);
    return true;
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(out);
  if (inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    return true;
  }
  return false;
}

void Resolver::Lookup(uint64_t conn, uint64_t serial, std::string host, uint16_t port) {
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    shared_->queries.push_back(Query{conn, serial, std::move(host), port});
  }
  shared_->cv.notify_one();
}

std::vector<Resolver::Result> Resolver::Take() {
  uint64_t v;
  (void)!read(shared_->event_fd, &v, sizeof(v));
  std::lock_guard<std::mutex> lock(shared_->mu);
  return std::exchange(shared_->results, {});
}

void Resolver::Work(std::shared_ptr<Shared> sh) {
  for (;;) {
    Query q;
    {
      std::unique_lock<std::mutex> lock(sh->mu);
      sh->cv.wait(lock, [&] { return sh->stop || !sh->queries.empty(); });
      if (sh->stop) return;
      q = std::move(sh->queries.front());
      sh->queries.pop_front();
    }
    Result r;
    r.conn = q.conn;
    r.serial = q.serial;
    addrinfo hints = {};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    addrinfo* res = nullptr;
    const std::string port = std::to_string(q.port);
    r.err = getaddrinfo(q.host.c_str(), port.c_str(), &hints, &res);
    if (r.err == 0) {
      for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
        sockaddr_storage ss = {};
        memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        r.addrs.push_back(ss);
      }
      freeaddrinfo(res);
      if (r.addrs.empty()) r.err = EAI_NONAME;
    }
    {
      std::lock_guard<std::mutex> lock(sh->mu);
      if (sh->stop) return;
      sh->results.push_back(std::move(r));
    }
    uint64_t one = 1;
    (void)!write(sh->event_fd, &one, sizeof(one));
  }
}

}  // namespace fault::stream
