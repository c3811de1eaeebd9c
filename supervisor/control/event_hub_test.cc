#include "supervisor/control/event_hub.h"

#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace fault::control {
namespace {

auto kNames = std::make_shared<const std::vector<std::string>>(
    std::vector<std::string>{"slow", "full"});

std::vector<HubEvent> Events(int n, uint16_t rule = 0,
                             uint16_t effect = FAULT_EFFECT_LATENCY) {
  std::vector<HubEvent> out;
  for (int i = 0; i < n; ++i) {
    HubEvent e;
    e.raw.rule = rule;
    e.raw.effect = effect;
    e.raw.value = i;
    e.rule_names = kNames;
    out.push_back(e);
  }
  return out;
}

EventHub::Filter Only(std::set<std::string> policies,
                      std::set<uint16_t> effects) {
  EventHub::Filter f;
  f.policies = std::move(policies);
  f.effects = std::move(effects);
  return f;
}

EventHub::Filter After(uint64_t sequence) {
  EventHub::Filter f;
  f.after_sequence = sequence;
  return f;
}

TEST(EventHubTest, WatchersGetNewEventsInOrderWithSequenceNumbers) {
  EventHub hub;
  hub.Publish(Events(3), 0);  // before anyone watches
  std::unique_ptr<EventHub::Watcher> w = hub.Subscribe({});
  hub.Publish(Events(2), 0);
  EventHub::Batch b;
  ASSERT_TRUE(w->Next(&b, 100, absl::Seconds(1)));
  ASSERT_EQ(b.events.size(), 2u);
  EXPECT_EQ(b.events[0].sequence, 4u);
  EXPECT_EQ(b.events[1].sequence, 5u);
  EXPECT_EQ(b.last_sequence, 5u);
  EXPECT_EQ(b.dropped_for_watcher, 0u);
}

TEST(EventHubTest, FiltersByPolicyAndEffect) {
  EventHub hub;
  std::unique_ptr<EventHub::Watcher> w =
      hub.Subscribe(Only({"full"}, {FAULT_EFFECT_DENY}));
  hub.Publish(Events(2, 0, FAULT_EFFECT_DENY), 0);
  hub.Publish(Events(2, 1, FAULT_EFFECT_LATENCY), 0);
  hub.Publish(Events(3, 1, FAULT_EFFECT_DENY), 0);
  EventHub::Batch b;
  ASSERT_TRUE(w->Next(&b, 100, absl::Seconds(1)));
  ASSERT_EQ(b.events.size(), 3u);
  for (const HubEvent& e : b.events) {
    EXPECT_EQ(e.policy(), "full");
    EXPECT_EQ(e.raw.effect, FAULT_EFFECT_DENY);
  }
}

TEST(EventHubTest, ASlowWatcherLosesTheOldestAndTheLossIsCounted) {
  EventHub hub;
  std::unique_ptr<EventHub::Watcher> w = hub.Subscribe({});
  const int n = static_cast<int>(EventHub::kWatcherBuffer) + 123;
  hub.Publish(Events(n), 7);
  EventHub::Batch b;
  size_t got = 0;
  uint64_t first = 0;
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(w->Next(&b, 10000, absl::Milliseconds(1)));
    if (got == 0 && !b.events.empty()) first = b.events[0].sequence;
    got += b.events.size();
    if (b.events.empty()) break;
  }
  EXPECT_EQ(got, EventHub::kWatcherBuffer);
  EXPECT_EQ(b.dropped_for_watcher, 123u);
  EXPECT_EQ(first, 124u);  // the oldest went
  EXPECT_EQ(b.dropped_in_program, 7u);
}

TEST(EventHubTest, ResumesFromHistoryAndCountsWhatIsNoLongerHeld) {
  EventHub hub;
  hub.Publish(Events(10), 0);
  std::unique_ptr<EventHub::Watcher> w = hub.Subscribe(After(7));
  EventHub::Batch b;
  ASSERT_TRUE(w->Next(&b, 100, absl::Seconds(1)));
  ASSERT_EQ(b.events.size(), 3u);
  EXPECT_EQ(b.events[0].sequence, 8u);

  EventHub big;
  big.Publish(Events(static_cast<int>(EventHub::kHistory) + 50), 0);
  std::unique_ptr<EventHub::Watcher> old = big.Subscribe(After(0));
  ASSERT_TRUE(old->Next(&b, 1, absl::Seconds(1)));
  EXPECT_EQ(b.events[0].sequence, 51u);
  EXPECT_EQ(b.dropped_for_watcher, 50u);
}

TEST(EventHubTest, CloseEndsWatchersAfterTheyReadEverything) {
  EventHub hub;
  std::unique_ptr<EventHub::Watcher> w = hub.Subscribe({});
  hub.Publish(Events(2), 0);
  hub.Close();
  EventHub::Batch b;
  EXPECT_TRUE(w->Next(&b, 100, absl::Seconds(1)));
  EXPECT_EQ(b.events.size(), 2u);
  EXPECT_FALSE(w->Next(&b, 100, absl::Seconds(1)));
}

TEST(EventHubTest, WaitForWatchersEndsWhenTheyAreGone) {
  EventHub hub;
  std::unique_ptr<EventHub::Watcher> w = hub.Subscribe({});
  hub.Close();
  EXPECT_FALSE(hub.WaitForWatchers(absl::Milliseconds(20)));
  std::thread reader([&] { w.reset(); });
  EXPECT_TRUE(hub.WaitForWatchers(absl::Seconds(5)));
  reader.join();
}

TEST(EventHubTest, ConcurrentPublishAndReadLoseNothing) {
  EventHub hub;
  std::unique_ptr<EventHub::Watcher> w = hub.Subscribe({});
  std::thread producer([&] {
    for (int i = 0; i < 100; ++i) hub.Publish(Events(500), 0);
    hub.Close();
  });
  uint64_t expected = 1, got = 0;
  EventHub::Batch b;
  while (w->Next(&b, 4096, absl::Seconds(5))) {
    for (const HubEvent& e : b.events) {
      ASSERT_EQ(e.sequence, expected++);
      ++got;
    }
  }
  producer.join();
  EXPECT_EQ(got, 50000u);
  EXPECT_EQ(b.dropped_for_watcher, 0u);
}

}  // namespace
}  // namespace fault::control
