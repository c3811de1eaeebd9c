"""How far a run reaches: programs started with their descriptors closed,
children that close every inherited fd, fds above the old 4096 ceiling,
nested runs, and descendants that outlive the program (daemons).

Every program runs on loopback under `fault exec` and is judged from
outside: exit status, stderr, files it wrote, measured time, --events.
Each subprocess has a timeout.
"""

import json
import os
import shlex
import signal
import subprocess
import tempfile
import time
import unittest

from fault_testlib import FAULT, PY, TARGETS, EchoServer, read_events


def fault_exec(args, timeout=60, **kw):
    return subprocess.run([FAULT, "exec", *args], capture_output=True, text=True,
                          timeout=timeout, **kw)


def shell(command, timeout=60):
    """Runs a sh command line (for redirections such as <&-)."""
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True,
                          timeout=timeout)


# Writes, for every fd the program has, where it points; and whether an
# fsync of a fresh file succeeds. argv: RESULT_FILE [DIR]
FD_REPORT = r"""
import os, sys
lines = []
for fd in sorted(int(n) for n in os.listdir("/proc/self/fd")):
    try:
        lines.append("fd %d %s" % (fd, os.readlink("/proc/self/fd/%d" % fd)))
    except OSError:
        pass
path = os.path.join(sys.argv[2], "data") if len(sys.argv) > 2 else None
if path:
    try:
        os.write(2, b"X" * 4096)  # into the table, if it were on fd 2
    except OSError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"x")
    try:
        os.fsync(fd)
        lines.append("fsync ok")
    except OSError as e:
        lines.append("fsync errno %d" % e.errno)
with open(sys.argv[1], "w") as f:
    f.write("\n".join(lines) + "\n")
"""


class TableReachTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.d = self.dir.name

    def tearDown(self):
        self.dir.cleanup()

    def test_child_started_with_close_fds_gets_the_faults(self):
        child = ("import os\n"
                 "fd = os.open(%r, os.O_WRONLY | os.O_CREAT, 0o600)\n"
                 "os.write(fd, b'x')\n"
                 "try:\n"
                 "    os.fsync(fd); print('child fsync ok')\n"
                 "except OSError as e:\n"
                 "    print('child fsync errno', e.errno)\n"
                 % os.path.join(self.d, "f"))
        parent = ("import subprocess, sys\n"
                  "r = subprocess.run([sys.executable, '-c', %r], close_fds=True,\n"
                  "                   capture_output=True, text=True)\n"
                  "sys.stdout.write(r.stdout); sys.stderr.write(r.stderr)\n" % child)
        r = fault_exec(["--deny", "fsync=EIO", "--", PY, "-c", parent])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("child fsync errno 5", r.stdout, r.stderr)
        self.assertNotIn("running without faults", r.stderr)

    def test_table_not_readable_on_closed_stdin(self):
        r = shell("exec %s exec -q -- head -c 8 <&-" % shlex.quote(FAULT))
        self.assertNotIn("FALTABLE", r.stdout)
        self.assertNotEqual(r.returncode, 0, "head read something from a closed stdin")

    def check_no_table_fd(self, redirect):
        out = os.path.join(self.d, "fds")
        r = shell("exec %s exec -q --deny fsync=EIO -- %s -c %s %s %s %s" % (
            shlex.quote(FAULT), PY, shlex.quote(FD_REPORT), out, self.d, redirect))
        with open(out) as f:
            report = f.read()
        self.assertEqual(r.returncode, 0, r.stderr + report)
        # The program holds no descriptor of the table, on 0..2 or elsewhere.
        self.assertNotIn("fault-policy-table", report)
        # And the faults still apply.
        self.assertIn("fsync errno 5", report)
        return report

    def test_closed_stdin(self):
        report = self.check_no_table_fd("<&-")
        self.assertNotIn("fd 0 ", report)

    def test_closed_stdout(self):
        report = self.check_no_table_fd(">&-")
        self.assertNotIn("fd 1 ", report)

    def test_closed_stderr_and_a_write_to_it(self):
        report = self.check_no_table_fd("2>&-")
        self.assertNotIn("fd 2 ", report)

    def test_fault_in_a_child_of_a_program_started_with_stderr_closed(self):
        # The program writes over "fd 2" (the table's place before), then a
        # child it starts must still find an intact table.
        out = os.path.join(self.d, "fds")
        script = ("import os, subprocess, sys\n"
                  "try:\n    os.write(2, b'\\0' * 65536)\nexcept OSError:\n    pass\n"
                  "subprocess.run([sys.executable, '-c', %r, %r, %r])\n"
                  % (FD_REPORT, out, self.d))
        r = shell("exec %s exec -q --deny fsync=EIO -- %s -c %s 2>&-" % (
            shlex.quote(FAULT), PY, shlex.quote(script)))
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out) as f:
            self.assertIn("fsync errno 5", f.read())

    def test_nested_fault_exec_is_refused(self):
        marker = os.path.join(self.d, "inner-ran")
        r = fault_exec(["-q", "--deny", "fsync=EIO", "--", FAULT, "exec", "-q",
                        "--latency", "1ms", "--", "touch", marker])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("fault exec: already running under fault exec (FAULT_TABLE=/proc/",
                      r.stderr)
        self.assertIn("nested runs are refused", r.stderr)
        self.assertFalse(os.path.exists(marker))

    def test_a_stale_table_variable_is_not_a_nested_run(self):
        env = dict(os.environ, FAULT_TABLE="/proc/999999999/fd/3")
        r = fault_exec(["-q", "--", "true"], env=env)
        self.assertEqual(r.returncode, 0, r.stderr)


class HighFdTest(unittest.TestCase):
    def setUp(self):
        self.program = os.path.join(TARGETS, "fault_target_high_fd")
        if not os.path.exists(self.program):
            raise AssertionError("%s is not built" % self.program)
        import resource
        if resource.getrlimit(resource.RLIMIT_NOFILE)[1] <= 5000:
            self.skipTest("the hard fd limit is below 5001")
        self.server = EchoServer()
        self.dir = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.server.close()
        self.dir.cleanup()

    def run_client(self, fd, latency):
        events = os.path.join(self.dir.name, "ev.jsonl")
        start = time.monotonic()
        r = fault_exec(["-q", "--latency", latency, "--target",
                        "tcp://127.0.0.1:%d" % self.server.port, "--events", events,
                        "--", self.program, str(self.server.port), str(fd), "2"])
        return time.monotonic() - start, r, read_events(events)

    def test_latency_applies_to_a_socket_on_fd_5000(self):
        elapsed, r, events = self.run_client(5000, "300ms")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("fd 5000: 2 round trips", r.stdout)
        latency = [e for e in events if e["effect"] == "latency"]
        self.assertTrue(latency, events)
        self.assertGreaterEqual(elapsed, 0.3 * len(latency) * 0.95)
        self.assertGreaterEqual(elapsed, 0.6)  # two round trips at least

    def test_same_client_on_a_low_fd_for_comparison(self):
        elapsed, r, events = self.run_client(7, "300ms")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertGreaterEqual(elapsed, 0.6)


# A program that leaves a daemon behind: it forks, the child starts a new
# session and forks again, the child exits and the parent waits for it, then
# exits with status argv[3]. The daemon (grandchild) sleeps argv[2] seconds,
# then writes and fsyncs a file and records pid and outcome in argv[1].
DAEMONIZE = r"""
import os, sys, time
result, delay, status = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork() != 0:
        os._exit(0)
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    time.sleep(delay)
    fd = os.open(result + ".data", os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"x")
    try:
        os.fsync(fd)
        outcome = "fsync ok"
    except OSError as e:
        outcome = "fsync errno %d" % e.errno
    with open(result + ".tmp", "w") as f:
        f.write("%d %s\n" % (os.getpid(), outcome))
    os.rename(result + ".tmp", result)
    os._exit(0)
os.waitpid(pid, 0)
print("program done")
sys.exit(status)
"""


class DescendantTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.result = os.path.join(self.dir.name, "daemon")
        self.events = os.path.join(self.dir.name, "ev.jsonl")

    def tearDown(self):
        self.dir.cleanup()

    def test_fault_follows_a_daemon_and_records_its_faults(self):
        start = time.monotonic()
        r = fault_exec(["--deny", "fsync=EIO", "--events", self.events, "--",
                        PY, "-c", DAEMONIZE, self.result, "1.0", "3"], timeout=30)
        elapsed = time.monotonic() - start
        # The program's own status, not the daemon's.
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("program done", r.stdout)
        # fault waited for the daemon: its result is there when fault ends.
        self.assertGreaterEqual(elapsed, 1.0)
        with open(self.result) as f:
            pid, outcome = f.read().split(" ", 1)
        self.assertEqual(outcome.strip(), "fsync errno 5")
        self.assertRegex(r.stderr, r"fault: the program exited with status 3; 1 process it "
                                   r"started is still running \(pid %s\): following" % pid)
        self.assertEqual(r.stderr.count("still running"), 1)
        denied = [e for e in read_events(self.events)
                  if e["effect"] == "deny" and e["pid"] == int(pid)]
        self.assertTrue(denied, r.stderr)
        self.assertIn('policy "cli": matched 1, fired 1', r.stderr)

    def test_sigterm_to_fault_reaches_the_daemon(self):
        p = subprocess.Popen([FAULT, "exec", "-q", "--", PY, "-c", DAEMONIZE, self.result,
                              "30", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
        try:
            line = p.stderr.readline()  # the one line saying it follows
            self.assertIn("still running", line)
            start = time.monotonic()
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=10)
            self.assertLess(time.monotonic() - start, 5)
            self.assertEqual(p.returncode, 0)  # the program's own status
            self.assertFalse(os.path.exists(self.result))  # the daemon did not finish
            pid = int(line.split("(pid ")[1].split(")")[0])
            with self.assertRaises(ProcessLookupError):
                os.kill(pid, 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(5)
            p.stderr.close()

    def test_no_message_when_nothing_is_left(self):
        r = fault_exec(["-q", "--", "sh", "-c", "sleep 0.1 & wait"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")


if __name__ == "__main__":
    unittest.main()
