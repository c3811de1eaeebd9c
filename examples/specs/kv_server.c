/* A tiny line-protocol key-value server for the fault spec examples, built
 * statically (gcc -static) so that only the seccomp layer reaches it.
 *
 *   kv_server PORT LOG_PATH
 *
 * One command per connection: "PING" -> "PONG", "SET key value" -> the
 * pair is appended to LOG_PATH and fsync'ed, then "OK", or "ERR <why>" when
 * the write or the fsync failed; "PID" -> "PID <process id>" (which process
 * answered: a shared service answers with the same one in every cell);
 * "QUIT" -> "BYE", then the server exits with status 3 (a crash, for tests). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void reply(int c, const char* s) {
  size_t n = strlen(s);
  while (n > 0) {
    ssize_t w = send(c, s, n, MSG_NOSIGNAL);
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: kv_server PORT LOG_PATH\n");
    return 2;
  }
  int s = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((unsigned short)atoi(argv[1]));
  if (bind(s, (struct sockaddr*)&a, sizeof(a)) != 0 || listen(s, 16) != 0) {
    perror("kv_server: bind");
    return 1;
  }
  for (;;) {
    int c = accept(s, NULL, NULL);
    if (c < 0) continue;
    char line[512];
    ssize_t n = recv(c, line, sizeof(line) - 1, 0);
    if (n <= 0) {
      close(c);
      continue;
    }
    line[n] = 0;
    line[strcspn(line, "\r\n")] = 0;
    if (strcmp(line, "PING") == 0) {
      reply(c, "PONG\n");
    } else if (strcmp(line, "PID") == 0) {
      char out[32];
      snprintf(out, sizeof(out), "PID %ld\n", (long)getpid());
      reply(c, out);
    } else if (strcmp(line, "QUIT") == 0) {
      reply(c, "BYE\n");
      close(c);
      return 3;
    } else if (strncmp(line, "SET ", 4) == 0) {
      char out[600];
      int fd = open(argv[2], O_WRONLY | O_CREAT | O_APPEND, 0644);
      size_t len = strlen(line + 4);
      line[4 + len] = '\n';
      if (fd < 0) {
        snprintf(out, sizeof(out), "ERR open: %s\n", strerror(errno));
      } else if (write(fd, line + 4, len + 1) != (ssize_t)(len + 1)) {
        snprintf(out, sizeof(out), "ERR write: %s\n", strerror(errno));
      } else if (fsync(fd) != 0) {
        snprintf(out, sizeof(out), "ERR fsync: %s\n", strerror(errno));
      } else {
        snprintf(out, sizeof(out), "OK\n");
      }
      if (fd >= 0) close(fd);
      reply(c, out);
    } else {
      reply(c, "ERR unknown command\n");
    }
    close(c);
  }
}
