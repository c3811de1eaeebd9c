// Two threads connect to 127.0.0.1:PORT; only the first does so inside
// fault::ScopedPolicy(POLICY). Prints one line per thread:
//   scoped: ok|<errno name>
//   other: ok|<errno name>
// and "scope: active|inactive". Exit status 0 unless the arguments are bad.
//
// Usage: scoped_threads PORT POLICY
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "fault/scoped_policy.h"

namespace {

std::string ConnectOnce(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "socket failed";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int err = errno;
  close(fd);
  if (rc == 0) return "ok";
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : std::to_string(err);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: scoped_threads PORT POLICY\n");
    return 2;
  }
  int port = std::atoi(argv[1]);
  std::string scoped_result, other_result;
  bool active = false;
  // One after the other so that the order of lines is fixed; the scope is
  // still per thread.
  std::thread scoped([&] {
    fault::ScopedPolicy policy(argv[2]);
    active = policy.active();
    scoped_result = ConnectOnce(port);
  });
  scoped.join();
  std::thread other([&] { other_result = ConnectOnce(port); });
  other.join();
  std::string main_result = ConnectOnce(port);
  std::printf("scope: %s\nscoped: %s\nother: %s\nmain: %s\n",
              active ? "active" : "inactive", scoped_result.c_str(),
              other_result.c_str(), main_result.c_str());
  return 0;
}
