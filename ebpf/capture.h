// Stealth capture: loads the cgroup BPF programs of capture.bpf.c, attaches
// them once to the cgroup2 root, and tells the stream engine where each
// captured connection or datagram was going.
//
//   auto capture = Capture::Start({.process_names = {"curl"},
//                                  .tcp_port4 = engine->ports()[0], ...});
//   ... the engine's origin lookup calls capture->TakeOrigin(peer, ...) ...
//   capture.reset();  // detaches everything
//
// The links belong to this process and are not pinned: when it exits, even
// by SIGKILL, the kernel detaches the programs. A process is captured when
// any selector matches it (OR), and only in fault's network namespace unless
// `all_netns`. See docs/stealth.md.
//
// Thread-safety: TakeOrigin, Release, AddPid and counters() may be called
// from any thread once Start has returned.
#ifndef FAULT_EBPF_CAPTURE_H_
#define FAULT_EBPF_CAPTURE_H_

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct fault_capture;
struct bpf_link;

namespace fault::ebpf {

struct CaptureOptions {
  // Process names (comm, at most 15 bytes) captured at every connect; a
  // name ending in '*' is a prefix ("py*" matches python3).
  std::vector<std::string> process_names;
  // Processes captured with every descendant started from now on.
  std::vector<pid_t> pids;
  // Programs captured from their exec on, with their descendants: the name
  // the kernel gives the process at exec (the file's base name, 15 bytes).
  std::vector<std::string> exec_names;
  // cgroup2 directories: absolute paths, or paths relative to the cgroup2
  // mount ("/system.slice/x.service", as /proc/PID/cgroup shows them).
  std::vector<std::string> cgroups;
  // Track the PID tree even with no `pids` yet (AddPid comes later).
  bool follow_pids = false;
  // Capture in every network namespace, not only fault's.
  bool all_netns = false;
  // The engine's loopback listeners (host order; 0: that kind is not
  // captured): TCP on 127.0.0.1 and [::1], UDP likewise.
  uint16_t tcp_port4 = 0;
  uint16_t tcp_port6 = 0;
  uint16_t udp_port4 = 0;
  uint16_t udp_port6 = 0;
  // The SO_MARK of the engine's upstream sockets (0: none); those are never
  // captured, nor is any socket of this process.
  uint32_t mark = 0;
};

// Where a captured client was going.
struct Origin {
  sockaddr_storage destination{};  // AF_INET or AF_INET6
  uint32_t pid = 0;
  char comm[16] = {};
};

struct CaptureCounters {
  uint64_t tcp4 = 0, tcp6 = 0, udp4 = 0, udp6 = 0;  // redirected
  uint64_t no_storage = 0;  // selected but left alone (no socket storage)
  uint64_t map_full = 0;    // map updates that failed
};

class Capture {
 public:
  // Checks privileges, finds the cgroup2 mount, loads and attaches. An
  // error says what is missing and leaves nothing attached.
  static absl::StatusOr<std::unique_ptr<Capture>> Start(const CaptureOptions& options);
  ~Capture();
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;

  // The destination of the client at `client` (the peer of an accepted
  // connection, the source of a datagram). A TCP connection, and the first
  // datagram of a connected UDP socket, cost a sock_diag round trip (tens
  // of microseconds, one at a time). TCP entries are taken (deleted);
  // UDP entries stay (an unconnected socket's entry is its latest
  // destination) until Release. False when unknown.
  bool TakeOrigin(const sockaddr_storage& client, int protocol, Origin* out);
  void Release(const sockaddr_storage& client, int protocol);

  // Captures `pid` and its future descendants (options.follow_pids or pids).
  absl::Status AddPid(pid_t pid);

  CaptureCounters counters() const;

 private:
  Capture() = default;
  bool DiagCookie(const sockaddr_storage& client, int protocol, uint64_t* cookie);

  fault_capture* skel_ = nullptr;
  std::vector<bpf_link*> links_;
  CaptureOptions options_;
  std::mutex diag_mu_;
  int diag_fd_ = -1;
};

// The cgroup2 mount point named in a /proc/self/mountinfo text.
absl::StatusOr<std::string> Cgroup2MountFromMountinfo(std::string_view mountinfo);
// The same for this process.
absl::StatusOr<std::string> FindCgroup2Mount();

// Whether capture can run here: a real load and attach with nothing
// selected, then detached. OK, or the reason it cannot.
absl::Status ProbeCapture();

// Whether the build includes the BPF programs.
bool CaptureBuilt();

}  // namespace fault::ebpf

#endif  // FAULT_EBPF_CAPTURE_H_
