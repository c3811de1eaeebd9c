/* Opens each PATH argument read-only (openat(AT_FDCWD, ...)) and prints
 * "open PATH: ok" or "open PATH: <strerror>". Exits with the number of
 * failed opens. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char** argv) {
  int failed = 0;
  for (int i = 1; i < argc; ++i) {
    int fd = openat(AT_FDCWD, argv[i], O_RDONLY);
    if (fd >= 0) {
      printf("open %s: ok\n", argv[i]);
      close(fd);
    } else {
      printf("open %s: %s\n", argv[i], strerror(errno));
      ++failed;
    }
  }
  return failed;
}
