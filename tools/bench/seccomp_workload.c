/* A syscall-heavy static workload for the "filter installed, nothing of it
 * covered" benchmark: ROUNDS rounds of pwrite BYTES + pread BYTES + lseek on
 * a file in DIR, plus getppid. Prints the elapsed ns and the CPU time
 * (user+sys, ns) the process spent in the loop.
 * With "allow" as the fourth argument it first installs a one-instruction
 * seccomp filter (ret ALLOW): the floor cost of having any filter at all.
 * Usage: seccomp_workload DIR ROUNDS BYTES [allow] */
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 20];

static long long cpu_ns(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ((long long)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
         ((long long)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: seccomp_workload DIR ROUNDS BYTES [allow]\n");
    return 2;
  }
  if (argc > 4 && strcmp(argv[4], "allow") == 0) {
    struct sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    struct sock_fprog prog = {1, allow};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_SPEC_ALLOW, &prog) != 0) {
      perror("seccomp_workload: seccomp");
      return 2;
    }
  }
  char path[4096];
  snprintf(path, sizeof(path), "%s/workload.dat", argv[1]);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return 2;
  unlink(path);
  size_t bytes = (size_t)atol(argv[3]);
  if (bytes == 0 || bytes > sizeof(buf)) bytes = 4096;
  memset(buf, 'w', bytes);
  long rounds = atol(argv[2]);
  struct timespec t0, t1;
  long long c0 = cpu_ns();
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < rounds; ++i) {
    off_t off = (off_t)(i % 64) * (off_t)bytes;
    if (pwrite(fd, buf, bytes, off) != (ssize_t)bytes) return 3;
    if (pread(fd, buf, bytes, off) != (ssize_t)bytes) return 3;
    lseek(fd, 0, SEEK_SET);
    getppid();
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  long long c1 = cpu_ns();
  printf("%lld %lld\n", (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec),
         c1 - c0);
  return 0;
}
