/* One thread makes a single write(2) to SLOW_FILE; WORKERS other threads
 * write to FAST_FILE in a loop for as long as the slow write is pending.
 * Prints the slow write's duration, how many fast writes completed while it
 * was pending, and the longest fast write:
 *   slow_ns=N fast_writes=K fast_max_ns=M
 * Usage: mt_writer SLOW_FILE FAST_FILE WORKERS */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int slow_done;
static atomic_int slow_started;
static atomic_long fast_writes;
static atomic_llong fast_max_ns;
static int fast_fd;

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void* worker(void* arg) {
  (void)arg;
  while (!atomic_load(&slow_started)) {
  }
  /* Bounded: at most 100000 writes or until the slow write returns. */
  for (int i = 0; i < 100000 && !atomic_load(&slow_done); ++i) {
    long long t0 = now_ns();
    if (write(fast_fd, "f", 1) != 1) break;
    long long d = now_ns() - t0;
    if (!atomic_load(&slow_done)) atomic_fetch_add(&fast_writes, 1);
    long long prev = atomic_load(&fast_max_ns);
    while (d > prev && !atomic_compare_exchange_weak(&fast_max_ns, &prev, d)) {
    }
  }
  return NULL;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: mt_writer SLOW_FILE FAST_FILE WORKERS\n");
    return 2;
  }
  int slow_fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
  fast_fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (slow_fd < 0 || fast_fd < 0) {
    fprintf(stderr, "mt_writer: open: %s\n", strerror(errno));
    return 2;
  }
  int workers = atoi(argv[3]);
  if (workers < 1 || workers > 16) workers = 3;
  pthread_t threads[16];
  for (int i = 0; i < workers; ++i) pthread_create(&threads[i], NULL, worker, NULL);
  long long t0 = now_ns();
  atomic_store(&slow_started, 1);
  ssize_t n = write(slow_fd, "s", 1);
  long long slow_ns = now_ns() - t0;
  atomic_store(&slow_done, 1);
  for (int i = 0; i < workers; ++i) pthread_join(threads[i], NULL);
  printf("slow_ns=%lld fast_writes=%ld fast_max_ns=%lld slow_ok=%d\n", slow_ns,
         atomic_load(&fast_writes), atomic_load(&fast_max_ns), n == 1);
  return 0;
}
