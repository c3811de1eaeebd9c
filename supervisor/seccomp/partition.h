// Which launched program listens on which port, for partition(a, b).
//
// partition(a, b) between two programs launched under one supervisor: a
// connect() from a process of `a` to a TCP port on which a process of `b`
// listens is refused with ECONNREFUSED, and a UDP datagram sent to a port a
// process of `b` has bound fails with ENETUNREACH (and the other way round).
// Programs are named when launched (Register); their processes are the launched
// process and all its descendants. A listening port is found in
// /proc/net/tcp{,6} (the supervisor's network namespace) and attributed to a
// program through the socket inodes in its processes' /proc/PID/fd.
//
// Thread-safety: Register and ProgramListens may be called from different
// threads (a mutex guards the registry).
#ifndef FAULT_SUPERVISOR_SECCOMP_PARTITION_H_
#define FAULT_SUPERVISOR_SECCOMP_PARTITION_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace fault::seccomp {

class PartitionMap {
 public:
  // Names the program whose first process is `root_pid`.
  void Register(std::string name, pid_t root_pid);
  // The root pid of `name`, 0 if unknown.
  pid_t RootPid(absl::string_view name) const;
  enum class Transport { kTcp, kUdp };

  // True if a process of program `name` holds a TCP socket listening on
  // `port` (host byte order), or for kUdp a UDP socket bound to it.
  bool ProgramListens(absl::string_view name, uint16_t port,
                      Transport transport = Transport::kTcp) const;

  // True if descriptor `fd` of thread `tid` is a datagram socket (through
  // pidfd_getfd, which needs ptrace access to the target: the supervisor
  // is its parent).
  static bool IsUdpSocket(pid_t tid, int fd);

  // Pieces, exposed for tests: inodes of the sockets in state `state`
  // ("0A": TCP listen, "07": unconnected UDP) bound to `port` in the
  // contents of /proc/net/{tcp,tcp6,udp,udp6}.
  static std::vector<uint64_t> SocketInodes(absl::string_view proc_net,
                                            uint16_t port,
                                            absl::string_view state);
  static std::vector<uint64_t> ListeningInodes(absl::string_view proc_net_tcp,
                                               uint16_t port) {
    return SocketInodes(proc_net_tcp, port, "0A");
  }
  // `root` and every descendant (bounded to 4096 processes).
  static std::vector<pid_t> ProcessTree(pid_t root);

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, pid_t, std::less<>> roots_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fault::seccomp

#endif  // FAULT_SUPERVISOR_SECCOMP_PARTITION_H_
