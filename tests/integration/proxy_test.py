"""`fault run` (the fault proxy, docs/proxy.md) end to end: the proxy runs as
a subprocess on free loopback ports, real clients (curl, redis-cli,
Python's http.client and sockets) go through it to real servers (an HTTP
server and TCP senders in this process, redis-server), and the tests observe
from outside: status codes, bodies and their digests, measured times, exit
statuses, what the proxy prints.

Every server listens on loopback only; every subprocess has a timeout; every
loop is bounded in count and time. Each test class is one ctest entry
(tests/integration/CMakeLists.txt).
"""

import hashlib
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import unittest

from fault_testlib import FAULT, TcpServer, clean_env, need

# Latency slack on top of a configured delay: the proxy, curl and the
# Python server on two shared cores.
SLACK = 0.25


def free_port(host="127.0.0.1"):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def have_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
            s.listen(1)
            with socket.create_connection(("::1", s.getsockname()[1]), timeout=2):
                return True
    except OSError:
        return False


def hostport(host, port):
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


# ------------------------------------------------------------------ servers ---

class HttpServer:
    """A threading HTTP/1.1 server (keep-alive) in this process.

    GET /... answers BODY; GET /size/N answers the first N bytes of BLOB.
    It counts connections and requests and stamps when each request's head
    arrived, by path, on time.monotonic()."""

    BODY = b"hello from the test server\n"
    BLOB = os.urandom(1 << 20)

    def __init__(self, host="127.0.0.1"):
        owner = self
        self.lock = threading.Lock()
        self.connections = 0
        self.requests = 0
        self.arrivals = {}

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # The head and the body are two writes: without TCP_NODELAY
            # the body would wait for the client's delayed ACK (40 ms).
            disable_nagle_algorithm = True

            def do_GET(self):
                t = time.monotonic()
                with owner.lock:
                    owner.requests += 1
                    owner.arrivals[self.path] = t
                m = re.match(r"/size/(\d+)", self.path)
                body = owner.BLOB[:int(m.group(1))] if m else owner.BODY
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
            daemon_threads = True
            block_on_close = False

            def process_request(self, request, client_address):
                with owner.lock:
                    owner.connections += 1
                super().process_request(request, client_address)

        self.httpd = Server((host, 0), Handler)
        self.host = host
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path="/", host=None):
        return "http://%s%s" % (hostport(host or self.host, self.port), path)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


class BlobServer(TcpServer):
    """A TCP server in this process: each connection sends one line, gets
    `blob` back and then the end of the stream."""

    def __init__(self, blob):
        self.blob = blob
        super().__init__()

    def _serve(self, c):
        c.settimeout(30)
        try:
            line = b""
            while not line.endswith(b"\n") and len(line) < 100:
                chunk = c.recv(100)
                if not chunk:
                    return  # a probe: connected and left
                line += chunk
            c.sendall(self.blob)
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            c.close()


def download(port, timeout=30):
    """Asks a BlobServer (through a mapping on `port`) for its blob and reads
    to the end: (bytes, [(monotonic time, bytes so far)], request time)."""
    got = bytearray()
    marks = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        t0 = time.monotonic()
        s.sendall(b"GET\n")
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            got += chunk
            marks.append((time.monotonic(), len(got)))
    return bytes(got), marks, t0


class Redis:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen([need("redis-server"), "--port", str(self.port),
                                      "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if not wait_for_port("127.0.0.1", self.port, 10, self.proc):
            self.close()
            raise AssertionError("redis-server did not start on port %d" % self.port)

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate(timeout=5)


def listening_ports(pid):
    """The TCP ports that process `pid` itself listens on, from /proc; None
    when /proc does not tell."""
    try:
        inodes = set()
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[len("socket:["):-1])
        ports = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if len(fields) > 9 and fields[3] == "0A" and fields[9] in inodes:
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        return ports
    except (OSError, StopIteration, ValueError):
        return None


def wait_for_port(host, port, timeout, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


# -------------------------------------------------------------------- fault ---

class PortTaken(AssertionError):
    """Another program took a free port before fault run could bind it."""


class FaultRun:
    """`fault run ARGS` as a subprocess. `listeners` are the (host, port)
    pairs it must listen on before the test goes on: waited for, with a
    bound, until the fault process itself holds a listening socket on each
    port (so that a port another program took meanwhile is not mistaken
    for the proxy's). stop() sends SIGINT (or `sig`) and returns (status,
    stdout, stderr)."""

    def __init__(self, args, listeners, env=None, no_ui=True, start_timeout=10):
        self.out = tempfile.TemporaryFile(mode="w+")
        self.err = tempfile.TemporaryFile(mode="w+")
        self.cmd = [FAULT, "run", *(["--no-ui"] if no_ui else []), *args]
        self.started = time.monotonic()
        self.stopped = False
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=self.err, env=clean_env(env))
        want = {port for _, port in listeners}
        deadline = self.started + start_timeout
        while True:
            if self.proc.poll() is not None:
                rc, out, err = self.stop()
                if rc == 1 and "cannot listen on" in err:
                    raise PortTaken(err)
                raise AssertionError("fault run exited with status %s before listening: %s\n%s"
                                     % (rc, " ".join(self.cmd), err))
            owned = listening_ports(self.proc.pid)
            if owned is None:  # no /proc: connect to each listener
                if all(wait_for_port(h, p, start_timeout, self.proc) for h, p in listeners):
                    break
            elif want <= owned:
                break
            if time.monotonic() > deadline:
                rc, out, err = self.stop(signal.SIGKILL)
                raise AssertionError("fault run did not listen on %s within %ds: %s\n%s"
                                     % (sorted(want), start_timeout, " ".join(self.cmd), err))
            time.sleep(0.02)

    def elapsed(self):
        return time.monotonic() - self.started

    def wait(self, timeout):
        """Waits for the proxy to stop by itself: (status, stdout, stderr)."""
        self.stopped = True
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return self.stop(signal.SIGKILL)
        return self._result()

    def stop(self, sig=signal.SIGINT, timeout=10):
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        return self._result()

    def _result(self):
        self.out.seek(0)
        self.err.seek(0)
        out, err = self.out.read(), self.err.read()
        self.out.close()
        self.err.close()
        return self.proc.returncode, out, err


def fault_run_once(args, env=None, timeout=15):
    """`fault run ARGS` that is expected to exit by itself."""
    try:
        return subprocess.run([FAULT, "run", *args], capture_output=True, text=True,
                              timeout=timeout, env=clean_env(env), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise AssertionError("fault run %s did not exit within %ds" % (" ".join(args), timeout))


def curl(url, proxy=None, tunnel=False, max_time=10, extra=()):
    """GET with curl: (exit status, HTTP status, body, seconds)."""
    with tempfile.NamedTemporaryFile() as out:
        cmd = [need("curl"), "-s", "-g", "-o", out.name, "-w", "%{http_code} %{time_total}",
               "--max-time", str(max_time), *extra]
        if proxy is not None:
            cmd += ["-x", proxy]
            if tunnel:
                cmd += ["-p"]
        cmd.append(url)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=max_time + 10,
                           env=clean_env())
        status, secs = r.stdout.split()
        with open(out.name, "rb") as f:
            return r.returncode, int(status), f.read(), float(secs)


class KeepAliveClient:
    """http.client through the forward proxy on one connection (a new one
    only if the proxy closes it): get(url) -> (status, body, sent, done)."""

    def __init__(self, proxy_port, host="127.0.0.1"):
        self.host, self.proxy_port = host, proxy_port
        self.conn = http.client.HTTPConnection(host, proxy_port, timeout=15)
        self.connections = 1

    def get(self, url):
        t0 = time.monotonic()
        self.conn.request("GET", url)
        r = self.conn.getresponse()
        body = r.read()
        t1 = time.monotonic()
        if r.will_close:
            self.conn.close()
            self.conn = http.client.HTTPConnection(self.host, self.proxy_port, timeout=15)
            self.connections += 1
        return r.status, body, t0, t1

    def close(self):
        self.conn.close()


class ProxyTestCase(unittest.TestCase):
    """Starts servers and proxies and makes sure they are stopped."""

    def setUp(self):
        self._proxies = []
        self._closers = []

    def tearDown(self):
        died = []
        for p in self._proxies:
            if p.stopped:
                continue
            if p.proc.poll() is None:
                p.stop(signal.SIGKILL)
            else:
                # It ended while the test still used it.
                rc, out, err = p.stop()
                died.append("%s\nexited by itself with status %s after %.2fs; stderr:\n%s"
                            % (" ".join(p.cmd), rc, p.elapsed(), err))
        for c in reversed(self._closers):
            c()
        if died:
            self.fail("\n".join(died))

    def start(self, build, hosts=("127.0.0.1",), **kw):
        """Starts fault run on one free port per host: build(*ports) gives
        its arguments, or (arguments, environment). Picks new ports if
        another program took one first."""
        for attempt in range(3):
            ports = [free_port(h) for h in hosts]
            built = build(*ports)
            args, env = built if isinstance(built, tuple) else (built, None)
            try:
                p = FaultRun(args, list(zip(hosts, ports)), env=env, **kw)
            except PortTaken:
                if attempt == 2:
                    raise
                continue
            p.ports = ports
            self._proxies.append(p)
            return p

    def http_server(self, host="127.0.0.1"):
        s = HttpServer(host)
        self._closers.append(s.close)
        return s

    def proxy(self, args, **kw):
        """fault run with the forward proxy on a free 127.0.0.1 port plus
        ARGS; returns (FaultRun, proxy URL)."""
        p = self.start(lambda port: ["--proxy-address", "127.0.0.1:%d" % port, *args], **kw)
        p.port = p.ports[0]
        return p, "http://127.0.0.1:%d" % p.port

    def mapping(self, args, upstream_port, **kw):
        """fault run --disable-http-proxy --proxy M=127.0.0.1:UPSTREAM plus
        ARGS on a free port M; returns (FaultRun, M)."""
        p = self.start(lambda m: ["--disable-http-proxy", "--proxy",
                                  "%d=127.0.0.1:%d" % (m, upstream_port), *args], **kw)
        return p, p.ports[0]

    def assertNotListening(self, p, port):
        owned = listening_ports(p.proc.pid)
        if owned is None:
            with socket.socket() as s:
                owned = {port} if s.connect_ex(("127.0.0.1", port)) == 0 else set()
        self.assertNotIn(port, owned, "fault run listens on port %d too" % port)

    def assertStoppedCleanly(self, p, sig=signal.SIGINT):
        """Stops the proxy: exit status 0 and the summary on stderr."""
        rc, out, err = p.stop(sig)
        self.assertEqual(rc, 0, "fault run exited %s after %s: %s" % (rc, sig, err))
        self.assertRegex(err, r"(?m)^fault: proxy: \d+ connections, \d+ HTTP requests", err)
        return out, err


# -------------------------------------------------------------------- tests ---

LATENCY_200 = ["--with-latency", "--latency-mean", "200", "--latency-stddev", "0"]


class ForwardProxyTest(ProxyTestCase):
    """curl -x through the forward proxy; --upstream decides what is faulted."""

    def setUp(self):
        super().setUp()
        self.server = self.http_server()

    def test_keep_alive_reuses_one_upstream_connection(self):
        p, proxy = self.proxy([])
        first = KeepAliveClient(p.port)
        for i in range(5):
            status, body, _, _ = first.get(self.server.url("/k%d" % i))
            self.assertEqual((status, body), (200, HttpServer.BODY))
        first.close()
        # A later client gets the pooled connection.
        time.sleep(0.1)
        second = KeepAliveClient(p.port)
        status, _, _, _ = second.get(self.server.url("/k5"))
        second.close()
        self.assertEqual(status, 200)
        _, err = self.assertStoppedCleanly(p)
        self.assertEqual(first.connections, 1)
        self.assertEqual(self.server.requests, 6)
        self.assertEqual(self.server.connections, 1)
        self.assertIn("6 HTTP requests (5 on a reused upstream)", err)

    def test_dns_fault_fails_lookups_of_host_names_only(self):
        p, proxy = self.proxy(["--with-dns", "--dns-rate", "1", "--upstream", "*"])
        rc, status, body, _ = curl(self.server.url("/by-name", host="localhost"), proxy)
        self.assertEqual((rc, status), (0, 502), body)
        self.assertIn(b"cannot resolve localhost", body)
        self.assertIn(b"(fault: dns)", body)
        # An IP address needs no lookup: nothing to fail.
        rc, status, body, _ = curl(self.server.url("/by-ip"), proxy)
        self.assertEqual((rc, status, body), (0, 200, HttpServer.BODY))
        _, err = self.assertStoppedCleanly(p)
        self.assertEqual(self.server.requests, 1)
        self.assertRegex(err, r'policy "dns": matched \d+, fired 1\b')

    def test_no_faults_forwards_the_request(self):
        p, proxy = self.proxy([])
        rc, status, body, secs = curl(self.server.url("/plain"), proxy)
        self.assertEqual((rc, status, body), (0, 200, HttpServer.BODY))
        self.assertLess(secs, 1.0)
        self.assertIn("/plain", self.server.arrivals)
        _, err = self.assertStoppedCleanly(p)
        self.assertRegex(err, r"fault: proxy: \d+ connections, 1 HTTP requests")

    def test_sigterm_stops_it_too(self):
        p, proxy = self.proxy([])
        rc, status, body, _ = curl(self.server.url(), proxy)
        self.assertEqual((rc, status, body), (0, 200, HttpServer.BODY))
        self.assertStoppedCleanly(p, signal.SIGTERM)

    def test_latency_for_every_upstream(self):
        p, proxy = self.proxy([*LATENCY_200, "--upstream", "*"])
        times = []
        for _ in range(3):
            rc, status, body, secs = curl(self.server.url(), proxy)
            self.assertEqual((rc, status, body), (0, 200, HttpServer.BODY))
            times.append(secs)
        _, err = self.assertStoppedCleanly(p)
        for secs in times:
            self.assertGreaterEqual(secs, 0.2, times)
            self.assertLess(secs, 0.2 + SLACK, times)
        self.assertRegex(err, r'fault: policy "latency": matched \d+, fired [1-9]')

    def test_without_upstream_forwarded_requests_are_not_faulted(self):
        p, proxy = self.proxy(LATENCY_200, no_ui=False)
        times = []
        for _ in range(3):
            rc, status, body, secs = curl(self.server.url(), proxy)
            self.assertEqual((rc, status, body), (0, 200, HttpServer.BODY))
            times.append(secs)
        out, _ = self.assertStoppedCleanly(p)
        for secs in times:
            self.assertLess(secs, 0.15, times)
        # It says so when it starts.
        self.assertIn("no --upstream", out)

    def test_plain_status_lines_when_not_a_terminal(self):
        # Without a terminal: a plain line every 10 s when something changed.
        p, proxy = self.proxy([*LATENCY_200, "--upstream", "*", "--duration", "11s"],
                              no_ui=False)
        for i in range(2):
            rc, status, _, _ = curl(self.server.url("/s%d" % i), proxy)
            self.assertEqual((rc, status), (0, 200))
        rc, out, err = p.wait(timeout=20)
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"(?m)^fault run: HTTP proxy on http://127\.0\.0\.1:\d+ "
                              r"\(faults for \*\)$")
        self.assertRegex(out, r"(?m)^fault run: 0 open, 2 accepted, 2 HTTP requests, "
                              r"up \d+ B, down \d+ B, 0\.\d faults/s$")

    def test_upstream_matches_host_and_port_exactly(self):
        p, proxy = self.proxy([*LATENCY_200, "--upstream", "127.0.0.1:%d" % self.server.port])
        rc, status, body, matched = curl(self.server.url("/ip"), proxy)
        self.assertEqual((rc, status, body), (0, 200, HttpServer.BODY))
        rc, status, body, other = curl(self.server.url("/name", host="localhost"), proxy)
        self.assertEqual((rc, status, body), (0, 200, HttpServer.BODY))
        self.assertStoppedCleanly(p)
        self.assertGreaterEqual(matched, 0.2)
        self.assertLess(matched, 0.2 + SLACK)
        # localhost:S is another upstream, though it is the same server.
        self.assertLess(other, 0.15)
        self.assertIn("/name", self.server.arrivals)

    def test_connect_tunnel_gets_the_body_and_the_latency(self):
        p, proxy = self.proxy([*LATENCY_200, "--upstream", "*"])
        rc, status, body, secs = curl(self.server.url("/tunnel"), proxy, tunnel=True)
        self.assertEqual((rc, status, body), (0, 200, HttpServer.BODY))
        self.assertIn("/tunnel", self.server.arrivals)
        self.assertStoppedCleanly(p)
        self.assertGreaterEqual(secs, 0.2)
        # The response's delay, and at most one more for the CONNECT answer.
        self.assertLess(secs, 0.4 + SLACK)

    def test_connect_tunnel_without_upstream_is_not_delayed(self):
        p, proxy = self.proxy(LATENCY_200)
        rc, status, body, secs = curl(self.server.url(), proxy, tunnel=True)
        self.assertEqual((rc, status, body), (0, 200, HttpServer.BODY))
        self.assertStoppedCleanly(p)
        self.assertLess(secs, 0.15)


class DistributionTest(ProxyTestCase):
    """Latency distributions over 40 keep-alive requests each, and which
    side and direction a delay applies to."""

    N = 40

    def setUp(self):
        super().setUp()
        self.server = self.http_server()

    def sample(self, fault_args, n=None):
        """Seconds from sending each of N requests on one keep-alive
        connection to having its whole response."""
        p, _ = self.proxy([*fault_args, "--upstream", "*"])
        client = KeepAliveClient(p.port)
        times = []
        try:
            deadline = time.monotonic() + 40
            for i in range(n or self.N):
                if time.monotonic() > deadline:
                    break
                status, body, t0, t1 = client.get(self.server.url("/d%d" % i))
                self.assertEqual((status, body), (200, HttpServer.BODY))
                times.append(t1 - t0)
        finally:
            client.close()
        self.assertStoppedCleanly(p)
        self.assertEqual(len(times), n or self.N, "requests did not finish in time")
        return times, client.connections

    def baseline(self):
        times, _ = self.sample([], n=10)
        return statistics.median(times)

    def test_normal_mean_and_stddev(self):
        base = self.baseline()
        times, conns = self.sample(["--with-latency", "--latency-distribution", "normal",
                                    "--latency-mean", "100", "--latency-stddev", "20"])
        mean = statistics.mean(times) - base
        sd = statistics.stdev(times)
        msg = "mean %.4f sd %.4f base %.4f: %s" % (mean, sd, base, times)
        # The standard error of the mean of 40 is 3 ms.
        self.assertGreaterEqual(mean, 0.088, msg)
        self.assertLessEqual(mean, 0.115, msg)
        self.assertGreaterEqual(sd, 0.010, msg)
        self.assertLessEqual(sd, 0.035, msg)
        # Keep-alive: every response of the connection is delayed.
        self.assertEqual(conns, 1)

    def test_uniform_min_max(self):
        times, _ = self.sample(["--with-latency", "--latency-distribution", "uniform",
                                "--latency-min", "50", "--latency-max", "150"])
        msg = str(times)
        for t in times:
            self.assertGreaterEqual(t, 0.050, msg)
            self.assertLess(t, 0.150 + 0.05, msg)
        # Spread over the range: both ends are reached (P of failing < 1e-6).
        self.assertLess(min(times), 0.080, msg)
        self.assertGreater(max(times), 0.120, msg)
        self.assertGreater(statistics.stdev(times), 0.015, msg)

    def test_pareto_at_least_scale(self):
        times, _ = self.sample(["--with-latency", "--latency-distribution", "pareto",
                                "--latency-shape", "3", "--latency-scale", "50"])
        msg = str(times)
        for t in times:
            self.assertGreaterEqual(t, 0.050, msg)
        self.assertGreater(max(times) - min(times), 0.010, msg)

    def directions(self, side_direction, delay=0.15):
        """(uplink, downlink) seconds of one request under a latency with
        --latency-side/--latency-direction flags `side_direction`: when the
        server got the request after it was sent, and when the response
        arrived after the server answered."""
        p, proxy = self.proxy(["--with-latency", "--latency-mean", str(int(delay * 1000)),
                               "--latency-stddev", "0", *side_direction, "--upstream", "*"])
        client = KeepAliveClient(p.port)
        ups, downs = [], []
        try:
            for i in range(2):
                path = "/dir%d" % i
                status, body, t0, t1 = client.get(self.server.url(path))
                self.assertEqual((status, body), (200, HttpServer.BODY))
                arrived = self.server.arrivals[path]
                ups.append(arrived - t0)
                downs.append(t1 - arrived)
        finally:
            client.close()
        self.assertStoppedCleanly(p)
        return min(ups), min(downs), max(ups), max(downs)

    def assertDirection(self, flags, up, down, delay=0.15):
        min_up, min_down, max_up, max_down = self.directions(flags, delay)
        msg = "%s: uplink %.3f..%.3f downlink %.3f..%.3f" % (
            flags, min_up, max_up, min_down, max_down)
        if up:
            self.assertGreaterEqual(min_up, delay, msg)
            self.assertLess(max_up, delay + SLACK, msg)
        else:
            self.assertLess(max_up, 0.1, msg)
        if down:
            self.assertGreaterEqual(min_down, delay, msg)
            self.assertLess(max_down, delay + SLACK, msg)
        else:
            self.assertLess(max_down, 0.1, msg)

    def test_client_ingress_delays_the_request(self):
        self.assertDirection(["--latency-side", "client", "--latency-direction", "ingress"],
                             up=True, down=False)

    def test_side_and_direction_defaults(self):
        # server/ingress is the default: downlink.
        self.assertDirection([], up=False, down=True)
        self.assertDirection(["--latency-side", "server"], up=False, down=True)
        self.assertDirection(["--latency-direction", "ingress"], up=False, down=True)
        # server/egress: uplink (the side defaults to server).
        self.assertDirection(["--latency-direction", "egress"], up=True, down=False)
        # client (direction ingress by default): uplink.
        self.assertDirection(["--latency-side", "client"], up=True, down=False)
        self.assertDirection(["--latency-side", "client", "--latency-direction", "egress"],
                             up=False, down=True)

    def test_direction_both(self):
        self.assertDirection(["--latency-direction", "both"], up=True, down=True)
        self.assertDirection(["--latency-side", "client", "--latency-direction", "both"],
                             up=True, down=True)


class BandwidthTest(ProxyTestCase):
    """Downloads through a TCP mapping, with and without a bandwidth limit."""

    def test_500_kBps_holds_over_the_transfer(self):
        size = 2_500_000
        blob = os.urandom(size)
        server = BlobServer(blob)
        self._closers.append(server.close)
        p, m = self.mapping(["--with-bandwidth", "--bandwidth-rate", "500",
                             "--bandwidth-unit", "KBps"], server.port)
        got, marks, t0 = download(m)
        _, err = self.assertStoppedCleanly(p)
        self.assertEqual(len(got), size)
        self.assertEqual(hashlib.sha256(got).hexdigest(), hashlib.sha256(blob).hexdigest())
        total = marks[-1][0] - t0
        # Throughput over the transfer, past its first tenth (the bucket's
        # burst and the first buffers): 500,000 bytes a second within 3%.
        t_a, n_a = next((t, n) for t, n in marks if n >= size // 10)
        rate = (size - n_a) / (marks[-1][0] - t_a)
        msg = "rate %.0f B/s, %.3f s in all" % (rate, total)
        self.assertGreaterEqual(rate, 500_000 * 0.97, msg)
        self.assertLessEqual(rate, 500_000 * 1.03, msg)
        self.assertGreaterEqual(total, 5.0 * 0.97, msg)
        self.assertLessEqual(total, 5.0 * 1.03, msg)
        # And it holds within each second, not only on average.
        for second in range(1, 4):
            a = next(n for t, n in marks if t - t0 >= second)
            b = next(n for t, n in marks if t - t0 >= second + 1)
            self.assertGreater(b - a, 500_000 * 0.85, "second %d: %d bytes; %s"
                               % (second, b - a, msg))
            self.assertLess(b - a, 500_000 * 1.15, "second %d: %d bytes; %s"
                            % (second, b - a, msg))
        self.assertRegex(err, r'fault: policy "bandwidth": matched \d+')

    def test_50_MB_without_faults_arrives_intact_and_quickly(self):
        size = 50_000_000
        blob = os.urandom(size)
        server = BlobServer(blob)
        self._closers.append(server.close)
        p, m = self.mapping([], server.port)
        got, marks, t0 = download(m, timeout=60)
        self.assertStoppedCleanly(p)
        self.assertEqual(len(got), size)
        self.assertEqual(hashlib.sha256(got).hexdigest(), hashlib.sha256(blob).hexdigest())
        self.assertLess(marks[-1][0] - t0, 10.0)


class TrickleServer(BlobServer):
    """Answers each line with `pieces` writes of 10 bytes, `gap` seconds
    apart, then ends the stream."""

    def __init__(self, pieces=5, gap=0.02):
        self.pieces, self.gap = pieces, gap
        super().__init__(b"")

    def _serve(self, c):
        c.settimeout(30)
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if not c.recv(100):
                return
            for i in range(self.pieces):
                c.sendall(b"%09d\n" % i)
                time.sleep(self.gap)
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            c.close()


class PerOperationTest(ProxyTestCase):
    """--latency-per-read-write: a decision for every read, where the default
    takes one per flight (what arrives while earlier bytes still wait)."""

    def latency_events(self, extra):
        server = TrickleServer()
        self._closers.append(server.close)
        events = os.path.join(tempfile.mkdtemp(), "events.jsonl")
        self._closers.append(lambda: shutil.rmtree(os.path.dirname(events), True))
        p, m = self.mapping(["--with-latency", "--latency-mean", "200", "--latency-stddev", "0",
                             "--events", events, *extra], server.port)
        t = time.monotonic()
        with socket.create_connection(("127.0.0.1", m), timeout=10) as c:
            c.sendall(b"go\n")
            data = b""
            while len(data) < 50:
                chunk = c.recv(100)
                if not chunk:
                    break
                data += chunk
        secs = time.monotonic() - t
        self.assertStoppedCleanly(p)
        self.assertEqual(data, b"".join(b"%09d\n" % i for i in range(5)))
        with open(events) as f:
            lines = [json.loads(line) for line in f if line.strip()]
        return [e for e in lines if e["effect"] == "latency" and e["op"] == "recv"], secs

    def test_one_decision_per_flight_by_default(self):
        events, secs = self.latency_events([])
        self.assertEqual(len(events), 1, events)
        self.assertGreaterEqual(secs, 0.2 + 0.08)

    def test_per_read_write_decides_every_read(self):
        events, secs = self.latency_events(["--latency-per-read-write"])
        self.assertEqual(len(events), 5, events)
        self.assertGreaterEqual(secs, 0.2 + 0.08)


class FaultsTest(ProxyTestCase):
    """Blackhole, HTTP responses, packet loss and jitter on forwarded requests."""

    def setUp(self):
        super().setUp()
        self.server = self.http_server()

    def test_blackhole_response_never_arrives(self):
        p, proxy = self.proxy(["--with-blackhole", "--upstream", "*"])
        t = time.monotonic()
        rc, status, body, _ = curl(self.server.url(), proxy, max_time=2)
        secs = time.monotonic() - t
        _, err = self.assertStoppedCleanly(p)
        self.assertEqual(rc, 28, "curl should time out, got status %s body %r" % (status, body))
        self.assertEqual(body, b"")
        self.assertGreaterEqual(secs, 2.0)
        self.assertRegex(err, r'fault: policy "blackhole": matched \d+')

    def test_http_response_answers_without_the_upstream(self):
        p, proxy = self.proxy(["--with-http-response", "--http-response-status", "503",
                               "--http-response-trigger-probability", "1", "--upstream", "*"])
        for _ in range(3):
            rc, status, body, _ = curl(self.server.url(), proxy)
            self.assertEqual((rc, status), (0, 503), body)
        _, err = self.assertStoppedCleanly(p)
        self.assertEqual(self.server.requests, 0)
        self.assertEqual(self.server.connections, 0)
        self.assertRegex(err, r'fault: policy "http-response": matched \d+, fired 3')

    def test_http_response_body(self):
        p, proxy = self.proxy(["--with-http-response", "--http-response-status", "418",
                               "--http-response-body", "short and stout\n",
                               "--http-response-trigger-probability", "1", "--upstream", "*"])
        rc, status, body, _ = curl(self.server.url(), proxy)
        self.assertStoppedCleanly(p)
        self.assertEqual((rc, status, body), (0, 418, b"short and stout\n"))

    def test_http_response_half_of_40_requests(self):
        p, proxy = self.proxy(["--with-http-response", "--http-response-status", "503",
                               "--http-response-trigger-probability", "0.5",
                               "--upstream", "*", "--seed", "7"])
        client = KeepAliveClient(p.port)
        statuses = []
        try:
            for i in range(40):
                status, body, _, _ = client.get(self.server.url("/p%d" % i))
                statuses.append(status)
                if status == 200:
                    self.assertEqual(body, HttpServer.BODY)
        finally:
            client.close()
        self.assertStoppedCleanly(p)
        errors = statuses.count(503)
        self.assertEqual(errors + statuses.count(200), 40, statuses)
        # Binomial(40, 0.5): outside 10..30 with probability 3e-4; with a
        # seed the draws are the same every run.
        self.assertGreaterEqual(errors, 10, statuses)
        self.assertLessEqual(errors, 30, statuses)
        # The server saw exactly the requests that were not answered.
        self.assertEqual(self.server.requests, 40 - errors)

    def test_packet_loss_stalls_but_keeps_every_byte(self):
        p, proxy = self.proxy(["--with-packet-loss", "--packet-loss-rate", "50%",
                               "--upstream", "*"])
        times = []
        deadline = time.monotonic() + 40
        for i in range(12):
            if time.monotonic() > deadline:
                break
            rc, status, body, secs = curl(self.server.url("/size/100000"), proxy, max_time=15)
            self.assertEqual((rc, status), (0, 200))
            self.assertEqual(hashlib.sha256(body).hexdigest(),
                             hashlib.sha256(HttpServer.BLOB[:100000]).hexdigest())
            times.append(secs)
        _, err = self.assertStoppedCleanly(p)
        self.assertEqual(len(times), 12, times)
        # A lost flight is a 200 ms retransmission stall.
        self.assertGreaterEqual(max(times), 0.2, times)
        self.assertGreaterEqual(sum(1 for t in times if t >= 0.2), 2, times)
        self.assertRegex(err, r'fault: policy "packet-loss": matched \d+, fired [1-9]')

    def test_jitter_varies_response_times(self):
        p, proxy = self.proxy(["--with-jitter", "--jitter-amplitude", "100", "--upstream", "*"])
        client = KeepAliveClient(p.port)
        times = []
        try:
            for i in range(20):
                status, body, t0, t1 = client.get(self.server.url("/j%d" % i))
                self.assertEqual((status, body), (200, HttpServer.BODY))
                times.append(t1 - t0)
        finally:
            client.close()
        _, err = self.assertStoppedCleanly(p)
        msg = str(times)
        for t in times:
            self.assertLess(t, 0.1 + 0.05, msg)
        self.assertGreater(max(times) - min(times), 0.03, msg)
        self.assertGreater(statistics.stdev(times), 0.01, msg)
        self.assertRegex(err, r'fault: policy "jitter": matched \d+, fired [1-9]')


class ScheduleTest(ProxyTestCase):
    """--X-sched: absolute and relative intervals, and two schedules that
    overlap. Times are counted from starting the proxy."""

    def setUp(self):
        super().setUp()
        self.server = self.http_server()

    def at(self, p, when):
        """Sleeps until `when` seconds after the proxy was started."""
        left = when - p.elapsed()
        if left > 0:
            time.sleep(left)

    def test_absolute_start(self):
        p, proxy = self.proxy(["--with-latency", "--latency-mean", "300", "--latency-stddev",
                               "0", "--latency-sched", "start:2s", "--upstream", "*"])
        self.at(p, 0.3)
        before_at = p.elapsed()
        rc, status, _, before = curl(self.server.url(), proxy)
        self.assertEqual((rc, status), (0, 200))
        self.at(p, 2.5)
        after_at = p.elapsed()
        rc, status, _, after = curl(self.server.url(), proxy)
        self.assertEqual((rc, status), (0, 200))
        self.assertStoppedCleanly(p)
        self.assertLess(before_at + before, 1.8, "the first request came too late to test")
        self.assertLess(before, 0.15, "at %.2fs" % before_at)
        self.assertGreaterEqual(after, 0.3, "at %.2fs" % after_at)
        self.assertLess(after, 0.3 + SLACK, "at %.2fs" % after_at)

    def test_relative_start_with_duration(self):
        p, proxy = self.proxy(["--with-latency", "--latency-mean", "300", "--latency-stddev",
                               "0", "--latency-sched", "start:50%", "--duration", "4s",
                               "--upstream", "*"])
        self.at(p, 0.3)
        rc, status, _, before = curl(self.server.url(), proxy)
        self.assertEqual((rc, status), (0, 200))
        self.at(p, 2.4)
        rc, status, _, after = curl(self.server.url(), proxy)
        self.assertEqual((rc, status), (0, 200))
        rc, out, err = p.wait(timeout=8)
        stopped_at = p.elapsed()
        self.assertEqual(rc, 0, err)
        self.assertRegex(err, r"(?m)^fault: proxy:")
        self.assertLess(before, 0.15)
        self.assertGreaterEqual(after, 0.3)
        self.assertLess(after, 0.3 + SLACK)
        self.assertGreaterEqual(stopped_at, 4.0)
        self.assertLess(stopped_at, 7.0)

    def test_relative_without_duration_is_a_usage_error(self):
        r = fault_run_once(["--proxy-address", "127.0.0.1:%d" % free_port(), "--with-latency",
                            "--latency-sched", "start:50%", "--upstream", "*"])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--latency-sched", r.stderr)
        self.assertIn("--duration", r.stderr)

    def test_overlapping_schedules_are_both_active(self):
        # latency 0..6 s, http-response (half the requests) 2..7 s, run 8 s.
        p, proxy = self.proxy(["--with-latency", "--latency-mean", "150", "--latency-stddev",
                               "0", "--latency-sched", "start:0s,duration:6s",
                               "--with-http-response", "--http-response-status", "503",
                               "--http-response-trigger-probability", "0.5",
                               "--http-response-sched", "start:2s,duration:5s",
                               "--duration", "8s", "--upstream", "*", "--seed", "7"])

        def phase(start, end, count):
            self.at(p, start)
            got = []
            for i in range(count):
                if p.elapsed() > end:
                    break
                rc, status, _, secs = curl(self.server.url("/s"), proxy)
                self.assertEqual(rc, 0)
                got.append((status, secs, p.elapsed()))
            return got

        latency_only = phase(0.3, 1.5, 3)
        both = phase(2.3, 5.2, 14)
        http_only = phase(6.3, 6.7, 3)
        rc, _, err = p.wait(timeout=10)
        self.assertEqual(rc, 0, err)
        self.assertGreaterEqual(len(latency_only), 2, latency_only)
        for status, secs, _ in latency_only:
            self.assertEqual(status, 200, latency_only)
            self.assertGreaterEqual(secs, 0.15, latency_only)
        # In the overlap, both: some answers are the fault's, and the
        # upstream's are delayed.
        self.assertGreaterEqual(len(both), 10, both)
        self.assertIn(503, [s for s, _, _ in both], both)
        ok = [secs for s, secs, _ in both if s == 200]
        self.assertTrue(ok, both)
        for secs in ok:
            self.assertGreaterEqual(secs, 0.15, both)
        for status, secs, _ in http_only:
            if status == 200:
                self.assertLess(secs, 0.15, http_only)

    def test_overlapping_latency_and_jitter_add_up(self):
        # latency 150 ms over 0..5.5 s, jitter up to 300 ms over 2..7 s.
        p, proxy = self.proxy(["--with-latency", "--latency-mean", "150", "--latency-stddev",
                               "0", "--latency-sched", "duration:5.5s",
                               "--with-jitter", "--jitter-amplitude", "300",
                               "--jitter-sched", "start:2s,duration:5s",
                               "--duration", "7.5s", "--upstream", "*", "--seed", "7"])

        def phase(start, end, count):
            self.at(p, start)
            got = []
            for i in range(count):
                if p.elapsed() > end:
                    break
                rc, status, _, secs = curl(self.server.url("/lj"), proxy)
                self.assertEqual((rc, status), (0, 200))
                got.append(secs)
            return got

        latency_only = phase(0.3, 1.4, 3)
        both = phase(2.3, 5.0, 8)
        jitter_only = phase(5.8, 6.6, 4)
        rc, _, err = p.wait(timeout=10)
        self.assertEqual(rc, 0, err)
        for secs in latency_only:
            self.assertGreaterEqual(secs, 0.15, latency_only)
            self.assertLess(secs, 0.25, latency_only)
        # In the overlap, the latency and up to 300 ms of jitter on top: at
        # least one of six or more goes past 250 ms but by (1/3)^6.
        self.assertGreaterEqual(len(both), 6, both)
        for secs in both:
            self.assertGreaterEqual(secs, 0.15, both)
            self.assertLess(secs, 0.45 + 0.1, both)
        self.assertGreater(max(both), 0.25, both)
        self.assertTrue(jitter_only, "no request in the jitter-only phase")
        for secs in jitter_only:
            self.assertLess(secs, 0.3 + 0.1, jitter_only)


class RedisTest(ProxyTestCase):
    """redis-cli through a TCP mapping to redis-server."""

    def test_ping_through_a_mapping_with_latency(self):
        redis = Redis()
        self._closers.append(redis.close)
        p, m = self.mapping(["--with-latency", "--latency-mean", "100",
                             "--latency-stddev", "0"], redis.port)
        t = time.monotonic()
        r = subprocess.run([need("redis-cli"), "-p", str(m), "ping"], capture_output=True,
                           text=True, timeout=30, env=clean_env())
        secs = time.monotonic() - t
        _, err = self.assertStoppedCleanly(p)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "PONG")
        self.assertGreaterEqual(secs, 0.1)
        self.assertLess(secs, 1.0)
        self.assertRegex(err, r'fault: policy "latency": matched \d+, fired [1-9]')

    def test_ping_through_a_mapping_without_faults(self):
        redis = Redis()
        self._closers.append(redis.close)
        p, m = self.mapping([], redis.port)
        r = subprocess.run([need("redis-cli"), "-p", str(m), "ping"], capture_output=True,
                           text=True, timeout=30, env=clean_env())
        self.assertStoppedCleanly(p)
        self.assertEqual(r.stdout.strip(), "PONG", r.stderr)


class UdpTest(ProxyTestCase):
    """A UDP mapping (udp:PORT=HOST:PORT) to a UDP echo server: datagrams are
    lost, not stalled, and delayed."""

    def echo_server(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.1)
        stop = threading.Event()

        def serve():
            while not stop.is_set():
                try:
                    data, addr = sock.recvfrom(2048)
                except OSError:
                    continue
                sock.sendto(data, addr)

        t = threading.Thread(target=serve, daemon=True)
        t.start()

        def close():
            stop.set()
            t.join(5)
            sock.close()

        self._closers.append(close)
        return sock.getsockname()[1]

    def udp_proxy(self, args, echo_port):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            udp_port = s.getsockname()[1]
        # The HTTP proxy's TCP port says when fault run is up (the UDP
        # mapping is bound before it starts serving).
        p = self.start(lambda port: ["--proxy-address", "127.0.0.1:%d" % port, "--proxy",
                                     "udp:%d=127.0.0.1:%d" % (udp_port, echo_port), *args])
        return p, udp_port

    def round_trips(self, port, count):
        """Sends COUNT numbered datagrams, 2 ms apart; returns the round
        trip of each one that came back, by number."""
        got = {}
        sent = {}
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.connect(("127.0.0.1", port))
            c.settimeout(0.05)
            done = threading.Event()

            def receive():
                # Until 1.5 s after the last datagram was sent.
                deadline = None
                while deadline is None or time.monotonic() < deadline:
                    if deadline is None and done.is_set():
                        deadline = time.monotonic() + 1.5
                    try:
                        data = c.recv(64)
                    except OSError:
                        continue
                    i = int(data)
                    got.setdefault(i, time.monotonic() - sent[i])

            for i in range(count):
                sent[i] = time.monotonic()
                c.send(b"%d" % i)
                if i == 0:
                    reader = threading.Thread(target=receive)
                    reader.start()
                time.sleep(0.002)
            done.set()
            reader.join(10)
        return got

    def test_without_faults_every_datagram_comes_back(self):
        echo = self.echo_server()
        p, port = self.udp_proxy([], echo)
        got = self.round_trips(port, 100)
        self.assertStoppedCleanly(p)
        self.assertEqual(len(got), 100)

    def test_loss_drops_datagrams(self):
        echo = self.echo_server()
        p, port = self.udp_proxy(["--with-packet-loss", "--packet-loss-rate", "50%",
                                  "--seed", "3"], echo)
        got = self.round_trips(port, 100)
        _, err = self.assertStoppedCleanly(p)
        # The answers (downlink, the default side and direction) lose half:
        # a lost datagram is gone, not late.
        self.assertGreaterEqual(len(got), 25, sorted(got))
        self.assertLessEqual(len(got), 75, sorted(got))
        self.assertLess(max(got.values()), 0.2, got)
        self.assertRegex(err, r'policy "packet-loss": matched \d+, fired [1-9]')

    def test_latency_delays_datagrams(self):
        echo = self.echo_server()
        p, port = self.udp_proxy(["--with-latency", "--latency-mean", "100",
                                  "--latency-stddev", "0"], echo)
        got = self.round_trips(port, 20)
        self.assertStoppedCleanly(p)
        self.assertEqual(len(got), 20)
        self.assertGreaterEqual(min(got.values()), 0.1, got)
        self.assertLess(min(got.values()), 0.3, got)


class Ipv6Test(ProxyTestCase):
    """The forward proxy and a mapping on [::1] to a server on ::1."""

    def setUp(self):
        super().setUp()
        if not have_ipv6_loopback():
            self.skipTest("this machine has no IPv6 loopback (::1 cannot be bound)")
        self.server = self.http_server("::1")

    def test_forward_proxy_and_mapping_on_ipv6(self):
        p = self.start(lambda pp, mp: ["--proxy-address", "[::1]:%d" % pp,
                                       "--proxy", "[::1]:%d=[::1]:%d" % (mp, self.server.port),
                                       *LATENCY_200, "--upstream", "*"], hosts=("::1", "::1"))
        pp, mp = p.ports
        rc, status, body, forwarded = curl(self.server.url("/fwd"), "http://[::1]:%d" % pp)
        self.assertEqual((rc, status, body), (0, 200, HttpServer.BODY))
        rc, status, body, mapped = curl("http://[::1]:%d/map" % mp)
        self.assertEqual((rc, status, body), (0, 200, HttpServer.BODY))
        self.assertStoppedCleanly(p)
        self.assertIn("/fwd", self.server.arrivals)
        self.assertIn("/map", self.server.arrivals)
        for secs in (forwarded, mapped):
            self.assertGreaterEqual(secs, 0.2)
            self.assertLess(secs, 0.2 + SLACK)


class EnvTest(ProxyTestCase):
    """The same configuration through FAULT_* variables."""

    LATENCY = {"FAULT_WITH_LATENCY": "1", "FAULT_LATENCY_MEAN": "200",
               "FAULT_LATENCY_STANDARD_DEVIATION": "0", "FAULT_UPSTREAMS": "*"}

    def setUp(self):
        super().setUp()
        self.server = self.http_server()

    def env_proxy(self, env, args=(), variable="FAULT_HTTP_PROXY_ADDRESS"):
        """fault run ARGS with `env` and the proxy's address in `variable`."""
        p = self.start(lambda port: (list(args), dict(env, **{variable: "127.0.0.1:%d" % port})))
        return p, "http://127.0.0.1:%d" % p.ports[0]

    def test_latency_from_variables(self):
        p, proxy = self.env_proxy(self.LATENCY)
        rc, status, body, secs = curl(self.server.url(), proxy)
        _, err = self.assertStoppedCleanly(p)
        self.assertEqual((rc, status, body), (0, 200, HttpServer.BODY))
        self.assertGreaterEqual(secs, 0.2)
        self.assertLess(secs, 0.2 + SLACK)
        self.assertRegex(err, r'fault: policy "latency": matched \d+, fired [1-9]')

    def test_proxy_address_variable(self):
        p, proxy = self.env_proxy(self.LATENCY, variable="FAULT_PROXY_ADDRESS")
        rc, status, body, secs = curl(self.server.url(), proxy)
        self.assertStoppedCleanly(p)
        self.assertEqual((rc, status, body), (0, 200, HttpServer.BODY))
        self.assertGreaterEqual(secs, 0.2)

    def test_falsey_values_turn_a_fault_off(self):
        for value in ("false", "0"):
            with self.subTest(FAULT_WITH_LATENCY=value):
                p, proxy = self.env_proxy(dict(self.LATENCY, FAULT_WITH_LATENCY=value))
                rc, status, body, secs = curl(self.server.url(), proxy)
                _, err = self.assertStoppedCleanly(p)
                self.assertEqual((rc, status, body), (0, 200, HttpServer.BODY))
                self.assertLess(secs, 0.15)
                self.assertNotIn('policy "latency"', err)

    def test_flags_override_variables(self):
        # The variables say 1000 ms on env_port; the flags say 200 ms on
        # the port fault run gets.
        env_port = free_port()
        env = dict(self.LATENCY, FAULT_LATENCY_MEAN="1000",
                   FAULT_HTTP_PROXY_ADDRESS="127.0.0.1:%d" % env_port)
        p = self.start(lambda port: (["--latency-mean", "200",
                                      "--proxy-address", "127.0.0.1:%d" % port], env))
        rc, status, body, secs = curl(self.server.url(), "http://127.0.0.1:%d" % p.ports[0])
        self.assertNotListening(p, env_port)
        self.assertStoppedCleanly(p)
        self.assertEqual((rc, status, body), (0, 200, HttpServer.BODY))
        self.assertGreaterEqual(secs, 0.2)
        self.assertLess(secs, 0.2 + SLACK)


class InputTest(ProxyTestCase):
    """Usage errors, listeners that cannot be bound, --duration,
    --expect-faults and --events."""

    def usage_error(self, args, names, env=None):
        r = fault_run_once(["--proxy-address", "127.0.0.1:%d" % free_port(), *args], env=env)
        self.assertEqual(r.returncode, 2, "fault run %s: %s" % (" ".join(args), r.stderr))
        self.assertIn(names, r.stderr, "fault run %s" % " ".join(args))
        return r.stderr

    def test_bad_mapping(self):
        self.usage_error(["--proxy", "nonsense"], "--proxy")
        self.usage_error(["--proxy", "%d=" % free_port()], "--proxy")
        self.usage_error(["--proxy", "70000=127.0.0.1:80"], "--proxy")

    def test_mapping_without_port(self):
        self.usage_error(["--proxy", "%d=127.0.0.1" % free_port()], "--proxy")

    def test_bad_latency_distribution(self):
        self.usage_error(["--with-latency", "--latency-distribution", "gaussianish"],
                         "--latency-distribution")

    def test_latency_mean_not_a_number(self):
        self.usage_error(["--with-latency", "--latency-mean", "abc"], "--latency-mean")

    def test_bad_bandwidth_unit(self):
        self.usage_error(["--with-bandwidth", "--bandwidth-unit", "furlongs"],
                         "--bandwidth-unit")

    def test_http_status_out_of_range(self):
        self.usage_error(["--with-http-response", "--http-response-status", "700"],
                         "--http-response-status")

    def test_bad_proxy_address(self):
        for value in ("nonsense", "127.0.0.1", "127.0.0.1:99999", "[::1:3180"):
            with self.subTest(value=value):
                r = fault_run_once(["--proxy-address", value])
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn("--proxy-address", r.stderr)

    def test_bad_variable(self):
        self.usage_error(["--with-latency"], "FAULT_LATENCY_MEAN",
                         env={"FAULT_LATENCY_MEAN": "abc"})

    def test_schedule_garbage(self):
        self.usage_error(["--with-latency", "--latency-sched", "whenever"], "--latency-sched")
        self.usage_error(["--with-latency", "--latency-sched", "start:soon,duration:1s"],
                         "--latency-sched")

    def test_port_in_use_is_exit_1_naming_the_listener(self):
        with socket.socket() as held:
            held.bind(("127.0.0.1", 0))
            held.listen(1)
            port = held.getsockname()[1]
            r = fault_run_once(["--no-ui", "--proxy-address", "127.0.0.1:%d" % port])
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("--proxy-address 127.0.0.1:%d" % port, r.stderr)
            m = "%d=127.0.0.1:%d" % (port, free_port())
            r = fault_run_once(["--no-ui", "--disable-http-proxy", "--proxy", m])
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("--proxy " + m, r.stderr)

    def test_duration_stops_it(self):
        t = time.monotonic()
        r = fault_run_once(["--no-ui", "--proxy-address", "127.0.0.1:%d" % free_port(),
                            "--duration", "1s"])
        secs = time.monotonic() - t
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stderr, r"(?m)^fault: proxy:")
        self.assertGreaterEqual(secs, 1.0)
        self.assertLess(secs, 4.0)

    def test_expect_faults_never_fired_is_exit_3(self):
        r = fault_run_once(["--no-ui", "--proxy-address", "127.0.0.1:%d" % free_port(),
                            "--with-latency", "--latency-mean", "50", "--upstream", "*",
                            "--expect-faults", "--duration", "1s"])
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn('policy "latency" never fired', r.stderr)

    def test_expect_faults_that_fired_is_exit_0(self):
        server = self.http_server()
        p, proxy = self.proxy(["--with-latency", "--latency-mean", "50", "--upstream", "*",
                               "--expect-faults"])
        rc, status, _, _ = curl(server.url(), proxy)
        self.assertEqual((rc, status), (0, 200))
        self.assertStoppedCleanly(p)

    def test_events_file_names_the_faults(self):
        server = self.http_server()
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "events.jsonl")
            p, proxy = self.proxy(["--with-latency", "--latency-mean", "50",
                                   "--with-jitter", "--jitter-amplitude", "20",
                                   "--upstream", "*", "--events", path])
            for _ in range(2):
                rc, status, _, _ = curl(server.url(), proxy)
                self.assertEqual((rc, status), (0, 200))
            self.assertStoppedCleanly(p)
            with open(path) as f:
                events = [json.loads(line) for line in f if line.strip()]
        rules = {e["rule"] for e in events}
        self.assertIn("latency", rules, events)
        self.assertIn("jitter", rules, events)
        for e in events:
            self.assertIn("effect", e)
            self.assertIn(str(server.port), e["target"], e)


if __name__ == "__main__":
    unittest.main()
