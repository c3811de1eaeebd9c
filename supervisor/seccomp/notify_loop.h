// NotifyLoop: answers seccomp user notifications for launched programs.
//
// One thread polls every listener fd, a timerfd and a wake-up eventfd. Each
// notification is decided at once (reading paths and socket addresses from
// the target only when a rule needs them, and checking
// SECCOMP_IOCTL_NOTIF_ID_VALID before trusting what was read); a deny is
// answered immediately with a spoofed error return, a delay is put on a
// min-heap of deadlines and answered with SECCOMP_USER_NOTIF_FLAG_CONTINUE
// when the timerfd fires. Nothing ever sleeps on the receiving thread, so a
// delayed syscall never holds up another thread's or process's
// notifications. Every injected fault appends an event (layer 2) to the
// table's ring; the decider bumps the rule counters.
//
// Usage:
//   EngineDecider decider(table);
//   NotifyLoop loop(&decider, table);
//   loop.AddListener(listener_fd, "server");  // takes ownership
//   loop.Start();
//   ...
//   loop.WaitUntilDone(absl::InfiniteDuration());  // all targets exited
//   loop.Stop();
//
// Thread-safety: AddListener, Stop, WaitUntilDone, stats() and
// sync_wakeup() may be called from any thread. The Decider is only called
// from the loop thread.
#ifndef FAULT_SUPERVISOR_SECCOMP_NOTIFY_LOOP_H_
#define FAULT_SUPERVISOR_SECCOMP_NOTIFY_LOOP_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fault/table.h"
#include "supervisor/seccomp/decider.h"
#include "supervisor/seccomp/timer_queue.h"

namespace fault::seccomp {

struct NotifyStats {
  uint64_t received = 0;   // notifications received
  uint64_t continued = 0;  // answered CONTINUE at once (no fault)
  uint64_t denied = 0;     // answered with an error
  uint64_t delayed = 0;    // answered CONTINUE after a delay
  uint64_t redirected = 0; // connects handed to the stream engine
  uint64_t restarted = 0;  // re-notifications of a syscall a signal interrupted
  uint64_t stale = 0;      // ids that were no longer valid (ENOENT)
  uint64_t listeners_closed = 0;  // listeners whose targets all exited
};

class NotifyLoop {
 public:
  struct Options {
    // nullptr: RealClock. Deadlines are armed on a CLOCK_MONOTONIC timerfd,
    // so a replacement must follow CLOCK_MONOTONIC (simulated time is for
    // TimerQueue's own tests).
    Clock* clock = nullptr;
    // Ask for SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP on every listener.
    bool sync_wakeup = true;
  };

  // `decider` must outlive the loop; `table` (events) may be null.
  NotifyLoop(Decider* decider, fault_table* table, Options options);
  NotifyLoop(Decider* decider, fault_table* table)
      : NotifyLoop(decider, table, Options{}) {}
  ~NotifyLoop();
  NotifyLoop(const NotifyLoop&) = delete;
  NotifyLoop& operator=(const NotifyLoop&) = delete;

  // Takes ownership of `listener_fd`, the listener of the filter installed
  // in the program named `program` (partition rules use the name).
  absl::Status AddListener(int listener_fd, std::string program = "");
  // Starts the loop thread.
  absl::Status Start();
  // AddListener + Start.
  absl::Status Start(int listener_fd, std::string program = "");

  // Answers every pending delayed syscall with CONTINUE, closes the
  // listeners (syscalls the filter notifies later fail with ENOSYS) and
  // joins the thread. Idempotent.
  void Stop();

  // Blocks until every listener has hung up (all target processes exited)
  // and no delay is pending, or `timeout` passes. True when done.
  bool WaitUntilDone(absl::Duration timeout);

  // Whether SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP is on for every listener.
  bool sync_wakeup() const { return sync_wakeup_.load(); }
  NotifyStats stats() const;

 private:
  struct Listener {
    int fd;
    std::string program;
  };
  struct Pending {
    int fd;
    pid_t tid;
    int nr;
    std::array<uint64_t, 6> args;
    int64_t deadline_ns;
    int reply = -1;  // at the deadline: -1 run the call, else answer this
                     // errno (0: the call succeeded)
    // A blocking connect through the stream engine: answered once the
    // engine has reached the far end (OPEN: 0) or failed to (its errno);
    // polled from the deadline on, up to `give_up_ns`.
    const fault_redirect* slot = nullptr;
    int64_t give_up_ns = 0;
  };

  void Run();
  void Wake();
  void HandleNotification(Listener& l);
  void FireExpired();
  void ArmTimer();
  void Respond(int fd, uint64_t id, int err, bool cont);
  // Connects the caller's socket (args[0]) to the stream engine in its
  // place (Decision::kRedirect). Returns the errno to answer with (0 or
  // EINPROGRESS: done), or -1 to let the connect run as it is.
  int Redirect(pid_t tid, const SyscallContext& call, const Decision& d,
               bool* blocking, const fault_redirect** slot);
  void DropListener(int fd);

  Decider* decider_;
  fault_table* table_;
  Clock* clock_;
  bool want_sync_wakeup_;

  int wake_fd_ = -1;
  int timer_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> started_{false};
  std::atomic<bool> sync_wakeup_{false};
  bool any_listener_ = false;

  absl::Mutex mu_;
  std::vector<Listener> incoming_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;

  // Loop thread only.
  std::vector<Listener> listeners_;
  TimerQueue timers_;
  int64_t armed_ns_ = 0;  // deadline the timerfd is armed for, 0: disarmed
  std::map<uint64_t, Pending> pending_;
  std::map<pid_t, uint64_t> pending_by_tid_;
  std::vector<Family> family_of_nr_;

  struct AtomicStats {
    std::atomic<uint64_t> received{0}, continued{0}, denied{0}, delayed{0},
        redirected{0}, restarted{0}, stale{0}, listeners_closed{0};
  } stats_;
};

}  // namespace fault::seccomp

#endif  // FAULT_SUPERVISOR_SECCOMP_NOTIFY_LOOP_H_
