// A loopback request/response workload for benchmarks: a server thread
// echoes ROUNDS messages of SIZE bytes that the main thread sends over one
// TCP connection on 127.0.0.1, waiting for every answer. Prints
// "ROUNDS round trips in N us, cpu M us": the wall time of the loop and the
// CPU time (user+sys, both threads) the process spent in it. Exit status 1
// on any error.
//
// Usage: pingpong [ROUNDS [SIZE]]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

bool ReadFull(int fd, char* p, size_t n) {
  while (n > 0) {
    ssize_t r = recv(fd, p, n, 0);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool WriteFull(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

int64_t NowUs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000 + ts.tv_nsec / 1000;
}

int64_t CpuUs() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return (int64_t{ru.ru_utime.tv_sec} + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
         ru.ru_stime.tv_usec;
}

}  // namespace

int main(int argc, char** argv) {
  long rounds = argc > 1 ? std::atol(argv[1]) : 20000;
  size_t size = argc > 2 ? static_cast<size_t>(std::atol(argv[2])) : 64;
  if (rounds <= 0 || size == 0 || size > (1 << 20)) {
    std::fprintf(stderr, "usage: pingpong [ROUNDS [SIZE]]\n");
    return 2;
  }
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listener, 1) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::perror("pingpong: listen");
    return 1;
  }
  std::thread server([&] {
    int c = accept(listener, nullptr, nullptr);
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::vector<char> buf(size);
    while (ReadFull(c, buf.data(), size) && WriteFull(c, buf.data(), size)) {
    }
    close(c);
  });
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    std::perror("pingpong: connect");
    return 1;
  }
  std::vector<char> out(size, 'x'), in(size);
  int64_t start = NowUs();
  int64_t cpu_start = CpuUs();
  for (long i = 0; i < rounds; ++i) {
    if (!WriteFull(fd, out.data(), size) || !ReadFull(fd, in.data(), size)) {
      std::fprintf(stderr, "pingpong: connection failed at round %ld\n", i);
      return 1;
    }
  }
  int64_t elapsed = NowUs() - start;
  int64_t cpu = CpuUs() - cpu_start;
  close(fd);
  server.join();
  close(listener);
  std::printf("%ld round trips in %lld us, cpu %lld us\n", rounds, static_cast<long long>(elapsed),
              static_cast<long long>(cpu));
  return 0;
}
