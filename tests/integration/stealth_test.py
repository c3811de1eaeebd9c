"""`fault run --stealth`: capture of named processes with eBPF (docs/stealth.md).

The capture programs attach to the cgroup2 root, so they see every process
on the machine: each test selects only programs started under a name unique
to the test (a symlink to curl or python3 in a private directory; the kernel
names a process after the file it executed). Everything is observed from
outside: measured times, what the server received, the addresses the
client saw, what `bpftool cgroup tree` lists. Servers listen on loopback;
every subprocess and loop is bounded in time.

Skipped (with the reason) where capture cannot run: not root, no cgroup2,
or a build without the BPF programs.
"""

import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from fault_testlib import FAULT, PY, QuietHandler, clean_env, need

LATENCY_MS = 300
SLACK = 0.25


def capture_unavailable():
    """Why capture cannot run here, from `fault doctor`; None when it can.
    As root it must run: a failure then is a failure, not a reason to skip."""
    r = subprocess.run([FAULT, "doctor"], capture_output=True, text=True, timeout=60)
    why = "fault doctor does not report stealth capture:\n" + r.stdout
    for line in r.stdout.splitlines():
        if line.startswith("stealth capture"):
            why = None if " ok " in line else line
    if why is not None and os.geteuid() == 0:
        raise AssertionError("stealth capture must run as root: " + why)
    return why


class Names:
    """A private directory of symlinks: `link(name, program)` makes a
    program that runs under `name`."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="fault-stealth-")

    def link(self, name, program):
        path = os.path.join(self.dir, name)
        if program == "python3":
            program = PY  # not a version manager's shim found on PATH
        if not os.path.lexists(path):
            os.symlink(need(program) if "/" not in program else program, path)
        return path

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class HttpServer:
    """A threaded HTTP server on `host` (127.0.0.1 or ::1) that counts the
    requests it answered."""

    def __init__(self, host="127.0.0.1"):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server = self

        class Handler(QuietHandler):
            def do_GET(self):
                server.requests += 1
                QuietHandler.do_GET(self)

        class Server(http.server.ThreadingHTTPServer):
            address_family = family

        self.requests = 0
        self.httpd = Server((host, 0), Handler)
        self.port = self.httpd.server_address[1]
        self.host = host
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def url(self):
        return "http://%s:%d/" % ("[%s]" % self.host if ":" in self.host else self.host,
                                  self.port)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class UdpEcho:
    """Answers every datagram with b"echo:" + it, from the address it was
    sent to; records where each came from."""

    def __init__(self, host="127.0.0.1"):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.received = []
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        deadline = time.monotonic() + 120
        while not self.stop and time.monotonic() < deadline:
            try:
                data, peer = self.sock.recvfrom(2048)
            except OSError:
                continue
            self.received.append(data)
            self.sock.sendto(b"echo:" + data, peer)

    def close(self):
        self.stop = True
        self.thread.join(5)
        self.sock.close()


class Stealth:
    """`fault run --stealth ARGS` in the background, waited for until the
    capture is attached (its start-up line). stop() -> (status, out, err)."""

    def __init__(self, args, program=None, start_timeout=20):
        self.out = tempfile.TemporaryFile(mode="w+")
        self.err = tempfile.TemporaryFile(mode="w+")
        cmd = [program or FAULT, "run", "--stealth", "--disable-http-proxy", *args]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=self.err, env=clean_env())
        deadline = time.monotonic() + start_timeout
        while True:
            self.out.seek(0)
            if "stealth: capturing" in self.out.read():
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                rc, out, err = self.stop(signal.SIGKILL)
                raise AssertionError("fault run --stealth did not start (status %s): %s\n%s%s"
                                     % (rc, " ".join(cmd), out, err))
            time.sleep(0.02)

    def stop(self, sig=signal.SIGINT, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.out.seek(0)
        self.err.seek(0)
        out, err = self.out.read(), self.err.read()
        self.out.close()
        self.err.close()
        return self.proc.returncode, out, err


def curl_time(program, url, extra=()):
    """(exit status, seconds) of one GET with `program` (curl, renamed or not)."""
    r = subprocess.run([program, "-s", "-g", "-o", "/dev/null", "-w", "%{time_total}",
                        "--max-time", "10", *extra, url],
                       capture_output=True, text=True, timeout=20, env=clean_env())
    return r.returncode, float(r.stdout or "0")


UDP_CLIENT = r"""
import socket, sys
host, port, connected = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.settimeout(5)
if connected:
    s.connect((host, port))
    s.send(b"ping")
    print("peer", s.getpeername()[0], s.getpeername()[1])
else:
    s.sendto(b"ping", (host, port))
data, src = s.recvfrom(2048)
print("reply", data.decode(), src[0], src[1])
"""

TCP_PEER = r"""
import socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
t0 = time.monotonic()
s = socket.create_connection((host, port), timeout=10)
print("peer", s.getpeername()[0], s.getpeername()[1])
s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print("status", data.split(b"\r\n", 1)[0].decode())
print("seconds", time.monotonic() - t0)
"""


def bpf_ids(pid):
    """The BPF link and program IDs process `pid` holds (from its fdinfo)."""
    links, progs = set(), set()
    for fd in os.listdir("/proc/%d/fdinfo" % pid):
        try:
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                text = f.read()
        except OSError:
            continue
        m = re.search(r"^link_id:\s+(\d+)", text, re.M)
        if m:
            links.add(int(m.group(1)))
            p = re.search(r"^prog_id:\s+(\d+)", text, re.M)
            if p:
                progs.add(int(p.group(1)))
    return links, progs


def attached_prog_ids():
    """The program IDs `bpftool cgroup tree` lists."""
    r = subprocess.run([need("bpftool"), "cgroup", "tree"], capture_output=True, text=True,
                       timeout=30)
    return {int(m) for m in re.findall(r"^\s*(?:\S+\s+)?(\d+)\s+cgroup_", r.stdout, re.M)}


class StealthTestCase(unittest.TestCase):
    def setUp(self):
        why = capture_unavailable()
        if why is not None:
            self.skipTest(why)
        self.names = Names()
        self.addCleanup(self.names.close)

    def latency_args(self):
        return ["--with-latency", "--latency-mean", str(LATENCY_MS)]


class CaptureByNameTest(StealthTestCase):
    def test_renamed_curl_is_delayed_and_plain_curl_is_not(self):
        server = HttpServer()
        self.addCleanup(server.close)
        capcurl = self.names.link("fstcurl1", "curl")
        run = Stealth(["--capture-process", "fstcurl1", *self.latency_args()])
        try:
            # Started after fault run: captured on its first connect.
            rc, captured = curl_time(capcurl, server.url())
            self.assertEqual(rc, 0)
            rc, plain = curl_time(need("curl"), server.url())
            self.assertEqual(rc, 0)
        finally:
            status, out, err = run.stop()
        self.assertEqual(status, 0, err)
        self.assertGreaterEqual(captured, LATENCY_MS / 1000, err)
        self.assertLess(plain, LATENCY_MS / 1000, "a process not selected was slowed")
        self.assertEqual(server.requests, 2, "both requests reach the real server")
        self.assertRegex(err, r"stealth: captured 1 TCP connections")

    def test_events_name_the_captured_process_and_destination(self):
        server = HttpServer()
        self.addCleanup(server.close)
        capcurl = self.names.link("fstevents", "curl")
        events = os.path.join(self.names.dir, "events.jsonl")
        run = Stealth(["--capture-process", "fstevents", "--events", events,
                       *self.latency_args()])
        try:
            client = subprocess.Popen([capcurl, "-s", "-o", "/dev/null", server.url()],
                                      env=clean_env())
            client.wait(20)
        finally:
            status, out, err = run.stop()
        self.assertEqual(client.returncode, 0)
        with open(events) as f:
            lines = [json.loads(line) for line in f if line.strip()]
        self.assertTrue(lines, err)
        for e in lines:
            self.assertEqual(e["pid"], client.pid)
            self.assertEqual(e["target"], "127.0.0.1:%d" % server.port)
            self.assertEqual(e["rule"], "latency")

    def test_prefix_form_and_the_original_peer(self):
        server = HttpServer()
        self.addCleanup(server.close)
        py = self.names.link("fstpfx-client", "python3")
        run = Stealth(["--capture-process", "fstpfx*", *self.latency_args()])
        try:
            r = subprocess.run([py, "-c", TCP_PEER, "127.0.0.1", str(server.port)],
                               capture_output=True, text=True, timeout=20)
        finally:
            status, out, err = run.stop()
        self.assertEqual(r.returncode, 0, r.stderr)
        # getpeername shows the server, not the capture listener.
        self.assertIn("peer 127.0.0.1 %d" % server.port, r.stdout)
        self.assertIn("status HTTP/1.0 200 OK", r.stdout)
        seconds = float(re.search(r"seconds (\S+)", r.stdout).group(1))
        self.assertGreaterEqual(seconds, LATENCY_MS / 1000)

    def test_upstream_filter_applies_to_captured_connections(self):
        faulted, spared = HttpServer(), HttpServer()
        self.addCleanup(faulted.close)
        self.addCleanup(spared.close)
        capcurl = self.names.link("fstcurl2", "curl")
        run = Stealth(["--capture-process", "fstcurl2", "--upstream",
                       "127.0.0.1:%d" % faulted.port, *self.latency_args()])
        try:
            rc1, slow = curl_time(capcurl, faulted.url())
            rc2, fast = curl_time(capcurl, spared.url())
        finally:
            status, out, err = run.stop()
        self.assertEqual((rc1, rc2), (0, 0))
        self.assertGreaterEqual(slow, LATENCY_MS / 1000)
        self.assertLess(fast, LATENCY_MS / 1000, "--upstream did not spare the other server")
        self.assertEqual(spared.requests, 1)
        self.assertRegex(err, r"stealth: captured 2 TCP connections")

    def test_fault_itself_is_never_captured(self):
        # fault runs under the selected name; its upstream connection must
        # not come back to it, while a client of that name is captured.
        server = HttpServer()
        self.addCleanup(server.close)
        self_named = self.names.link("fstself", FAULT)
        client = self.names.link("fstself2", "curl")
        run = Stealth(["--capture-process", "fstself,fstself2", *self.latency_args()],
                      program=self_named)
        try:
            rc, seconds = curl_time(client, server.url())
        finally:
            status, out, err = run.stop()
        self.assertEqual(rc, 0, err)
        self.assertGreaterEqual(seconds, LATENCY_MS / 1000)
        self.assertEqual(server.requests, 1)
        self.assertRegex(err, r"stealth: captured 1 TCP connections")


class CaptureFamiliesTest(StealthTestCase):
    def test_ipv6_connection_keeps_its_destination(self):
        try:
            server = HttpServer("::1")
        except OSError:
            self.skipTest("no IPv6 loopback")
        self.addCleanup(server.close)
        py = self.names.link("fstv6", "python3")
        run = Stealth(["--capture-process", "fstv6", *self.latency_args()])
        try:
            r = subprocess.run([py, "-c", TCP_PEER, "::1", str(server.port)],
                               capture_output=True, text=True, timeout=20)
        finally:
            status, out, err = run.stop()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("peer ::1 %d" % server.port, r.stdout)
        self.assertIn("200 OK", r.stdout)
        self.assertGreaterEqual(float(re.search(r"seconds (\S+)", r.stdout).group(1)),
                                LATENCY_MS / 1000)
        self.assertRegex(err, r"captured 1 TCP connections \(1 IPv6\)")

    def test_udp_unconnected_and_connected_reach_the_original_destination(self):
        echo = UdpEcho()
        self.addCleanup(echo.close)
        py = self.names.link("fstudp", "python3")
        run = Stealth(["--capture-process", "fstudp", *self.latency_args()])
        try:
            results = []
            for connected in ("0", "1"):
                t0 = time.monotonic()
                r = subprocess.run([py, "-c", UDP_CLIENT, "127.0.0.1", str(echo.port), connected],
                                   capture_output=True, text=True, timeout=20)
                results.append((r, time.monotonic() - t0))
        finally:
            status, out, err = run.stop()
        for (r, seconds), connected in zip(results, ("unconnected", "connected")):
            self.assertEqual(r.returncode, 0, "%s: %s" % (connected, r.stderr))
            # The reply appears to come from the server, not the capture listener.
            self.assertIn("reply echo:ping 127.0.0.1 %d" % echo.port, r.stdout, connected)
            self.assertGreaterEqual(seconds, LATENCY_MS / 1000, connected)
        self.assertIn("peer 127.0.0.1 %d" % echo.port, results[1][0].stdout)
        self.assertEqual(echo.received, [b"ping", b"ping"])

    def test_udp_loss_drops_captured_datagrams(self):
        echo = UdpEcho()
        self.addCleanup(echo.close)
        py = self.names.link("fstudploss", "python3")
        run = Stealth(["--capture-process", "fstudploss", "--with-packet-loss",
                       "--packet-loss-rate", "1.0", "--packet-loss-direction", "both"])
        try:
            r = subprocess.run([py, "-c", UDP_CLIENT, "127.0.0.1", str(echo.port), "0"],
                               capture_output=True, text=True, timeout=20)
        finally:
            status, out, err = run.stop()
        self.assertNotEqual(r.returncode, 0, "the datagram was not lost")
        self.assertIn("timed out", r.stderr)
        self.assertEqual(echo.received, [])


class CapturePidTreeTest(StealthTestCase):
    def test_children_of_a_selected_pid_are_captured(self):
        server = HttpServer()
        self.addCleanup(server.close)
        fifo = os.path.join(self.names.dir, "go")
        os.mkfifo(fifo)
        # A shell that waits, then starts curl (a child, named plain "curl").
        shell = subprocess.Popen(["/bin/sh", "-c",
                                  'read x < "$0"; exec %s -s -o /dev/null -w "%%{time_total}" '
                                  '--max-time 10 %s' % (need("curl"), server.url()), fifo],
                                 stdout=subprocess.PIPE, text=True, env=clean_env())
        try:
            run = Stealth(["--capture-pid", str(shell.pid), *self.latency_args()])
            try:
                with open(fifo, "w") as f:
                    f.write("go\n")
                out, _ = shell.communicate(timeout=20)
            finally:
                status, _, err = run.stop()
        finally:
            if shell.poll() is None:
                shell.kill()
                shell.wait(5)
        self.assertEqual(shell.returncode, 0)
        self.assertGreaterEqual(float(out), LATENCY_MS / 1000, err)

    def test_exec_name_selects_the_program_and_its_children(self):
        server = HttpServer()
        self.addCleanup(server.close)
        wrapper = self.names.link("fstexecwrap", "/bin/sh")
        run = Stealth(["--capture-exec", "fstexecwrap", *self.latency_args()])
        try:
            t0 = time.monotonic()
            r = subprocess.run([wrapper, "-c", "%s -s -o /dev/null %s" % (need("curl"),
                                                                         server.url())],
                               timeout=20, env=clean_env())
            seconds = time.monotonic() - t0
        finally:
            status, _, err = run.stop()
        self.assertEqual(r.returncode, 0)
        self.assertGreaterEqual(seconds, LATENCY_MS / 1000, err)


def cgroup2_mount():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            before, _, after = line.partition(" - ")
            if after.split(" ")[0] == "cgroup2" and before.split(" ")[3] == "/":
                return before.split(" ")[4]
    return None


class CaptureCgroupTest(StealthTestCase):
    def test_processes_in_a_selected_cgroup_are_captured(self):
        root = cgroup2_mount()
        self.assertIsNotNone(root)
        group = os.path.join(root, "fault-stealth-test-%d" % os.getpid())
        os.mkdir(group)
        self.addCleanup(os.rmdir, group)
        server = HttpServer()
        self.addCleanup(server.close)
        # A plain curl, moved into the cgroup by its shell before it execs;
        # selected by the path as /proc/PID/cgroup shows it.
        script = 'echo $$ > "$0/cgroup.procs" && exec %s -s -o /dev/null -w "%%{time_total}" ' \
                 '--max-time 10 %s' % (need("curl"), server.url())
        run = Stealth(["--capture-cgroup", group[len(root):], *self.latency_args()])
        try:
            inside = subprocess.run(["/bin/sh", "-c", script, group], capture_output=True,
                                    text=True, timeout=20, env=clean_env())
            rc, outside = curl_time(need("curl"), server.url())
        finally:
            status, _, err = run.stop()
        self.assertEqual(inside.returncode, 0, inside.stderr)
        self.assertGreaterEqual(float(inside.stdout), LATENCY_MS / 1000, err)
        self.assertEqual(rc, 0)
        self.assertLess(outside, LATENCY_MS / 1000, "a process outside the cgroup was slowed")


class CaptureLifetimeTest(StealthTestCase):
    def test_kill_9_leaves_nothing_attached(self):
        server = HttpServer()
        self.addCleanup(server.close)
        capcurl = self.names.link("fstkill", "curl")
        run = Stealth(["--capture-process", "fstkill", *self.latency_args()])
        rc, slow = curl_time(capcurl, server.url())
        self.assertEqual(rc, 0)
        self.assertGreaterEqual(slow, LATENCY_MS / 1000)
        links, progs = bpf_ids(run.proc.pid)
        self.assertGreaterEqual(len(links), 4, "fault holds its links itself")
        self.assertTrue(progs <= attached_prog_ids(), "bpftool cgroup tree lists them")
        run.stop(signal.SIGKILL)
        # The kernel detaches the links of a dead process (not pinned).
        # Other fault runs of this suite may be attached meanwhile: look
        # for this one's programs and links by ID.
        deadline = time.monotonic() + 10
        while progs & attached_prog_ids() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(progs & attached_prog_ids(), set(), "still attached after kill -9")
        for link in links:
            r = subprocess.run([need("bpftool"), "link", "show", "id", str(link)],
                               capture_output=True, text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0, "link %d outlived fault" % link)
        rc, direct = curl_time(capcurl, server.url())
        self.assertEqual(rc, 0, "the captured process cannot connect after kill -9")
        self.assertLess(direct, LATENCY_MS / 1000, "still captured after kill -9")
        self.assertEqual(server.requests, 2)


class CaptureNetnsTest(StealthTestCase):
    def run_in_new_netns(self, extra):
        """A selected curl in a network namespace of its own (loopback up,
        nothing listening): (captured TCP connections, curl's status)."""
        curl = self.names.link("fstnetns", "curl")
        run = Stealth(["--capture-process", "fstnetns", *extra])
        try:
            r = subprocess.run([need("unshare"), "-n", "/bin/sh", "-c",
                                '%s link set lo up && exec "$0" -s --max-time 5 '
                                'http://127.0.0.1:9/' % need("ip"), curl],
                               capture_output=True, text=True, timeout=30)
        finally:
            status, _, err = run.stop()
        m = re.search(r"captured (\d+) TCP connections", err)
        self.assertIsNotNone(m, err)
        return int(m.group(1)), r.returncode

    def test_other_namespaces_only_when_asked(self):
        captured, rc = self.run_in_new_netns([])
        self.assertEqual(captured, 0, "a process in another network namespace was captured")
        self.assertNotEqual(rc, 0)
        captured, rc = self.run_in_new_netns(["--capture-all-netns"])
        self.assertEqual(captured, 1, "--capture-all-netns did not capture it")


class CaptureInputTest(unittest.TestCase):
    def test_usage_errors_change_nothing(self):
        for args, message in [
            (["--stealth"], "--stealth: selects no process"),
            (["--capture-process", "x"], "--capture-process: needs --stealth"),
            (["--stealth", "--capture-process", "sixteen-bytes-xx"], "longer than 15 bytes"),
            (["--stealth", "--capture-pid", "abc"], "is not a process ID"),
        ]:
            r = subprocess.run([FAULT, "run", "--disable-http-proxy", *args],
                               capture_output=True, text=True, timeout=30, env=clean_env())
            self.assertEqual(r.returncode, 2, args)
            self.assertIn(message, r.stderr, args)

    def test_without_privilege_it_says_what_is_missing(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to drop privileges")
        r = subprocess.run([need("setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups",
                            "--inh-caps=-all", FAULT, "run", "--stealth", "--disable-http-proxy",
                            "--capture-process", "fstnopriv"],
                           capture_output=True, text=True, timeout=30, env=clean_env())
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("needs root or CAP_BPF, CAP_NET_ADMIN", r.stderr)

    def test_missing_cgroup_and_pid_are_reported(self):
        why = capture_unavailable()
        if why is not None:
            self.skipTest(why)
        for args, message in [
            (["--capture-cgroup", "/no-such-fault-cgroup"], "no-such-fault-cgroup"),
            (["--capture-pid", "4194000"], "no such process"),
        ]:
            r = subprocess.run([FAULT, "run", "--stealth", "--disable-http-proxy", *args],
                               capture_output=True, text=True, timeout=30, env=clean_env())
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(message, r.stderr)


if __name__ == "__main__":
    unittest.main()
