#!/usr/bin/python3
"""What a gRPC plugin costs an HTTP request through `fault run`'s forward proxy.

  tools/bench/plugins.py [--fault build/release/bin/fault]
                         [--plugin build/release/bin/pass_plugin] [--requests 2000] [--rounds 5]
  tools/bench/plugins.py --quick       # smoke run, a few seconds
  tools/bench/plugins.py --markdown    # the table as Markdown for docs/benchmarks.md

An HTTP/1.1 upstream in this process (keep-alive, a 612-byte body) and three paths to
it through `fault run --proxy-address ... --upstream '*'` (no faults), each started by
this script on free loopback ports:

  none      no plugin
  c++       --grpc-plugin to examples/plugins/cpp/pass_plugin (takes HTTP, passes
            everything on): the proxy's own cost per plugin call
  python    --grpc-plugin to a Python plugin doing the same (python3-grpcio):
            what a plugin written in Python adds

A request through a path with a plugin makes two plugin calls (ProcessHttpRequest,
then ProcessHttpResponse) and reads the request and the response whole. The client
(http.client, one keep-alive connection per path) sends --requests GETs per path and
round, the paths interleaved request by request so that a change of load hits all of
them. The table shows each path's p50 and p99 over all rounds, and the plugin paths'
p50 minus the no-plugin p50: the round-trip cost of the plugin per request. Goal: the
C++ plugin's cost p50 <= 150 us.

For scale, `pass_plugin --ping` then measures a bare gRPC round trip to the C++ plugin
on this machine (blocking API, and the completion queue fault uses): two of those are the
floor of the per-request cost.

Exit status: 0; 1 when a path failed (its row says why).
"""

import argparse
import datetime
import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BODY = b"x" * 611 + b"\n"
GOAL_US = 150


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class Upstream:
    """A keep-alive HTTP/1.1 server answering every GET with BODY."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.response = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n"
                         % len(BODY)) + BODY
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf = b""
        try:
            while True:
                data = c.recv(65536)
                if not data:
                    return
                buf += data
                while b"\r\n\r\n" in buf:
                    _, buf = buf.split(b"\r\n\r\n", 1)
                    c.sendall(self.response)
        except OSError:
            pass
        finally:
            c.close()


PYTHON_PLUGIN = r'''
import concurrent.futures, sys, time
sys.path.insert(0, sys.argv[2])
import grpc, plugin_stubs
pb, pb_grpc = plugin_stubs.load()

class Pass(pb_grpc.PluginServiceServicer):
    def HealthCheck(self, r, c): return pb.HealthCheckResponse(healthy=True)
    def GetPluginInfo(self, r, c): return pb.GetPluginInfoResponse(name="pass-py", version="1")
    def GetPluginCapabilities(self, r, c):
        return pb.GetPluginCapabilitiesResponse(can_handle_http_forward=True)
    def ProcessHttpRequest(self, r, c):
        return pb.ProcessHttpRequestResponse(action=pb.ProcessHttpRequestResponse.CONTINUE)
    def ProcessHttpResponse(self, r, c):
        return pb.ProcessHttpResponseResponse(action=pb.ProcessHttpResponseResponse.CONTINUE)
    def ProcessTunnelData(self, r, c):
        return pb.ProcessTunnelDataResponse(pass_through=pb.PassThrough())

s = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4))
pb_grpc.add_PluginServiceServicer_to_server(Pass(), s)
s.add_insecure_port("127.0.0.1:" + sys.argv[1])
s.start()
time.sleep(3600)
'''


class Path:
    def __init__(self, name):
        self.name = name
        self.samples = []
        self.error = None
        self.procs = []
        self.conn = None

    def stop(self):
        if self.conn is not None:
            self.conn.close()
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT if p is self.procs[-1] else signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)


def start_path(name, fault, plugin_argv, upstream, workdir):
    """`plugin_argv(port)`: the plugin's command line (None: no plugin)."""
    path = Path(name)
    args = []
    if plugin_argv is not None:
        port = free_port()
        proc = subprocess.Popen(plugin_argv(port), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        path.procs.append(proc)
        if not wait_for_port(port, 20, proc):
            path.error = "the plugin did not start: " + (proc.stderr.read() if proc.poll() else "")
            return path
        args = ["--grpc-plugin", "127.0.0.1:%d" % port]
    proxy = free_port()
    err = open(os.path.join(workdir, name + ".err"), "w+")
    proc = subprocess.Popen([fault, "run", "--no-ui", "--proxy-address", "127.0.0.1:%d" % proxy,
                             "--upstream", "*", "--event-loops", "1", *args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    path.procs.append(proc)
    if not wait_for_port(proxy, 10, proc):
        err.seek(0)
        path.error = "fault run did not start: " + err.read().strip()
        return path
    path.conn = http.client.HTTPConnection("127.0.0.1", proxy, timeout=10)
    path.url = "http://127.0.0.1:%d/" % upstream.port
    return path


def one(path):
    t0 = time.perf_counter_ns()
    path.conn.request("GET", path.url)
    r = path.conn.getresponse()
    body = r.read()
    t1 = time.perf_counter_ns()
    if r.status != 200 or body != BODY:
        raise RuntimeError("%s: status %d, %d bytes" % (path.name, r.status, len(body)))
    return (t1 - t0) / 1000.0


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fault", default=os.path.join(ROOT, "build/release/bin/fault"))
    ap.add_argument("--plugin", default=None,
                    help="the pass_plugin binary (default: next to --fault)")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-python", action="store_true")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.requests, a.rounds = 300, 2
    if not os.path.exists(a.fault):
        sys.exit("--fault %s does not exist (build it first)" % a.fault)
    plugin = a.plugin or os.path.join(os.path.dirname(a.fault), "pass_plugin")
    upstream = Upstream()
    workdir = tempfile.mkdtemp(prefix="fault-plugin-bench-")
    paths = [start_path("none", a.fault, None, upstream, workdir)]
    if os.path.exists(plugin):
        paths.append(start_path("c++", a.fault, lambda port: [plugin, "127.0.0.1:%d" % port],
                                upstream, workdir))
    else:
        p = Path("c++")
        p.error = "%s is not built (target pass_plugin)" % plugin
        paths.append(p)
    if not a.no_python:
        paths.append(start_python(a.fault, upstream, workdir))
    try:
        live = [p for p in paths if p.error is None]
        for p in live:  # warm up: connections, the plugin's channel
            for _ in range(50):
                one(p)
        for _ in range(a.rounds):
            for _ in range(a.requests):
                for p in live:
                    try:
                        p.samples.append(one(p))
                    except Exception as e:  # noqa: BLE001 - reported in its row
                        p.error = str(e)
                live = [p for p in live if p.error is None]
    finally:
        for p in paths:
            p.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    floor = ping_floor(plugin)
    tcp = tcp_round_trips()
    report(a, paths, floor, tcp)
    return 1 if any(p.error for p in paths) else 0


def ping_floor(plugin):
    """`pass_plugin --ping` against a pass_plugin of its own: its line."""
    if not os.path.exists(plugin):
        return None
    port = free_port()
    server = subprocess.Popen([plugin, "127.0.0.1:%d" % port], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        if not wait_for_port(port, 10, server):
            return None
        r = subprocess.run([plugin, "--ping", "127.0.0.1:%d" % port, "2000"],
                           capture_output=True, text=True, timeout=120)
        return r.stdout.strip() if r.returncode == 0 else None
    finally:
        server.terminate()
        server.wait(timeout=10)


PINGPONG_C = r"""
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static long long now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec; }
static int cmp(const void* a, const void* b) { long long x = *(long long*)a, y = *(long long*)b;
  return x < y ? -1 : x > y; }
int main(void) {
  enum { N = 20000 };
  static long long o[N];
  int one = 1, l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  if (bind(l, (void*)&a, sizeof a) || listen(l, 1) || getsockname(l, (void*)&a, &al)) return 1;
  if (fork() == 0) {
    int s = accept(l, 0, 0);
    char b[64];
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    while (read(s, b, sizeof b) == sizeof b && write(s, b, sizeof b) == sizeof b) {}
    _exit(0);
  }
  int c = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(c, (void*)&a, sizeof a)) return 1;
  setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  char b[64] = {0};
  for (int i = 0; i < N; ++i) {
    long long t = now();
    if (write(c, b, sizeof b) != sizeof b || read(c, b, sizeof b) != sizeof b) return 1;
    o[i] = now() - t;
  }
  close(c);
  wait(0);
  qsort(o, N, sizeof o[0], cmp);
  printf("%lld\n", o[N / 2] / 1000);
  return 0;
}
"""


def tcp_round_trips():
    """The p50 of a 64-byte TCP round trip between two processes on loopback, free to
    run on any CPU and both pinned to one (taskset -c 0): what a wake-up across CPUs
    costs on this machine. None when there is no C compiler."""
    cc = shutil.which("cc")
    if cc is None:
        return None
    tmp = tempfile.mkdtemp(prefix="fault-plugin-bench-pp-")
    try:
        src, exe = os.path.join(tmp, "pp.c"), os.path.join(tmp, "pp")
        with open(src, "w") as f:
            f.write(PINGPONG_C)
        if subprocess.run([cc, "-O2", "-o", exe, src]).returncode != 0:
            return None
        out = []
        for prefix in ([], ["taskset", "-c", "0"]):
            if prefix and shutil.which("taskset") is None:
                out.append(None)
                continue
            r = subprocess.run(prefix + [exe], capture_output=True, text=True, timeout=120)
            out.append(int(r.stdout) if r.returncode == 0 else None)
        return tuple(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def start_python(fault, upstream, workdir):
    script = os.path.join(workdir, "pass_plugin.py")
    with open(script, "w") as f:
        f.write(PYTHON_PLUGIN)
    stubs = os.path.join(ROOT, "examples/plugins/python")
    return start_path("python", fault,
                      lambda port: ["/usr/bin/python3", script, str(port), stubs],
                      upstream, workdir)


def report(a, paths, floor, tcp):
    base = statistics.median(paths[0].samples) if paths[0].samples else None
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    head = ("%s, %d cores, load average %.2f at the end; %d rounds of %d keep-alive GETs per "
            "path, interleaved; fault run --event-loops 1 --upstream '*', no faults"
            % (when, os.cpu_count(), os.getloadavg()[0], a.rounds, a.requests))
    rows = []
    for p in paths:
        if p.error is not None or not p.samples:
            rows.append((p.name, "failed: " + (p.error or "no samples"), "", "", ""))
            continue
        p50, p99 = statistics.median(p.samples), pct(p.samples, 0.99)
        cost = "" if p is paths[0] or base is None else "%.0f" % (p50 - base)
        goal = ""
        if p.name == "c++" and base is not None:
            goal = "<= %d us: %s" % (GOAL_US, "met" if p50 - base <= GOAL_US else "not met")
        rows.append((p.name, "%.0f" % p50, "%.0f" % p99, cost, goal))
    if floor:
        head += "; a bare gRPC round trip to pass_plugin (pass_plugin --ping): " + floor
    if tcp and tcp[0] is not None:
        head += ("; a 64-byte TCP round trip between two processes: p50 %d us on any CPUs"
                 % tcp[0]) + (", %d us on one CPU" % tcp[1] if tcp[1] is not None else "")
    m = re.search(r"completion queue p50 (\d+) us", floor or "")
    if m:
        # A request makes two plugin calls, one after the other: two bare round trips
        # are the least it can cost, whatever the proxy does.
        lowest = 2 * int(m.group(1))
        head += ("; so two calls cost at least %d us here, %s the goal of %d us"
                 % (lowest, "above" if lowest > GOAL_US else "within", GOAL_US))
    if a.markdown:
        print(head + "\n")
        print("| plugin | p50 (us) | p99 (us) | plugin cost p50 (us) | goal |")
        print("|---|---|---|---|---|")
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        print(head)
        print("%-8s %12s %10s %22s  %s" % ("plugin", "p50 (us)", "p99 (us)", "plugin cost p50 (us)",
                                            "goal"))
        for r in rows:
            print("%-8s %12s %10s %22s  %s" % r)


if __name__ == "__main__":
    sys.exit(main())
