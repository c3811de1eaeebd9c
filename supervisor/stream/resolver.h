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
#include <memory>
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
  int fd() const { return shared_->event_fd; }
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
  // What the workers share with the loop. A worker inside getaddrinfo()
  // cannot be interrupted, so the workers are detached and the last one
  // out (or the Resolver) frees this: stopping never waits for a lookup.
  struct Shared {
    ~Shared();
    int event_fd = -1;
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Query> queries;
    std::vector<Result> results;
    bool stop = false;
  };
  static void Work(std::shared_ptr<Shared> shared);

  std::shared_ptr<Shared> shared_;
};

}  // namespace fault::stream

#endif  // FAULT_SUPERVISOR_STREAM_RESOLVER_H_
