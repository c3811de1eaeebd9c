#include "supervisor/exec/policy_table.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>

#include <gtest/gtest.h>

namespace fault::exec {
namespace {

std::unique_ptr<PolicyTable> NewTable() {
  auto t = PolicyTable::Create({.start_ns = 123, .stub_page = 0x7e0000000000ull});
  EXPECT_TRUE(t.ok()) << t.status();
  return std::move(*t);
}

TEST(PolicyTableTest, HeaderAndFirstGeneration) {
  auto t = NewTable();
  const fault_table* h = t->table();
  EXPECT_EQ(h->magic, FAULT_TABLE_MAGIC);
  EXPECT_EQ(h->version, FAULT_TABLE_VERSION);
  EXPECT_EQ(h->size, sizeof(fault_table));
  EXPECT_EQ(h->start_ns, 123);
  EXPECT_EQ(h->stub_page, 0x7e0000000000ull);
  EXPECT_EQ(h->supervisor_pid, static_cast<uint32_t>(getpid()));
  EXPECT_EQ(h->seq % 2, 0u);
  EXPECT_EQ(h->config.generation, 1u);
  EXPECT_EQ(h->config.n_rules, 0u);
  // Close-on-exec until the child clears it on its own copy.
  EXPECT_TRUE(fcntl(t->fd(), F_GETFD) & FD_CLOEXEC);
}

TEST(PolicyTableTest, PublishBumpsGenerationAndReadsBack) {
  auto t = NewTable();
  auto c = std::make_unique<fault_config>();
  std::memset(c.get(), 0, sizeof(*c));
  c->n_rules = 1;
  std::strcpy(c->rules[0].name, "slow");
  c->generation = 999;  // ignored
  EXPECT_EQ(t->Publish(*c), 2u);
  auto back = std::make_unique<fault_config>();
  EXPECT_EQ(t->ReadConfig(back.get()), 2u);
  EXPECT_STREQ(back->rules[0].name, "slow");
  EXPECT_EQ(back->n_rules, 1u);
  EXPECT_EQ(t->Publish(*c), 3u);
}

TEST(PolicyTableTest, SegmentIsSealedAgainstResizing) {
  auto t = NewTable();
  EXPECT_NE(ftruncate(t->fd(), 4096), 0);
  EXPECT_NE(ftruncate(t->fd(), sizeof(fault_table) * 2), 0);
}

TEST(PolicyTableTest, AttachSeesThePublishedConfiguration) {
  auto t = NewTable();
  auto c = std::make_unique<fault_config>();
  std::memset(c.get(), 0, sizeof(*c));
  c->n_rules = 2;
  t->Publish(*c);
  auto other = PolicyTable::Attach(t->fd());
  ASSERT_TRUE(other.ok()) << other.status();
  auto back = std::make_unique<fault_config>();
  EXPECT_EQ((*other)->ReadConfig(back.get()), 2u);
  EXPECT_EQ(back->n_rules, 2u);
}

TEST(PolicyTableTest, AttachRefusesSomethingElse) {
  int fd = memfd_create("not-a-table", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, sizeof(fault_table)), 0);
  auto t = PolicyTable::Attach(fd);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(),
            "fd " + std::to_string(fd) + " is not a policy table of layout version " +
                std::to_string(FAULT_TABLE_VERSION));
  close(fd);
}

TEST(PolicyTableTest, ChildProcessSeesUpdatesThroughTheSharedMapping) {
  auto t = NewTable();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // The child plays the shim: bump a counter, publish an event.
    fault_table* h = t->table();
    __atomic_fetch_add(&h->counters.rule_matched[0], 3, __ATOMIC_RELAXED);
    fault_event& e = h->ring.events[0];
    e.pid = getpid();
    e.effect = FAULT_EFFECT_LATENCY;
    e.value = 42;
    __atomic_store_n(&h->ring.head, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&e.seq, 1, __ATOMIC_RELEASE);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  auto c = std::make_unique<fault_config>();
  std::memset(c.get(), 0, sizeof(*c));
  c->n_rules = 1;
  t->Publish(*c);
  CounterSnapshot s = t->ReadCounters();
  ASSERT_EQ(s.rule_matched.size(), 1u);
  EXPECT_EQ(s.rule_matched[0], 3u);
  std::vector<fault_event> events;
  EXPECT_EQ(t->DrainEvents(&events, true), 1u);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].pid, pid);
  EXPECT_EQ(events[0].value, 42);
}

// A producer as the ring protocol in table.h describes it.
bool Produce(fault_table* h, int64_t value) {
  fault_event_ring& ring = h->ring;
  uint64_t head = __atomic_load_n(&ring.head, __ATOMIC_RELAXED);
  for (;;) {
    uint64_t tail = __atomic_load_n(&ring.tail, __ATOMIC_ACQUIRE);
    if (head - tail >= FAULT_EVENT_RING_SIZE) {
      __atomic_fetch_add(&ring.drops, 1, __ATOMIC_RELAXED);
      return false;
    }
    if (__atomic_compare_exchange_n(&ring.head, &head, head + 1, false,
                                    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
      break;
    }
  }
  fault_event& e = ring.events[head & (FAULT_EVENT_RING_SIZE - 1)];
  e.value = value;
  e.effect = FAULT_EFFECT_LOSS;
  __atomic_store_n(&e.seq, head + 1, __ATOMIC_RELEASE);
  return true;
}

TEST(PolicyTableTest, DrainKeepsOrderAndCountsDrops) {
  auto t = NewTable();
  for (int i = 0; i < FAULT_EVENT_RING_SIZE + 5; ++i) Produce(t->table(), i);
  EXPECT_EQ(t->dropped_events(), 5u);
  std::vector<fault_event> events;
  EXPECT_EQ(t->DrainEvents(&events, false), size_t{FAULT_EVENT_RING_SIZE});
  for (int i = 0; i < FAULT_EVENT_RING_SIZE; ++i) ASSERT_EQ(events[i].value, i);
  // Space again after the drain; the ring wraps.
  EXPECT_TRUE(Produce(t->table(), 7));
  events.clear();
  EXPECT_EQ(t->DrainEvents(&events, false), 1u);
  EXPECT_EQ(events[0].value, 7);
}

TEST(PolicyTableTest, UnfinishedSlotWaitsThenIsSkippedAtTheEnd) {
  auto t = NewTable();
  fault_event_ring& ring = t->table()->ring;
  Produce(t->table(), 1);
  __atomic_fetch_add(&ring.head, 1, __ATOMIC_RELAXED);  // claimed, never written
  Produce(t->table(), 3);
  std::vector<fault_event> events;
  EXPECT_EQ(t->DrainEvents(&events, false), 1u);
  EXPECT_EQ(t->DrainEvents(&events, false), 0u);  // still waiting for slot 1
  EXPECT_EQ(t->DrainEvents(&events, true), 1u);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].value, 3);
  EXPECT_EQ(t->incomplete_events(), 1u);
}

// Readers race a writer that publishes configurations whose every word
// encodes the generation: a reader must never see a mix of two.
TEST(PolicyTableTest, ConcurrentReadersNeverSeeATornConfiguration) {
  auto t = NewTable();
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0};
  std::atomic<int> torn{0};
  auto reader = [&] {
    auto c = std::make_unique<fault_config>();
    while (!stop.load(std::memory_order_relaxed)) {
      uint64_t generation = t->ReadConfig(c.get());
      // Every rule's seed and n_rules carry the pattern of one publish.
      uint64_t want = c->rules[0].seed;
      bool ok = c->n_rules == static_cast<uint32_t>(want % 64);
      for (int i = 0; i < FAULT_MAX_RULES && ok; ++i) ok = c->rules[i].seed == want;
      ok = ok && c->syscall_rules[FAULT_MAX_SYSCALL_RULES - 1].when_first == want;
      if (generation > 1 && !ok) torn.fetch_add(1);
      reads.fetch_add(1, std::memory_order_relaxed);
    }
  };
  std::thread r1(reader), r2(reader);
  auto c = std::make_unique<fault_config>();
  std::memset(c.get(), 0, sizeof(*c));
  // Publish until the readers have read a good number of times while the
  // writer was busy (bounded: at most 3 s or 200000 generations).
  int64_t deadline = MonotonicNowNs() + 3'000'000'000;
  for (uint64_t g = 1; g <= 200000 && MonotonicNowNs() < deadline; ++g) {
    if (g > 300 && reads.load(std::memory_order_relaxed) >= 500) break;
    c->n_rules = static_cast<uint32_t>(g % 64);
    for (auto& rule : c->rules) rule.seed = g;
    c->syscall_rules[FAULT_MAX_SYSCALL_RULES - 1].when_first = g;
    t->Publish(*c);
    if (g % 8 == 0) {
      // Now and then let a reader finish a copy (under a sanitizer every
      // copy is slow enough for back-to-back publishes to tear them all).
      const int before = reads.load(std::memory_order_relaxed);
      const int64_t wait_until = MonotonicNowNs() + 200'000'000;
      while (reads.load(std::memory_order_relaxed) == before && MonotonicNowNs() < wait_until) {
        std::this_thread::yield();
      }
    }
  }
  stop = true;
  r1.join();
  r2.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_GE(reads.load(), 10);  // the readers did run
}

}  // namespace
}  // namespace fault::exec

namespace fault::exec {
namespace {

// A writer caught in the middle of a publish (odd seq) holds readers off
// until it is done; they then see the finished configuration.
TEST(PolicyTableTest, ReaderWaitsForAPublishInProgress) {
  auto t = NewTable();
  fault_table* h = t->table();
  uint64_t seq = __atomic_load_n(&h->seq, __ATOMIC_RELAXED);
  __atomic_store_n(&h->seq, seq + 1, __ATOMIC_RELEASE);
  __atomic_store_n(&h->config.n_rules, 5u, __ATOMIC_RELAXED);  // half written
  std::atomic<bool> done{false};
  uint32_t seen = 0;
  std::thread reader([&] {
    auto c = std::make_unique<fault_config>();
    t->ReadConfig(c.get());
    seen = c->n_rules;
    done = true;
  });
  usleep(50000);
  EXPECT_FALSE(done.load());
  __atomic_store_n(&h->config.n_rules, 7u, __ATOMIC_RELAXED);
  __atomic_store_n(&h->seq, seq + 2, __ATOMIC_RELEASE);
  reader.join();
  EXPECT_TRUE(done.load());
  EXPECT_EQ(seen, 7u);
}

}  // namespace
}  // namespace fault::exec
