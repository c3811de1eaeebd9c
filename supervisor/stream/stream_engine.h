// The stream engine: a relay in the supervisor that applies a policy's
// stream effects (latency, jitter, loss as retransmission stalls, rate,
// black holes, budgets, half-open, resets) to real kernel sockets.
//
// A target's connection reaches the engine in one of two ways (see
// fault_redirect in shim/include/fault/table.h):
//   - connect: the target side binds its socket to a loopback port P, fills
//     redirects[family][P] with the real destination, and connects to the
//     engine's listener; the engine connects to the destination itself.
//   - accepted: a server's accepted socket is sent to the engine's control
//     socket (SCM_RIGHTS) with the port P of a fresh socket that the target
//     side connects to the engine and then puts in the accepted socket's
//     place.
// Either way the target holds a real TCP socket whose bytes arrive late,
// slowly or not at all because the engine holds them back, so readiness,
// buffering and backpressure are the kernel's own for every I/O model
// (blocking, poll, epoll edge-triggered, io_uring, Go's netpoller).
//
// Each direction of each connection is a FIFO of chunks as they were read,
// each with the time it may be written on. One decision of the shared
// engine (shim/engine, DecideNet) is drawn per chunk read, with the same
// counters, seeds and event ring as the shim's, so a seed gives the same
// decisions here as anywhere. Reading a direction stops while more than
// `high_watermark` bytes wait in it.
//
//   auto engine = StreamEngine::Start({.table = table->table()});
//   ... targets started now find it through the table header ...
//   engine->Finish(timeout);  // once the targets are gone: flush, then stop
//
// Thread-safety: Start() and the destructor from one thread; stats() from
// any. The loop runs on a thread of its own.
#ifndef FAULT_SUPERVISOR_STREAM_STREAM_ENGINE_H_
#define FAULT_SUPERVISOR_STREAM_STREAM_ENGINE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "fault/table.h"

namespace fault::stream {

class StreamEngine {
 public:
  struct Options {
    fault_table* table = nullptr;      // required; outlives the engine
    size_t high_watermark = 2 << 20;   // bytes queued per direction
    // Publish the listeners and the control socket in the table header
    // (engine_port4/6, engine_control) so that targets find them.
    bool advertise = true;
  };

  struct Stats {
    uint64_t accepted = 0;    // connections handed to the engine
    uint64_t unclaimed = 0;   // accepted with no armed redirect (refused)
    uint64_t far_failed = 0;  // the far end could not be reached
    uint64_t open = 0;        // connections now open
    uint64_t bytes_up = 0;    // target -> far end, written
    uint64_t bytes_down = 0;  // far end -> target, written
  };

  // Binds 127.0.0.1:0, [::1]:0 (when the machine has IPv6 loopback) and an
  // abstract AF_UNIX datagram socket, then starts the loop.
  static absl::StatusOr<std::unique_ptr<StreamEngine>> Start(
      const Options& options);

  ~StreamEngine();
  StreamEngine(const StreamEngine&) = delete;
  StreamEngine& operator=(const StreamEngine&) = delete;

  uint16_t port4() const { return port4_; }
  uint16_t port6() const { return port6_; }
  // The control socket's abstract name, without the leading NUL.
  const std::string& control_name() const { return control_name_; }

  Stats stats() const;

  // Stops taking connections and waits, at most `timeout_ns` and while
  // bytes keep moving (two seconds without progress end it), until every
  // byte the targets sent before they closed their sockets has been passed
  // on, as the kernel would deliver a closed socket's buffer. Then the loop
  // stops. Returns the number of connections cut short.
  size_t Finish(int64_t timeout_ns);

  class Loop;  // the event loop (stream_engine.cc)

 private:
  StreamEngine() = default;

  std::unique_ptr<Loop> loop_;
  std::thread thread_;
  uint16_t port4_ = 0;
  uint16_t port6_ = 0;
  std::string control_name_;
};

}  // namespace fault::stream

#endif  // FAULT_SUPERVISOR_STREAM_STREAM_ENGINE_H_
