// Clocks and the min-heap of pending delayed notifications.
//
// NotifyLoop never sleeps on its receiving thread: a delayed syscall becomes
// an entry here with an absolute deadline, and the loop arms a timerfd for
// the earliest one. Tests drive the queue with FakeClock.
//
// Thread-safety: TimerQueue is not thread-safe (owned by the loop thread).
// RealClock is; FakeClock is safe for concurrent reads and one writer.
#ifndef FAULT_SUPERVISOR_SECCOMP_TIMER_QUEUE_H_
#define FAULT_SUPERVISOR_SECCOMP_TIMER_QUEUE_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <queue>
#include <unordered_set>
#include <vector>

namespace fault::seccomp {

class Clock {
 public:
  virtual ~Clock() = default;
  // CLOCK_MONOTONIC nanoseconds (deadlines, measurements).
  virtual int64_t MonotonicNs() = 0;
  // CLOCK_REALTIME nanoseconds (event timestamps).
  virtual int64_t RealtimeNs() = 0;
};

class RealClock : public Clock {
 public:
  int64_t MonotonicNs() override;
  int64_t RealtimeNs() override;
  static RealClock* Get();
};

class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t start_ns = 1'000'000'000) : now_(start_ns) {}
  int64_t MonotonicNs() override { return now_.load(); }
  int64_t RealtimeNs() override {
    return now_.load() + 1'700'000'000'000'000'000;
  }
  void Advance(int64_t ns) { now_ += ns; }

 private:
  std::atomic<int64_t> now_;
};

// Pending entries keyed by an opaque 64-bit id (the notification id), unique
// while pending. Cancelled entries are dropped lazily when they reach the top.
class TimerQueue {
 public:
  void Schedule(uint64_t id, int64_t deadline_ns);
  // Cancels `id`; true if it was pending.
  bool Cancel(uint64_t id);
  // Removes and returns every id due at `now_ns`, earliest deadline first
  // (ties: scheduling order).
  std::vector<uint64_t> PopExpired(int64_t now_ns);
  // Earliest pending deadline.
  std::optional<int64_t> NextDeadline();
  size_t size() const { return pending_.size(); }
  bool empty() const { return pending_.empty(); }

 private:
  struct Entry {
    int64_t deadline;
    uint64_t order;
    uint64_t id;
    bool operator>(const Entry& o) const {
      return deadline != o.deadline ? deadline > o.deadline : order > o.order;
    }
  };
  void DropCancelled();
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap_;
  std::unordered_set<uint64_t> pending_;
  uint64_t next_order_ = 0;
};

}  // namespace fault::seccomp

#endif  // FAULT_SUPERVISOR_SECCOMP_TIMER_QUEUE_H_
