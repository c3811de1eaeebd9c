#include "supervisor/seccomp/partition.h"

#include <dirent.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "supervisor/seccomp/target_memory.h"

namespace fault::seccomp {
namespace {

constexpr size_t kMaxProcesses = 4096;
constexpr absl::string_view kTcpListen = "0A";

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

void PartitionMap::Register(std::string name, pid_t root_pid) {
  absl::MutexLock lock(&mu_);
  roots_[std::move(name)] = root_pid;
}

pid_t PartitionMap::RootPid(absl::string_view name) const {
  absl::MutexLock lock(&mu_);
  auto it = roots_.find(name);
  return it == roots_.end() ? 0 : it->second;
}

std::vector<uint64_t> PartitionMap::SocketInodes(absl::string_view proc_net,
                                                 uint16_t port,
                                                 absl::string_view state) {
  // "  sl  local_address rem_address   st tx_queue:rx_queue tr:tm->when
  //  retrnsmt   uid  timeout inode"
  std::vector<uint64_t> out;
  bool header = true;
  for (absl::string_view line : absl::StrSplit(proc_net, '\n')) {
    if (header) {
      header = false;
      continue;
    }
    std::vector<absl::string_view> f =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.size() < 10 || f[3] != state) continue;
    size_t colon = f[1].rfind(':');
    if (colon == absl::string_view::npos) continue;
    uint32_t local_port = 0;
    if (!absl::SimpleHexAtoi(f[1].substr(colon + 1), &local_port)) continue;
    uint64_t inode = 0;
    if (local_port == port && absl::SimpleAtoi(f[9], &inode) && inode != 0) {
      out.push_back(inode);
    }
  }
  return out;
}

bool PartitionMap::IsUdpSocket(pid_t tid, int fd) {
  // A copy of the target's descriptor answers SO_TYPE; an unbound UDP
  // socket is not listed in /proc/net/udp yet (it binds on its first send).
  const int pidfd =
      static_cast<int>(syscall(SYS_pidfd_open, ThreadGroupOf(tid), 0));
  if (pidfd < 0) return false;
  const int copy = static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, fd, 0));
  close(pidfd);
  if (copy < 0) return false;
  int type = 0;
  socklen_t len = sizeof(type);
  const bool udp = getsockopt(copy, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
                   type == SOCK_DGRAM;
  close(copy);
  return udp;
}

std::vector<pid_t> PartitionMap::ProcessTree(pid_t root) {
  std::vector<pid_t> out;
  std::vector<pid_t> todo = {root};
  std::set<pid_t> seen;
  while (!todo.empty() && out.size() < kMaxProcesses) {
    pid_t pid = todo.back();
    todo.pop_back();
    if (!seen.insert(pid).second) continue;
    out.push_back(pid);
    // Children of every thread (CONFIG_PROC_CHILDREN).
    std::string task_dir = absl::StrCat("/proc/", pid, "/task");
    DIR* d = opendir(task_dir.c_str());
    if (d == nullptr) continue;
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::string children =
          ReadWholeFile(absl::StrCat(task_dir, "/", e->d_name, "/children"));
      for (absl::string_view c :
           absl::StrSplit(children, ' ', absl::SkipEmpty())) {
        pid_t child;
        if (absl::SimpleAtoi(absl::StripAsciiWhitespace(c), &child))
          todo.push_back(child);
      }
    }
    closedir(d);
  }
  return out;
}

bool PartitionMap::ProgramListens(absl::string_view name, uint16_t port,
                                  Transport transport) const {
  pid_t root = RootPid(name);
  if (root == 0) return false;
  std::set<uint64_t> inodes;
  const bool udp = transport == Transport::kUdp;
  static constexpr const char* kTcpFiles[] = {"/proc/net/tcp",
                                              "/proc/net/tcp6"};
  static constexpr const char* kUdpFiles[] = {"/proc/net/udp",
                                              "/proc/net/udp6"};
  for (const char* file : udp ? kUdpFiles : kTcpFiles) {
    for (uint64_t i :
         SocketInodes(ReadWholeFile(file), port, udp ? "07" : "0A"))
      inodes.insert(i);
  }
  if (inodes.empty()) return false;
  for (pid_t pid : ProcessTree(root)) {
    std::string fd_dir = absl::StrCat("/proc/", pid, "/fd");
    DIR* d = opendir(fd_dir.c_str());
    if (d == nullptr) continue;
    bool found = false;
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      char link[64];
      ssize_t n = readlinkat(dirfd(d), e->d_name, link, sizeof(link) - 1);
      if (n <= 0) continue;
      absl::string_view target(link, static_cast<size_t>(n));
      // "socket:[12345]"
      if (!absl::ConsumePrefix(&target, "socket:[") ||
          !absl::ConsumeSuffix(&target, "]")) {
        continue;
      }
      uint64_t inode;
      if (absl::SimpleAtoi(target, &inode) && inodes.contains(inode)) {
        found = true;
        break;
      }
    }
    closedir(d);
    if (found) return true;
  }
  return false;
}

}  // namespace fault::seccomp
