#!/usr/bin/env python3
"""Whole-program benchmarks of `fault exec` on event-loop programs.

  tools/bench/io_models.py [--fault build/release/bin/fault] [--rounds 5] [--seconds 3]

Three tables, each printed as Markdown with ratios against the bare run
measured in the same rounds (bare and peers alternate, so a change of load
hits both):

1. nginx + wrk (1 thread, 10 connections): bare nginx; nginx under
   `fault exec` with no policy; with a policy that matches none of its
   traffic. Requests/s, p99 latency and nginx's CPU time per request, in
   paired rounds (--nginx-rounds, fresh servers each round), as the median
   ratio to bare with a 95% interval. With --counts (or --only counts), the
   same three counted instead of timed: nginx's user-space instructions
   (callgrind) and system calls (strace -c) per request.
2. Latency accuracy on an event-loop client: wrk with one connection against
   a bare nginx, bare and under `fault exec --latency D` (the round trip gains
   2 D). Added delay minus injected, at p50 and p99, beside the machine's own
   clock_nanosleep overshoot for a 1 ms sleep measured in the same run.
3. Start-up: `/bin/true` bare, under `fault exec`, with only the shim
   preloaded, under `strace -f -e inject=...` and `fiu-run -x`.

Every server runs on 127.0.0.1 and is stopped by the script; every run is
bounded in time.
"""

import argparse
import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.parse

from benchstats import median_ci

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d never accepted" % port)


class Nginx:
    def __init__(self, prefix=(), start_timeout=10):
        self.dir = tempfile.mkdtemp(prefix="bench-nginx-")
        os.mkdir(os.path.join(self.dir, "html"))
        with open(os.path.join(self.dir, "html", "index.html"), "w") as f:
            f.write("x" * 612)
        self.port = free_port()
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""daemon off; master_process off; worker_processes 1;
error_log %(d)s/error.log; pid %(d)s/nginx.pid;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 1000000;
  client_body_temp_path %(d)s/b; proxy_temp_path %(d)s/p; fastcgi_temp_path %(d)s/f;
  uwsgi_temp_path %(d)s/u; scgi_temp_path %(d)s/s;
  server { listen 127.0.0.1:%(p)d; root %(d)s/html; } }
""" % {"d": self.dir, "p": self.port})
        self.proc = subprocess.Popen([*prefix, shutil.which("nginx") or "/usr/sbin/nginx",
                                      "-c", conf, "-p", self.dir],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, start_timeout)
        self.url = "http://127.0.0.1:%d/" % self.port
        # nginx's own process (under fault exec it is fault's child): its
        # pid file, written before it accepts.
        self.pid = None
        try:
            with open(os.path.join(self.dir, "nginx.pid")) as f:
                self.pid = int(f.read().strip())
        except (OSError, ValueError):
            pass

    def cpu_seconds(self):
        """User + system time nginx has used so far (None if unknown)."""
        if self.pid is None:
            return None
        try:
            with open("/proc/%d/stat" % self.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return None

    def close(self, kill=False):
        """Stops nginx gracefully (SIGQUIT), or with kill=True kills nginx
        itself (under valgrind it does not act on SIGQUIT or SIGTERM in
        time); either way waits for the command started (fault or nginx)."""
        if not kill:
            self.proc.send_signal(signal.SIGQUIT)
        elif self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(30 if kill else 10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


def to_ms(value, unit):
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def wrk(url, conns, seconds, prefix=()):
    r = subprocess.run([*prefix, "wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds, "--latency",
                        url], capture_output=True, text=True, timeout=seconds + 60)
    out = r.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    pct = {}
    for p, v, u in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        pct[int(p)] = to_ms(v, u)
    if "Socket errors" in out:
        raise RuntimeError("wrk reported socket errors:\n" + out)
    return rps, pct


def nginx_wrk(fault, rounds, seconds):
    """Paired rounds: each round starts one fresh nginx per configuration
    (so that what one process happens to get, its pages, its CPU, its place
    in the caches, changes from round to round instead of biasing every
    round the same way), warms each up, measures them one after the other in
    an order that rotates, and divides each configuration's result by the
    bare nginx's of the same round. The table gives the median of those
    ratios with a 95% interval that assumes nothing of their distribution."""
    peers = [
        ("bare nginx", ()),
        ("fault exec, no policy", (fault, "exec", "-q", "--")),
        ("fault exec, non-matching policy",
         (fault, "exec", "-q", "--latency", "5ms", "--target", "tcp://192.0.2.1:9", "--")),
    ]
    absolute = {name: ([], [], []) for name, _ in peers}
    ratios = {name: ([], [], []) for name, _ in peers[1:]}
    for r in range(rounds):
        servers = {}
        try:
            for name, prefix in peers:
                servers[name] = Nginx(prefix)
            for name, _ in peers:
                wrk(servers[name].url, 10, 1)  # warm up
            got = {}
            for name, _ in peers[r % len(peers):] + peers[:r % len(peers)]:
                ng = servers[name]
                cpu0 = ng.cpu_seconds()
                rps, pct = wrk(ng.url, 10, seconds)
                cpu1 = ng.cpu_seconds()
                # nginx's own CPU time per request: what the shim adds to the
                # program, without the machine's scheduling in it.
                cpu = ((cpu1 - cpu0) * 1e6 / (rps * seconds)
                       if cpu0 is not None and cpu1 is not None and rps > 0 else None)
                got[name] = (rps, pct[99], cpu)
        finally:
            for ng in servers.values():
                ng.close()
        for name, _ in peers:
            for i in range(3):
                if got[name][i] is not None:
                    absolute[name][i].append(got[name][i])
        for name, _ in peers[1:]:
            for i in range(3):
                if got[name][i] is not None and got["bare nginx"][i]:
                    ratios[name][i].append(got[name][i] / got["bare nginx"][i])

    def cell(xs):
        if not xs:
            return "-"
        med, lo, hi = median_ci(xs)
        return "%.3f [%.3f, %.3f]" % (med, lo, hi)

    print("\n### nginx + wrk (-t1 -c10, %d s, %d paired rounds)\n" % (seconds, rounds))
    print("| nginx | requests/s | × bare [95%] | p99 (ms) | × bare [95%] "
          "| nginx CPU (µs/request) | × bare [95%] |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, _ in peers:
        a = [statistics.median(x) if x else float("nan") for x in absolute[name]]
        r = [cell(x) for x in ratios[name]] if name in ratios else ["1"] * 3
        print("| %s | %.0f | %s | %.3f | %s | %.2f | %s |" % (
            name, a[0], r[0], a[1], r[1], a[2], r[2]))
    nm = ratios["fault exec, non-matching policy"]
    if nm[0] and nm[1]:
        print("\n- goals for the non-matching policy: requests/s ≥ 0.98× bare: %s (median %.3f); "
              "p99 ≤ 1.05× bare: %s (median %.3f)" % (
                  "met" if statistics.median(nm[0]) >= 0.98 else "not met",
                  statistics.median(nm[0]),
                  "met" if statistics.median(nm[1]) <= 1.05 else "not met",
                  statistics.median(nm[1])))


def keepalive_gets(url, n):
    """n GET requests on one kept-alive connection; fails unless each gets 200."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    try:
        for _ in range(n):
            conn.request("GET", "/")
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                raise RuntimeError("nginx answered %d" % r.status)
    finally:
        conn.close()


def nginx_counts(fault, warm=200, n=2000):
    """What nginx does per request, counted rather than timed: the user-space
    instructions of its process (callgrind) and its system calls (strace -c)
    over `n` keep-alive requests after `warm` ones, divided by `n`. Start-up
    is left out: callgrind's counters are dumped (and so reset) after the
    warm-up and again after the n requests; strace attaches after the
    warm-up. These counts repeat from run to run, where the timed table moves
    by several per cent on a shared VM."""
    if not all(shutil.which(t) for t in ("valgrind", "callgrind_control", "strace")):
        print("\n(no valgrind or strace: the counted nginx table is skipped)")
        return
    peers = [
        ("bare nginx", ()),
        ("fault exec, no policy", (fault, "exec", "-q", "--")),
        ("fault exec, non-matching policy",
         (fault, "exec", "-q", "--latency", "5ms", "--target", "tcp://192.0.2.1:9", "--")),
    ]
    tmp = tempfile.mkdtemp(prefix="bench-count-")

    def instructions(prefix):
        out = os.path.join(tmp, "callgrind.out")
        ng = Nginx(prefix + ("valgrind", "--tool=callgrind", "--callgrind-out-file=" + out),
                   start_timeout=60)
        try:
            keepalive_gets(ng.url, warm)
            subprocess.run(["callgrind_control", "-d", str(ng.pid)], check=True,
                           capture_output=True, timeout=60)
            keepalive_gets(ng.url, n)
            subprocess.run(["callgrind_control", "-d", str(ng.pid)], check=True,
                           capture_output=True, timeout=60)
            deadline = time.monotonic() + 30
            while not os.path.exists(out + ".2") and time.monotonic() < deadline:
                time.sleep(0.1)
            with open(out + ".2") as f:
                m = re.search(r"^summary:\s+(\d+)", f.read(), re.M)
        finally:
            ng.close(kill=True)
            for name in os.listdir(tmp):
                os.unlink(os.path.join(tmp, name))
        return int(m.group(1)) / n

    def syscalls(prefix):
        out = os.path.join(tmp, "strace.out")
        ng = Nginx(prefix)
        try:
            keepalive_gets(ng.url, warm)
            st = subprocess.Popen(["strace", "-f", "-c", "-o", out, "-p", str(ng.pid)],
                                  stderr=subprocess.DEVNULL)
            time.sleep(0.5)  # attached
            keepalive_gets(ng.url, n)
            time.sleep(0.2)
            st.send_signal(signal.SIGINT)
            st.wait(30)
            with open(out) as f:
                m = re.search(r"^100\.00\s+\S+\s+\S+\s+(\d+)", f.read(), re.M)
        finally:
            ng.close()
            if os.path.exists(out):
                os.unlink(out)
        return int(m.group(1)) / n

    rows = []
    try:
        for name, prefix in peers:
            rows.append((name, instructions(prefix), syscalls(prefix)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n### nginx per request, counted (%d keep-alive GETs after %d)\n" % (n, warm))
    print("| nginx | user-space instructions / request | × bare | system calls / request "
          "| × bare |")
    print("|---|---:|---:|---:|---:|")
    for name, ir, sc in rows:
        print("| %s | %.0f | %.4f | %.2f | %.3f |" % (name, ir, ir / rows[0][1], sc,
                                                     sc / rows[0][2]))


SLEEP_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static long long now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec; }
static int cmp(const void* a, const void* b) { long long x = *(long long*)a, y = *(long long*)b;
  return x < y ? -1 : x > y; }
int main(void) { enum { N = 2000 }; static long long o[N];
  for (int i = 0; i < N; ++i) { long long t = now(); struct timespec d = {0, 1000000};
    clock_nanosleep(CLOCK_MONOTONIC, 0, &d, NULL); o[i] = now() - t - 1000000; }
  qsort(o, N, sizeof(o[0]), cmp);
  printf("%lld %lld\n", o[N / 2], o[N * 99 / 100]); return 0; }
"""


def sleep_overshoot(tmp):
    src = os.path.join(tmp, "sleep.c")
    exe = os.path.join(tmp, "sleep")
    with open(src, "w") as f:
        f.write(SLEEP_C)
    subprocess.run(["cc", "-O2", "-o", exe, src], check=True)
    p50, p99 = subprocess.run([exe], capture_output=True, text=True, check=True).stdout.split()
    return int(p50) / 1e6, int(p99) / 1e6  # ms


def latency_accuracy(fault, rounds, seconds, inject_ms=2.0):
    tmp = tempfile.mkdtemp(prefix="bench-acc-")
    ng = Nginx()
    bare50, bare99, f50, f99, s50, s99 = [], [], [], [], [], []
    try:
        wrk(ng.url, 1, 1)
        for _ in range(rounds):
            _, pct = wrk(ng.url, 1, seconds)
            bare50.append(pct[50])
            bare99.append(pct[99])
            _, pct = wrk(ng.url, 1, seconds,
                         (fault, "exec", "-q", "--latency", "%gms" % inject_ms, "--"))
            f50.append(pct[50])
            f99.append(pct[99])
            a, b = sleep_overshoot(tmp)
            s50.append(a)
            s99.append(b)
    finally:
        ng.close()
        shutil.rmtree(tmp, ignore_errors=True)
    injected = 2 * inject_ms  # one way each direction
    e50 = statistics.median(f50) - statistics.median(bare50) - injected
    e99 = statistics.median(f99) - statistics.median(bare99) - injected
    print("\n### Latency accuracy (wrk -c1 against bare nginx, --latency %gms: +%g ms a round "
          "trip; median of %d rounds)\n" % (inject_ms, injected, rounds))
    print("| | p50 (us) | p99 (us) |")
    print("|---|---|---|")
    print("| round trip, bare | %.0f | %.0f |" % (statistics.median(bare50) * 1e3,
                                                 statistics.median(bare99) * 1e3))
    print("| round trip, under fault exec | %.0f | %.0f |" % (statistics.median(f50) * 1e3,
                                                            statistics.median(f99) * 1e3))
    print("| added minus injected | %.0f | %.0f |" % (e50 * 1e3, e99 * 1e3))
    print("| clock_nanosleep(1 ms) overshoot, this machine | %.0f | %.0f |" % (
        statistics.median(s50) * 1e3, statistics.median(s99) * 1e3))


def startup(fault, runs):
    shim = os.path.join(os.path.dirname(os.path.dirname(fault)), "lib", "libfault_shim.so")
    if not os.path.exists(shim):
        shim = os.path.join(os.path.dirname(fault), "..", "lib", "libfault_shim.so")
    peers = [
        ("bare", [], None),
        ("fault exec", [fault, "exec", "-q", "--"], None),
        ("shim preloaded alone", [], {"LD_PRELOAD": os.path.abspath(shim)}),
        ("strace -f -e inject=fdatasync:error=EIO",
         ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "inject=fdatasync:error=EIO"], None),
        ("fiu-run -x", ["fiu-run", "-x"], None),
    ]
    times = {name: [] for name, _, _ in peers}
    for _ in range(runs):
        for name, prefix, env in peers:
            e = dict(os.environ, **env) if env else None
            t = time.perf_counter()
            subprocess.run([*prefix, "/bin/true"], env=e, check=True)
            times[name].append(time.perf_counter() - t)
    base = statistics.median(times["bare"])
    print("\n### Start-up of /bin/true (median of %d runs each, interleaved)\n" % runs)
    print("| run | wall (ms) | added (ms) |")
    print("|---|---|---|")
    for name, _, _ in peers:
        m = statistics.median(times[name])
        print("| %s | %.2f | %+.2f |" % (name, m * 1e3, (m - base) * 1e3))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fault", default=os.path.join(ROOT, "build/release/bin/fault"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--nginx-rounds", type=int, default=15,
                    help="paired rounds of the nginx table (default 15)")
    ap.add_argument("--nginx-seconds", type=int, default=2,
                    help="length of one wrk run in the nginx table (default 2)")
    ap.add_argument("--startup-runs", type=int, default=100)
    ap.add_argument("--counts", action="store_true",
                    help="also count nginx's instructions and system calls per request "
                         "(callgrind, strace; about 2 minutes)")
    ap.add_argument("--only", choices=["nginx", "counts", "latency", "startup"],
                    help="run one of the three tables")
    a = ap.parse_args()
    fault = os.path.abspath(a.fault)
    if not os.path.exists(fault):
        raise SystemExit("no %s: build it first (cmake --preset release && cmake --build "
                         "--preset release)" % fault)
    print("fault: %s; %d cores; load %.1f" % (fault, os.cpu_count(), os.getloadavg()[0]))
    if a.only in (None, "nginx"):
        nginx_wrk(fault, a.nginx_rounds, a.nginx_seconds)
    if a.only == "counts" or (a.counts and a.only in (None, "nginx")):
        nginx_counts(fault)
    if a.only in (None, "latency"):
        latency_accuracy(fault, a.rounds, a.seconds)
    if a.only in (None, "startup"):
        startup(fault, a.startup_runs)


if __name__ == "__main__":
    main()
