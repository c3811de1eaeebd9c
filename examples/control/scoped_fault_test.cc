// An example GoogleTest that flips faults around a real client: a blocking
// TCP client talking to an echo server on loopback, under
// `fault exec --control unix` (fault_add_test in CMake).
//
// Each test puts the fault it needs with fault::testing::ScopedFault, checks
// what the client sees, and the fault is gone when the scope ends.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "supervisor/control/testing/fault_testing.h"

namespace {

// Echoes what each connection sends, on 127.0.0.1, until destroyed.
class EchoServer {
 public:
  EchoServer() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    socklen_t len = sizeof(a);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    listen(fd_, 16);
    thread_ = std::thread([this] {
      for (;;) {
        int c = accept(fd_, nullptr, nullptr);
        if (c < 0) return;  // closed
        char buf[256];
        ssize_t n;
        while ((n = read(c, buf, sizeof(buf))) > 0) write(c, buf, n);
        close(c);
      }
    });
  }
  ~EchoServer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  int port() const { return port_; }

 private:
  int fd_;
  int port_ = 0;
  std::thread thread_;
};

// The client under test: connect, send "ping", read it back. Returns the
// round trip in milliseconds, or -errno.
double RoundTripMs(int port) {
  auto t0 = std::chrono::steady_clock::now();
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  char buf[8];
  ssize_t n = write(fd, "ping", 4) == 4 ? read(fd, buf, sizeof(buf)) : -1;
  close(fd);
  if (n != 4) return -EIO;
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now() - t0)
      .count();
}

std::string Target(int port) {
  return "  targets: [\"tcp://127.0.0.1:" + std::to_string(port) + "\"]\n";
}

TEST(ScopedFaultExample, LatencyOnlyInsideTheScope) {
  EchoServer server;
  EXPECT_LT(RoundTripMs(server.port()), 50);
  {
    fault::testing::ScopedFault slow("slow:\n  latency: 100ms\n" +
                                     Target(server.port()));
    ASSERT_TRUE(slow.ok()) << slow.error();
    EXPECT_EQ(slow.names(), std::vector<std::string>{"slow"});
    EXPECT_GE(RoundTripMs(server.port()), 100);
  }
  EXPECT_LT(RoundTripMs(server.port()), 50);
}

TEST(ScopedFaultExample, RefusedConnectionsOnlyInsideTheScope) {
  EchoServer server;
  {
    fault::testing::ScopedFault refused(
        "refused:\n  connection_error: refused\n" + Target(server.port()));
    ASSERT_TRUE(refused.ok()) << refused.error();
    EXPECT_EQ(RoundTripMs(server.port()), -ECONNREFUSED);
  }
  EXPECT_GT(RoundTripMs(server.port()), 0);
}

TEST(ScopedFaultExample, AnInvalidPolicyIsReportedWithItsField) {
  fault::testing::ScopedFault bad("bad:\n  latency: 3 fortnights\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(bad.error().find("latency"), std::string::npos) << bad.error();
}

}  // namespace
