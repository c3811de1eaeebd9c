/* Writes COUNT small records to FILE, one write(2) each, and prints the
 * duration of every write in nanoseconds ("write N: NS ns") and how many
 * failed ("failed: K"), so a test can see delays and denials from outside.
 * Usage: write_timing FILE COUNT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: write_timing FILE COUNT\n");
    return 2;
  }
  int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    fprintf(stderr, "write_timing: open %s: %s\n", argv[1], strerror(errno));
    return 2;
  }
  int count = atoi(argv[2]);
  int failed = 0;
  char report[64 * 1024];
  size_t used = 0;
  for (int i = 0; i < count; ++i) {
    long long t0 = now_ns();
    ssize_t n = write(fd, "x\n", 2);
    long long t1 = now_ns();
    if (n != 2) ++failed;
    if (used + 64 < sizeof(report)) {
      used += (size_t)snprintf(report + used, sizeof(report) - used, "write %d: %lld ns%s\n", i,
                               t1 - t0, n == 2 ? "" : " failed");
    }
  }
  close(fd);
  /* Printed at the end: the report itself goes through write(2) too. */
  fputs(report, stdout);
  printf("failed: %d\n", failed);
  return 0;
}
