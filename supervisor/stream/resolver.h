// Name lookups for the stream engine's event loop: getaddrinfo() blocks, so
// it runs on worker threads; the loop learns of answers through an eventfd.
//
//   Resolver r(2);
//   r.Lookup(conn_id, serial, "example.com", 80);
//   ... epoll says r.fd() is readable ...
//   for (Resolver::Result& res : r.Take()) ...
//
// Thread-safety: Lookup() and Take() from the loop's thread; the workers
// are internal.
#ifndef FAULT_SUPERVISOR_STREAM_RESOLVER_H_
#define FAULT_SUPERVISOR_STREAM_RESOLVER_H_

#include <sys/socket.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace fault::stream {

class Resolver {
 public:
  struct Result {
    uint64_t conn = 0;
    uint64_t serial = 0;
    int err = 0;  // 0, or a getaddrinfo EAI_* code
    std::vector<sockaddr_storage> addrs;  // TCP addresses, in the resolver's order
  };

  explicit Resolver(int threads);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Readable (an eventfd) while results wait.
  int fd() const { return event_fd_; }
  void Lookup(uint64_t conn, uint64_t serial, std::string host, uint16_t port);
  std::vector<Result> Take();

  // An IP literal ("127.0.0.1", "::1") as a sockaddr, without a lookup.
  static bool Literal(const std::string& host, uint16_t port, sockaddr_storage* out);

 private:
  struct Query {
    uint64_t conn, serial;
    std::string host;
    uint16_t port;
  };
  void Work();

  int event_fd_ = -1;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Query> queries_;
  std::vector<Result> results_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace fault::stream

#endif  // FAULT_SUPERVISOR_STREAM_RESOLVER_H_
