/* Connects to 127.0.0.1:PORT for each PORT argument and reports the result
 * of each connect() on stdout: "connect 127.0.0.1:PORT: ok" or
 * "connect 127.0.0.1:PORT: <strerror>". Exits 0 if every connect succeeded,
 * 1 otherwise. Built statically: the preload shim cannot see it. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char** argv) {
  int failed = 0;
  for (int i = 1; i < argc; ++i) {
    int port = atoi(argv[i]);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) {
      perror("socket");
      return 2;
    }
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s, (struct sockaddr*)&sa, sizeof(sa)) == 0) {
      printf("connect 127.0.0.1:%d: ok\n", port);
    } else {
      printf("connect 127.0.0.1:%d: %s\n", port, strerror(errno));
      failed = 1;
    }
    fflush(stdout);
    close(s);
  }
  return failed;
}
