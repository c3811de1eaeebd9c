// Fans the fault events `fault exec` drains out to WatchEvents streams.
//
// The runner thread publishes each drained batch; each watcher has a
// bounded buffer of its own (kWatcherBuffer events that pass its filters).
// A watcher that reads more slowly than events arrive loses the oldest it
// has not read, and the loss is counted, never silent. The hub also keeps
// the last kHistory events so that a watcher can resume after a sequence
// number it saw (events older than that are counted as lost to it).
//
//   EventHub hub;
//   std::unique_ptr<EventHub::Watcher> w = hub.Subscribe(filter);   // any
//   thread hub.Publish(events, names);                                      //
//   runner thread EventHub::Batch b; w->Next(&b, 1024,
//   absl::Milliseconds(100));  // watcher's thread hub.Close(); // at the end
//   of the run
//
// Thread-safe. Publish() costs O(events x watchers) and never blocks on a
// watcher.
#ifndef FAULT_SUPERVISOR_CONTROL_EVENT_HUB_H_
#define FAULT_SUPERVISOR_CONTROL_EVENT_HUB_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "fault/table.h"

namespace fault::control {

// One drained event with the rule names of the generation it was decided
// under (shared by every event of that generation).
struct HubEvent {
  uint64_t sequence = 0;  // from 1, without gaps
  fault_event raw{};
  std::shared_ptr<const std::vector<std::string>> rule_names;

  // The policy that fired: (*rule_names)[raw.rule], or "rule<N>".
  std::string policy() const;
};

class EventHub {
 public:
  static constexpr size_t kWatcherBuffer = 65536;
  static constexpr size_t kHistory = 65536;

  struct Filter {
    std::set<std::string> policies;  // empty: all
    std::set<uint16_t> effects;      // fault_effect numbers; empty: all
    // Resume after this sequence number (0: every event held); not set:
    // only new events.
    std::optional<uint64_t> after_sequence;
  };

  // What a watcher reads at once.
  struct Batch {
    std::vector<HubEvent> events;
    uint64_t dropped_for_watcher = 0;  // totals for this watcher
    uint64_t dropped_in_program = 0;   // the run's, at the last publish
    uint64_t last_sequence = 0;
  };

  class Watcher {
   public:
    ~Watcher();
    // Waits up to `timeout` for events or a change of the drop counts and
    // moves up to `max` events into *batch. Returns false once the hub is
    // closed and this watcher has read everything.
    bool Next(Batch* batch, size_t max, absl::Duration timeout);

   private:
    friend class EventHub;
    Watcher(EventHub* hub, Filter filter)
        : hub_(hub), filter_(std::move(filter)) {}
    bool Wants(const HubEvent& e) const;

    EventHub* hub_;
    const Filter filter_;
    // Guarded by hub_->mu_.
    std::deque<HubEvent> buffer_;
    uint64_t dropped_ = 0;
    uint64_t reported_dropped_ = 0;
    uint64_t reported_program_dropped_ = UINT64_MAX;  // forces a first message
  };

  EventHub() = default;
  EventHub(const EventHub&) = delete;
  EventHub& operator=(const EventHub&) = delete;

  std::unique_ptr<Watcher> Subscribe(Filter filter);

  // Appends a drained batch in order (their sequence numbers are assigned
  // here); `dropped_in_program` is the run's ring drop count so far.
  void Publish(std::vector<HubEvent> events, uint64_t dropped_in_program);

  // No more events: watchers end once they have read what they hold.
  void Close();

  // Waits until every watcher is gone (after Close(), once each has read
  // what it holds and its stream ended); false after `timeout`.
  bool WaitForWatchers(absl::Duration timeout);

  uint64_t last_sequence() const;
  size_t watchers() const;

 private:
  // Guards everything below, and each Watcher's buffer and counts.
  mutable std::mutex mu_;
  std::condition_variable changed_;
  bool closed_ = false;
  uint64_t next_sequence_ = 1;
  uint64_t dropped_in_program_ = 0;
  std::deque<HubEvent> history_;
  std::set<Watcher*> watchers_;
};

}  // namespace fault::control

#endif  // FAULT_SUPERVISOR_CONTROL_EVENT_HUB_H_
