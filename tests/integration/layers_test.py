"""`fault exec --layer`: the seccomp layer under the real command line.

Static programs (built by the test build with gcc -static, so the preload
shim cannot see them) and dynamic ones run under `fault exec`; every check
reads what the program itself printed, its exit status, measured time, or
the --events file. Each subprocess has a timeout.

Run by ctest with FAULT_BIN and FAULT_TARGETS_DIR set.
"""

import os
import re
import socket
import subprocess
import tempfile
import unittest

from fault_testlib import FAULT, PY, fault_exec, read_events, target


class StaticProgramTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.events = os.path.join(self.dir.name, "events.jsonl")

    def tearDown(self):
        self.dir.cleanup()

    def test_auto_uses_seccomp_alone_and_denies_fsync(self):
        data = os.path.join(self.dir.name, "x.dat")
        r = fault_exec(["--deny", "fsync=EIO", "--events", self.events, "--",
                        target("fsync_target"), data])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("statically linked: using the seccomp layer alone", r.stderr)
        self.assertIn("fsync_target: fsync %s: Input/output error" % data, r.stderr)
        events = read_events(self.events)
        self.assertEqual(len(events), 1, events)
        self.assertEqual(events[0]["layer"], "seccomp")
        self.assertEqual(events[0]["op"], "fsync")
        self.assertEqual(events[0]["errno_name"], "EIO")

    def test_bare_static_program_succeeds(self):
        data = os.path.join(self.dir.name, "x.dat")
        r = fault_exec(["--quiet", "--deny", "fsync=EIO,path=/nonexistent/*", "--",
                        target("fsync_target"), data])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("fsync_target: committed", r.stderr + r.stdout)

    def test_connect_denied_with_econnrefused(self):
        r = fault_exec(["--quiet", "--deny", "connect=ECONNREFUSED", "--",
                        target("connect_target"), "9"])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("connect 127.0.0.1:9: Connection refused", r.stdout)

    def test_open_denied_only_on_matching_paths(self):
        secret = os.path.join(self.dir.name, "secret")
        os.mkdir(secret)
        denied = os.path.join(secret, "a.txt")
        allowed = os.path.join(self.dir.name, "b.txt")
        for p in (denied, allowed):
            with open(p, "w") as f:
                f.write("x")
        r = fault_exec(["--quiet", "--deny", "open=EACCES,path=%s/*" % secret, "--",
                        target("open_target"), denied, allowed])
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("open %s: Permission denied" % denied, r.stdout)
        self.assertIn("open %s: ok" % allowed, r.stdout)

    def test_write_delayed_by_100ms(self):
        data = os.path.join(self.dir.name, "w.dat")
        r = fault_exec(["--quiet", "--delay", "write=100ms,path=%s" % data, "--",
                        target("write_timing"), data, "3"])
        self.assertEqual(r.returncode, 0, r.stderr)
        times = [int(n) for n in re.findall(r"write \d+: (\d+) ns", r.stdout)]
        self.assertEqual(len(times), 3, r.stdout)
        for ns in times:
            self.assertGreaterEqual(ns, 100_000_000, times)
            self.assertLess(ns, 110_000_000 + 40_000_000, times)

    def test_effects_seccomp_cannot_apply_are_refused(self):
        r = fault_exec(["--dns-nxdomain", "100%", "--target-hostname", "api.internal", "--",
                        target("fsync_target"), "/tmp/unused"])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn('policy "cli": dns cannot be applied without the preload shim, which '
                      "cannot run in this program", r.stderr)
        r = fault_exec(["--latency", "10ms", "--target", "udp://127.0.0.1", "--",
                        target("fsync_target"), "/tmp/unused"])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn('policy "cli": network effects on UDP cannot be applied without the '
                      "preload shim", r.stderr)

    def test_unknown_layer_is_a_usage_error(self):
        r = fault_exec(["--layer", "ebpf", "--", "true"])
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr.strip(),
                         "fault exec: --layer ebpf: not a layer (use auto, preload, seccomp or both)")


FSYNC_PY = ("import os,sys\n"
            "f=open(sys.argv[1],'w'); f.write('x'); f.flush()\n"
            "try:\n os.fsync(f.fileno()); print('fsync ok')\n"
            "except OSError as e:\n print('fsync failed:', e.strerror)\n")

WRITES_PY = ("import os,sys\n"
             "fd=os.open(sys.argv[1], os.O_WRONLY|os.O_CREAT|os.O_TRUNC, 0o644)\n"
             "failed=0\n"
             "for i in range(30):\n"
             " try: os.write(fd, b'x')\n"
             " except OSError: failed+=1\n"
             "print('failed', failed)\n")


class DynamicProgramTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.events = os.path.join(self.dir.name, "events.jsonl")
        self.data = os.path.join(self.dir.name, "d.dat")

    def tearDown(self):
        self.dir.cleanup()

    def test_seccomp_layer_alone_on_a_dynamic_program(self):
        r = fault_exec(["--layer", "seccomp", "--deny", "fsync=EIO", "--events", self.events,
                        "--", PY, "-c", FSYNC_PY, self.data])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("fsync failed: Input/output error", r.stdout)
        layers = [e["layer"] for e in read_events(self.events)]
        self.assertEqual(layers, ["seccomp"])

    def test_fsync_rule_covers_fdatasync_in_either_layer(self):
        script = FSYNC_PY.replace("os.fsync", "os.fdatasync")
        for layer in ("preload", "seccomp"):
            r = fault_exec(["--layer", layer, "--deny", "fsync=EIO", "--events", self.events,
                            "--", PY, "-c", script, self.data])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("fsync failed: Input/output error", r.stdout, layer)
            events = read_events(self.events)
            self.assertEqual([(e["layer"], e["op"]) for e in events],
                             [({"preload": "shim"}.get(layer, layer), "fdatasync")])

    def test_both_layers_fault_every_third_write_once(self):
        r = fault_exec(["--layer", "both", "--deny",
                        "write=EIO,path=%s,when=3+3" % self.data,
                        "--events", self.events, "--", PY, "-c", WRITES_PY, self.data])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("failed 10", r.stdout)
        events = read_events(self.events)
        self.assertEqual(len(events), 10, events)
        # The shim applies it; the seccomp filter lets the shim's own
        # syscalls through, so nothing is counted twice.
        self.assertEqual({e["layer"] for e in events}, {"shim"})

    def test_stream_effects_on_a_server_whose_connect_the_filter_covers(self):
        # A connect rule puts connect in the seccomp filter. The shim hands
        # each accepted connection to the stream engine by connecting to
        # it; that connect goes through the stub page, so the seccomp layer
        # does not redirect it to the engine a second time (the reply then
        # never arrived).
        p = subprocess.Popen([FAULT, "exec", "--quiet", "--latency", "50ms", "--delay",
                              "connect=1ms,when=1000000", "--events", self.events, "--",
                              PY, "-c", ECHO_PY], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            port = int(p.stdout.readline())
            with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
                c.settimeout(10)
                c.sendall(b"ping\n")
                reply = c.makefile("rb").readline()
            _, err = p.communicate(timeout=20)
        finally:
            p.kill()
        self.assertEqual(reply, b"PING\n")
        self.assertEqual(p.returncode, 0, err)
        events = read_events(self.events)
        self.assertTrue(events)
        self.assertEqual({e["effect"] for e in events}, {"latency"})
        self.assertNotIn("seccomp", {e["layer"] for e in events})


ECHO_PY = ("import socket\n"
           "s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen()\n"
           "print(s.getsockname()[1], flush=True)\n"
           "c,_=s.accept(); f=c.makefile('rwb')\n"
           "f.write(f.readline().upper()); f.flush(); c.close()\n")


if __name__ == "__main__":
    unittest.main()
