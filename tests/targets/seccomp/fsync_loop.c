/* Calls fsync(2) on FILE once every 50 ms for up to SECONDS seconds and
 * writes the outcome of each call to stdout ("fsync ok" or
 * "fsync failed: <strerror>"), then "done". A test covers fsync with the
 * filter, kills the supervisor mid-run and reads what the program saw.
 * Usage: fsync_loop FILE SECONDS */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: fsync_loop FILE SECONDS\n");
    return 2;
  }
  int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return 2;
  setvbuf(stdout, NULL, _IONBF, 0);
  int rounds = atoi(argv[2]) * 20;
  struct timespec tick = {0, 50 * 1000 * 1000};
  for (int i = 0; i < rounds; ++i) {
    if (fsync(fd) == 0) {
      fputs("fsync ok\n", stdout);
    } else {
      printf("fsync failed: %s\n", strerror(errno));
    }
    nanosleep(&tick, NULL);
  }
  fputs("done\n", stdout);
  return 0;
}
