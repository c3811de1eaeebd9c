#include "supervisor/control/event_hub.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace fault::control {

std::string HubEvent::policy() const {
  if (rule_names != nullptr && raw.rule < rule_names->size())
    return (*rule_names)[raw.rule];
  return absl::StrCat("rule", raw.rule);
}

EventHub::Watcher::~Watcher() {
  std::unique_lock<std::mutex> lock(hub_->mu_);
  hub_->watchers_.erase(this);
  hub_->changed_.notify_all();
}

bool EventHub::Watcher::Wants(const HubEvent& e) const {
  if (!filter_.effects.empty() && filter_.effects.count(e.raw.effect) == 0)
    return false;
  if (!filter_.policies.empty() && filter_.policies.count(e.policy()) == 0)
    return false;
  return true;
}

bool EventHub::Watcher::Next(Batch* batch, size_t max, absl::Duration timeout) {
  EventHub* hub = hub_;
  std::unique_lock<std::mutex> lock(hub->mu_);
  auto ready = [&] {
    return !buffer_.empty() || hub->closed_ || dropped_ != reported_dropped_ ||
           hub->dropped_in_program_ != reported_program_dropped_;
  };
  const auto deadline =
      std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(timeout);
  while (!ready()) {
    if (hub->changed_.wait_until(lock, deadline) == std::cv_status::timeout)
      break;
  }
  batch->events.clear();
  const size_t n = std::min(max, buffer_.size());
  batch->events.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    batch->events.push_back(std::move(buffer_.front()));
    buffer_.pop_front();
  }
  reported_dropped_ = dropped_;
  reported_program_dropped_ = hub->dropped_in_program_;
  batch->dropped_for_watcher = dropped_;
  batch->dropped_in_program = hub->dropped_in_program_;
  batch->last_sequence = hub->next_sequence_ - 1;
  return !(hub->closed_ && buffer_.empty() && n == 0);
}

std::unique_ptr<EventHub::Watcher> EventHub::Subscribe(Filter filter) {
  std::unique_ptr<Watcher> w(new Watcher(this, std::move(filter)));
  std::unique_lock<std::mutex> lock(mu_);
  if (w->filter_.after_sequence.has_value()) {
    const uint64_t wanted_from = *w->filter_.after_sequence + 1;
    const uint64_t held_from =
        history_.empty() ? next_sequence_ : history_.front().sequence;
    // Events after the resume point that are no longer held: lost to this
    // watcher (all of them, filters aside: the hub no longer knows which
    // would have passed).
    if (held_from > wanted_from) w->dropped_ = held_from - wanted_from;
    for (const HubEvent& e : history_) {
      if (e.sequence < wanted_from || !w->Wants(e)) continue;
      w->buffer_.push_back(e);
    }
    while (w->buffer_.size() > kWatcherBuffer) {
      w->buffer_.pop_front();
      ++w->dropped_;
    }
  }
  watchers_.insert(w.get());
  return w;
}

void EventHub::Publish(std::vector<HubEvent> events,
                       uint64_t dropped_in_program) {
  std::unique_lock<std::mutex> lock(mu_);
  if (closed_) return;
  const bool program_drops_changed = dropped_in_program != dropped_in_program_;
  dropped_in_program_ = dropped_in_program;
  if (events.empty() && !program_drops_changed) return;
  for (HubEvent& e : events) {
    e.sequence = next_sequence_++;
    for (Watcher* w : watchers_) {
      if (!w->Wants(e)) continue;
      if (w->buffer_.size() >= kWatcherBuffer) {
        w->buffer_.pop_front();
        ++w->dropped_;
      }
      w->buffer_.push_back(e);
    }
    if (history_.size() >= kHistory) history_.pop_front();
    history_.push_back(std::move(e));
  }
  changed_.notify_all();
}

void EventHub::Close() {
  std::unique_lock<std::mutex> lock(mu_);
  closed_ = true;
  changed_.notify_all();
}

bool EventHub::WaitForWatchers(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return changed_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                           [this] { return watchers_.empty(); });
}

uint64_t EventHub::last_sequence() const {
  std::unique_lock<std::mutex> lock(mu_);
  return next_sequence_ - 1;
}

size_t EventHub::watchers() const {
  std::unique_lock<std::mutex> lock(mu_);
  return watchers_.size();
}

}  // namespace fault::control
