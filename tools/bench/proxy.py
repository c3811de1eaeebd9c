#!/usr/bin/env python3
"""TCP proxy benchmark: `fault run` beside HAProxy and no proxy at all.

  tools/bench/proxy.py [--fault build/release/bin/fault] [--rounds 5] [--duration 5]
  tools/bench/proxy.py --quick         # smoke run, about 30 s
  tools/bench/proxy.py --markdown      # the tables as Markdown for docs/benchmarks.md

One nginx (`worker_processes 1`, `master_process off`, access_log off, keep-alive,
sendfile on) serves a 612-byte file and a large sparse file (200 MB by default) on
127.0.0.1. Three paths lead to it, each started by this script with its own
configuration in a temporary directory:

  direct    client -> nginx
  haproxy   client -> haproxy (mode tcp, nbthread = cores, no logging) -> nginx
  fault     client -> fault run --disable-http-proxy --no-ui --proxy PORT=127.0.0.1:NGINX
                   -> nginx   (a plain TCP mapping, no fault)

(`--forward-proxy` adds a fourth: `fault run --proxy-address 127.0.0.1:PORT`, the HTTP
forward proxy, requests in absolute form.)

Tests, each run on every path in turn, in rounds (the order of the paths rotates from
round to round, so a change of machine load hits every path); every table shows each
path's median over the rounds and its ratio to direct and to haproxy from the same run:

  wrk -t1 -c1 and wrk -t2 -c64 on the small file, --duration seconds each:
      requests/s, p50 and p99 latency (wrk --latency);
  bulk: --downloads curl downloads of the large file per round: MB/s (10^6 bytes/s,
      curl's speed_download); each download must receive the whole file;
  latency injection accuracy: a second `fault run` mapping with
      --with-latency --latency-mean 20 --latency-stddev 0 --latency-direction ingress
      (20 ms on every response), against the same round trips through direct, haproxy
      and the no-fault mapping: --samples single requests per path with a small Python
      client, interleaved, once on keep-alive connections and once on a fresh connection
      per request. Injection error = measured - baseline - 20 ms, at p50 and p99
      (difference of the percentiles), baseline haproxy (and the no-fault mapping).

  paired one-connection comparison (--pairs, default 30): wrk -t1 -c1 for
      --pair-seconds (2) through haproxy and through the fault mapping back to back, the
      order alternating, many times; the ratio fault/haproxy of each pair (requests/s,
      p99), and their median with a 95% interval that assumes nothing of their
      distribution. At one connection both proxies do the least there is per request and
      the scheduler's wake-ups decide; rounds of several seconds each, as above, let a
      change of load fall between the two paths, and the pairs are what settles it.

Goals, printed beside the tables: the fault mapping's requests/s and MB/s >= haproxy's
and its p99 <= haproxy's; injection error p50 < 100 us and p99 < 1 ms.

A missing or failing `fault` does not stop the run: its rows say "failed: <reason>"
(it must listen within --start-timeout seconds; an exit is noticed at once). Every
server is stopped at the end, also on Ctrl-C or SIGTERM (and gets SIGTERM if this
script dies). Exit status: 0; 1 when direct or haproxy failed (or, with --strict,
anything failed); 130 when interrupted (Ctrl-C, SIGTERM, SIGHUP).
"""

import argparse
import ctypes
import datetime
import math
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from benchstats import median_ci

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = "small.html"
SMALL_BODY = b"x" * 611 + b"\n"  # 612 bytes, nginx's default index.html size
LARGE = "large.bin"
LATENCY_FLAGS = "--with-latency --latency-mean {ms} --latency-stddev 0 --latency-direction ingress"


class Failed(Exception):
    """A path or a measurement failed; the message goes in its row."""


def short(text, limit=160):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- child processes ------------------------------------------------------------------------

try:
    _LIBC = ctypes.CDLL(None, use_errno=True)
except OSError:
    _LIBC = None


def _child_setup():
    # In the child, before exec: SIGTERM when this script dies (PR_SET_PDEATHSIG = 1).
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGTERM, 0, 0, 0)


def sig_name(n):
    try:
        return signal.Signals(n).name
    except ValueError:
        return "signal %d" % n


SERVERS = []  # every Server made, stopped by main() at the end (stopping twice is harmless)


class Server:
    """A long-running child on 127.0.0.1:port, in its own process group (so that Ctrl-C
    in the terminal reaches only this script, which then stops it in order)."""

    def __init__(self, name, argv, port, log_path, stop_signal=signal.SIGTERM):
        self.name, self.argv, self.port = name, argv, port
        self.log_path, self.stop_signal = log_path, stop_signal
        self.proc = None
        self.exit_note = None  # how it ended when stopped, if not cleanly
        SERVERS.append(self)

    def start(self, timeout):
        log = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=_child_setup)
        except OSError as e:
            raise Failed("cannot start %s: %s" % (self.argv[0], e.strerror or e))
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        try:
            while True:
                self.check_alive("before listening on 127.0.0.1:%d" % self.port)
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                        return self
                except OSError:
                    pass
                if time.monotonic() >= deadline:
                    raise Failed("did not listen on 127.0.0.1:%d within %g s%s"
                                 % (self.port, timeout, self._log_tail(": ")))
                time.sleep(0.05)
        except Failed:
            self.stop(grace=2.0)
            raise

    def _exited(self):
        # Exit status without reaping (so the process group id stays ours until stop()).
        if self.proc is None:
            return None
        if self.proc.returncode is not None:
            return self.proc.returncode
        try:
            r = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return self.proc.poll()
        if r is None:
            return None
        return r.si_status if r.si_code == os.CLD_EXITED else -r.si_status

    def check_alive(self, when=""):
        status = self._exited()
        if status is not None:
            how = ("exited with status %d" % status if status >= 0
                   else "killed by %s" % sig_name(-status))
            raise Failed(" ".join(x for x in (how, when) if x) + self._log_tail(": "))

    def _log_tail(self, prefix):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, os.path.getsize(self.log_path) - 4096))
                lines = [l for l in f.read().decode(errors="replace").splitlines()
                         if l.strip() and not l.startswith("Run with --help")]  # CLI11's hint
        except OSError:
            return ""
        return prefix + short(lines[-1]) if lines else ""

    def stop(self, grace=5.0):
        if self.proc is None:
            return
        pid, reaped = self.proc.pid, self.proc.returncode is not None
        signalled = False
        if not reaped:
            if self._exited() is None:
                signalled = True
                try:
                    os.kill(pid, self.stop_signal)
                except ProcessLookupError:
                    pass
                deadline = time.monotonic() + grace
                while self._exited() is None and time.monotonic() < deadline:
                    time.sleep(0.02)
                if self._exited() is None:
                    self.exit_note = "did not exit within %g s of %s; killed" % (
                        grace, sig_name(self.stop_signal))
            # The leader is not reaped yet, so its group id is still this group's: sweep it.
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            status = self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.exit_note = "could not be reaped"
            return
        # An exit before the signal was reported where it was noticed (check_alive).
        if signalled and self.exit_note is None and status not in (0, -self.stop_signal):
            self.exit_note = "%s after %s%s" % (
                "exit status %d" % status if status >= 0 else "killed by " + sig_name(-status),
                sig_name(self.stop_signal), self._log_tail(": "))
        self.proc = None


def tool_version(argv, pattern):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=5)
        m = re.search(pattern, r.stdout + r.stderr)
        return m.group(1) if m else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


# --- the servers ----------------------------------------------------------------------------

def start_nginx(tmp, large_bytes, timeout):
    d = os.path.join(tmp, "nginx")
    os.makedirs(os.path.join(d, "html"))
    with open(os.path.join(d, "html", SMALL), "wb") as f:
        f.write(SMALL_BODY)
    with open(os.path.join(d, "html", LARGE), "wb") as f:
        f.truncate(large_bytes)  # sparse: no disk, read from the page cache
    port = free_port()
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""daemon off; master_process off; worker_processes 1;
error_log %(d)s/error.log warn; pid %(d)s/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off; sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_timeout 75s; keepalive_requests 1000000;
  default_type application/octet-stream;
  client_body_temp_path %(d)s/b; proxy_temp_path %(d)s/p; fastcgi_temp_path %(d)s/f;
  uwsgi_temp_path %(d)s/u; scgi_temp_path %(d)s/s;
  server { listen 127.0.0.1:%(p)d backlog=4096; root %(d)s/html; }
}
""" % {"d": d, "p": port})
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    return Server("nginx", [nginx, "-e", os.path.join(d, "error.log"), "-c", conf, "-p", d],
                  port, os.path.join(d, "stdout.log")).start(timeout)


def start_haproxy(tmp, upstream, threads, timeout):
    d = os.path.join(tmp, "haproxy")
    os.makedirs(d)
    port = free_port()
    conf = os.path.join(d, "haproxy.cfg")
    with open(conf, "w") as f:
        f.write("""global
    nbthread %(t)d
    maxconn 4096
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend fe
    bind 127.0.0.1:%(p)d
    default_backend be
backend be
    server nginx 127.0.0.1:%(u)d
""" % {"t": threads, "p": port, "u": upstream})
    return Server("haproxy", [shutil.which("haproxy") or "/usr/sbin/haproxy", "-db", "-f", conf],
                  port, os.path.join(d, "haproxy.log")).start(timeout)


def start_fault(fault, tmp, name, args, port, timeout):
    if not os.path.isfile(fault) or not os.access(fault, os.X_OK):
        raise Failed("no executable %s (cmake --build --preset release --target fault)" % fault)
    log = os.path.join(tmp, "fault-%s.log" % re.sub(r"\W+", "-", name))
    return Server(name, [fault, "run", "--no-ui", *args], port, log).start(timeout)


# --- HTTP -----------------------------------------------------------------------------------

class HttpClient:
    """One request at a time, HTTP/1.1, on a kept-alive or a fresh connection."""

    def __init__(self, port, target, host, keepalive, timeout=3.0):
        self.port, self.keepalive, self.timeout = port, keepalive, timeout
        self.request_bytes = ("GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (
            target, host, "" if keepalive else "Connection: close\r\n")).encode()
        self.sock = None

    def _connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def request(self):
        """Returns (round trip in ns, body). The round trip includes the connect on a fresh
        connection, not on a kept-alive one (made before, outside the timing)."""
        if self.keepalive and self.sock is None:
            self.sock = self._connect()
        t0 = time.perf_counter_ns()
        if not self.keepalive:
            self.sock = self._connect()
        try:
            self.sock.sendall(self.request_bytes)
            body = self._read_response()
            t1 = time.perf_counter_ns()
        except (OSError, Failed):
            self.close()
            raise
        if not self.keepalive:
            self.close()
        return t1 - t0, body

    def _read_response(self):
        buf = b""
        while b"\r\n\r\n" not in buf:
            if len(buf) > 65536:
                raise Failed("response header over 64 KiB")
            data = self.sock.recv(65536)
            if not data:
                raise Failed("connection closed before the response header")
            buf += data
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if not re.match(r"HTTP/1\.[01] 200 ", lines[0] + " "):
            raise Failed("status %r" % lines[0])
        length = None
        for line in lines[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == "content-length":
                if not v.strip().isdigit():
                    raise Failed("Content-Length %r" % v.strip())
                length = int(v.strip())
        if length is None or length > 1 << 20:
            raise Failed("no usable Content-Length")
        while len(rest) < length:
            data = self.sock.recv(65536)
            if not data:
                raise Failed("connection closed after %d of %d body bytes" % (len(rest), length))
            rest += data
        if len(rest) != length:
            raise Failed("%d bytes more than Content-Length" % (len(rest) - length))
        return rest


class Path:
    """A way from the clients to nginx."""

    def __init__(self, name, port, nginx_port, forward=False, server=None, failed=None):
        self.name, self.port, self.server, self.failed = name, port, server, failed
        self.forward = forward  # an HTTP forward proxy: absolute-form requests
        origin = "127.0.0.1:%d" % nginx_port
        self.host = origin if forward else "127.0.0.1:%d" % port
        self.prefix = "http://%s" % origin if forward else ""

    def target(self, file):
        return "%s/%s" % (self.prefix, file)

    def check(self):
        """Fails the path if its server has exited."""
        if self.failed is None and self.server is not None:
            try:
                self.server.check_alive()
            except Failed as e:
                self.failed = str(e)
        return self.failed is None

    def client(self, keepalive, timeout=3.0):
        return HttpClient(self.port, self.target(SMALL), self.host, keepalive, timeout)


# --- measurements ---------------------------------------------------------------------------

def to_ms(value, unit):
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def run_wrk(path, threads, conns, seconds, tmp):
    argv = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % seconds, "--timeout", "2s",
            "--latency"]
    if path.forward:
        script = os.path.join(tmp, "forward-%d.lua" % path.port)
        with open(script, "w") as f:
            f.write('wrk.path = "%s"\nwrk.headers["Host"] = "%s"\n' % (path.target(SMALL),
                                                                       path.host))
        argv += ["-s", script]
    argv.append("http://127.0.0.1:%d/%s" % (path.port, SMALL))
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        raise Failed("wrk did not finish within %d s" % (seconds + 30))
    out = r.stdout
    if r.returncode != 0:
        raise Failed("wrk exited with status %d: %s" % (r.returncode, short(r.stderr or out)))
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    n = re.search(r"(\d+) requests in", out)
    if not m or not n or int(n.group(1)) == 0:
        raise Failed("wrk completed no request: %s" % short(r.stderr or out))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if errors and any(int(x) for x in errors.groups()):
        raise Failed("wrk: socket errors: connect %s, read %s, write %s, timeout %s"
                     % errors.groups())
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        raise Failed("wrk: %s non-2xx/3xx responses" % bad.group(1))
    pct = {int(p): to_ms(v, u) for p, v, u in
           re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    if 50 not in pct or 99 not in pct:
        raise Failed("wrk printed no latency distribution")
    return float(m.group(1)), pct[50], pct[99]


def run_curl(path, size, max_time):
    argv = ["curl", "-sS", "-o", "/dev/null", "--max-time", str(max_time),
            "-w", "%{http_code} %{size_download} %{speed_download}"]
    if path.forward:
        argv += ["--proxy", "http://127.0.0.1:%d" % path.port, "http://%s/%s" % (
            path.host, LARGE)]
    else:
        argv += ["--noproxy", "*", "http://127.0.0.1:%d/%s" % (path.port, LARGE)]
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=max_time + 10, env=env)
    except subprocess.TimeoutExpired:
        raise Failed("curl did not finish within %d s" % (max_time + 10))
    fields = r.stdout.split()
    if r.returncode != 0 or len(fields) != 3:
        raise Failed("curl exited with status %d: %s" % (r.returncode, short(r.stderr)))
    code, got, speed = fields
    if code != "200":
        raise Failed("curl: HTTP status %s" % code)
    if int(float(got)) != size:
        raise Failed("curl received %s of %d bytes" % (got, size))
    return float(speed) / 1e6


def check_path(path):
    """One GET of the small file through the path; its body must be the file."""
    c = path.client(keepalive=False, timeout=5.0)
    try:
        _, body = c.request()
    except (OSError, Failed) as e:
        raise Failed("GET through it failed: %s" % short(e))
    finally:
        c.close()
    if body != SMALL_BODY:
        raise Failed("GET through it returned %d bytes, not the file" % len(body))


def pct(sorted_xs, q):
    # Nearest rank.
    return sorted_xs[min(len(sorted_xs) - 1, max(0, math.ceil(q * len(sorted_xs)) - 1))]


# --- tables ---------------------------------------------------------------------------------

def render(title, headers, rows, markdown, notes=()):
    """Prints a table: a title, then rows whose first cell names them. A row of two cells
    whose second starts with "failed" spans the table; a last "goal" column is not aligned."""
    if markdown:
        lines = ["| %s | %s |" % (title, " | ".join(headers)),
                 "|---|%s|" % "|".join("---" if h.startswith("goal") else "---:" for h in headers)]
        lines += ["| %s |" % " | ".join(c.replace("|", "/") for c in r) for r in rows]
        if notes:
            lines += [""] + ["- " + n for n in notes]
    else:
        table = [[""] + headers] + rows
        n = len(headers) + 1
        whole = [r for r in table if not (len(r) == 2 and r[1].startswith("failed"))]
        widths = [max(len(r[i]) for r in (table if i == 0 else whole) if i < len(r))
                  for i in range(n)]
        lines = [title]
        for r in table:
            if r not in whole:
                cells = [r[0].ljust(widths[0]), r[1]]
            else:
                cells = [r[0].ljust(widths[0])] + [
                    c if headers[i - 1].startswith("goal") else c.rjust(widths[i])
                    for i, c in enumerate(r[1:], 1)]
            lines.append("  " + "  ".join(cells).rstrip())
        lines += ["  * " + x for x in notes]
    print("\n".join(lines))
    print()


def ratio(value, base):
    return "%.3f" % (value / base) if value is not None and base else "-"


def goal_text(pairs):
    return "; ".join("%s: %s" % (what, "met" if ok else "not met") for what, ok in pairs)


def paired_c1(paths, a, tmp, markdown):
    """wrk -t1 -c1 through haproxy and the fault mapping back to back, --pairs times."""
    by = {p.name: p for p in paths}
    hap, fr = by.get("haproxy"), by.get("fault run")
    title = "paired: wrk -t1 -c1, %d s each, %d pairs" % (a.pair_seconds, a.pairs)
    headers = ["fault run / haproxy, median", "95% interval", "pairs", "goal"]
    if fr is None or fr.failed:
        render(title, headers, [["fault run", "failed: %s" % (fr.failed if fr else "missing")]],
               markdown)
        return
    rps, p99 = [], []
    failed = None
    for i in range(a.pairs):
        got = {}
        for p in ((hap, fr) if i % 2 == 0 else (fr, hap)):
            if not p.check():
                failed = p.failed
                break
            try:
                got[p.name] = run_wrk(p, 1, 1, a.pair_seconds, tmp)
            except Failed as e:
                failed = "%s: %s" % (p.name, e)
                break
        if failed:
            break
        rps.append(got["fault run"][0] / got["haproxy"][0])
        p99.append(got["fault run"][2] / got["haproxy"][2])
    if failed:
        render(title, headers, [["fault run", "failed: %s" % failed]], markdown)
        return
    rows = []
    for name, xs, better in (("requests/s", rps, lambda x: x >= 1.0),
                             ("p99", p99, lambda x: x <= 1.0)):
        med, lo, hi = median_ci(xs)
        if better(lo) and better(hi):
            verdict = "met (the whole interval)"
        elif better(med):
            verdict = "met by the median"
        else:
            verdict = "not met"
        rows.append([name, "%.3f" % med, "[%.3f, %.3f]" % (lo, hi), str(len(xs)),
                     "%s ≥ haproxy's: %s" % (name, verdict) if name == "requests/s"
                     else "p99 ≤ haproxy's: %s" % verdict])
    render(title, headers, rows, markdown,
           notes=["each pair: one wrk run through each proxy, back to back, the order "
                  "alternating; the interval is the median's (order statistics)"])


def throughput_tables(paths, results, failures, a, markdown):
    med = {}
    for test in results:
        med[test] = {p.name: tuple(statistics.median(v) for v in zip(*results[test][p.name]))
                     if results[test][p.name] else None for p in paths}
    rounds = "median of %d round%s" % (a.rounds, "s" * (a.rounds != 1))
    for test, label in (("c1", "wrk -t1 -c1"), ("c64", "wrk -t2 -c64")):
        title = "%s, %d s, %s" % (label, a.duration, rounds)
        headers = ["requests/s", "× direct", "× haproxy", "p50 (ms)", "p99 (ms)",
                   "p99 × direct", "p99 × haproxy", "goal (vs haproxy)"]
        rows, notes = [], []
        d, h = med[test]["direct"], med[test]["haproxy"]
        for p in paths:
            m = med[test][p.name]
            reason = failures[test].get(p.name) or p.failed
            if m is None:
                rows.append([p.name, "failed: " + short(reason or "no sample")])
                continue
            if len(results[test][p.name]) < a.rounds:
                notes.append("%s: median of %d round(s), then failed: %s" % (
                    p.name, len(results[test][p.name]), short(reason or "?")))
            goal = ""
            if p.name.startswith("fault") and h:
                goal = goal_text([("req/s ≥ haproxy", m[0] >= h[0]),
                                  ("p99 ≤ haproxy", m[2] <= h[2])])
            rows.append([p.name, "%.0f" % m[0], ratio(m[0], d and d[0]), ratio(m[0], h and h[0]),
                         "%.3f" % m[1], "%.3f" % m[2], ratio(m[2], d and d[2]),
                         ratio(m[2], h and h[2]), goal])
        render(title, headers, rows, markdown, notes)
    mb = a.large_bytes / 1e6
    title = "bulk: %g MB file, %d curl downloads a round, %s" % (mb, a.downloads, rounds)
    headers = ["MB/s", "× direct", "× haproxy", "downloads complete", "goal (vs haproxy)"]
    rows = []
    d, h = med["bulk"]["direct"], med["bulk"]["haproxy"]
    for p in paths:
        m = med["bulk"][p.name]
        n = len(results["bulk"][p.name]) * a.downloads
        reason = failures["bulk"].get(p.name) or p.failed
        if m is None:
            rows.append([p.name, "failed: " + short(reason or "no sample")])
            continue
        goal = goal_text([("MB/s ≥ haproxy", m[0] >= h[0])]) if (
            p.name.startswith("fault") and h) else ""
        done = "%d of %d" % (n, n) if not reason else "%d, then failed: %s" % (n, short(reason, 80))
        rows.append([p.name, "%.0f" % m[0], ratio(m[0], d and d[0]), ratio(m[0], h and h[0]),
                     done, goal])
    render(title, headers, rows, markdown)


# --- latency injection accuracy --------------------------------------------------------------

def latency_section(paths, n, inject_ms, keepalive, markdown, budget_s):
    mode = "keep-alive" if keepalive else "fresh connection per request"
    live = [p for p in paths if p.check()]
    clients = {p.name: p.client(keepalive) for p in live}
    samples = {p.name: [] for p in paths}
    errors = {p.name: 0 for p in paths}
    failed = {p.name: p.failed for p in paths if p.failed}
    deadline = time.monotonic() + budget_s
    truncated = False
    try:
        for c in clients.values():  # warm up, not counted
            for _ in range(3):
                try:
                    c.request()
                except (OSError, Failed):
                    pass
        for i in range(n):
            if time.monotonic() > deadline:
                truncated = True
                break
            for k in range(len(live)):
                p = live[(i + k) % len(live)]
                if p.name in failed:
                    continue
                try:
                    ns, body = clients[p.name].request()
                    if body != SMALL_BODY:
                        raise Failed("wrong body (%d bytes)" % len(body))
                    samples[p.name].append(ns / 1e3)
                except (OSError, Failed) as e:
                    errors[p.name] += 1
                    if not p.check():
                        failed[p.name] = p.failed
                    elif errors[p.name] > max(5, n // 20):
                        failed[p.name] = "%d failed requests, the last: %s" % (
                            errors[p.name], short(e))
    finally:
        for c in clients.values():
            c.close()

    stats = {}
    for p in paths:
        xs = sorted(samples[p.name])
        if xs and p.name not in failed:
            stats[p.name] = (len(xs), xs[0], pct(xs, 0.50), pct(xs, 0.99))
    inj = "fault run, +%g ms" % inject_ms
    title = "latency, %s (µs)" % mode
    headers = ["round trips", "min", "p50", "p99", "goal"]
    rows = []
    for p in paths:
        s = stats.get(p.name)
        if s is None:
            rows.append([p.name, "failed: " + short(failed.get(p.name) or "no sample")])
        else:
            rows.append([p.name, "%d" % s[0], "%.0f" % s[1], "%.0f" % s[2], "%.0f" % s[3], ""])
    result = None
    for base in ("haproxy", "fault run", "direct"):
        label = "injection error vs %s" % ("fault run, no fault" if base == "fault run" else base)
        if inj not in stats:
            rows.append(["injection error", "failed: no samples through %s" % inj])
            break
        if base not in stats:
            rows.append([label, "failed: no samples through %s" % base])
            continue
        f, b = stats[inj], stats[base]
        e = [(f[j] - b[j]) - inject_ms * 1e3 for j in (1, 2, 3)]
        goal = ""
        if base == "haproxy":
            result = e
            goal = goal_text([("p50 < 100 µs", e[1] < 100), ("p99 < 1 ms", e[2] < 1000)])
        rows.append([label, "", "%+.0f" % e[0], "%+.0f" % e[1], "%+.0f" % e[2], goal])
    notes = ["error = measured - baseline - %g ms, per percentile" % inject_ms]
    if truncated:
        notes.append("stopped at the time budget (%g s) before %d round trips" % (budget_s, n))
    for p in paths:
        if errors[p.name] and p.name not in failed:
            notes.append("%s: %d failed requests (retried)" % (p.name, errors[p.name]))
    render(title, headers, rows, markdown, notes)
    return result


# --- main -----------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.split("\n")[2:]))
    ap.add_argument("--fault", default=os.path.join(ROOT, "build/release/bin/fault"),
                    help="the fault binary (default: build/release/bin/fault)")
    ap.add_argument("--duration", type=int, help="seconds per wrk run (default 5; --quick 1)")
    ap.add_argument("--rounds", type=int, help="rounds; medians over them (default 5; --quick 2)")
    ap.add_argument("--downloads", type=int, help="bulk downloads a round (default 3; --quick 2)")
    ap.add_argument("--large-mb", type=float, help="large file, MB (default 200; --quick 20)")
    ap.add_argument("--samples", type=int,
                    help="latency round trips per path and mode (default 1000; --quick 100)")
    ap.add_argument("--pairs", type=int,
                    help="paired one-connection runs, haproxy and fault (default 30; --quick 4;"
                         " 0 for none)")
    ap.add_argument("--pair-seconds", type=int, default=2,
                    help="seconds per wrk run of a pair (2)")
    ap.add_argument("--inject-ms", type=float, default=20.0, help="injected latency (20)")
    ap.add_argument("--latency-flags", default=LATENCY_FLAGS,
                    help="fault run flags of the injection run ({ms}: --inject-ms); "
                         "default: %(default)s")
    ap.add_argument("--start-timeout", type=float, default=10.0,
                    help="seconds a server has to start listening (10)")
    ap.add_argument("--forward-proxy", action="store_true",
                    help="also measure fault run's HTTP forward proxy (--proxy-address)")
    ap.add_argument("--quick", action="store_true", help="short smoke run")
    ap.add_argument("--markdown", action="store_true", help="Markdown tables")
    ap.add_argument("--strict", action="store_true", help="exit 1 when anything failed")
    a = ap.parse_args()
    q = a.quick
    a.duration = a.duration or (1 if q else 5)
    a.rounds = a.rounds or (2 if q else 5)
    a.downloads = a.downloads or (2 if q else 3)
    a.large_bytes = int((a.large_mb or (20 if q else 200)) * 1e6)
    a.samples = a.samples or (100 if q else 1000)
    if a.pairs is None:
        a.pairs = 4 if q else 30
    if a.pairs < 0 or a.pair_seconds < 1:
        ap.error("--pairs must be 0 or more and --pair-seconds positive")
    if min(a.duration, a.rounds, a.downloads, a.samples, a.large_bytes) < 1:
        ap.error("--duration, --rounds, --downloads, --samples and --large-mb must be positive")
    fault = os.path.abspath(a.fault)
    cores = os.cpu_count() or 1

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    tmp = tempfile.mkdtemp(prefix="bench-proxy-")
    status = 0
    try:
        status = run(a, fault, cores, tmp)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping the servers", file=sys.stderr)
        status = 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for s in reversed(SERVERS):
            s.stop()
            if s.exit_note and s.name.startswith("fault"):
                print("note: %s: %s" % (s.name, s.exit_note))
        shutil.rmtree(tmp, ignore_errors=True)
    return status


def run(a, fault, cores, tmp):
    started = time.time()
    md = a.markdown
    versions = {
        "nginx": tool_version([shutil.which("nginx") or "/usr/sbin/nginx", "-v"], r"nginx/(\S+)"),
        "haproxy": tool_version(["haproxy", "-v"], r"version (\S+)"),
        "wrk": tool_version(["wrk", "-v"], r"wrk (?:\S+/)?(\d[\w.]*)"),
        "curl": tool_version(["curl", "--version"], r"curl (\S+)"),
        "fault": tool_version([fault, "--version"], r"(\S.*)") if os.path.exists(fault)
        else "missing",
    }
    argv = " ".join(shlex.quote(x) for x in sys.argv[1:])
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    setup = [
        "%s, %d cores, load average %.2f at start" % (when, cores, os.getloadavg()[0]),
        "nginx %s: worker_processes 1 (one process, master_process off), access_log off, "
        "keep-alive, sendfile on" % versions["nginx"],
        "haproxy %s: mode tcp, nbthread %d, no logging, timeouts connect 5 s, client/server "
        "60 s" % (versions["haproxy"], cores),
        "fault run: %s (%s), --disable-http-proxy --no-ui --proxy PORT=127.0.0.1:NGINX"
        % (os.path.relpath(fault, ROOT) if fault.startswith(ROOT) else fault, versions["fault"]),
        "wrk %s, curl %s; small file %d bytes, large file %g MB (sparse); all on 127.0.0.1"
        % (versions["wrk"], versions["curl"], len(SMALL_BODY), a.large_bytes / 1e6),
    ]
    if md:
        rerun = ["tools/bench/proxy.py"] + [shlex.quote(x) for x in sys.argv[1:]
                                            if x != "--markdown"]
        print("Rerun:\n\n```\n%s\n```\n" % " ".join(rerun))
        print("; ".join(setup) + ".\n")
    else:
        print("tools/bench/proxy.py %s\n%s\n" % (argv, "\n".join("  " + s for s in setup)))
    sys.stdout.flush()

    # Servers. direct and haproxy must work; fault may fail.
    try:
        nginx = start_nginx(tmp, a.large_bytes, a.start_timeout)
    except Failed as e:
        print("cannot run the benchmark: nginx: %s" % e, file=sys.stderr)
        return 1
    try:
        hap = start_haproxy(tmp, nginx.port, cores, a.start_timeout)
    except Failed as e:
        print("cannot run the benchmark: haproxy: %s" % e, file=sys.stderr)
        return 1
    paths = [Path("direct", nginx.port, nginx.port), Path("haproxy", hap.port, nginx.port,
                                                           server=hap)]
    port = free_port()
    fpath = Path("fault run", port, nginx.port)
    try:
        s = start_fault(fault, tmp, "fault run", ["--disable-http-proxy", "--proxy",
                                                   "%d=127.0.0.1:%d" % (port, nginx.port)],
                        port, a.start_timeout)
        fpath.server = s
    except Failed as e:
        fpath.failed = str(e)
    paths.append(fpath)
    if a.forward_proxy:
        port = free_port()
        fwd = Path("fault run, forward proxy", port, nginx.port, forward=True)
        try:
            s = start_fault(fault, tmp, "fault run, forward proxy",
                            ["--proxy-address", "127.0.0.1:%d" % port], port, a.start_timeout)
            fwd.server = s
        except Failed as e:
            fwd.failed = str(e)
        paths.append(fwd)
    for p in paths:
        if p.failed is None:
            try:
                check_path(p)
            except Failed as e:
                p.failed = str(e)
        if p.failed is None:
            try:  # warm up
                run_wrk(p, 2, 64, 1, tmp)
            except Failed as e:
                p.failed = "warm-up: " + str(e)
        if p.failed and p.name in ("direct", "haproxy"):
            print("cannot run the benchmark: %s: %s" % (p.name, p.failed), file=sys.stderr)
            return 1

    # Throughput rounds: each test on each path in turn, the order rotating every round.
    tests = {
        "c1": lambda p: run_wrk(p, 1, 1, a.duration, tmp),
        "c64": lambda p: run_wrk(p, 2, 64, a.duration, tmp),
        "bulk": lambda p: (statistics.median(
            run_curl(p, a.large_bytes, 120) for _ in range(a.downloads)),),
    }
    results = {t: {p.name: [] for p in paths} for t in tests}
    failures = {t: {} for t in tests}
    for r in range(a.rounds):
        order = paths[r % len(paths):] + paths[:r % len(paths)]
        for t, fn in tests.items():
            for p in order:
                if not p.check() or p.name in failures[t]:
                    continue
                try:
                    results[t][p.name].append(fn(p))
                except Failed as e:
                    failures[t][p.name] = str(e)
                    p.check()
        print("round %d of %d done (%.0f s)" % (r + 1, a.rounds, time.time() - started),
              file=sys.stderr)
    throughput_tables(paths, results, failures, a, md)
    if a.pairs:
        paired_c1(paths, a, tmp, md)
        print("paired comparison done (%.0f s)" % (time.time() - started), file=sys.stderr)

    # Latency injection accuracy.
    port = free_port()
    inj = Path("fault run, +%g ms" % a.inject_ms, port, nginx.port)
    flags = shlex.split(a.latency_flags.format(ms="%g" % a.inject_ms))
    try:
        s = start_fault(fault, tmp, inj.name, ["--disable-http-proxy", "--proxy",
                                               "%d=127.0.0.1:%d" % (port, nginx.port), *flags],
                        port, a.start_timeout)
        inj.server = s
    except Failed as e:
        inj.failed = str(e)
    lat_paths = [p for p in paths if not p.forward] + [inj]
    q = "`" if md else ""
    print("Latency injection: %sfault run --disable-http-proxy --no-ui --proxy "
          "PORT=127.0.0.1:NGINX %s%s; %d single requests per path and mode from a Python "
          "client, paths interleaved; goals: injection error vs haproxy p50 < 100 µs, "
          "p99 < 1 ms.\n" % (q, " ".join(flags), q, a.samples))
    budget = 30 + a.samples * (a.inject_ms / 1e3 + 0.01) * 2
    errs = [latency_section(lat_paths, a.samples, a.inject_ms, ka, md, budget)
            for ka in (True, False)]

    print("finished in %.0f s, load average %.2f at the end" % (time.time() - started,
                                                              os.getloadavg()[0]))
    anything_failed = any(p.failed for p in lat_paths) or any(failures[t] for t in failures) \
        or None in errs
    return 1 if a.strict and anything_failed else 0


if __name__ == "__main__":
    sys.exit(main())
