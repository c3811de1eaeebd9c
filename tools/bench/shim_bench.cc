// Cost of libfault_shim.so's wrappers when no policy matches.
//
// The shim is loaded into this process with dlopen (its constructor maps a
// policy table this program writes into a memfd), and its `send`/`recv` are
// called through dlsym on that handle: the exact code a preloaded program
// runs, minus the PLT hop. Baselines: the raw syscalls through syscall(2),
// and libc's send/recv.
//
// Cases (each one round trip: send 64 bytes, recv them back):
//   RawSyscall            syscall(SYS_sendto) + syscall(SYS_recvfrom)
//   Libc                  send() + recv() from libc
//   Shim/EmptyTable       the shim, table with no policy
//   Shim/OtherPolicy      the shim, a TCP latency policy for another port
//                         plus an fsync rule (nothing matches a socketpair)
//   Tcp/Libc              send() + recv() from libc on a loopback TCP
//                         connection
//   Tcp/Shim/OtherPolicy  the shim on that connection with an active
//                         network policy for another port: the first calls
//                         take the slow path and leave the fd's verdict "no
//                         rule matches"; the rest check it and pass through
// Goal: Shim/EmptyTable, Shim/OtherPolicy and Tcp/Shim/OtherPolicy within 2%
// of their libc baselines.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <string>

#include "shim/engine/engine.h"

namespace {

namespace eng = fault::engine;

using SendFn = ssize_t (*)(int, const void*, size_t, int);
using RecvFn = ssize_t (*)(int, void*, size_t, int);

struct Shim {
  fault_table* table = nullptr;
  fault_config* cfg = nullptr;
  SendFn send = nullptr;
  RecvFn recv = nullptr;
  std::string error;
};

Shim& LoadShim() {
  static Shim s = [] {
    Shim x;
    int fd = memfd_create("fault-bench-table", 0);
    if (fd < 0 || ftruncate(fd, sizeof(fault_table)) != 0) {
      x.error = "memfd";
      return x;
    }
    void* p = mmap(nullptr, sizeof(fault_table), PROT_READ | PROT_WRITE,
                   MAP_SHARED, fd, 0);
    x.table = static_cast<fault_table*>(p);
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    eng::InitTable(x.table, int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec);
    x.cfg = static_cast<fault_config*>(calloc(1, sizeof(fault_config)));
    setenv(FAULT_ENV_TABLE_FD, std::to_string(fd).c_str(), 1);
    const char* path = getenv("FAULT_SHIM");
    void* h = dlopen(path ? path : FAULT_SHIM_PATH, RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
      x.error = dlerror();
      return x;
    }
    x.send = reinterpret_cast<SendFn>(dlsym(h, "send"));
    x.recv = reinterpret_cast<RecvFn>(dlsym(h, "recv"));
    return x;
  }();
  return s;
}

void PublishEmpty(Shim& s) {
  memset(s.cfg, 0, sizeof(fault_config));
  eng::Publish(s.table, s.cfg);
}

// A policy that matches nothing the benchmark does.
void PublishOther(Shim& s, uint16_t port) {
  memset(s.cfg, 0, sizeof(fault_config));
  s.cfg->n_rules = 1;
  fault_rule& r = s.cfg->rules[0];
  strcpy(r.name, "other");
  r.flags = FAULT_RULE_ACTIVE;
  r.n_targets = 1;
  s.cfg->targets[0].kind = FAULT_TARGET_CIDR;
  s.cfg->targets[0].family = AF_INET;
  s.cfg->targets[0].prefix_len = 32;
  s.cfg->targets[0].protocol = FAULT_PROTO_TCP;
  s.cfg->targets[0].addr[0] = 127;
  s.cfg->targets[0].addr[3] = 1;
  s.cfg->targets[0].port_min = port;
  s.cfg->targets[0].port_max = port;
  r.uplink.fixed_ns = 100'000'000;
  s.cfg->n_syscall_rules = 1;
  s.cfg->syscall_rules[0].rule = 0;
  s.cfg->syscall_rules[0].family = eng::kFamilyFsync;
  s.cfg->syscall_rules[0].action = eng::kActionDeny;
  s.cfg->syscall_rules[0].err = 5;
  eng::Publish(s.table, s.cfg);
}

struct Pair {
  int a = -1, b = -1;
  Pair() {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0) {
      a = sv[0];
      b = sv[1];
    }
  }
  ~Pair() {
    close(a);
    close(b);
  }
};

// A connected loopback TCP pair.
struct TcpPair {
  int a = -1, b = -1, l = -1;
  TcpPair() {
    l = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(l, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
    socklen_t len = sizeof(sa);
    getsockname(l, reinterpret_cast<sockaddr*>(&sa), &len);
    listen(l, 1);
    a = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(a, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) a = -1;
    b = accept(l, nullptr, nullptr);
  }
  ~TcpPair() {
    close(a);
    close(b);
    close(l);
  }
};

char g_buf[64];

void RawSyscall(benchmark::State& state) {
  Pair p;
  for (auto _ : state) {
    syscall(SYS_sendto, p.a, g_buf, sizeof(g_buf), 0, nullptr, 0);
    syscall(SYS_recvfrom, p.b, g_buf, sizeof(g_buf), 0, nullptr, nullptr);
  }
}
BENCHMARK(RawSyscall);

void Libc(benchmark::State& state) {
  Pair p;
  for (auto _ : state) {
    send(p.a, g_buf, sizeof(g_buf), 0);
    recv(p.b, g_buf, sizeof(g_buf), 0);
  }
}
BENCHMARK(Libc);

void RunShim(benchmark::State& state, int a, int b) {
  Shim& s = LoadShim();
  if (!s.send || !s.recv) {
    state.SkipWithError(("cannot load the shim: " + s.error).c_str());
    return;
  }
  for (auto _ : state) {
    s.send(a, g_buf, sizeof(g_buf), 0);
    s.recv(b, g_buf, sizeof(g_buf), 0);
  }
}

void ShimEmptyTable(benchmark::State& state) {
  Shim& s = LoadShim();
  if (s.table) PublishEmpty(s);
  Pair p;
  RunShim(state, p.a, p.b);
}
BENCHMARK(ShimEmptyTable)->Name("Shim/EmptyTable");

void ShimOtherPolicy(benchmark::State& state) {
  Shim& s = LoadShim();
  if (s.table) PublishOther(s, 1);
  Pair p;
  RunShim(state, p.a, p.b);
}
BENCHMARK(ShimOtherPolicy)->Name("Shim/OtherPolicy");

void TcpLibc(benchmark::State& state) {
  TcpPair p;
  for (auto _ : state) {
    send(p.a, g_buf, sizeof(g_buf), 0);
    recv(p.b, g_buf, sizeof(g_buf), 0);
  }
}
BENCHMARK(TcpLibc)->Name("Tcp/Libc");

void ShimTcpOtherPolicy(benchmark::State& state) {
  Shim& s = LoadShim();
  if (s.table) PublishOther(s, 1);
  TcpPair p;
  RunShim(state, p.a, p.b);
}
BENCHMARK(ShimTcpOtherPolicy)->Name("Tcp/Shim/OtherPolicy");

}  // namespace

BENCHMARK_MAIN();
