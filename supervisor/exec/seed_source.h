// Where a run's seed comes from when neither the policy nor `--seed` gives
// one. Behind an interface so tests choose the "random" seed.
#ifndef FAULT_SUPERVISOR_EXEC_SEED_SOURCE_H_
#define FAULT_SUPERVISOR_EXEC_SEED_SOURCE_H_

#include <cstdint>

namespace fault::exec {

class SeedSource {
 public:
  virtual ~SeedSource() = default;
  // A fresh seed. Called at most once per compile.
  virtual uint64_t NewSeed() = 0;
};

// getrandom(2), falling back to the clock and pid if it fails.
class RandomSeedSource : public SeedSource {
 public:
  uint64_t NewSeed() override;
};

// Returns the seed it was built with (tests).
class FixedSeedSource : public SeedSource {
 public:
  explicit FixedSeedSource(uint64_t seed) : seed_(seed) {}
  uint64_t NewSeed() override {
    ++calls_;
    return seed_;
  }
  int calls() const { return calls_; }

 private:
  uint64_t seed_;
  int calls_ = 0;
};

}  // namespace fault::exec

#endif  // FAULT_SUPERVISOR_EXEC_SEED_SOURCE_H_
