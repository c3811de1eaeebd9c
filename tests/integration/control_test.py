"""The control plane of `fault exec --control` (docs/control.md), driven by
`fault ctl` and by a Python gRPC client, with every effect observed from
outside: a loopback server's clients timing their round trips, exit
statuses, error text, socket modes, event counts."""

import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from fault_testlib import FAULT, PY, TcpServer, clean_env

SOURCE = os.environ.get("FAULT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))


class EchoServer(TcpServer):
    """Echoes one line per connection."""

    def _serve(self, c):
        with c:
            c.settimeout(10)
            data = b""
            try:
                while not data.endswith(b"\n"):
                    chunk = c.recv(100)
                    if not chunk:
                        return
                    data += chunk
                c.sendall(data)
            except OSError:
                pass


# The program under test: a client that connects, sends a line and reads it
# back, over and over, printing "START_MONOTONIC ROUND_TRIP_SECONDS" per
# request, until the file argv[2] exists (or 30 s passed).
CLIENT = r"""
import os, socket, sys, time
port, stop = int(sys.argv[1]), sys.argv[2]
end = time.monotonic() + 30
while not os.path.exists(stop) and time.monotonic() < end:
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"ping\n")
    got = b""
    while not got.endswith(b"\n"):
        chunk = s.recv(100)
        if not chunk:
            break
        got += chunk
    s.close()
    print("%.6f %.6f" % (t0, time.monotonic() - t0), flush=True)
    time.sleep(0.005)
"""

# Waits for a line on stdin, then makes argv[2] fsync calls at argv[1] per
# second (paced in steps of 500), each denied by the policy.
FSYNC_BURST = r"""
import os, sys, tempfile, time
rate, total = int(sys.argv[1]), int(sys.argv[2])
sys.stdin.readline()
fd, path = tempfile.mkstemp()
t0 = time.monotonic()
done = 0
while done < total:
    for _ in range(500):
        try:
            os.fsync(fd)
        except OSError:
            pass
    done += 500
    wait = t0 + done / rate - time.monotonic()
    if wait > 0:
        time.sleep(wait)
print("%.3f" % (time.monotonic() - t0), flush=True)
os.unlink(path)
"""


def ctl(address, *args, token_file=None, user=None, timeout=30):
    cmd = [FAULT, "ctl", "--control", address]
    if token_file:
        cmd += ["--token-file", token_file]
    cmd += list(args)
    if user:
        cmd = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=clean_env())


def reap(proc):
    """Kills `proc` if it still runs, waits for it and closes its pipes."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None and not pipe.closed:
            pipe.close()


def wait_for_path(path, proc, seconds=10):
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        if proc.poll() is not None:
            raise AssertionError("fault exec ended early: %s" % proc.stderr.read())
        if time.monotonic() > deadline:
            raise AssertionError("%s did not appear within %d s" % (path, seconds))
        time.sleep(0.02)


class ControlRun:
    """fault exec --control unix:DIR/control.sock around a program, in a
    private temporary directory. An argument "{STOP}" becomes the path of a
    file that finish() creates to tell the program to end."""

    def __init__(self, program_args, exec_args=(), stdin=subprocess.DEVNULL):
        self.dir = tempfile.mkdtemp(prefix="fault-control-test-")
        self.socket = os.path.join(self.dir, "control.sock")
        self.address = "unix:" + self.socket
        self.stop_file = os.path.join(self.dir, "STOP")
        program_args = [self.stop_file if a == "{STOP}" else a for a in program_args]
        self.proc = subprocess.Popen(
            [FAULT, "exec", "--control", self.address, *exec_args, "--", *program_args],
            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=clean_env())
        wait_for_path(self.socket, self.proc)

    def finish(self, timeout=30):
        open(self.stop_file, "w").close()
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)
        return self.proc.returncode, out, err


class LineReader:
    """Collects a pipe's lines with their arrival time on a thread."""

    def __init__(self, pipe):
        self.lines = []
        self.thread = threading.Thread(target=self._run, args=(pipe,), daemon=True)
        self.thread.start()

    def _run(self, pipe):
        for line in pipe:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def wait_for(self, predicate, seconds=10):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if predicate(self.lines):
                return True
            time.sleep(0.02)
        return False


def round_trips(reader, after):
    """(start, seconds) of the requests the client started after `after`."""
    out = []
    for _, line in list(reader.lines):
        start, rtt = line.split()
        if float(start) > after:
            out.append((float(start), float(rtt)))
    return out


class LatencyTest(unittest.TestCase):
    """A program gets latency only after `fault ctl put` and loses it after
    `fault ctl delete`; events stream while it runs."""

    def test_put_then_delete(self):
        server = EchoServer()
        self.addCleanup(server.close)
        run = ControlRun([PY, "-c", CLIENT, str(server.port), "{STOP}"])
        self.addCleanup(reap, run.proc)
        reader = LineReader(run.proc.stdout)
        self.assertTrue(reader.wait_for(lambda ls: len(ls) >= 10), "the client never ran")
        before = [rtt for _, rtt in round_trips(reader, 0)]
        self.assertLess(max(before), 0.08, "round trips without faults: %s" % before)

        policy = os.path.join(run.dir, "slow.yaml")
        with open(policy, "w") as f:
            f.write("slow:\n  latency: 100ms\n  targets: [\"tcp://127.0.0.1:%d\"]\n"
                    % server.port)
        events = subprocess.Popen([FAULT, "ctl", "--control", run.address, "events",
                                   "--follow", "--policy", "slow"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=clean_env())
        self.addCleanup(reap, events)
        event_lines = LineReader(events.stdout)
        time.sleep(0.2)

        r = ctl(run.address, "put", policy)
        put_done = time.monotonic()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("slow", r.stdout)
        self.assertTrue(reader.wait_for(lambda ls: len(round_trips(reader, put_done)) >= 4, 15))
        slow = [rtt for _, rtt in round_trips(reader, put_done)]
        # Every request that started after put returned was delayed.
        self.assertGreaterEqual(min(slow), 0.095, "round trips after put: %s" % slow)
        # Events arrive while the program runs.
        self.assertTrue(event_lines.wait_for(lambda ls: len(ls) >= 1, 5),
                        "no event streamed while the program ran")
        self.assertIsNone(run.proc.poll())
        self.assertIn('"rule":"slow"', event_lines.lines[0][1])
        self.assertIn('"effect":"latency"', event_lines.lines[0][1])

        r = ctl(run.address, "policies")
        self.assertEqual(r.returncode, 0, r.stderr)
        row = [l for l in r.stdout.splitlines() if l.startswith("slow")]
        self.assertEqual(len(row), 1, r.stdout)
        self.assertIn("control", row[0])
        self.assertGreater(int(row[0].split()[-1]), 0, "fired count: %s" % r.stdout)

        r = ctl(run.address, "delete", "slow")
        delete_done = time.monotonic()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(reader.wait_for(lambda ls: len(round_trips(reader, delete_done)) >= 4,
                                        15))
        fast = [rtt for _, rtt in round_trips(reader, delete_done)]
        self.assertLess(max(fast), 0.08, "round trips after delete: %s" % fast)

        # Without --follow: the events the run holds, then exit.
        held = ctl(run.address, "events", "--policy", "slow")
        self.assertEqual(held.returncode, 0, held.stderr)
        held_lines = held.stdout.splitlines()
        self.assertGreater(len(held_lines), 0)
        self.assertTrue(all('"rule":"slow"' in l for l in held_lines))

        status, _, err = run.finish()
        self.assertEqual(status, 0, err)
        self.assertIn("fault: control plane on " + run.address, err)
        # The stream ends with the run.
        events.wait(10)
        self.assertEqual(events.returncode, 0, events.stderr.read())
        self.assertFalse(os.path.exists(run.socket))


class InvalidPutTest(unittest.TestCase):
    """An invalid policy is refused with the file, line and field named, and
    nothing changes; so is a valid one the run's layers cannot apply."""

    def test_invalid_changes_nothing(self):
        run = ControlRun([PY, "-c", "import os,sys,time\n"
                          "while not os.path.exists(sys.argv[1]): time.sleep(0.02)", "{STOP}"])
        self.addCleanup(reap, run.proc)
        good = os.path.join(run.dir, "good.yaml")
        with open(good, "w") as f:
            f.write("keep:\n  latency: 5ms\n")
        r = ctl(run.address, "put", good)
        self.assertEqual(r.returncode, 0, r.stderr)
        before = ctl(run.address, "status").stdout
        self.assertIn("policies:   keep", before)

        bad = os.path.join(run.dir, "bad.yaml")
        with open(bad, "w") as f:
            f.write("keep:\n  latency: 1ms\nworse:\n  packet_loss: 120%\n")
        r = ctl(run.address, "put", bad)
        self.assertEqual(r.returncode, 1)
        self.assertIn(bad + ":4:", r.stderr)
        self.assertIn("packet_loss", r.stderr)
        # The same words `fault policy validate` uses.
        v = subprocess.run([FAULT, "policy", "validate", bad], capture_output=True, text=True)
        self.assertEqual(v.returncode, 1)
        self.assertEqual(v.stderr, r.stderr)

        uring = os.path.join(run.dir, "uring.yaml")
        with open(uring, "w") as f:
            f.write("ring:\n  syscalls:\n    - io_uring: deny(ENOSYS)\n")
        r = ctl(run.address, "put", uring)
        self.assertEqual(r.returncode, 1)
        self.assertIn("only the seccomp layer applies", r.stderr)

        r = ctl(run.address, "delete", "nothing-here")
        self.assertEqual(r.returncode, 1)
        self.assertIn('no policy named "nothing-here"', r.stderr)

        after = ctl(run.address, "status").stdout
        self.assertEqual(before.split("generation:")[1].split()[0],
                         after.split("generation:")[1].split()[0])
        self.assertIn("policies:   keep\n", after)
        generation = int(after.split("generation:")[1].split()[0])
        r = ctl(run.address, "wait", str(generation))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "generation %d\n" % generation)
        r = ctl(run.address, "--timeout", "200ms", "wait", str(generation + 1))
        self.assertEqual(r.returncode, 1)
        self.assertIn("generation %d was not published within" % (generation + 1), r.stderr)
        r = ctl(run.address, "clear")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("0 policies in effect (generation %d)" % (generation + 1), r.stdout)
        status, _, err = run.finish()
        self.assertEqual(status, 0, err)


class AccessTest(unittest.TestCase):
    """The Unix socket is its owner's only."""

    def test_other_user_is_refused(self):
        if os.geteuid() != 0:
            self.skipTest("switching to another user needs root")
        run = ControlRun(["/bin/sleep", "30"])
        self.addCleanup(reap, run.proc)
        self.assertEqual(stat.S_IMODE(os.stat(run.socket).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(run.dir).st_mode), 0o700)
        r = ctl(run.address, "status", user="nobody", timeout=30)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("Permission denied", r.stderr)
        # fault itself is usable by that user: the refusal is the socket's.
        v = subprocess.run(["/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                            "--clear-groups", FAULT, "--version"], capture_output=True)
        self.assertEqual(v.returncode, 0)
        self.assertEqual(ctl(run.address, "status").returncode, 0)
        run.proc.terminate()
        run.proc.communicate(timeout=10)
        self.assertFalse(os.path.exists(run.socket))
        os.rmdir(run.dir)

    def test_bad_addresses(self):
        for args, words in [
            (["--control", "http://x"], "expected unix, unix:PATH or tcp:HOST:PORT"),
            (["--control", "tcp:127.0.0.1:0"], "needs --control-token-file"),
            (["--control", "unix:/tmp"], "open to other users"),
            (["--control-token-file", "/etc/hostname"], "needs --control"),
        ]:
            r = subprocess.run([FAULT, "exec", *args, "--", "/bin/true"], capture_output=True,
                               text=True, env=clean_env())
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn(words, r.stderr)
        r = subprocess.run([FAULT, "ctl", "status"], capture_output=True, text=True,
                           env=clean_env())
        self.assertEqual(r.returncode, 2)
        self.assertIn("FAULT_CONTROL", r.stderr)


def python_stubs(directory):
    """fault.v1 messages and the Control stub for Python, generated now."""
    subprocess.run(["protoc", "-I", os.path.join(SOURCE, "proto"), "--python_out", directory,
                    "--grpc_python_out", directory,
                    "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
                    "fault/v1/policy.proto", "fault/v1/control.proto"], check=True)
    sys.path.insert(0, directory)
    from fault.v1 import control_pb2, control_pb2_grpc, policy_pb2  # noqa: E402
    return control_pb2, control_pb2_grpc, policy_pb2


class TcpTokenTest(unittest.TestCase):
    """TCP needs the token, on every call; FAULT_CONTROL and the token
    file's path reach the program."""

    def test_token(self):
        import grpc
        tmp = tempfile.mkdtemp(prefix="fault-control-tcp-")
        token = os.path.join(tmp, "token")
        with open(token, "w") as f:
            f.write("sesame-%d\n" % os.getpid())
        os.chmod(token, 0o600)
        prog = ("import os,sys,time\n"
                "print(os.environ['FAULT_CONTROL'], os.environ['FAULT_CONTROL_TOKEN_FILE'],"
                " flush=True)\n"
                "while not os.path.exists(sys.argv[1]): time.sleep(0.02)")
        stop = os.path.join(tmp, "STOP")
        proc = subprocess.Popen([FAULT, "exec", "--control", "tcp:127.0.0.1:0",
                                 "--control-token-file", token, "--", PY, "-c", prog, stop],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=clean_env())
        self.addCleanup(reap, proc)
        address, token_path = proc.stdout.readline().split()
        self.assertTrue(address.startswith("tcp:127.0.0.1:"), address)
        self.assertEqual(token_path, token)

        r = ctl(address, "status")
        self.assertEqual(r.returncode, 1)
        self.assertIn("needs a token", r.stderr)
        wrong = os.path.join(tmp, "wrong")
        with open(wrong, "w") as f:
            f.write("guess\n")
        os.chmod(wrong, 0o600)
        r = ctl(address, "status", token_file=wrong)
        self.assertEqual(r.returncode, 1)
        self.assertIn("wrong token", r.stderr)
        r = ctl(address, "status", token_file=token)
        self.assertEqual(r.returncode, 0, r.stderr)

        # A client of its own, with Debian's python3-grpcio.
        control_pb2, control_pb2_grpc, policy_pb2 = python_stubs(tmp)
        channel = grpc.insecure_channel(address[len("tcp:"):])
        stub = control_pb2_grpc.ControlStub(channel)
        with self.assertRaises(grpc.RpcError) as e:
            stub.Status(control_pb2.StatusRequest(), timeout=10)
        self.assertEqual(e.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        md = [("authorization", "Bearer sesame-%d" % os.getpid())]
        s = stub.Status(control_pb2.StatusRequest(), metadata=md, timeout=10)
        self.assertEqual(s.command[0], PY)
        self.assertTrue(s.running)
        bad = policy_pb2.Policy(name="bad")
        bad.link.latency.distribution = policy_pb2.Latency.DISTRIBUTION_FIXED
        bad.link.latency.fixed_ns = 1000000
        bad.targets.add(cidr="10.0.0.0/8", hostname="db.example")
        with self.assertRaises(grpc.RpcError) as e:
            stub.PutPolicies(control_pb2.PutPoliciesRequest(
                policies=policy_pb2.PolicySet(policies=[bad])), metadata=md, timeout=10)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("policies[0]", e.exception.details())
        self.assertIn("targets", e.exception.details())
        good = policy_pb2.Policy(name="good")
        good.link.latency.distribution = policy_pb2.Latency.DISTRIBUTION_FIXED
        good.link.latency.fixed_ns = 1000000
        change = stub.PutPolicies(control_pb2.PutPoliciesRequest(
            policies=policy_pb2.PolicySet(policies=[good])), metadata=md, timeout=10)
        self.assertEqual(list(change.policies), ["good"])
        w = stub.WaitGeneration(control_pb2.WaitGenerationRequest(
            generation=change.generation), metadata=md, timeout=10)
        self.assertEqual(w.generation, change.generation)
        channel.close()

        open(stop, "w").close()
        proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 0)

        # A script under the run finds the control plane and its token in
        # its environment: plain `fault ctl` works there, and the policy it
        # puts (on all TCP traffic) does not catch its own calls.
        policy = os.path.join(tmp, "p.yaml")
        with open(policy, "w") as f:
            f.write("inner:\n  latency: 300ms\n")
        script = ('%s ctl put %s && %s ctl status' % (FAULT, policy, FAULT))
        started = time.monotonic()
        r = subprocess.run([FAULT, "exec", "-q", "--control", "tcp:127.0.0.1:0",
                            "--control-token-file", token, "--", "/bin/sh", "-c", script],
                           capture_output=True, text=True, timeout=60, env=clean_env())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("1 policy in effect: inner", r.stdout)
        self.assertIn("policies:   inner", r.stdout)
        self.assertLess(time.monotonic() - started, 5)
        shutil.rmtree(tmp)


class EventRateTest(unittest.TestCase):
    """100,000 fault events at 50,000 a second reach a watcher, every one,
    in order."""

    TOTAL = 100000
    RATE = 50000

    def burst(self, rate, total, watch_args):
        """Runs FSYNC_BURST (`total` denied fsyncs at `rate`/s) under fault exec
        --control while `fault ctl events --follow --after 0 WATCH_ARGS`
        watches from the start. Returns the watcher, its stdout and stderr,
        and the run's status, stdout and stderr."""
        run = ControlRun([PY, "-c", FSYNC_BURST, str(rate), str(total)],
                         exec_args=["--layer", "preload", "--deny", "fsync=EIO"],
                         stdin=subprocess.PIPE)
        self.addCleanup(reap, run.proc)
        watcher = subprocess.Popen([FAULT, "ctl", "--control", run.address, "events",
                                    "--follow", "--after", "0"] + watch_args,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=clean_env())
        self.addCleanup(reap, watcher)
        time.sleep(0.3)
        run.proc.stdin.write("go\n")
        run.proc.stdin.close()
        run.proc.stdin = None
        out, err = watcher.communicate(timeout=60)
        return (watcher, out, err) + tuple(run.finish())

    def test_no_event_lost(self):
        watcher, out, err, status, program_out, run_err = self.burst(
            self.RATE, self.TOTAL, ["--effect", "deny"])
        self.assertEqual(status, 0, run_err)
        seconds = float(program_out.split()[0])
        lines = out.splitlines()
        sequences = [int(l.split('"sequence":')[1].split(",")[0]) for l in lines]
        print("\n%d events in %.2f s (%.0f/s) streamed; watcher said: %r"
              % (len(lines), seconds, self.TOTAL / seconds, err.strip()), file=sys.stderr)
        self.assertEqual(watcher.returncode, 0, err)
        # Nothing dropped, anywhere; the sequence has no gaps.
        self.assertNotIn("missed", err)
        self.assertEqual(len(lines), self.TOTAL)
        self.assertEqual(sequences, list(range(sequences[0], sequences[0] + self.TOTAL)))
        self.assertIn("%d events, 0 dropped" % self.TOTAL, run_err)

    def test_overload_is_counted_exactly(self):
        """As fast as the program can (several times the ring's drain rate):
        whatever does not arrive is counted, to the event."""
        total = 200000
        watcher, out, err, status, program_out, run_err = self.burst(100000000, total, [])
        self.assertEqual(status, 0, run_err)
        received = len(out.splitlines())
        missed = dropped = 0
        for line in err.splitlines():
            # "fault ctl events: M events missed by this client, D dropped in the program"
            self.assertIn("missed by this client", line, err)
            words = line.split()
            missed, dropped = int(words[3]), int(words[9])
        seconds = float(program_out.split()[0])
        print("\n%d faults in %.2f s (%.0f/s): %d streamed, %d missed by the client, %d "
              "dropped in the program" % (total, seconds, total / seconds, received, missed,
                                          dropped), file=sys.stderr)
        self.assertEqual(received + missed + dropped, total)
        self.assertIn("%d events, %d dropped" % (received + missed, dropped), run_err)


class HttpServer(TcpServer):
    """Answers each connection's one HTTP request with a short 200."""

    def _serve(self, c):
        with c:
            c.settimeout(10)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = c.recv(1000)
                    if not chunk:
                        return
                    data += chunk
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            except OSError:
                pass


class ProxyControlTest(unittest.TestCase):
    """fault run --control: a mapping gets latency only between put and
    delete; what the proxy cannot apply is refused."""

    def request_ms(self, port):
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            got = b""
            while not got.endswith(b"ok"):
                chunk = s.recv(1000)
                if not chunk:
                    break
                got += chunk
        self.assertTrue(got.endswith(b"ok"), got)
        return (time.monotonic() - t0) * 1000

    def test_put_delete_through_the_proxy(self):
        server = HttpServer()
        self.addCleanup(server.close)
        tmp = tempfile.mkdtemp(prefix="fault-control-run-")
        sock = os.path.join(tmp, "control.sock")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen([FAULT, "run", "--disable-http-proxy", "--no-ui",
                                 "--proxy", "%d=127.0.0.1:%d" % (port, server.port),
                                 "--control", "unix:" + sock],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env=clean_env())
        self.addCleanup(reap, proc)
        wait_for_path(sock, proc)
        address = "unix:" + sock
        self.assertLess(self.request_ms(port), 80)
        policy = os.path.join(tmp, "slow.yaml")
        with open(policy, "w") as f:
            f.write("slow:\n  latency: 150ms\n")
        r = ctl(address, "put", policy)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertGreaterEqual(self.request_ms(port), 150)
        syscalls = os.path.join(tmp, "disk.yaml")
        with open(syscalls, "w") as f:
            f.write("disk:\n  syscalls:\n    - fsync: deny(EIO)\n")
        r = ctl(address, "put", syscalls)
        self.assertEqual(r.returncode, 1)
        self.assertIn("syscall faults apply to a program's own calls", r.stderr)
        r = ctl(address, "status")
        self.assertIn("layers:     proxy", r.stdout)
        self.assertIn("policies:   slow\n", r.stdout)
        r = ctl(address, "delete", "slow")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertLess(self.request_ms(port), 80)
        proc.send_signal(2)
        _, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 0, err)
        self.assertIn('policy "slow": matched', err)
        self.assertFalse(os.path.exists(sock))
        for name in os.listdir(tmp):
            os.unlink(os.path.join(tmp, name))
        os.rmdir(tmp)


if __name__ == "__main__":
    unittest.main()
