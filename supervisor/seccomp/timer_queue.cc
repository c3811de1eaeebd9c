#include "supervisor/seccomp/timer_queue.h"

#include <time.h>

namespace fault::seccomp {
namespace {
int64_t Read(clockid_t id) {
  timespec ts;
  clock_gettime(id, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}
}  // namespace

int64_t RealClock::MonotonicNs() { return Read(CLOCK_MONOTONIC); }
int64_t RealClock::RealtimeNs() { return Read(CLOCK_REALTIME); }
RealClock* RealClock::Get() {
  static RealClock* const kClock = new RealClock();
  return kClock;
}

void TimerQueue::Schedule(uint64_t id, int64_t deadline_ns) {
  pending_.insert(id);
  heap_.push(Entry{deadline_ns, next_order_++, id});
}

bool TimerQueue::Cancel(uint64_t id) { return pending_.erase(id) > 0; }

void TimerQueue::DropCancelled() {
  while (!heap_.empty() && !pending_.contains(heap_.top().id)) heap_.pop();
}

std::vector<uint64_t> TimerQueue::PopExpired(int64_t now_ns) {
  std::vector<uint64_t> out;
  while (true) {
    DropCancelled();
    if (heap_.empty() || heap_.top().deadline > now_ns) break;
    out.push_back(heap_.top().id);
    pending_.erase(heap_.top().id);
    heap_.pop();
  }
  return out;
}

std::optional<int64_t> TimerQueue::NextDeadline() {
  DropCancelled();
  if (heap_.empty()) return std::nullopt;
  return heap_.top().deadline;
}

}  // namespace fault::seccomp
