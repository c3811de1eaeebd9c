#include "supervisor/exec/seed_source.h"

#include <sys/random.h>
#include <time.h>
#include <unistd.h>

namespace fault::exec {

uint64_t RandomSeedSource::NewSeed() {
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof(seed), 0) == static_cast<ssize_t>(sizeof(seed))) {
    return seed;
  }
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t(ts.tv_sec) * 1000000007ull) ^ uint64_t(ts.tv_nsec) ^
         (uint64_t(getpid()) << 32);
}

}  // namespace fault::exec
