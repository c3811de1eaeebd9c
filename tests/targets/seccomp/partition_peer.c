/* Two roles for partition tests.
 *   partition_peer listen PORT MILLIS   listens on 127.0.0.1:PORT, accepts
 *                                       connections for MILLIS ms, exits 0
 *   partition_peer connect DELAY_MS PORT...
 *                                       waits DELAY_MS, then connects to each
 *                                       127.0.0.1:PORT and prints
 *                                       "connect PORT: ok|<strerror>"
 *   partition_peer udprecv PORT MILLIS  binds a UDP socket to 127.0.0.1:PORT
 *                                       and reads datagrams for MILLIS ms
 *   partition_peer udpsend DELAY_MS PORT...
 *                                       waits DELAY_MS, then sends one
 *                                       datagram to each 127.0.0.1:PORT and
 *                                       prints "sendto PORT: ok|<strerror>" */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in loopback(int port) {
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sa;
}

int main(int argc, char** argv) {
  if (argc >= 4 && strcmp(argv[1], "listen") == 0) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = loopback(atoi(argv[2]));
    if (bind(s, (struct sockaddr*)&sa, sizeof(sa)) != 0 || listen(s, 16) != 0) {
      fprintf(stderr, "partition_peer: listen: %s\n", strerror(errno));
      return 2;
    }
    int millis = atoi(argv[3]);
    for (int waited = 0; waited < millis; waited += 10) {
      struct pollfd p = {s, POLLIN, 0};
      if (poll(&p, 1, 10) == 1) {
        int c = accept(s, NULL, NULL);
        if (c >= 0) close(c);
      }
    }
    return 0;
  }
  if (argc >= 4 && strcmp(argv[1], "connect") == 0) {
    struct timespec d = {0, atoi(argv[2]) * 1000000L};
    nanosleep(&d, NULL);
    int failed = 0;
    for (int i = 3; i < argc; ++i) {
      int s = socket(AF_INET, SOCK_STREAM, 0);
      struct sockaddr_in sa = loopback(atoi(argv[i]));
      if (connect(s, (struct sockaddr*)&sa, sizeof(sa)) == 0) {
        printf("connect %s: ok\n", argv[i]);
      } else {
        printf("connect %s: %s\n", argv[i], strerror(errno));
        failed = 1;
      }
      close(s);
    }
    return failed;
  }
  if (argc >= 4 && strcmp(argv[1], "udprecv") == 0) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = loopback(atoi(argv[2]));
    if (bind(s, (struct sockaddr*)&sa, sizeof(sa)) != 0) {
      fprintf(stderr, "partition_peer: bind: %s\n", strerror(errno));
      return 2;
    }
    int millis = atoi(argv[3]);
    for (int waited = 0; waited < millis; waited += 10) {
      struct pollfd p = {s, POLLIN, 0};
      char buf[64];
      if (poll(&p, 1, 10) == 1) (void)!recv(s, buf, sizeof(buf), 0);
    }
    return 0;
  }
  if (argc >= 4 && strcmp(argv[1], "udpsend") == 0) {
    struct timespec d = {0, atoi(argv[2]) * 1000000L};
    nanosleep(&d, NULL);
    int failed = 0;
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    for (int i = 3; i < argc; ++i) {
      struct sockaddr_in sa = loopback(atoi(argv[i]));
      if (sendto(s, "ping", 4, 0, (struct sockaddr*)&sa, sizeof(sa)) == 4) {
        printf("sendto %s: ok\n", argv[i]);
      } else {
        printf("sendto %s: %s\n", argv[i], strerror(errno));
        failed = 1;
      }
    }
    return failed;
  }
  fprintf(stderr,
          "usage: partition_peer listen PORT MILLIS | connect DELAY_MS PORT... | "
          "udprecv PORT MILLIS | udpsend DELAY_MS PORT...\n");
  return 2;
}
