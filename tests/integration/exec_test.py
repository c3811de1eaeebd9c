"""End-to-end tests of `fault exec` with the preload shim.

Every test runs real programs under `fault exec` on loopback and observes
them from outside: exit status, stderr text, measured time, bytes received.
Each subprocess has a timeout; every loop is bounded.

Run by ctest (tests/integration/CMakeLists.txt), which sets FAULT_BIN (the
fault binary) and FAULT_TARGETS_DIR (where tests/targets programs are).
"""

import hashlib
import http.server
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from fault_testlib import QuietHandler

HERE = os.path.dirname(os.path.abspath(__file__))
FAULT = os.environ.get("FAULT_BIN", os.path.join(HERE, "../../build/default/bin/fault"))
TARGETS = os.environ.get("FAULT_TARGETS_DIR", os.path.dirname(FAULT))
SHIM = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(FAULT))), "lib",
                    "libfault_shim.so")
PY = "/usr/bin/python3"
STUB_PAGE = "0x7e0000000000"


def fault_exec(args, timeout=60, **kw):
    return subprocess.run([FAULT, "exec", *args], capture_output=True, text=True,
                          timeout=timeout, **kw)


def require_shim(test):
    if not os.path.exists(SHIM):
        test.skipTest("libfault_shim.so is not built (expected at %s)" % SHIM)


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Listener:
    """A TCP listener on 127.0.0.1 that accepts and closes connections."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(0.1)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
                c.close()
            except OSError:
                pass

    def close(self):
        self.stop = True
        self.thread.join(5)
        self.sock.close()


def hosts_name():
    """A name other than localhost that /etc/hosts maps to 127.0.0.1, so
    that the lookup goes through getaddrinfo (curl answers "localhost"
    itself)."""
    try:
        with open("/etc/hosts") as f:
            for line in f:
                parts = line.split("#")[0].split()
                if len(parts) >= 2 and parts[0] == "127.0.0.1":
                    for name in parts[1:]:
                        if name != "localhost" and not name.startswith("localhost."):
                            return name
    except OSError:
        pass
    return None


class ExitStatusTest(unittest.TestCase):
    def test_exit_status_passes_through(self):
        r = fault_exec(["--quiet", "--", "sh", "-c", "exit 7"])
        self.assertEqual(r.returncode, 7, r.stderr)
        self.assertEqual(r.stderr, "")

    def test_killed_by_signal_is_reported_as_128_plus_n(self):
        r = fault_exec(["--quiet", "--", "sh", "-c", "kill -SEGV $$"])
        self.assertEqual(r.returncode, 128 + 11, r.stderr)
        self.assertIn("fault: program killed by signal 11 (SIGSEGV)", r.stderr)

    def test_stdin_and_stdout_pass_through(self):
        r = fault_exec(["--quiet", "--", "cat"], input="line one\nline two\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "line one\nline two\n")

    def forwarded(self, sig):
        code = ("import signal, sys, time\n"
                "def h(n, f):\n"
                "    print('got', n, flush=True); sys.exit(42)\n"
                "signal.signal(%d, h)\n"
                "print('ready', flush=True)\n"
                "time.sleep(20)\n" % sig)
        p = subprocess.Popen([FAULT, "exec", "--quiet", "--", PY, "-c", code],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            self.assertEqual(p.stdout.readline(), "ready\n")
            p.send_signal(sig)
            out, err = p.communicate(timeout=10)
        finally:
            p.kill()
        self.assertEqual(p.returncode, 42, err)
        self.assertEqual(out, "got %d\n" % sig)

    def test_sigterm_is_forwarded(self):
        self.forwarded(signal.SIGTERM)

    def test_sigint_and_sigusr1_are_forwarded(self):
        self.forwarded(signal.SIGINT)
        self.forwarded(signal.SIGUSR1)

    def test_sighup_is_forwarded_without_reload_on(self):
        self.forwarded(signal.SIGHUP)

    def test_program_killed_by_forwarded_sigterm(self):
        p = subprocess.Popen([FAULT, "exec", "--quiet", "--", "sleep", "20"],
                             stderr=subprocess.PIPE, text=True)
        time.sleep(0.3)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=10)
        self.assertEqual(p.returncode, 128 + 15, err)
        self.assertIn("fault: program killed by signal 15 (SIGTERM)", err)


class EnvironmentTest(unittest.TestCase):
    def setUp(self):
        require_shim(self)

    def env_of_child(self, extra_env, cmd="env -0"):
        env = dict(os.environ)
        env.update(extra_env)
        r = fault_exec(["--quiet", "--", "sh", "-c", cmd], env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        return dict(kv.split("=", 1) for kv in r.stdout.split("\0") if "=" in kv)

    def test_shim_is_prepended_to_ld_preload(self):
        other = "/lib/x86_64-linux-gnu/libm.so.6"
        if not os.path.exists(other):
            self.skipTest("no %s to preload" % other)
        child = self.env_of_child({"LD_PRELOAD": other})
        self.assertEqual(child["LD_PRELOAD"], os.path.realpath(SHIM) + ":" + other)

    def test_fault_variables_and_everything_else_unchanged(self):
        base = dict(os.environ)
        base.pop("LD_PRELOAD", None)
        base["FAULT_TEST_MARKER"] = "a b=c"
        r = subprocess.run(["sh", "-c", "env -0"], capture_output=True, text=True,
                           env=base, timeout=30)
        bare = dict(kv.split("=", 1) for kv in r.stdout.split("\0") if "=" in kv)
        child = self.env_of_child({"FAULT_TEST_MARKER": "a b=c"})
        self.assertRegex(child.pop("FAULT_TABLE"), r"^/proc/\d+/fd/\d+$")
        self.assertNotIn("FAULT_TABLE_FD", child)
        self.assertEqual(child.pop("FAULT_STUB_PAGE"), STUB_PAGE)
        self.assertEqual(child.pop("LD_PRELOAD"), os.path.realpath(SHIM))
        for volatile in ("_", "SHLVL", "OLDPWD"):
            child.pop(volatile, None)
            bare.pop(volatile, None)
        self.assertEqual(child, bare)

    def test_grandchildren_inherit_the_table(self):
        out = self.env_of_child({}, cmd="sh -c 'sh -c \"env -0\"'")
        self.assertRegex(out["FAULT_TABLE"], r"^/proc/\d+/fd/\d+$")
        self.assertEqual(out["LD_PRELOAD"], os.path.realpath(SHIM))
        r = fault_exec(["--quiet", "--", "sh", "-c",
                        "sh -c 'readlink \"$FAULT_TABLE\"'"])
        self.assertIn("memfd:fault-policy-table", r.stdout)


class PolicyInputTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.marker = os.path.join(self.dir.name, "started")

    def tearDown(self):
        self.dir.cleanup()

    def write(self, name, text):
        path = os.path.join(self.dir.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_unknown_flag_exits_2_and_starts_nothing(self):
        r = fault_exec(["--no-such-flag", "--", "touch", self.marker])
        self.assertEqual(r.returncode, 2)
        self.assertFalse(os.path.exists(self.marker))

    def test_bad_effect_flag_value(self):
        r = fault_exec(["--latency", "fast", "--", "touch", self.marker])
        self.assertEqual(r.returncode, 2)
        self.assertTrue(r.stderr.startswith("fault exec: --latency"), r.stderr)
        self.assertFalse(os.path.exists(self.marker))

    def test_bad_policy_file_names_file_and_line(self):
        path = self.write("bad.yaml", "slow:\n  latency: 50 parsecs\n")
        r = fault_exec(["--policy", path, "--", "touch", self.marker])
        self.assertEqual(r.returncode, 2)
        self.assertTrue(r.stderr.startswith("fault exec: " + path + ":2:"), r.stderr)
        self.assertFalse(os.path.exists(self.marker))

    def test_missing_policy_file(self):
        path = os.path.join(self.dir.name, "absent.yaml")
        r = fault_exec(["--policy", path, "--", "touch", self.marker])
        self.assertEqual(r.returncode, 2)
        self.assertIn(path + ": cannot read", r.stderr)
        self.assertFalse(os.path.exists(self.marker))

    def test_policy_that_is_not_a_regular_file_or_too_big(self):
        # Refused before reading: /dev/zero used to be read forever.
        fifo = os.path.join(self.dir.name, "fifo")
        os.mkfifo(fifo)
        big = self.write("big.yaml", "# " + "x" * (1 << 20) + "\n")
        for path, why in [("/dev/zero", "a character device, not a regular file"),
                          (self.dir.name, "a directory, not a regular file"),
                          (fifo, "a FIFO, not a regular file")]:
            with self.subTest(path):
                r = fault_exec(["--policy", path, "--", "touch", self.marker], timeout=10)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertEqual(r.stderr, "fault exec: %s: cannot read: %s\n" % (path, why))
        r = fault_exec(["--policy", big, "--", "touch", self.marker], timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(r.stderr, "fault exec: %s: too large (%d bytes; policy files are "
                                   "at most 1 MiB)\n" % (big, (1 << 20) + 3))
        self.assertFalse(os.path.exists(self.marker))
        # Spec files and Starlark scripts go through the same reader.
        r = subprocess.run([FAULT, "test", "/dev/zero"], capture_output=True, text=True,
                           timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(r.stderr, "fault test: /dev/zero: cannot read: a character device, "
                                   "not a regular file\n")
        r = subprocess.run([FAULT, "starlark", fifo], capture_output=True, text=True,
                           timeout=10)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stderr, "fault starlark: %s: cannot read: a FIFO, not a regular "
                                   "file\n" % fifo)

    def test_use_with_inline_flags_is_an_error(self):
        path = self.write("p.yaml", "slow:\n  latency: 50ms\n")
        r = fault_exec(["--policy", path, "--use", "slow", "--latency", "1ms", "--",
                        "touch", self.marker])
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr, "fault exec: a named policy or inline fields but not "
                                   "both (--use with effect flags)\n")
        self.assertFalse(os.path.exists(self.marker))

    def test_http_error_policy_is_refused(self):
        path = self.write("p.yaml", "maintenance:\n  http_error: {status: 503}\n"
                                    "slow:\n  latency: 1ms\n")
        r = fault_exec(["--policy", path, "--", "touch", self.marker])
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr, 'fault exec: policy "maintenance": http_error answers '
                                   'HTTP requests in place of the server, which only the '
                                   'HTTP proxy does: run it with fault run, or leave '
                                   'http_error out for fault exec\n')
        self.assertFalse(os.path.exists(self.marker))

    def test_unknown_use_name_warns_and_runs(self):
        require_shim(self)
        path = self.write("p.yaml", "slow:\n  latency: 1ms\n")
        r = fault_exec(["--policy", path, "--use", "nope", "--use", "nope", "--",
                        "touch", self.marker])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.exists(self.marker))
        warning = 'fault: warning: no policy named "nope" in %s; running without it\n' % path
        self.assertEqual(r.stderr.count(warning), 1, r.stderr)
        self.assertIn("fault: no policies were loaded; nothing was injected", r.stderr)

    def test_program_not_found(self):
        r = fault_exec(["--", "no-such-program-for-fault"])
        self.assertEqual(r.returncode, 127)
        self.assertEqual(r.stderr,
                         "fault exec: no-such-program-for-fault: command not found\n")

    def test_no_program(self):
        r = fault_exec(["--latency", "1ms"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("no program given", r.stderr)

    def test_seed_must_be_a_number(self):
        r = fault_exec(["--seed", "x1", "--", "touch", self.marker])
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr,
                         "fault exec: --seed x1: not an unsigned 64-bit integer\n")
        self.assertFalse(os.path.exists(self.marker))

    def test_random_seed_is_printed(self):
        require_shim(self)
        r = fault_exec(["--packet-loss", "1%", "--", "true"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stderr, r"seed \d+ \(random; repeat the run with --seed \d+\)")
        r = fault_exec(["--packet-loss", "1%", "--seed", "17", "--", "true"])
        self.assertIn("seed 17 (--seed)", r.stderr)


class CurlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), QuietHandler)
        cls.port = cls.server.server_address[1]
        cls.thread = threading.Thread(target=cls.server.serve_forever, daemon=True)
        cls.thread.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()

    def setUp(self):
        require_shim(self)

    def timed(self, cmd):
        start = time.monotonic()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return time.monotonic() - start, r

    def test_latency_adds_at_least_200ms(self):
        url = "http://127.0.0.1:%d/" % self.port
        curl = ["curl", "-sS", "--max-time", "20", "-o", "/dev/null", url]
        bare = min(self.timed(curl)[0] for _ in range(3))
        slow, r = self.timed([FAULT, "exec", "--quiet", "--latency", "200ms", "--"] + curl)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertGreaterEqual(slow - bare, 0.200, "bare %.3fs, faulted %.3fs" % (bare, slow))

    def test_200_targets_only_the_last_matches(self):
        # The table holds targets in one pool (1024 in all), not 8 per
        # policy: the 200th target of a policy must still select traffic.
        url = "http://127.0.0.1:%d/" % self.port
        curl = ["curl", "-sS", "--max-time", "20", "-o", "/dev/null", url]
        others = "".join("    - tcp://10.%d.%d.1:80\n" % (i // 200, i % 200)
                         for i in range(199))
        with tempfile.TemporaryDirectory() as d:
            hit = os.path.join(d, "hit.yaml")
            with open(hit, "w") as f:
                f.write("slow:\n  latency: 200ms\n  targets:\n" + others +
                        "    - tcp://127.0.0.1:%d\n" % self.port)
            miss = os.path.join(d, "miss.yaml")
            with open(miss, "w") as f:
                f.write("slow:\n  latency: 200ms\n  targets:\n" + others +
                        "    - tcp://127.0.0.1:%d\n" % closed_port())
            rc = subprocess.run([FAULT, "policy", "validate", hit], capture_output=True,
                                text=True, timeout=30)
            self.assertEqual(rc.returncode, 0, rc.stderr)
            bare = min(self.timed(curl)[0] for _ in range(3))
            slow, r = self.timed([FAULT, "exec", "--policy", hit, "--"] + curl)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertGreaterEqual(slow - bare, 0.200,
                                    "bare %.3fs, faulted %.3fs" % (bare, slow))
            self.assertRegex(r.stderr, r'policy "slow": matched [1-9]')
            _, r = self.timed([FAULT, "exec", "--policy", miss, "--"] + curl)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn('policy "slow": never matched', r.stderr)

    def test_dns_nxdomain_makes_curl_fail_to_resolve(self):
        name = hosts_name()
        if name is None:
            self.skipTest("/etc/hosts has no name besides localhost for 127.0.0.1")
        url = "http://%s:%d/" % (name, self.port)
        curl = ["curl", "-sS", "--max-time", "20", "-o", "/dev/null", url]
        _, bare = self.timed(curl)
        self.assertEqual(bare.returncode, 0, bare.stderr)
        _, r = self.timed([FAULT, "exec", "--quiet", "--dns-nxdomain", "100%",
                           "--target-hostname", name, "--"] + curl)
        self.assertEqual(r.returncode, 6, r.stderr)
        self.assertIn("Could not resolve host: " + name, r.stderr)


UDP_SENDER = r"""
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(n):
    s.sendto(b"%08d" % i, ("127.0.0.1", port))
    if i % 200 == 199:
        time.sleep(0.002)
"""


class UdpLossTest(unittest.TestCase):
    N = 10000

    def setUp(self):
        require_shim(self)

    def run_sender(self, fault_args):
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            rx.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE
        except OSError:
            rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(0.5)
        port = rx.getsockname()[1]
        cmd = [PY, "-c", UDP_SENDER, str(port), str(self.N)]
        if fault_args is not None:
            cmd = [FAULT, "exec", "--quiet"] + fault_args + ["--"] + cmd
        p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        got = set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                got.add(int(rx.recv(64)))
            except socket.timeout:
                if p.poll() is not None:
                    break
        _, err = p.communicate(timeout=10)
        rx.close()
        self.assertEqual(p.returncode, 0, err)
        return set(range(self.N)) - got

    def test_loss_rate_and_same_seed_same_losses(self):
        self.assertEqual(len(self.run_sender(None)), 0, "loopback lost datagrams bare")
        first = self.run_sender(["--packet-loss", "30%", "--seed", "1"])
        # 99% two-sided binomial bound: 2.576 * sqrt(n p (1-p)).
        bound = 2.576 * (self.N * 0.3 * 0.7) ** 0.5
        self.assertLessEqual(abs(len(first) - 0.3 * self.N), bound,
                             "lost %d of %d" % (len(first), self.N))
        second = self.run_sender(["--packet-loss", "30%", "--seed", "1"])
        self.assertEqual(first, second)
        other = self.run_sender(["--packet-loss", "30%", "--seed", "2"])
        self.assertNotEqual(first, other)


RATE_SENDER = r"""
import random, socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
data = random.Random(7).randbytes(n)
s = socket.create_connection(("127.0.0.1", port))
for i in range(0, n, 65536):
    s.sendall(data[i:i + 65536])
s.close()
"""


class RateTest(unittest.TestCase):
    def setUp(self):
        require_shim(self)

    def test_rate_8mbps_over_5s_with_intact_bytes(self):
        n = 5_000_000  # 5 s at 8 Mbit/s
        lst = socket.socket()
        lst.bind(("127.0.0.1", 0))
        lst.listen(1)
        lst.settimeout(20)
        port = lst.getsockname()[1]
        # --expect-faults: a rate that held bytes back has fired.
        p = subprocess.Popen([FAULT, "exec", "--quiet", "--expect-faults", "--rate", "8mbps",
                              "--", PY, "-c", RATE_SENDER, str(port), str(n)],
                             stderr=subprocess.PIPE, text=True)
        try:
            conn, _ = lst.accept()
            conn.settimeout(20)
            digest = hashlib.sha256()
            received = 0
            first = last = None
            while received < n + 1:
                chunk = conn.recv(1 << 16)
                if not chunk:
                    break
                now = time.monotonic()
                first = first or now
                last = now
                received += len(chunk)
                digest.update(chunk)
            conn.close()
            _, err = p.communicate(timeout=20)
        finally:
            p.kill()
            lst.close()
        self.assertEqual(p.returncode, 0, err)
        expected = hashlib.sha256(random.Random(7).randbytes(n)).hexdigest()
        self.assertEqual(received, n)
        self.assertEqual(digest.hexdigest(), expected)
        rate = received * 8 / (last - first)
        self.assertLessEqual(abs(rate - 8e6) / 8e6, 0.03, "measured %.0f bit/s" % rate)


class SqliteTest(unittest.TestCase):
    SQL = "create table t(x); insert into t values(1); insert into t values(2);"

    def setUp(self):
        require_shim(self)
        self.dir = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.dir.cleanup()

    def sqlite(self, name, fault_args):
        db = os.path.join(self.dir.name, name)
        cmd = ["sqlite3", db, self.SQL]
        if fault_args is not None:
            cmd = [FAULT, "exec", "--quiet"] + fault_args + ["--"] + cmd
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30)

    def test_bare_insert_works(self):
        r = self.sqlite("bare.db", None)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_fsync_eio_is_a_disk_io_error(self):
        r = self.sqlite("fsync.db", ["--deny", "fsync=EIO"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("disk I/O error", r.stderr)

    def test_journal_enospc_is_a_full_disk(self):
        r = self.sqlite("full.db", ["--deny", "write=ENOSPC,path=*.db-journal"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("database or disk is full", r.stderr)


CONNECT = r"""
import errno, socket, sys, time
s = socket.socket()
start = time.monotonic()
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
    result = "ok"
except OSError as e:
    result = errno.errorcode.get(e.errno, str(e.errno))
print(result, int((time.monotonic() - start) * 1000))
"""


class ConnectTest(unittest.TestCase):
    def setUp(self):
        require_shim(self)

    def connect(self, port, fault_args=None):
        cmd = [PY, "-c", CONNECT, str(port)]
        if fault_args is not None:
            cmd = [FAULT, "exec", "--quiet"] + fault_args + ["--"] + cmd
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        name, ms = r.stdout.split()
        return name, int(ms)

    def test_connect_timeout_on_blackholed_target(self):
        port = closed_port()
        self.assertEqual(self.connect(port)[0], "ECONNREFUSED")
        # Never early; late only by scheduling delay on a loaded machine, so
        # one of at most three attempts must land within 300 ms +- 20 ms.
        times = []
        for _ in range(3):
            name, ms = self.connect(port, ["--connect-timeout", "300ms", "--blackhole",
                                           "--target", "tcp://127.0.0.1:%d" % port])
            self.assertEqual(name, "ETIMEDOUT")
            self.assertGreaterEqual(ms, 280)
            times.append(ms)
            if ms <= 320:
                break
        self.assertLessEqual(min(times), 320, times)

    def test_connection_error_refused(self):
        listener = Listener()
        try:
            self.assertEqual(self.connect(listener.port)[0], "ok")
            name, _ = self.connect(listener.port, ["--connection-error", "refused"])
            self.assertEqual(name, "ECONNREFUSED")
        finally:
            listener.close()


class ScopedPolicyTest(unittest.TestCase):
    def setUp(self):
        require_shim(self)
        self.program = os.path.join(TARGETS, "fault_target_scoped_threads")
        if not os.path.exists(self.program):
            self.skipTest("tests/targets is not built")

    def test_only_the_scoped_thread_sees_faults(self):
        listener = Listener()
        try:
            r = fault_exec(["--quiet", "--scopes-only", "--connection-error", "refused",
                            "--", self.program, str(listener.port), "cli"])
            bare = subprocess.run([self.program, str(listener.port), "cli"],
                                  capture_output=True, text=True, timeout=30)
        finally:
            listener.close()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "scope: active\nscoped: ECONNREFUSED\nother: ok\nmain: ok\n")
        # Without the shim the scope does nothing and says so.
        self.assertEqual(bare.stdout, "scope: inactive\nscoped: ok\nother: ok\nmain: ok\n")
        self.assertIn("has no effect", bare.stderr)


FSYNC_ONCE = r"""
import errno, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"x")
try:
    os.fsync(fd)
    print(os.getpid(), "ok")
except OSError as e:
    print(os.getpid(), errno.errorcode[e.errno])
"""


class EventsTest(unittest.TestCase):
    def setUp(self):
        require_shim(self)
        self.dir = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.dir.cleanup()

    def test_events_jsonl_describes_each_fault(self):
        events = os.path.join(self.dir.name, "events.jsonl")
        data = os.path.join(self.dir.name, "data.bin")
        r = fault_exec(["--deny", "fsync=EIO", "--events", events, "--", PY, "-c",
                        FSYNC_ONCE, data])
        self.assertEqual(r.returncode, 0, r.stderr)
        pid, result = r.stdout.split()
        self.assertEqual(result, "EIO")
        with open(events) as f:
            lines = [json.loads(line) for line in f]
        fsyncs = [e for e in lines if e["op"] == "fsync"]
        self.assertEqual(len(fsyncs), 1, lines)
        e = fsyncs[0]
        self.assertEqual(e["effect"], "deny")
        self.assertEqual(e["errno"], 5)
        self.assertEqual(e["errno_name"], "EIO")
        self.assertEqual(e["rule"], "cli")
        self.assertEqual(e["pid"], int(pid))
        self.assertEqual(e["layer"], "shim")
        self.assertRegex(e["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")
        self.assertLess(abs(e["time_ns"] / 1e9 - time.time()), 60)
        # The summary counts the same fault.
        self.assertIn('fault: policy "cli": matched', r.stderr)
        self.assertIn("fault:   deny ", r.stderr)


    def test_unwritable_events_file_fails_the_run(self):
        # /dev/full takes no byte: the run's record of what it injected is
        # lost, so the run fails (4) although the program exited 0, and the
        # summary still counts every event.
        data = os.path.join(self.dir.name, "data.bin")
        r = fault_exec(["--deny", "fsync=EIO", "--seed", "1", "--events", "/dev/full", "--",
                        PY, "-c", FSYNC_ONCE + "try:\n    os.fsync(fd)\nexcept OSError:\n    pass\n",
                        data])
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertTrue(r.stdout.split()[1] == "EIO", r.stdout)
        self.assertIn("fault: writing --events /dev/full: write: No space left on device; "
                      "no further events are written and the run will fail (exit status 4)\n",
                      r.stderr)
        self.assertIn('fault: policy "cli": matched 2, fired 2\n', r.stderr)
        self.assertIn("fault: 2 events, 0 dropped, 2 not written to --events; seed 1 "
                      "(--seed)\n", r.stderr)
        self.assertIn("fault exec: --events /dev/full: write: No space left on device; "
                      "2 of 2 events are missing from the file\n", r.stderr)

    def test_unwritable_events_file_keeps_a_failing_programs_status(self):
        data = os.path.join(self.dir.name, "data.bin")
        r = fault_exec(["--deny", "fsync=EIO", "--events", "/dev/full", "--",
                        PY, "-c", FSYNC_ONCE + "sys.exit(7)\n", data])
        self.assertEqual(r.returncode, 7, r.stderr)
        self.assertIn("1 of 1 events are missing from the file", r.stderr)


TICKER = r"""
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
os.write(fd, b"pid %d\n" % os.getpid())
for i in range(400):
    os.write(fd, b"line %d\n" % i)
    try:
        os.fsync(fd)
    except OSError:
        pass
    time.sleep(0.05)
"""


def process_gone(pid):
    """True when pid no longer runs (absent, or a zombie nobody reaped yet)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


class SupervisorDeathTest(unittest.TestCase):
    """kill -9 of fault under the seccomp layer: the program must not run on
    with a filter nobody answers (its covered syscalls would fail with
    ENOSYS, writes included)."""

    def setUp(self):
        require_shim(self)
        self.dir = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.dir.cleanup()

    def start(self, args, out):
        p = subprocess.Popen([FAULT, "exec", "--quiet", *args, "--", PY, "-c", TICKER, out],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        pid = None
        while time.monotonic() < deadline:
            try:
                with open(out) as f:
                    lines = f.read().splitlines()
            except OSError:
                lines = []
            if len(lines) >= 4:
                pid = int(lines[0].split()[1])
                break
            if p.poll() is not None:
                break
            time.sleep(0.05)
        if pid is None:
            p.kill()
            self.fail("the program did not start: %s" % p.communicate(timeout=10)[1])
        return p, pid

    def test_program_dies_with_a_killed_supervisor(self):
        out = os.path.join(self.dir.name, "ticks.txt")
        p, pid = self.start(["--deny", "fsync=EIO"], out)
        try:
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=10)
            deadline = time.monotonic() + 2
            while not process_gone(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            self.assertTrue(process_gone(pid), "the program runs on without fault")
            with open(out) as f:
                n = len(f.read().splitlines())
            time.sleep(0.3)
            with open(out) as f:
                self.assertEqual(len(f.read().splitlines()), n, "the file still grows")
        finally:
            if not process_gone(pid):
                os.kill(pid, signal.SIGKILL)

    def test_shim_alone_keeps_the_program_running(self):
        # Nothing of the shim needs fault alive: the program keeps its
        # last policy and runs on (the documented behaviour).
        out = os.path.join(self.dir.name, "ticks.txt")
        p, pid = self.start(["--latency", "1ms"], out)
        try:
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=10)
            time.sleep(0.3)
            self.assertFalse(process_gone(pid))
        finally:
            if not process_gone(pid):
                os.kill(pid, signal.SIGKILL)


class PrivilegeWarningTest(unittest.TestCase):
    """The seccomp layer sets NO_NEW_PRIVS: a set-user-ID program started
    by an unprivileged fault runs without its privileges, and fault says so
    before it starts."""

    def setUp(self):
        require_shim(self)
        if os.geteuid() != 0:
            self.skipTest("needs root to make a set-user-ID root file and to "
                          "switch to nobody with setpriv")
        if not os.path.exists("/usr/bin/setpriv"):
            self.skipTest("setpriv (util-linux) is not installed")
        self.dir = tempfile.mkdtemp()
        os.chmod(self.dir, 0o755)
        self.prog = os.path.join(self.dir, "suid_true")
        with open("/bin/true", "rb") as src, open(self.prog, "wb") as dst:
            dst.write(src.read())
        os.chmod(self.prog, 0o4755)

    def tearDown(self):
        if hasattr(self, "dir"):
            subprocess.run(["rm", "-rf", self.dir], timeout=30)

    def as_nobody(self, args):
        return subprocess.run(["/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup",
                               "--clear-groups", FAULT, "exec", *args, "--", self.prog],
                              capture_output=True, text=True, timeout=30)

    def test_unprivileged_run_with_a_filter_warns(self):
        r = self.as_nobody(["--quiet", "--deny", "fsync=EIO"])
        if "Operation not permitted" in r.stderr and r.returncode != 0:
            self.skipTest("this machine does not let nobody run fault: " + r.stderr)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(
            r.stderr,
            "fault: warning: %s is set-user-ID (owner uid 0): the seccomp layer sets "
            "NO_NEW_PRIVS, so it runs without those privileges (and may fail, e.g. with "
            "EPERM); run fault as root, or use only faults that need no seccomp filter "
            "(--layer preload)\n" % self.prog)

    def test_no_warning_without_a_filter_or_as_the_owner(self):
        r = self.as_nobody(["--quiet", "--latency", "1ms"])
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        r = fault_exec(["--quiet", "--deny", "fsync=EIO", "--", self.prog])
        self.assertEqual((r.returncode, r.stderr), (0, ""))


class ExpectFaultsTest(unittest.TestCase):
    def setUp(self):
        require_shim(self)

    def test_policy_that_never_fires_fails_the_run(self):
        r = fault_exec(["--expect-faults", "--deny", "fsync=EIO", "--", "true"])
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn('fault: policy "cli": never matched \u2014 check its targets', r.stderr)
        self.assertIn('fault: --expect-faults: policy "cli" never fired', r.stderr)

    def test_policy_that_fires_passes(self):
        with tempfile.TemporaryDirectory() as d:
            r = fault_exec(["--expect-faults", "--deny", "fsync=EIO", "--", PY, "-c",
                            FSYNC_ONCE, os.path.join(d, "f")])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("--expect-faults", r.stderr)

    def test_program_failure_wins_over_3(self):
        r = fault_exec(["--expect-faults", "--quiet", "--deny", "fsync=EIO", "--",
                        "sh", "-c", "exit 5"])
        self.assertEqual(r.returncode, 5)


FSYNC_LOOP = r"""
import errno, os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
print("ready", flush=True)
seen = []
deadline = time.monotonic() + 15
while time.monotonic() < deadline:
    try:
        os.fsync(fd)
        r = "ok"
    except OSError as e:
        r = errno.errorcode[e.errno]
    if not seen or seen[-1] != r:
        seen.append(r)
        print(r, flush=True)
    if os.path.exists(sys.argv[2]):
        break
    time.sleep(0.02)
"""


class ReloadTest(unittest.TestCase):
    def setUp(self):
        require_shim(self)
        self.dir = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.dir.cleanup()

    def test_sighup_rereads_the_policy_files(self):
        policy = os.path.join(self.dir.name, "p.yaml")
        stop = os.path.join(self.dir.name, "stop")
        with open(policy, "w") as f:
            f.write("disk:\n  syscalls:\n    - fsync: {deny: EIO}\n")
        p = subprocess.Popen([FAULT, "exec", "--reload-on", "SIGHUP", "--policy", policy,
                              "--", PY, "-c", FSYNC_LOOP,
                              os.path.join(self.dir.name, "f"), stop],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            self.assertEqual(p.stdout.readline(), "ready\n")
            self.assertEqual(p.stdout.readline(), "EIO\n")
            # A broken file: the old policy stays.
            with open(policy, "w") as f:
                f.write("disk:\n  syscalls: [\n")
            p.send_signal(signal.SIGHUP)
            time.sleep(0.3)
            # A family the seccomp filter was not built with (auto adds the
            # seccomp layer for syscall faults): refused, the old policy stays.
            with open(policy, "w") as f:
                f.write("disk:\n  syscalls:\n    - unlink: {deny: EIO}\n")
            p.send_signal(signal.SIGHUP)
            time.sleep(0.3)
            # A valid file whose fault no longer matches: fsync works again.
            with open(policy, "w") as f:
                f.write("disk:\n  syscalls:\n    - fsync: {deny: EIO, path: /nonexistent/*}\n")
            p.send_signal(signal.SIGHUP)
            self.assertEqual(p.stdout.readline(), "ok\n")
            open(stop, "w").close()
            out, err = p.communicate(timeout=20)
        finally:
            p.kill()
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(out, "")
        self.assertIn("fault: reload failed, keeping the previous policies: " + policy, err)
        self.assertIn("fault: reload failed, keeping the previous policies: the seccomp layer "
                      "was set up for other syscall families; the new policies add unlink "
                      "(restart the run to add them)", err)
        self.assertIn("fault: reloaded 1 policy (generation 3)", err)


if __name__ == "__main__":
    unittest.main()
