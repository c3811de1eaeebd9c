// Helpers of the stream engine's tests: a policy table in shared memory,
// loopback sockets, bounded reads.
#ifndef FAULT_SUPERVISOR_STREAM_STREAM_TEST_UTIL_H_
#define FAULT_SUPERVISOR_STREAM_STREAM_TEST_UTIL_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "shim/engine/engine.h"
#include "supervisor/stream/stream_engine.h"

namespace fault::stream {


inline StreamEngine::Options Opts(fault_table* t) {
  StreamEngine::Options o;
  o.table = t;
  return o;
}

inline int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// A table in anonymous shared memory, as the supervisor's memfd would be.
class Table {
 public:
  Table() {
    void* p = mmap(nullptr, sizeof(fault_table), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    t_ = static_cast<fault_table*>(p);
    ::fault::engine::InitTable(t_, NowNs());
    cfg_ = std::make_unique<fault_config>();
    memset(cfg_.get(), 0, sizeof(fault_config));
  }
  ~Table() { munmap(t_, sizeof(fault_table)); }
  fault_table* get() { return t_; }
  // Adds an active rule and returns it for the caller to fill; Publish()
  // afterwards.
  fault_rule& AddRule(const char* name) {
    fault_rule& r = cfg_->rules[cfg_->n_rules++];
    ::fault::engine::CopyString(r.name, name, sizeof(r.name));
    r.flags = FAULT_RULE_ACTIVE | FAULT_RULE_HAS_SEED;
    r.seed = 7;
    return r;
  }
  void Publish() { ::fault::engine::Publish(t_, cfg_.get()); }

 private:
  fault_table* t_;
  std::unique_ptr<fault_config> cfg_;
};

inline void SetFixedLatency(fault_link* l, int64_t ns) {
  l->distribution = FAULT_DIST_FIXED;
  l->fixed_ns = ns;
}

inline sockaddr_in Loopback(uint16_t port) {
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  return a;
}

inline uint16_t LocalPort(int fd) {
  sockaddr_in a = {};
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

// A listening socket on 127.0.0.1:0.
inline int Listen(uint16_t* port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = Loopback(0);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  EXPECT_EQ(listen(fd, 16), 0);
  *port = LocalPort(fd);
  return fd;
}

inline bool ReadExactly(int fd, char* buf, size_t n, int timeout_ms = 5000) {
  size_t got = 0;
  int64_t until = NowNs() + int64_t{timeout_ms} * 1'000'000;
  while (got < n) {
    pollfd p = {fd, POLLIN, 0};
    int left = static_cast<int>((until - NowNs()) / 1'000'000);
    if (left <= 0 || poll(&p, 1, left) <= 0) return false;
    ssize_t r = read(fd, buf + got, n - got);
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

}  // namespace fault::stream

#endif  // FAULT_SUPERVISOR_STREAM_STREAM_TEST_UTIL_H_
