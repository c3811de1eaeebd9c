#include "ebpf/capture.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fault::ebpf {
namespace {

using ::testing::HasSubstr;

TEST(Cgroup2MountTest, FindsTheHybridLayoutsUnifiedMount) {
  const char* text =
      "22 1 0:21 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n"
      "23 22 0:22 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
      "30 22 0:29 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw\n";
  absl::StatusOr<std::string> m = Cgroup2MountFromMountinfo(text);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(*m, "/sys/fs/cgroup/unified");
}

TEST(Cgroup2MountTest, FindsTheUnifiedLayoutsMount) {
  absl::StatusOr<std::string> m = Cgroup2MountFromMountinfo(
      "25 1 0:23 / /sys/fs/cgroup rw,nosuid,nodev shared:9 - cgroup2 cgroup2 rw,nsdelegate\n");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(*m, "/sys/fs/cgroup");
}

TEST(Cgroup2MountTest, UnescapesAndPrefersTheRootOfTheHierarchy) {
  const char* text =
      "40 1 0:30 /sub /mnt/view rw - cgroup2 cgroup2 rw\n"
      "41 1 0:30 / /mnt/cg\\040two rw shared:1 - cgroup2 none rw\n";
  absl::StatusOr<std::string> m = Cgroup2MountFromMountinfo(text);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(*m, "/mnt/cg two");
}

TEST(Cgroup2MountTest, ExplainsWhatIsMissing) {
  absl::StatusOr<std::string> none =
      Cgroup2MountFromMountinfo("22 1 0:21 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n");
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(std::string(none.status().message()), HasSubstr("no cgroup2"));
  absl::StatusOr<std::string> sub =
      Cgroup2MountFromMountinfo("40 1 0:30 /docker/x /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
  ASSERT_FALSE(sub.ok());
  EXPECT_THAT(std::string(sub.status().message()), HasSubstr("not the hierarchy's root"));
}

TEST(CaptureOptionsTest, RejectsNamesTheKernelCannotHold) {
  if (!CaptureBuilt()) GTEST_SKIP() << "built without BPF";
  CaptureOptions o;
  o.process_names = {"a-name-longer-than-15"};
  absl::StatusOr<std::unique_ptr<Capture>> c = Capture::Start(o);
  ASSERT_FALSE(c.ok());
  if (c.status().code() == absl::StatusCode::kPermissionDenied) GTEST_SKIP() << c.status();
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("longer than 15 bytes"));
  o.process_names = {"/usr/bin/curl"};
  c = Capture::Start(o);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("not a path"));
  o.process_names = {};
  o.cgroups = {"/no-such-cgroup-of-fault"};
  c = Capture::Start(o);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("no-such-cgroup-of-fault"));
}

// Root-only: loads and attaches to the cgroup2 root, selecting a process
// name no other process has.
class CaptureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!CaptureBuilt()) GTEST_SKIP() << "built without BPF";
    // Without the privilege capture cannot run; any other failure is a bug.
    absl::Status s = ProbeCapture();
    if (s.code() == absl::StatusCode::kPermissionDenied) GTEST_SKIP() << s;
    ASSERT_TRUE(s.ok()) << s;
  }

  static int Listen(int family, int type, uint16_t* port) {
    int fd = socket(family, type | SOCK_CLOEXEC, 0);
    sockaddr_storage ss = {};
    socklen_t len;
    if (family == AF_INET) {
      auto* in = reinterpret_cast<sockaddr_in*>(&ss);
      in->sin_family = AF_INET;
      in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      len = sizeof(*in);
    } else {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
      in6->sin6_family = AF_INET6;
      in6->sin6_addr = in6addr_loopback;
      int one = 1;
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
      len = sizeof(*in6);
    }
    if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
      close(fd);
      return -1;
    }
    if (type == SOCK_STREAM) listen(fd, 16);
    getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    *port = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                    : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    return fd;
  }

  static bool Readable(int fd, int ms) {
    pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, ms) == 1;
  }

  // Forks a child named `comm` that runs `body` and exits with its result.
  template <typename F>
  static pid_t Child(const char* comm, F body) {
    pid_t pid = fork();
    if (pid == 0) {
      prctl(PR_SET_NAME, comm);
      _exit(body());
    }
    return pid;
  }

  // A TCP socket connected to 127.0.0.1:port, or -1.
  static int ConnectLoopback4(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in to = {};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(port);
    if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
      close(fd);
      return -1;
    }
    return fd;
  }

  static int Wait(pid_t pid) {
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
};

TEST_F(CaptureTest, SelectedProcessReachesTheEngineWithItsOrigin) {
  uint16_t engine_port = 0, server_port = 0;
  int engine = Listen(AF_INET, SOCK_STREAM, &engine_port);
  int server = Listen(AF_INET, SOCK_STREAM, &server_port);
  ASSERT_GE(engine, 0);
  ASSERT_GE(server, 0);
  CaptureOptions o;
  o.process_names = {"fcaptcp4"};
  o.tcp_port4 = engine_port;
  absl::StatusOr<std::unique_ptr<Capture>> c = Capture::Start(o);
  ASSERT_TRUE(c.ok()) << c.status();

  // The selected child connects to the server, lands on the engine, and
  // sees the server as its peer.
  auto connect_to_server = [server_port]() {
    int fd = ConnectLoopback4(server_port);
    if (fd < 0) return 10;
    sockaddr_in peer = {};
    socklen_t len = sizeof(peer);
    getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len);
    if (ntohs(peer.sin_port) != server_port) return 11;
    usleep(300000);
    return 0;
  };
  pid_t captured = Child("fcaptcp4", connect_to_server);
  ASSERT_TRUE(Readable(engine, 3000)) << "the selected process never reached the engine";
  sockaddr_storage peer = {};
  socklen_t len = sizeof(peer);
  int accepted = accept4(engine, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
  ASSERT_GE(accepted, 0);
  Origin origin;
  ASSERT_TRUE((*c)->TakeOrigin(peer, IPPROTO_TCP, &origin));
  ASSERT_EQ(origin.destination.ss_family, AF_INET);
  const auto* dst = reinterpret_cast<const sockaddr_in*>(&origin.destination);
  EXPECT_EQ(ntohs(dst->sin_port), server_port);
  EXPECT_EQ(dst->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
  EXPECT_EQ(origin.pid, static_cast<uint32_t>(captured));
  EXPECT_STREQ(origin.comm, "fcaptcp4");
  // Taken: a second lookup finds nothing.
  EXPECT_FALSE((*c)->TakeOrigin(peer, IPPROTO_TCP, &origin));
  EXPECT_EQ(Wait(captured), 0);
  EXPECT_FALSE(Readable(server, 0)) << "the server was reached directly";
  close(accepted);

  // Another name goes straight to the server.
  pid_t other = Child("fcapother", connect_to_server);
  EXPECT_TRUE(Readable(server, 3000));
  EXPECT_FALSE(Readable(engine, 0));
  EXPECT_EQ(Wait(other), 0);
  EXPECT_EQ((*c)->counters().tcp4, 1u);
  close(engine);
  close(server);
}

TEST_F(CaptureTest, PrefixSelectsAndDetachingStopsCapture) {
  uint16_t engine_port = 0, server_port = 0;
  int engine = Listen(AF_INET, SOCK_STREAM, &engine_port);
  int server = Listen(AF_INET, SOCK_STREAM, &server_port);
  CaptureOptions o;
  o.process_names = {"fcappre*", "fcapexact"};
  o.tcp_port4 = engine_port;
  auto connect_to_server = [server_port]() { return ConnectLoopback4(server_port) >= 0 ? 0 : 1; };
  {
    absl::StatusOr<std::unique_ptr<Capture>> c = Capture::Start(o);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(Wait(Child("fcapprefix42", connect_to_server)), 0);
    EXPECT_TRUE(Readable(engine, 3000));
    EXPECT_FALSE(Readable(server, 0));
    // An exact name is not a prefix.
    EXPECT_EQ(Wait(Child("fcapexact2", connect_to_server)), 0);
    EXPECT_TRUE(Readable(server, 3000));
    sockaddr_storage peer;
    socklen_t len = sizeof(peer);
    close(accept4(server, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC));
    EXPECT_EQ(Wait(Child("fcapexact", connect_to_server)), 0);
    EXPECT_FALSE(Readable(server, 300));
  }
  // Detached with the Capture: the same name now connects directly.
  EXPECT_EQ(Wait(Child("fcapprefix43", connect_to_server)), 0);
  EXPECT_TRUE(Readable(server, 3000));
  close(engine);
  close(server);
}

TEST_F(CaptureTest, UdpDatagramsAndRepliesKeepTheOriginalAddress) {
  uint16_t engine_port = 0, server_port = 0;
  int engine = Listen(AF_INET, SOCK_DGRAM, &engine_port);
  int server = Listen(AF_INET, SOCK_DGRAM, &server_port);
  CaptureOptions o;
  o.process_names = {"fcapudp"};
  o.tcp_port4 = 1;  // unused here
  o.udp_port4 = engine_port;
  absl::StatusOr<std::unique_ptr<Capture>> c = Capture::Start(o);
  ASSERT_TRUE(c.ok()) << c.status();

  for (bool connected : {false, true}) {
    SCOPED_TRACE(connected ? "connected" : "unconnected");
    pid_t child = Child("fcapudp", [server_port, connected]() {
      int fd = socket(AF_INET, SOCK_DGRAM, 0);
      sockaddr_in to = {};
      to.sin_family = AF_INET;
      to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      to.sin_port = htons(server_port);
      if (connected) {
        if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) return 10;
        if (send(fd, "ping", 4, 0) != 4) return 11;
      } else if (sendto(fd, "ping", 4, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 4) {
        return 11;
      }
      pollfd p = {fd, POLLIN, 0};
      if (poll(&p, 1, 3000) != 1) return 12;
      char buf[16];
      sockaddr_in from = {};
      socklen_t len = sizeof(from);
      if (recvfrom(fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len) != 4)
        return 13;
      return ntohs(from.sin_port) == server_port ? 0 : 14;
    });
    ASSERT_TRUE(Readable(engine, 3000));
    char buf[16];
    sockaddr_storage from = {};
    socklen_t len = sizeof(from);
    ASSERT_EQ(recvfrom(engine, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len), 4);
    Origin origin;
    ASSERT_TRUE((*c)->TakeOrigin(from, IPPROTO_UDP, &origin));
    EXPECT_EQ(ntohs(reinterpret_cast<const sockaddr_in*>(&origin.destination)->sin_port),
              server_port);
    // UDP entries stay for the socket's later datagrams.
    EXPECT_TRUE((*c)->TakeOrigin(from, IPPROTO_UDP, &origin));
    // The reply, sent from the engine, appears to come from the server.
    ASSERT_EQ(sendto(engine, "pong", 4, 0, reinterpret_cast<sockaddr*>(&from), len), 4);
    EXPECT_EQ(Wait(child), 0);
    (*c)->Release(from, IPPROTO_UDP);
    EXPECT_FALSE(Readable(server, 0));
  }
  close(engine);
  close(server);
}

TEST_F(CaptureTest, Ipv6AndMappedAddressesGoToTheirListeners) {
  uint16_t e4 = 0, e6 = 0, s6 = 0, s4 = 0;
  int engine4 = Listen(AF_INET, SOCK_STREAM, &e4);
  int engine6 = Listen(AF_INET6, SOCK_STREAM, &e6);
  int server6 = Listen(AF_INET6, SOCK_STREAM, &s6);
  int server4 = Listen(AF_INET, SOCK_STREAM, &s4);
  if (engine6 < 0 || server6 < 0) GTEST_SKIP() << "no IPv6 loopback";
  CaptureOptions o;
  o.process_names = {"fcapv6"};
  o.tcp_port4 = e4;
  o.tcp_port6 = e6;
  absl::StatusOr<std::unique_ptr<Capture>> c = Capture::Start(o);
  ASSERT_TRUE(c.ok()) << c.status();
  auto connect6 = [](in6_addr addr, uint16_t port) {
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    sockaddr_in6 to = {};
    to.sin6_family = AF_INET6;
    to.sin6_addr = addr;
    to.sin6_port = htons(port);
    if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) return 10;
    usleep(200000);
    return 0;
  };
  in6_addr mapped = {};
  inet_pton(AF_INET6, "::ffff:127.0.0.1", &mapped);

  EXPECT_EQ(Wait(Child("fcapv6", [&]() { return connect6(in6addr_loopback, s6); })), 0);
  ASSERT_TRUE(Readable(engine6, 3000));
  sockaddr_storage peer = {};
  socklen_t len = sizeof(peer);
  int a = accept4(engine6, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
  Origin origin;
  ASSERT_TRUE((*c)->TakeOrigin(peer, IPPROTO_TCP, &origin));
  ASSERT_EQ(origin.destination.ss_family, AF_INET6);
  EXPECT_EQ(ntohs(reinterpret_cast<sockaddr_in6*>(&origin.destination)->sin6_port), s6);
  close(a);

  EXPECT_EQ(Wait(Child("fcapv6", [&]() { return connect6(mapped, s4); })), 0);
  ASSERT_TRUE(Readable(engine4, 3000)) << "a v4-mapped connect lands on the IPv4 listener";
  len = sizeof(peer);
  a = accept4(engine4, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
  ASSERT_TRUE((*c)->TakeOrigin(peer, IPPROTO_TCP, &origin));
  ASSERT_EQ(origin.destination.ss_family, AF_INET);
  EXPECT_EQ(ntohs(reinterpret_cast<sockaddr_in*>(&origin.destination)->sin_port), s4);
  close(a);
  EXPECT_FALSE(Readable(server4, 0));
  EXPECT_FALSE(Readable(server6, 0));
  close(engine4);
  close(engine6);
  close(server4);
  close(server6);
}

TEST_F(CaptureTest, PidTreeIsFollowedIntoChildren) {
  uint16_t engine_port = 0, server_port = 0;
  int engine = Listen(AF_INET, SOCK_STREAM, &engine_port);
  int server = Listen(AF_INET, SOCK_STREAM, &server_port);
  int gate[2];
  ASSERT_EQ(pipe(gate), 0);
  // The parent waits on the gate, then forks a grandchild that connects.
  pid_t parent = Child("fcaptree", [&]() {
    char b;
    if (read(gate[0], &b, 1) != 1) return 20;
    pid_t g = fork();
    if (g == 0) _exit(ConnectLoopback4(server_port) >= 0 ? 0 : 1);
    int status = 0;
    waitpid(g, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 21;
  });
  CaptureOptions o;
  o.pids = {parent};
  o.tcp_port4 = engine_port;
  absl::StatusOr<std::unique_ptr<Capture>> c = Capture::Start(o);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(write(gate[1], "x", 1), 1);
  EXPECT_EQ(Wait(parent), 0);
  EXPECT_TRUE(Readable(engine, 3000)) << "the grandchild was not captured";
  EXPECT_FALSE(Readable(server, 0));
  close(gate[0]);
  close(gate[1]);
  close(engine);
  close(server);
}

}  // namespace
}  // namespace fault::ebpf
