"""Several programs under one supervisor: `fault exec --with NAME=COMMAND`,
`--name`, `--wait-for`, and `partition(a, b)` between the named programs.

Everything is observed from outside: a client's exit status and error text,
what a server answered, the --events file, elapsed time, and whether a
companion process is still alive after the run. Servers listen on
127.0.0.1 ports picked free by the test; every subprocess has a timeout.

Run by ctest with FAULT_BIN and FAULT_TARGETS_DIR set.
"""

import os
import socket
import tempfile
import time
import unittest

from fault_testlib import PY, fault_exec, read_events, target
CURL = "/usr/bin/curl"


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_server(port):
    return "%s -m http.server %d --bind 127.0.0.1" % (PY, port)


class PartitionTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.events = os.path.join(self.dir.name, "events.jsonl")

    def tearDown(self):
        self.dir.cleanup()

    def policy(self, a, b):
        path = os.path.join(self.dir.name, "split.yaml")
        with open(path, "w") as f:
            f.write("split:\n  partition: [%s, %s]\n" % (a, b))
        return path

    def curl(self, port):
        return [CURL, "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                "http://127.0.0.1:%d/" % port]

    def test_dynamic_client_cannot_reach_partitioned_server(self):
        port = free_port()
        r = fault_exec(["--policy", self.policy("client", "web"), "--events", self.events,
                        "--with", "web=" + http_server(port),
                        "--wait-for", "127.0.0.1:%d" % port,
                        "--name", "client", "--", *self.curl(port)])
        # curl's "could not connect" status and its own error text.
        self.assertEqual(r.returncode, 7, r.stderr)
        self.assertIn("Failed to connect to 127.0.0.1 port %d" % port, r.stderr)
        events = [e for e in read_events(self.events) if e["effect"] == "partition"]
        self.assertEqual(len(events), 1, events)
        self.assertEqual(events[0]["op"], "connect")
        self.assertEqual(events[0]["errno_name"], "ECONNREFUSED")
        self.assertEqual(events[0]["target"], "127.0.0.1:%d" % port)
        self.assertIn('policy "split": matched 1, fired 1', r.stderr)
        # The shim does not also warn that it cannot apply partitions.
        self.assertNotIn("does not implement", r.stderr)

    def test_programs_outside_the_partition_still_talk(self):
        port = free_port()
        r = fault_exec(["--policy", self.policy("client", "other"), "--events", self.events,
                        "--with", "web=" + http_server(port),
                        "--with", "other=sleep 30",
                        "--wait-for", "127.0.0.1:%d" % port,
                        "--name", "client", "--", *self.curl(port)])
        self.assertEqual(r.returncode, 0, r.stderr)
        # The server's own banner shares stdout; curl's status comes last.
        self.assertTrue(r.stdout.endswith("200"), r.stdout)
        self.assertEqual(read_events(self.events), [])

    def test_static_programs_are_partitioned_both_ways(self):
        cut, kept = free_port(), free_port()
        peer = target("partition_peer")
        r = fault_exec(["--policy", self.policy("a", "b"), "--events", self.events,
                        "--with", "b=%s listen %d 20000" % (peer, cut),
                        "--with", "c=%s listen %d 20000" % (peer, kept),
                        "--wait-for", "127.0.0.1:%d" % cut,
                        "--wait-for", "127.0.0.1:%d" % kept,
                        "--name", "a", "--", peer, "connect", "0", str(cut), str(kept)])
        self.assertEqual(r.returncode, 1, r.stderr)  # the peer counts failed connects
        self.assertIn("connect %d: Connection refused" % cut, r.stdout)
        self.assertIn("connect %d: ok" % kept, r.stdout)
        self.assertEqual([e["effect"] for e in read_events(self.events)], ["partition"])

    def test_datagrams_to_a_partitioned_program_are_unreachable(self):
        port = free_port(socket.SOCK_DGRAM)
        send = ("import socket,errno\n"
                "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                "try:\n"
                "  s.sendto(b'x',('127.0.0.1',%d)); print('sent')\n"
                "except OSError as e:\n"
                "  print(errno.errorcode[e.errno])\n" % port)
        receiver = "%s udprecv %d 20000" % (target("partition_peer"), port)
        # The receiver binds its port; give it up to 5 s, checked by the
        # sender itself through the kernel's table of UDP sockets.
        wait = ("import time,sys\n"
                "for _ in range(500):\n"
                "  if ':%04X ' % " + str(port) + " in open('/proc/net/udp').read(): break\n"
                "  time.sleep(0.01)\n")
        r = fault_exec(["--policy", self.policy("sender", "receiver"), "--events", self.events,
                        "--with", "receiver=" + receiver,
                        "--name", "sender", "--", PY, "-c", wait + send])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "ENETUNREACH")
        events = read_events(self.events)
        self.assertEqual([(e["op"], e["effect"]) for e in events], [("send", "partition")])


class CompanionTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.dir.cleanup()

    def test_companion_is_stopped_when_the_program_ends(self):
        pidfile = os.path.join(self.dir.name, "pid")
        start = time.monotonic()
        r = fault_exec(["--with", "bg=sh -c 'echo $$ > %s; exec sleep 30'" % pidfile,
                        "-q", "--", "sh", "-c",
                        "for i in $(seq 100); do [ -s %s ] && exit 4; sleep 0.05; done"
                        % pidfile])
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertLess(time.monotonic() - start, 10)
        with open(pidfile) as f:
            pid = int(f.read())
        with self.assertRaises(ProcessLookupError):
            os.kill(pid, 0)

    def test_wait_for_gives_up_after_its_timeout(self):
        port = free_port()
        start = time.monotonic()
        r = fault_exec(["--with", "idle=sleep 30", "--wait-for", "127.0.0.1:%d" % port,
                        "--wait-timeout", "300ms", "--", "true"])
        elapsed = time.monotonic() - start
        self.assertEqual(r.returncode, 125, r.stderr)
        self.assertIn("fault exec: --wait-for 127.0.0.1:%d: nothing accepted connections "
                      "within 300 ms" % port, r.stderr)
        self.assertGreaterEqual(elapsed, 0.3)
        self.assertLess(elapsed, 8)

    def test_wait_for_reports_a_companion_that_died(self):
        port = free_port()
        r = fault_exec(["--with", "broken=sh -c 'exit 9'", "--wait-for",
                        "127.0.0.1:%d" % port, "--", "true"])
        self.assertEqual(r.returncode, 125, r.stderr)
        self.assertIn("fault exec: --wait-for 127.0.0.1:%d: broken exited with status 9 "
                      "before anything accepted connections there" % port, r.stderr)

    def test_mistakes_are_named_and_nothing_starts(self):
        marker = os.path.join(self.dir.name, "ran")
        touch = "touch " + marker
        policy = os.path.join(self.dir.name, "split.yaml")
        with open(policy, "w") as f:
            f.write("split:\n  partition: [api, db]\n")
        cases = [
            (["--with", "db"], "fault exec: --with db: expected NAME=COMMAND"),
            (["--with", "d b=" + touch], "fault exec: --with d b=%s: the name may contain "
             "only letters, digits, '_', '-' and '.'" % touch),
            (["--with", "db=" + touch, "--with", "db=" + touch],
             'fault exec: --with db=%s: the name "db" is taken by another --with' % touch),
            (["--with", "db=echo 'open"], "fault exec: --with db=echo 'open: unbalanced quotes"),
            (["--with", "db=echo a | tee b"], "fault exec: --with db=echo a | tee b: the "
             "command contains one of | & ; < > ( ) { } or a newline outside quotes"),
            (["--wait-for", "localhost"], "fault exec: --wait-for localhost: expected "
             "HOST:PORT with a port in 1..65535"),
            (["--policy", policy, "--with", "db=" + touch, "--name", "web"],
             'fault exec: policy "split": partition(api, db): no program named "api" is '
             "launched (this run launches: web, db; name the main program with --name and "
             "start others with --with NAME=COMMAND)"),
            (["--policy", policy, "--layer", "preload", "--with", "db=" + touch, "--name",
              "api"], "fault exec: --layer preload: partitions need the seccomp layer"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                r = fault_exec(args + ["--", "sh", "-c", touch])
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(message, r.stderr)
                self.assertFalse(os.path.exists(marker))


if __name__ == "__main__":
    unittest.main()
