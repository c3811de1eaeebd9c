#include "supervisor/seccomp/timer_queue.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fault::seccomp {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(TimerQueueTest, FiresInDeadlineOrderOnAFakeClock) {
  FakeClock clock(1'000);
  TimerQueue q;
  q.Schedule(/*id=*/10, clock.MonotonicNs() + 1'000'000'000);  // a 1 s delay
  q.Schedule(11, clock.MonotonicNs() + 100'000'000);           // 100 ms
  q.Schedule(12, clock.MonotonicNs() + 100'000'000);  // same deadline, later
  EXPECT_EQ(q.NextDeadline(), 1'000 + 100'000'000);
  EXPECT_THAT(q.PopExpired(clock.MonotonicNs()), IsEmpty());
  clock.Advance(99'999'999);
  EXPECT_THAT(q.PopExpired(clock.MonotonicNs()), IsEmpty());
  clock.Advance(1);
  // The short delays do not wait for the long one.
  EXPECT_THAT(q.PopExpired(clock.MonotonicNs()), ElementsAre(11, 12));
  EXPECT_EQ(q.size(), 1u);
  clock.Advance(900'000'000);
  EXPECT_THAT(q.PopExpired(clock.MonotonicNs()), ElementsAre(10));
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.NextDeadline(), std::nullopt);
}

TEST(TimerQueueTest, CancelledEntriesNeverFire) {
  FakeClock clock;
  TimerQueue q;
  q.Schedule(1, clock.MonotonicNs() + 10);
  q.Schedule(2, clock.MonotonicNs() + 20);
  EXPECT_TRUE(q.Cancel(1));
  EXPECT_FALSE(q.Cancel(1));
  EXPECT_EQ(q.NextDeadline(), clock.MonotonicNs() + 20);
  clock.Advance(100);
  EXPECT_THAT(q.PopExpired(clock.MonotonicNs()), ElementsAre(2));
}

TEST(TimerQueueTest, ManyInterleavedDelaysComeOutSorted) {
  FakeClock clock(0);
  TimerQueue q;
  for (uint64_t i = 0; i < 1000; ++i)
    q.Schedule(i, static_cast<int64_t>((i * 7919) % 1000));
  std::vector<uint64_t> all = q.PopExpired(1000);
  ASSERT_EQ(all.size(), 1000u);
  for (size_t i = 1; i < all.size(); ++i) {
    EXPECT_LE((all[i - 1] * 7919) % 1000, (all[i] * 7919) % 1000);
  }
}

}  // namespace
}  // namespace fault::seccomp
