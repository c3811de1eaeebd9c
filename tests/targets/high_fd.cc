// A TCP client whose socket lives on a high fd number: raises the fd limit,
// moves a fresh socket to FD with dup2, then connects to 127.0.0.1:PORT,
// sends "ping\n" and reads the answer ROUNDS times. Prints "fd FD: N round
// trips"; the test measures the time from outside. Exit status 1 on any
// error, with the reason on stderr.
//
// Usage: high_fd PORT [FD [ROUNDS]]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

int Fail(const char* what) {
  std::fprintf(stderr, "high_fd: %s: %s\n", what, std::strerror(errno));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: high_fd PORT [FD [ROUNDS]]\n");
    return 2;
  }
  const int port = std::atoi(argv[1]);
  const int fd = argc > 2 ? std::atoi(argv[2]) : 5000;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 1;
  rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return Fail("getrlimit");
  if (lim.rlim_cur <= static_cast<rlim_t>(fd)) {
    lim.rlim_cur = static_cast<rlim_t>(fd) + 1;
    if (lim.rlim_max < lim.rlim_cur) lim.rlim_max = lim.rlim_cur;
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0)
      return Fail("setrlimit RLIMIT_NOFILE");
  }
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) return Fail("socket");
  if (dup2(s, fd) != fd) return Fail("dup2");
  close(s);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
    return Fail("connect");
  for (int i = 0; i < rounds; ++i) {
    if (send(fd, "ping\n", 5, MSG_NOSIGNAL) != 5) return Fail("send");
    char buf[5];
    size_t got = 0;
    while (got < sizeof(buf)) {
      ssize_t r = recv(fd, buf + got, sizeof(buf) - got, 0);
      if (r <= 0) return Fail(r == 0 ? "recv (closed)" : "recv");
      got += static_cast<size_t>(r);
    }
  }
  std::printf("fd %d: %d round trips\n", fd, rounds);
  return 0;
}
