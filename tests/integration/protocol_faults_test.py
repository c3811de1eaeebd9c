"""Protocol faults under `fault exec` (http_faults, redis_faults,
postgres_faults): the stream engine answers a matching request in the
server's place. Observed from outside: what real clients (curl, python's
http.client, redis-cli, psql or python) print, what the servers saw, and
the events file.

Run by ctest with FAULT_BIN set. Every socket has a timeout; every loop is
bounded.
"""

import http.server
import os
import socket
import struct
import subprocess
import tempfile
import threading
import unittest

from fault_testlib import FAULT, PY, clean_env, need, read_events

from io_models_test import Redis


class RecordingHandler(http.server.BaseHTTPRequestHandler):
    """Answers 200 with the path; records every request it saw."""

    protocol_version = "HTTP/1.1"  # keep-alive

    def _answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        self.server.seen.append("%s %s" % (self.command, self.path))
        body = ("saw %s %s" % (self.command, self.path)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


class QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a dropped connection resets the server's side too


class HttpServer:
    def __init__(self):
        self.httpd = QuietServer(("127.0.0.1", 0), RecordingHandler)
        self.httpd.seen = []
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def write_policy(directory, text):
    path = os.path.join(directory, "policy.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


# Three requests on one kept-alive connection; prints each status and body.
HTTP_CLIENT = r"""
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
for method, path in (("GET", "/ok"), ("POST", "/orders/7"), ("GET", "/ok?again=1")):
    c.request(method, path, body=b"payload" if method == "POST" else None)
    r = c.getresponse()
    print(r.status, r.read().decode())
"""


class HttpFaultTest(unittest.TestCase):
    def setUp(self):
        self.server = HttpServer()
        self.dir = tempfile.TemporaryDirectory()
        self.events = os.path.join(self.dir.name, "events.jsonl")
        self.policy = write_policy(self.dir.name, """
api:
  targets: ["tcp://127.0.0.1:%d"]
  http_faults:
    - route: "POST /orders/*"
      status: 503
      body: "orders are down"
    - route: "/gone"
      drop: true
    - route: "GET /slow"
      delay: 400ms
""" % self.server.port)

    def tearDown(self):
        self.server.close()
        self.dir.cleanup()

    def test_http_client_gets_the_fault_and_the_server_never_sees_it(self):
        r = subprocess.run([FAULT, "exec", "--policy", self.policy, "--events", self.events,
                            "--", PY, "-c", HTTP_CLIENT, str(self.server.port)],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(),
                         ["200 saw GET /ok", "503 orders are down", "200 saw GET /ok?again=1"])
        self.assertEqual(self.server.httpd.seen, ["GET /ok", "GET /ok?again=1"])
        faults = [e for e in read_events(self.events) if e["effect"] == "http_error"]
        self.assertEqual(len(faults), 1, faults)
        self.assertEqual(faults[0]["status"], 503)
        self.assertEqual(faults[0]["rule"], "api")
        self.assertEqual(faults[0]["layer"], "stream")

    def test_curl_sees_status_and_body_and_a_drop(self):
        url = "http://127.0.0.1:%d" % self.server.port
        curl = [need("curl"), "-s", "--max-time", "10", "-w", " %{http_code}\n"]
        r = subprocess.run([FAULT, "exec", "-q", "--policy", self.policy, "--", *curl,
                            "-X", "POST", "-d", "x=1", url + "/orders/1", url + "/fine"],
                           capture_output=True, text=True, timeout=30, env=clean_env())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(), ["orders are down 503", "saw POST /fine 200"])
        r = subprocess.run([FAULT, "exec", "-q", "--policy", self.policy, "--", *curl,
                            url + "/gone"],
                           capture_output=True, text=True, timeout=30, env=clean_env())
        # curl: 52 (empty reply) or 56 (reset while receiving).
        self.assertIn(r.returncode, (52, 56), r.stdout + r.stderr)
        self.assertEqual(self.server.httpd.seen, ["POST /fine"])


    def test_delayed_route_reaches_the_server_later(self):
        timed = r"""
import http.client, sys, time
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
for path in ("/fast", "/slow", "/fast"):
    t = time.monotonic()
    c.request("GET", path)
    r = c.getresponse()
    print(r.status, r.read().decode(), "%.3f" % (time.monotonic() - t))
"""
        r = subprocess.run([FAULT, "exec", "--policy", self.policy, "--events", self.events,
                            "--", PY, "-c", timed, str(self.server.port)],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = [line.rsplit(" ", 1) for line in r.stdout.splitlines()]
        self.assertEqual([text for text, _ in lines],
                         ["200 saw GET /fast", "200 saw GET /slow", "200 saw GET /fast"])
        secs = [float(s) for _, s in lines]
        self.assertGreaterEqual(secs[1], 0.4, r.stdout)
        self.assertLess(secs[2], 0.3, r.stdout)
        self.assertEqual(self.server.httpd.seen, ["GET /fast", "GET /slow", "GET /fast"])
        delays = [e for e in read_events(self.events) if e["effect"] == "delay"]
        self.assertEqual([(e["rule"], e["delay_ns"]) for e in delays], [("api", 400000000)])


class RedisFaultTest(unittest.TestCase):
    def setUp(self):
        self.redis = Redis()
        self.dir = tempfile.TemporaryDirectory()
        self.events = os.path.join(self.dir.name, "events.jsonl")
        self.policy = write_policy(self.dir.name, """
replica:
  targets: ["tcp://127.0.0.1:%d"]
  redis_faults:
    - command: [SET, DEL]
      key: "user:*"
      error: "READONLY You can't write against a read only replica."
    - command: GET
      key: "slow:*"
      delay: 400ms
""" % self.redis.port)

    def tearDown(self):
        self.redis.close()
        self.dir.cleanup()

    def cli(self, *args, under_fault=True):
        cmd = [need("redis-cli"), "-p", str(self.redis.port), *args]
        if under_fault:
            cmd = [FAULT, "exec", "-q", "--policy", self.policy, "--events", self.events,
                   "--"] + cmd
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return r.stdout.strip()

    def test_redis_cli_gets_the_error_for_the_chosen_command_only(self):
        self.assertEqual(self.cli("set", "user:1", "a"),
                         "READONLY You can't write against a read only replica.")
        self.assertEqual(self.cli("set", "other", "b"), "OK")
        self.assertEqual(self.cli("get", "other"), "b")
        self.assertEqual(self.cli("ping"), "PONG")
        # The server never saw the faulted SET.
        self.assertEqual(self.cli("exists", "user:1", under_fault=False), "0")

    def test_one_connection_goes_on_after_the_error(self):
        # redis-cli reads commands from stdin on one connection.
        r = subprocess.run([FAULT, "exec", "-q", "--policy", self.policy, "--events",
                            self.events, "--", need("redis-cli"), "-p", str(self.redis.port)],
                           input="set k1 v1\ndel user:9\nget k1\n", capture_output=True,
                           text=True, timeout=30)
        # redis-cli prints an empty line after an error reply, as it does
        # for redis-server's own.
        self.assertEqual(r.stdout.splitlines(),
                         ["OK", "READONLY You can't write against a read only replica.", "",
                          "v1"])
        faults = [e for e in read_events(self.events) if e["effect"] == "redis_error"]
        self.assertEqual(len(faults), 1, faults)
        self.assertEqual(faults[0]["rule"], "replica")


    def test_delayed_command_reaches_the_server_later(self):
        # One connection, each command timed by the client (RESP by hand).
        timed = r"""
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = s.makefile("rb")
def command(*words):
    t = time.monotonic()
    s.sendall(b"*%d\r\n" % len(words) + b"".join(
        b"$%d\r\n%s\r\n" % (len(w), w.encode()) for w in words))
    line = f.readline().decode().strip()
    if line.startswith("$") and line != "$-1":
        line = f.readline().decode().strip()
    print(line, "%.3f" % (time.monotonic() - t))
command("SET", "slow:1", "a")
command("GET", "slow:1")
command("GET", "other")
"""
        r = subprocess.run([FAULT, "exec", "--policy", self.policy, "--events", self.events,
                            "--", PY, "-c", timed, str(self.redis.port)],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = [line.rsplit(" ", 1) for line in r.stdout.splitlines()]
        self.assertEqual([text for text, _ in lines], ["+OK", "a", "$-1"], r.stdout)
        secs = [float(x) for _, x in lines]
        self.assertGreaterEqual(secs[1], 0.4, r.stdout)
        self.assertLess(secs[0], 0.3, r.stdout)
        self.assertLess(secs[2], 0.3, r.stdout)
        delays = [e for e in read_events(self.events) if e["effect"] == "delay"]
        self.assertEqual([(e["rule"], e["delay_ns"]) for e in delays],
                         [("replica", 400000000)])


def pg_message(kind, body):
    return kind + struct.pack("!I", len(body) + 4) + body


class FakePostgres:
    """Speaks the startup and simple query protocol: refuses SSL, accepts
    any user without a password, answers every query with one row holding
    the query text. Records the queries it saw."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(30)
        self.port = self.sock.getsockname()[1]
        self.seen = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _read(self, c, n):
        data = b""
        while len(data) < n:
            chunk = c.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def _serve(self, c):
        c.settimeout(10)
        try:
            while True:
                (n,) = struct.unpack("!I", self._read(c, 4))
                body = self._read(c, n - 4)
                (code,) = struct.unpack("!I", body[:4])
                if code == 80877103:
                    c.sendall(b"N")
                    continue
                break
            c.sendall(pg_message(b"R", struct.pack("!I", 0)) +
                      pg_message(b"S", b"server_version\x0016.0\x00") +
                      pg_message(b"Z", b"I"))
            for _ in range(1000):
                kind = self._read(c, 1)
                (n,) = struct.unpack("!I", self._read(c, 4))
                body = self._read(c, n - 4)
                if kind == b"X":
                    return
                if kind != b"Q":
                    continue
                query = body.rstrip(b"\x00")
                self.seen.append(query.decode())
                c.sendall(pg_message(b"T", struct.pack("!H", 1) + b"q\x00" +
                                     struct.pack("!IHIhih", 0, 0, 25, -1, -1, 0)) +
                          pg_message(b"D", struct.pack("!HI", 1, len(query)) + query) +
                          pg_message(b"C", b"SELECT 1\x00") + pg_message(b"Z", b"I"))
        except (OSError, EOFError, struct.error):
            pass
        finally:
            c.close()

    def _run(self):
        for _ in range(50):
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def close(self):
        self.sock.close()


# A client of the simple query protocol: one connection, three queries;
# prints each result or the error's SQLSTATE and message.
PG_CLIENT = r"""
import socket, struct, sys, time
def msg(kind, body):
    return kind + struct.pack("!I", len(body) + 4) + body
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
def read(n):
    d = b""
    while len(d) < n:
        c = s.recv(n - len(d))
        if not c: raise EOFError("closed")
        d += c
    return d
def until_ready():
    out = []
    for _ in range(100):
        kind = read(1)
        body = read(struct.unpack("!I", read(4))[0] - 4)
        if kind == b"D":
            n = struct.unpack("!I", body[2:6])[0]
            out.append("row " + body[6:6 + n].decode())
        elif kind == b"E":
            f = {x[:1]: x[1:].decode() for x in body.split(b"\x00") if x}
            out.append("error %s %s" % (f[b"C"], f[b"M"]))
        elif kind == b"Z":
            return out
s.sendall(struct.pack("!II", 8, 80877103))
assert read(1) == b"N"
startup = struct.pack("!I", 196608) + b"user\x00app\x00\x00"
s.sendall(struct.pack("!I", len(startup) + 4) + startup)
until_ready()
timed = sys.argv[2] == "--timed"  # each line ends with the query's seconds
for q in sys.argv[3 if timed else 2:]:
    t = time.monotonic()
    s.sendall(msg(b"Q", q.encode() + b"\x00"))
    line = "; ".join(until_ready())
    print(line + (" %.3f" % (time.monotonic() - t) if timed else ""))
s.sendall(msg(b"X", b""))
"""


class PostgresFaultTest(unittest.TestCase):
    def setUp(self):
        self.server = FakePostgres()
        self.dir = tempfile.TemporaryDirectory()
        self.events = os.path.join(self.dir.name, "events.jsonl")
        self.policy = write_policy(self.dir.name, """
db:
  targets: ["tcp://127.0.0.1:%d"]
  postgres_faults:
    - query: "insert into orders*"
      sqlstate: "40001"
      message: "could not serialize access due to concurrent update"
    - query: "select slow*"
      delay: 300ms
""" % self.server.port)

    def tearDown(self):
        self.server.close()
        self.dir.cleanup()

    def test_query_gets_the_error_response_and_the_connection_goes_on(self):
        r = subprocess.run([FAULT, "exec", "--policy", self.policy, "--events", self.events,
                            "--", PY, "-c", PG_CLIENT, str(self.server.port), "select 1",
                            "INSERT INTO orders VALUES (1)", "select 2"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(), [
            "row select 1",
            "error 40001 could not serialize access due to concurrent update",
            "row select 2"])
        self.assertEqual(self.server.seen, ["select 1", "select 2"])
        faults = [e for e in read_events(self.events) if e["effect"] == "postgres_error"]
        self.assertEqual(len(faults), 1, faults)

    def test_delayed_query_reaches_the_server_later(self):
        r = subprocess.run([FAULT, "exec", "--policy", self.policy, "--events", self.events,
                            "--", PY, "-c", PG_CLIENT, str(self.server.port), "--timed",
                            "select 1", "SELECT slow 2", "select 3"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = [line.rsplit(" ", 1) for line in r.stdout.splitlines()]
        self.assertEqual([text for text, _ in lines],
                         ["row select 1", "row SELECT slow 2", "row select 3"], r.stdout)
        secs = [float(x) for _, x in lines]
        self.assertGreaterEqual(secs[1], 0.3, r.stdout)
        self.assertLess(secs[2], 0.25, r.stdout)
        self.assertEqual(self.server.seen, ["select 1", "SELECT slow 2", "select 3"])
        delays = [e for e in read_events(self.events) if e["effect"] == "delay"]
        self.assertEqual([(e["rule"], e["delay_ns"]) for e in delays], [("db", 300000000)])

    def test_psql_prints_the_error_and_runs_the_next_command(self):
        env = clean_env({"PGSSLMODE": "disable", "PGGSSENCMODE": "disable",
                         "PGCONNECT_TIMEOUT": "5"})
        r = subprocess.run([FAULT, "exec", "-q", "--policy", self.policy, "--", need("psql"),
                            "-X", "-A", "-t", "-h", "127.0.0.1", "-p", str(self.server.port),
                            "-U", "app", "-d", "app", "-c", "select 1",
                            "-c", "insert into orders values (2)", "-c", "select 2"],
                           capture_output=True, text=True, timeout=30, env=env)
        self.assertEqual(r.stdout.splitlines(), ["select 1", "select 2"], r.stderr)
        self.assertEqual(r.stderr.strip(),
                         "ERROR:  could not serialize access due to concurrent update")
        self.assertEqual(self.server.seen, ["select 1", "select 2"])


if __name__ == "__main__":
    unittest.main()
