// An HTTP/1.0 client whose socket I/O goes through io_uring, for the
// integration tests: `uring_client PORT connect|uring-connect`.
//   connect        connect(2), then IORING_OP_SEND / IORING_OP_RECV
//   uring-connect  IORING_OP_CONNECT as well
// Prints "status=<first line> bytes=<n> ms=<elapsed>" and exits 0, or
// "error=<why>" and exits 1. Bounded: every wait has a 10 s timeout.
#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <string>

namespace {

double NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

// Submits the prepared SQE and waits for its completion; returns cqe->res.
int Complete(io_uring* ring) {
  if (io_uring_submit(ring) < 0) return -EIO;
  __kernel_timespec ts = {10, 0};
  io_uring_cqe* cqe = nullptr;
  int rc = io_uring_wait_cqe_timeout(ring, &cqe, &ts);
  if (rc < 0) return rc;
  int res = cqe->res;
  io_uring_cqe_seen(ring, cqe);
  return res;
}

int Fail(const char* what, int err) {
  printf("error=%s: %s\n", what, strerror(err < 0 ? -err : err));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: uring_client PORT connect|uring-connect\n");
    return 2;
  }
  const bool uring_connect = strcmp(argv[2], "uring-connect") == 0;
  io_uring ring;
  int rc = io_uring_queue_init(8, &ring, 0);
  if (rc < 0) return Fail("io_uring_queue_init", rc);
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(atoi(argv[1])));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  double start = NowMs();
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return Fail("socket", errno);
  if (uring_connect) {
    io_uring_prep_connect(io_uring_get_sqe(&ring), fd,
                          reinterpret_cast<sockaddr*>(&a), sizeof(a));
    rc = Complete(&ring);
    if (rc < 0) return Fail("IORING_OP_CONNECT", rc);
  } else if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    return Fail("connect", errno);
  }
  const char req[] = "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n";
  io_uring_prep_send(io_uring_get_sqe(&ring), fd, req, sizeof(req) - 1, 0);
  rc = Complete(&ring);
  if (rc < 0) return Fail("IORING_OP_SEND", rc);
  std::string got;
  char buf[16384];
  for (int i = 0; i < 100000; ++i) {
    io_uring_prep_recv(io_uring_get_sqe(&ring), fd, buf, sizeof(buf), 0);
    rc = Complete(&ring);
    if (rc < 0) return Fail("IORING_OP_RECV", rc);
    if (rc == 0) break;
    got.append(buf, static_cast<size_t>(rc));
  }
  double ms = NowMs() - start;
  std::string first = got.substr(0, got.find("\r\n"));
  printf("status=%s bytes=%zu ms=%.1f\n", first.c_str(), got.size(), ms);
  close(fd);
  io_uring_queue_exit(&ring);
  return 0;
}
