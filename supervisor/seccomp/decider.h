// The narrow interface between the notification loop and the policy engine:
// one notified syscall in, one decision out.
//
// The production implementation wraps the shared decision engine that the
// preload shim also uses (so a seed gives the same decisions through either
// layer); tests use FakeDecider.
//
// Thread-safety: NotifyLoop calls a Decider from its one loop thread only.
#ifndef FAULT_SUPERVISOR_SECCOMP_DECIDER_H_
#define FAULT_SUPERVISOR_SECCOMP_DECIDER_H_

#include <sys/socket.h>
#include <sys/types.h>

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "supervisor/seccomp/families.h"

namespace fault::seccomp {

// What the loop knows about one notified syscall.
struct SyscallContext {
  Family family = Family::kUnspecified;
  int nr = -1;
  pid_t pid = 0;  // thread group of the caller (supervisor's pid namespace)
  pid_t tid = 0;  // the calling thread
  std::array<uint64_t, 6> args{};
  // File families: the absolute path the call names (open, unlink, ...) or
  // the path of its descriptor (read, write, fsync, ...). Empty when not
  // read (no rule needs it) or not a file.
  std::string path;
  // connect / sendto: the destination, read from the target's memory.
  std::optional<sockaddr_storage> addr;
  // The name the supervisor gave the launched program the caller belongs
  // to ("" if unnamed); used by partition rules.
  std::string program;
  // Made from the shim's stub page: the shim has applied the syscall rules
  // already; only partitions are left to decide.
  bool from_stub = false;
};

struct Decision {
  // kRedirect: a TCP connect that a rule with stream effects selects; the
  // loop connects the caller's socket to the stream engine instead
  // (delay_ns: the emulated handshake).
  enum class Kind { kContinue, kDeny, kDelay, kRedirect };
  Kind kind = Kind::kContinue;
  int err = 0;            // kDeny: positive errno the caller sees; kDelay:
                          // fail with it after the delay (0: run the call)
  int64_t delay_ns = 0;   // kDelay, kRedirect
  int rule = -1;          // index into fault_config.rules, -1: none
  int syscall_rule = -1;  // index into fault_config.syscall_rules, -1: none
  uint16_t effect =
      0;  // fault_effect of the event (DENY, DELAY, PARTITION, ...)

  static Decision Continue() { return {}; }
};

class Decider {
 public:
  virtual ~Decider() = default;
  // Whether a rule for `family` needs the path or the socket address; when
  // false the loop does not read the target's memory (the fast path).
  virtual bool NeedsDetail(Family family) = 0;
  // Decides one syscall. Bumps the matched/fired counters of the rule that
  // decided it, as the shim does for its own decisions.
  virtual Decision Decide(const SyscallContext& call) = 0;
  // The configuration generation the last decision was made under (events
  // name their rule by index in it); 0: unknown.
  virtual uint64_t generation() const { return 0; }
};

// A Decider driven by a function, for tests.
class FakeDecider : public Decider {
 public:
  using Fn = std::function<Decision(const SyscallContext&)>;
  explicit FakeDecider(Fn fn, bool needs_detail = true)
      : fn_(std::move(fn)), needs_detail_(needs_detail) {}
  bool NeedsDetail(Family) override { return needs_detail_; }
  Decision Decide(const SyscallContext& call) override { return fn_(call); }

 private:
  Fn fn_;
  bool needs_detail_;
};

}  // namespace fault::seccomp

#endif  // FAULT_SUPERVISOR_SECCOMP_DECIDER_H_
