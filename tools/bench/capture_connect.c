/* The workload of tools/bench/stealth.py: N TCP connects or N UDP sends,
 * timed, so that the cost the capture programs add to each can be read.
 *
 *   capture_connect tcp4|tcp6|udp4 N PORT
 *
 * tcp4/tcp6: N times socket + connect to 127.0.0.1:PORT ([::1]:PORT) +
 * close; a closed PORT answers with a reset at once (ECONNREFUSED), so the
 * loop measures the connect path, not a handshake with a server.
 * udp4: N sendto of 8 bytes on one unconnected socket to 127.0.0.1:PORT.
 * Prints the nanoseconds per operation. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s tcp4|tcp6|udp4 N PORT\n", argv[0]);
    return 2;
  }
  const char* kind = argv[1];
  const long n = atol(argv[2]);
  const int port = atoi(argv[3]);
  struct sockaddr_in in4 = {.sin_family = AF_INET, .sin_port = htons(port)};
  in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
  in6.sin6_addr = in6addr_loopback;
  double t0, t1;
  if (strcmp(kind, "udp4") == 0) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    t0 = now_ns();
    for (long i = 0; i < n; ++i)
      sendto(fd, "datagram", 8, 0, (struct sockaddr*)&in4, sizeof(in4));
    t1 = now_ns();
    close(fd);
  } else {
    const int v6 = strcmp(kind, "tcp6") == 0;
    t0 = now_ns();
    for (long i = 0; i < n; ++i) {
      int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
      /* Reset on close: a captured connect succeeds (to fault's engine),
       * and tens of thousands of them must not sit in TIME_WAIT. */
      struct linger lg = {1, 0};
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
      if (v6)
        connect(fd, (struct sockaddr*)&in6, sizeof(in6));
      else
        connect(fd, (struct sockaddr*)&in4, sizeof(in4));
      close(fd);
    }
    t1 = now_ns();
  }
  printf("%.1f\n", (t1 - t0) / n);
  return 0;
}
