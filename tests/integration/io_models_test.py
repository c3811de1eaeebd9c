"""Network effects on every I/O model, observed from outside: real programs
nobody here wrote (nginx, wrk, redis-cli, redis-benchmark, a Go HTTP client,
an io_uring client) under `fault exec`, against real servers on 127.0.0.1.

The effects reach these programs through the stream engine (docs/exec.md,
"I/O models"): whatever way a program waits for its sockets, it waits on a
real kernel socket whose bytes arrive late.

Every server is started by the test on a free loopback port and stopped by
it; every wait is bounded.
"""

import hashlib
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from fault_testlib import FAULT, PY, TARGETS, need


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=10.0, proc=None):
    """Whether something accepts on the port within `timeout` seconds; with
    `proc`, False as soon as that process has exited (what answers then is
    another program's)."""
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


def stop(p, sig=signal.SIGTERM, timeout=10):
    """Stops a process started by a test and returns its stderr."""
    if p.poll() is None:
        p.send_signal(sig)
    try:
        _, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate(timeout=5)
    return err or ""


NGINX_CONF = """daemon off;
master_process off;
worker_processes 1;
error_log %(d)s/error.log;
pid %(d)s/nginx.pid;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path %(d)s/body;
  proxy_temp_path %(d)s/proxy;
  fastcgi_temp_path %(d)s/fcgi;
  uwsgi_temp_path %(d)s/uwsgi;
  scgi_temp_path %(d)s/scgi;
  keepalive_requests 100000;
  server { listen 127.0.0.1:%(p)d; root %(d)s/html; }
}
"""


class Nginx:
    """nginx in the foreground (one process, epoll edge-triggered) serving
    index.html and a 10 MB file, optionally under `fault exec`."""

    BIG = 10_000_000

    def __init__(self, fault_args=None):
        self.dir = tempfile.mkdtemp(prefix="fault-nginx-")
        html = os.path.join(self.dir, "html")
        os.mkdir(html)
        with open(os.path.join(html, "index.html"), "w") as f:
            f.write("hello from nginx\n")
        self.big = os.urandom(self.BIG)
        with open(os.path.join(html, "big.bin"), "wb") as f:
            f.write(self.big)
        # A free port is not a reserved one: another test running beside
        # this one may bind it first, and nginx then exits ("Address
        # already in use"); such a start is tried again on another port.
        for attempt in range(3):
            self.port = free_port()
            conf = os.path.join(self.dir, "nginx.conf")
            with open(conf, "w") as f:
                f.write(NGINX_CONF % {"d": self.dir, "p": self.port})
            cmd = [need("nginx"), "-c", conf, "-p", self.dir]
            if fault_args is not None:
                cmd = [FAULT, "exec", *fault_args, "--", *cmd]
            self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
            if wait_for_port(self.port, proc=self.proc):
                break
            err = stop(self.proc)
            try:
                with open(os.path.join(self.dir, "error.log")) as f:
                    err += f.read()
            except OSError:
                pass
            if "Address already in use" not in err or attempt == 2:
                raise AssertionError("nginx did not start: " + err)
        self.url = "http://127.0.0.1:%d/" % self.port

    def close(self):
        err = stop(self.proc, signal.SIGQUIT)
        shutil.rmtree(self.dir, ignore_errors=True)
        return err


def curl(url, timeout=30):
    """GET with curl (not under fault): (status, body bytes, seconds)."""
    with tempfile.NamedTemporaryFile() as out:
        r = subprocess.run(["curl", "-s", "-o", out.name, "-w", "%{http_code} %{time_total}",
                            "--max-time", str(timeout), url],
                           capture_output=True, text=True, timeout=timeout + 5)
        status, secs = r.stdout.split()
        with open(out.name, "rb") as f:
            return int(status), f.read(), float(secs)


class NginxTest(unittest.TestCase):
    """nginx under fault: edge-triggered epoll, sendfile, keep-alive."""

    def test_latency_5ms_answers_every_request(self):
        ng = Nginx(["--latency", "5ms"])
        try:
            times = []
            for _ in range(5):
                status, body, secs = curl(ng.url)
                self.assertEqual(status, 200)
                self.assertEqual(body, b"hello from nginx\n")
                times.append(secs)
        finally:
            err = ng.close()
        # The request waits 5 ms in, the response 5 ms out.
        for secs in times:
            self.assertGreaterEqual(secs, 0.010, times)
            self.assertLess(secs, 0.5, times)
        self.assertRegex(err, r'policy "cli": matched \d+, fired \d+')
        self.assertIn("latency 127.0.0.1:%d" % ng.port, err)

    def test_uplink_latency_10mb_arrives_intact(self):
        ng = Nginx(["--uplink-latency", "20ms"])
        try:
            status, body, secs = curl(ng.url + "big.bin")
        finally:
            ng.close()
        self.assertEqual(status, 200)
        self.assertEqual(len(body), Nginx.BIG)
        self.assertEqual(hashlib.sha256(body).hexdigest(), hashlib.sha256(ng.big).hexdigest())
        # The server's bytes leave 20 ms late, in a pipeline: the whole
        # transfer takes the delay once plus the copying, not 20 ms a chunk.
        self.assertGreaterEqual(secs, 0.020)
        self.assertLess(secs, 3.0)


class WrkTest(unittest.TestCase):
    """wrk (an event-loop client) under fault against a bare nginx."""

    def test_downlink_latency_10ms_paces_10_connections(self):
        ng = Nginx()
        try:
            r = subprocess.run([FAULT, "exec", "--downlink-latency", "10ms", "--",
                                need("wrk"), "-c10", "-t1", "-d3s", ng.url],
                               capture_output=True, text=True, timeout=60)
        finally:
            ng.close()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("Socket errors", r.stdout)
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", r.stdout).group(1))
        # 10 connections, each one request per 10 ms round trip: 1000/s.
        self.assertGreaterEqual(rps, 800, r.stdout)
        self.assertLessEqual(rps, 1050, r.stdout)


class Redis:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen([need("redis-server"), "--port", str(self.port),
                                      "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if not wait_for_port(self.port):
            raise AssertionError("redis-server did not start: " + stop(self.proc))

    def close(self):
        stop(self.proc)


class RedisTest(unittest.TestCase):
    """hiredis (redis-cli, redis-benchmark): non-blocking connect, event loop."""

    def setUp(self):
        self.redis = Redis()

    def tearDown(self):
        self.redis.close()

    def test_redis_cli_ping_under_latency(self):
        t = time.monotonic()
        r = subprocess.run([FAULT, "exec", "--latency", "5ms", "--", need("redis-cli"),
                            "-p", str(self.redis.port), "ping"],
                           capture_output=True, text=True, timeout=30)
        secs = time.monotonic() - t
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "PONG")
        # The handshake's round trip and the command's: 20 ms at least.
        self.assertGreaterEqual(secs, 0.020)
        # One decision per delayed exchange, not three per delay.
        fired = int(re.search(r"fired (\d+)", r.stderr).group(1))
        self.assertLessEqual(fired, 4, r.stderr)

    def test_redis_cli_refused_under_latency(self):
        port = free_port()  # nothing listens there
        r = subprocess.run([FAULT, "exec", "-q", "--latency", "5ms", "--", need("redis-cli"),
                            "-p", str(port), "ping"],
                           capture_output=True, text=True, timeout=30)
        self.assertIn("Connection refused", r.stdout + r.stderr)

    def test_redis_benchmark_reaches_the_round_trip_bound(self):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.monotonic()
        r = subprocess.run([FAULT, "exec", "--latency", "5ms", "--", need("redis-benchmark"),
                            "-p", str(self.redis.port), "-c", "10", "-n", "2000",
                            "-t", "ping_inline", "-q"],
                           capture_output=True, text=True, timeout=60)
        wall = time.monotonic() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.assertEqual(r.returncode, 0, r.stderr)
        rps = float(re.search(r"PING_INLINE: ([\d.]+) requests per second", r.stdout).group(1))
        # 10 connections, one command per 10 ms round trip each: 1000/s.
        self.assertGreaterEqual(rps, 800, r.stdout)
        self.assertLessEqual(rps, 1050, r.stdout)
        # Waiting, not spinning: the benchmark, the engine and fault together
        # use a small part of one core while the requests are in flight.
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        self.assertLess(cpu / wall, 0.5, "cpu %.2fs over %.2fs" % (cpu, wall))


GO_CLIENT = """package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	start := time.Now()
	resp, err := http.Get(os.Args[1])
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("status=%d bytes=%d ms=%.1f\\n", resp.StatusCode, len(body),
		float64(time.Since(start).Microseconds())/1000)
}
"""


class HttpServer:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="fault-http-")
        with open(os.path.join(self.dir, "index.html"), "w") as f:
            f.write("x" * 1000)
        self.port = free_port()
        self.proc = subprocess.Popen([PY, "-m", "http.server", str(self.port), "--bind",
                                      "127.0.0.1", "--directory", self.dir],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_for_port(self.port):
            raise AssertionError("http.server did not start")
        self.url = "http://127.0.0.1:%d/" % self.port

    def close(self):
        stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


def ms_of(out):
    m = re.search(r"ms=([\d.]+)", out)
    if m is None:
        raise AssertionError("no timing in: " + out)
    return float(m.group(1))


class GoTest(unittest.TestCase):
    """A dynamically linked Go HTTP client: its runtime connects with raw
    syscalls, so its connections reach the engine through seccomp."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="fault-go-")
        src = os.path.join(cls.tmp, "main.go")
        with open(src, "w") as f:
            f.write(GO_CLIENT)
        cls.binary = os.path.join(cls.tmp, "goget")
        env = dict(os.environ, HOME=cls.tmp, GOCACHE=os.path.join(cls.tmp, "cache"),
                   GOPATH=os.path.join(cls.tmp, "gopath"), GOFLAGS="", CGO_ENABLED="1")
        r = subprocess.run([need("go"), "build", "-o", cls.binary, src], cwd=cls.tmp,
                           capture_output=True, text=True, timeout=300, env=env)
        if r.returncode != 0:
            raise AssertionError("go build failed: " + r.stderr)
        # The same client without cgo: a static binary, no libc at all.
        cls.static_binary = os.path.join(cls.tmp, "goget-static")
        r = subprocess.run([need("go"), "build", "-o", cls.static_binary, src], cwd=cls.tmp,
                           capture_output=True, text=True, timeout=300,
                           env=dict(env, CGO_ENABLED="0"))
        if r.returncode != 0:
            raise AssertionError("go build (static) failed: " + r.stderr)
        cls.server = HttpServer()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_dynamic_go_client_gets_the_latency(self):
        r = subprocess.run(["file", self.binary], capture_output=True, text=True)
        self.assertIn("dynamically linked", r.stdout)
        r = subprocess.run([FAULT, "exec", "--latency", "50ms", "--", self.binary,
                            self.server.url], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("status=200 bytes=1000", r.stdout)
        # The handshake (100 ms), the request (50 ms), the response (50 ms).
        self.assertGreaterEqual(ms_of(r.stdout), 195, r.stdout)
        self.assertLess(ms_of(r.stdout), 1000, r.stdout)
        self.assertIn("is a Go program", r.stderr)
        self.assertRegex(r.stderr, r"latency 127\.0\.0\.1:%d: [1-9]" % self.server.port)

    def test_both_go_clients_take_200ms_longer_under_200ms_latency(self):
        r = subprocess.run(["file", self.static_binary], capture_output=True, text=True)
        self.assertIn("statically linked", r.stdout)
        for binary in (self.binary, self.static_binary):
            bare = subprocess.run([binary, self.server.url], capture_output=True, text=True,
                                  timeout=60)
            self.assertEqual(bare.returncode, 0, bare.stderr)
            r = subprocess.run([FAULT, "exec", "--latency", "200ms", "--", binary,
                                self.server.url], capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("status=200 bytes=1000", r.stdout)
            self.assertGreaterEqual(ms_of(r.stdout) - ms_of(bare.stdout), 200,
                                    "%s: bare %s, faulted %s" % (binary, bare.stdout, r.stdout))

    def test_go_client_without_policy_is_not_slowed(self):
        r = subprocess.run([FAULT, "exec", "--", self.binary, self.server.url],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertLess(ms_of(r.stdout), 100, r.stdout)


class UringTest(unittest.TestCase):
    """Socket I/O through io_uring on a connection made with connect(2)."""

    def setUp(self):
        self.server = HttpServer()
        self.client = os.path.join(TARGETS, "fault_target_uring_client")
        if not os.path.exists(self.client):
            raise AssertionError("%s is not built" % self.client)

    def tearDown(self):
        self.server.close()

    def test_uring_send_and_recv_get_the_latency(self):
        r = subprocess.run([FAULT, "exec", "--io-uring=allow", "--latency", "50ms", "--",
                            self.client, str(self.server.port), "connect"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("status=HTTP/1.0 200 OK", r.stdout)
        # connect (100 ms), the request through IORING_OP_SEND (50 ms), the
        # response through IORING_OP_RECV (50 ms).
        self.assertGreaterEqual(ms_of(r.stdout), 195, r.stdout)


class StaticTest(unittest.TestCase):
    """A static program (seccomp alone): its connects reach the engine too."""

    def test_static_program_takes_200ms_longer_under_200ms_latency(self):
        server = HttpServer()
        closed = free_port()
        program = os.path.join(TARGETS, "seccomp_connect_target")
        try:
            t = time.monotonic()
            subprocess.run([program, str(server.port), str(closed)], capture_output=True,
                           timeout=60)
            bare = time.monotonic() - t
            t = time.monotonic()
            r = subprocess.run([FAULT, "exec", "--latency", "200ms", "--", program,
                                str(server.port), str(closed)],
                               capture_output=True, text=True, timeout=60)
            faulted = time.monotonic() - t
        finally:
            server.close()
        self.assertIn("connect 127.0.0.1:%d: ok" % server.port, r.stdout, r.stderr)
        self.assertGreaterEqual(faulted - bare, 0.2, "bare %.3fs, faulted %.3fs"
                                % (bare, faulted))

    def test_static_connect_pays_the_handshake_and_keeps_refusals(self):
        server = HttpServer()
        closed = free_port()
        try:
            t = time.monotonic()
            r = subprocess.run([FAULT, "exec", "--latency", "100ms", "--",
                                os.path.join(TARGETS, "seccomp_connect_target"),
                                str(server.port), str(closed)],
                               capture_output=True, text=True, timeout=60)
            secs = time.monotonic() - t
        finally:
            server.close()
        self.assertIn("connect 127.0.0.1:%d: ok" % server.port, r.stdout)
        self.assertIn("connect 127.0.0.1:%d: Connection refused" % closed, r.stdout)
        self.assertEqual(r.returncode, 1)  # one connect failed, as it should
        self.assertGreaterEqual(secs, 0.4)  # two handshakes of 200 ms


NONBLOCKING_CLIENT = r"""
import errno, select, socket, sys, time
port = int(sys.argv[1])
s = socket.socket()
s.setblocking(False)
t = time.monotonic()
rc = s.connect_ex(("127.0.0.1", port))
select.select([], [s], [], 10)
err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
if err:
    print("so_error=%s" % errno.errorcode[err])
    sys.exit(0)
s.send(b"GET / HTTP/1.0\r\n\r\n")
data = b""
while time.monotonic() - t < 10:
    select.select([s], [], [], 10)
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print("rc=%s bytes=%d ms=%.1f" % (errno.errorcode.get(rc, rc), len(data),
                                  (time.monotonic() - t) * 1000))
"""


class NonBlockingConnectTest(unittest.TestCase):
    def test_nonblocking_connect_then_exchange(self):
        server = HttpServer()
        try:
            r = subprocess.run([FAULT, "exec", "-q", "--latency", "30ms", "--", PY, "-c",
                                NONBLOCKING_CLIENT, str(server.port)],
                               capture_output=True, text=True, timeout=60)
        finally:
            server.close()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("rc=EINPROGRESS", r.stdout)
        self.assertGreater(int(re.search(r"bytes=(\d+)", r.stdout).group(1)), 1000)
        self.assertGreaterEqual(ms_of(r.stdout), 115, r.stdout)  # 60 + 30 + 30

    def test_refusal_is_reported_through_so_error(self):
        r = subprocess.run([FAULT, "exec", "-q", "--latency", "30ms", "--", PY, "-c",
                            NONBLOCKING_CLIENT, str(free_port())],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "so_error=ECONNREFUSED")


ACCEPTING_SERVER = r"""
import socket, sys
lst = socket.socket()
lst.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
lst.bind(("127.0.0.1", 0))
lst.listen(1)
print(lst.getsockname()[1], flush=True)
lst.settimeout(10)
c, addr = lst.accept()
print("accepted=%s:%d peer=%s:%d local=%s:%d keepalive=%d" % (
    addr[0], addr[1], *c.getpeername(), *c.getsockname(),
    c.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)), flush=True)
c.sendall(c.recv(100))
c.close()
"""


class AcceptTest(unittest.TestCase):
    """A server's accepted connection handed to the engine keeps what the
    program sees of it: its addresses and the listener's options."""

    def test_accepted_socket_keeps_addresses_and_options(self):
        p = subprocess.Popen([FAULT, "exec", "-q", "--uplink-latency", "50ms", "--", PY, "-c",
                              ACCEPTING_SERVER], stdout=subprocess.PIPE, text=True)
        try:
            port = int(p.stdout.readline())
            with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
                me = c.getsockname()
                line = p.stdout.readline().strip()
                t = time.monotonic()
                c.sendall(b"echo")
                self.assertEqual(c.recv(100), b"echo")
                secs = time.monotonic() - t
        finally:
            out, _ = p.communicate(timeout=20)
        self.assertEqual(line, "accepted=127.0.0.1:%d peer=127.0.0.1:%d local=127.0.0.1:%d "
                               "keepalive=1" % (me[1], me[1], port))
        self.assertGreaterEqual(secs, 0.050)  # the server's reply, uplink


if __name__ == "__main__":
    unittest.main()
