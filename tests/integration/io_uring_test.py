"""io_uring under `fault exec`: the io_uring syscall family and the refusal
of programs that need liburing when a policy has network effects
(docs/exec.md, "I/O models").

The client is tests/targets/uring_client.cc (`fault_target_uring_client PORT
connect|uring-connect`); the HTTP server runs in this test process on
127.0.0.1, not under fault. Every wait is bounded.

Run by ctest with FAULT_BIN and FAULT_TARGETS_DIR set.
"""

import http.server
import os
import re
import tempfile
import threading
import unittest

from fault_testlib import FAULT, PY, TARGETS, QuietHandler, fault_exec, read_events

URING_CLIENT = os.path.join(TARGETS, "fault_target_uring_client")
ENOSYS_LINE = "error=io_uring_queue_init: Function not implemented"


class ServerTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(URING_CLIENT):
            raise AssertionError("%s is not built" % URING_CLIENT)
        cls.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), QuietHandler)
        cls.server.timeout = 10
        cls.port = cls.server.server_address[1]
        cls.thread = threading.Thread(target=cls.server.serve_forever, daemon=True)
        cls.thread.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()
        cls.thread.join(5)

    def client(self, mode):
        return [URING_CLIENT, str(self.port), mode]

    def events_file(self):
        d = tempfile.TemporaryDirectory()
        self.addCleanup(d.cleanup)
        return os.path.join(d.name, "events.jsonl")

    def assert_ring_denied(self, events_path):
        events = [e for e in read_events(events_path) if e["op"] == "io_uring"]
        self.assertEqual(len(events), 1, events)
        e = events[0]
        self.assertEqual(e["effect"], "deny")
        self.assertEqual(e["errno_name"], "ENOSYS")
        self.assertEqual(e["layer"], "seccomp")
        self.assertEqual(e["target"], "io_uring")


class IoUringFamilyTest(ServerTestCase):
    """`io_uring` as a syscall family: seccomp-only, turned on by `auto`."""

    def test_deny_flag_fails_the_ring_setup(self):
        ev = self.events_file()
        r = fault_exec(["--deny", "io_uring=ENOSYS", "--events", ev, "--",
                        *self.client("connect")])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stdout.strip(), ENOSYS_LINE)
        self.assertIn('policy "cli": matched 1, fired 1', r.stderr)
        self.assertIn("deny io_uring: 1", r.stderr)
        self.assert_ring_denied(ev)

    def test_policy_file_family(self):
        d = tempfile.TemporaryDirectory()
        self.addCleanup(d.cleanup)
        path = os.path.join(d.name, "p.yaml")
        with open(path, "w") as f:
            f.write("no_ring:\n  syscalls:\n    - io_uring: {deny: ENOSYS}\n")
        r = fault_exec(["--policy", path, "--expect-faults", "--",
                        *self.client("connect")])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stdout.strip(), ENOSYS_LINE)
        self.assertIn('policy "no_ring": matched 1, fired 1', r.stderr)

    def test_other_families_leave_the_ring_alone(self):
        r = fault_exec(["--deny", "fsync=EIO", "--", *self.client("uring-connect")])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("status=HTTP/1.0 200 OK", r.stdout)

    def test_preload_layer_is_refused(self):
        r = fault_exec(["--layer", "preload", "--deny", "io_uring=ENOSYS", "--",
                        *self.client("connect")])
        self.assertEqual(r.returncode, 2)
        self.assertIn("need the seccomp layer", r.stderr)
        self.assertEqual(r.stdout, "")


class IoUringNetworkTest(ServerTestCase):
    """Programs that need liburing under a policy with network effects."""

    def test_refused_without_the_flag(self):
        r = fault_exec(["--latency", "50ms", "--", *self.client("uring-connect")])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(r.stdout, "")  # nothing was started
        self.assertIn(URING_CLIENT + " needs liburing", r.stderr)
        self.assertIn("through io_uring would bypass the network effects", r.stderr)
        self.assertIn("--io-uring=deny", r.stderr)
        self.assertIn("--io-uring=allow", r.stderr)

    def test_allow_runs_it_and_connect_gets_the_latency(self):
        r = fault_exec(["--latency", "50ms", "--io-uring=allow", "--",
                        *self.client("connect")])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        m = re.search(r"status=HTTP/1.0 200 OK bytes=\d+ ms=([0-9.]+)", r.stdout)
        self.assertIsNotNone(m, r.stdout)
        self.assertGreaterEqual(float(m.group(1)), 50.0, r.stdout)
        self.assertEqual(r.stderr.count("needs liburing (--io-uring=allow)"), 1, r.stderr)

    def test_deny_makes_the_ring_setup_fail(self):
        ev = self.events_file()
        r = fault_exec(["--latency", "50ms", "--io-uring=deny", "--events", ev,
                        "--expect-faults", "--", *self.client("connect")])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stdout.strip(), ENOSYS_LINE)
        self.assertIn('policy "io-uring-deny": matched 1, fired 1', r.stderr)
        self.assert_ring_denied(ev)

    def test_bad_value_names_the_flag(self):
        r = fault_exec(["--latency", "50ms", "--io-uring=maybe", "--",
                        *self.client("connect")])
        self.assertEqual(r.returncode, 2)
        self.assertIn("--io-uring maybe", r.stderr)
        self.assertEqual(r.stdout, "")

    def test_programs_without_liburing_are_not_asked(self):
        code = ("import urllib.request; print(urllib.request.urlopen("
                "'http://127.0.0.1:%d/', timeout=10).status)" % self.port)
        r = fault_exec(["--latency", "10ms", "--", PY, "-c", code])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "200")
        self.assertNotIn("liburing", r.stderr)

    def test_companion_is_named(self):
        r = fault_exec(["--latency", "50ms", "--with",
                        "ring=%s %d connect" % (URING_CLIENT, self.port), "--",
                        PY, "-c", "pass"])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--with ring: " + URING_CLIENT + " needs liburing", r.stderr)


if __name__ == "__main__":
    unittest.main()
