/* Writes a record to FILE and fsyncs it, the way a small database commits.
 * On failure prints "fsync_target: fsync FILE: <strerror>" on stderr and
 * exits 1; on success prints "fsync_target: committed" and exits 0. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: fsync_target FILE\n");
    return 2;
  }
  int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    fprintf(stderr, "fsync_target: open %s: %s\n", argv[1], strerror(errno));
    return 2;
  }
  const char record[] = "record 1\n";
  if (write(fd, record, sizeof(record) - 1) != (ssize_t)(sizeof(record) - 1)) {
    fprintf(stderr, "fsync_target: write %s: %s\n", argv[1], strerror(errno));
    return 2;
  }
  if (fsync(fd) != 0) {
    fprintf(stderr, "fsync_target: fsync %s: %s\n", argv[1], strerror(errno));
    return 1;
  }
  close(fd);
  printf("fsync_target: committed\n");
  return 0;
}
