"""TCP stream effects under `fault exec`, observed from outside: a python3
client talks to an echo server on 127.0.0.1 (the server runs in this test
process, not under fault), and the test reads what the client printed —
bytes moved, the error it got, how long it took.

Run by ctest with FAULT_BIN set. Every socket has a timeout; every loop is
bounded.
"""

import os
import subprocess
import time
import unittest

from fault_testlib import EchoServer

HERE = os.path.dirname(os.path.abspath(__file__))
FAULT = os.environ.get("FAULT_BIN", os.path.join(HERE, "../../build/default/bin/fault"))
PY = "/usr/bin/python3"


# Sends COUNT messages of SIZE bytes one at a time, reading each echo back;
# prints "ok BYTES SECONDS" or "error ERRNO_NAME BYTES SECONDS".
CLIENT = r"""
import errno, socket, sys, time
port, count, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port), timeout=10)
moved = 0
t0 = time.monotonic()
try:
    for _ in range(count):
        s.sendall(b"x" * size)
        got = 0
        while got < size:
            chunk = s.recv(size - got)
            if not chunk:
                raise ConnectionResetError(errno.ECONNRESET, "eof")
            got += len(chunk)
        moved += size
    print("ok", moved, "%.3f" % (time.monotonic() - t0))
except OSError as e:
    print("error", errno.errorcode.get(e.errno, str(e.errno)), moved,
          "%.3f" % (time.monotonic() - t0))
"""


class StreamTest(unittest.TestCase):
    def setUp(self):
        self.server = EchoServer(lifetime=120)

    def tearDown(self):
        self.server.close()

    def client(self, fault_args, count, size):
        cmd = [FAULT, "exec", "--quiet", *fault_args, "--", PY, "-c", CLIENT,
               str(self.server.port), str(count), str(size)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.split()

    def test_tcp_loss_is_a_retransmission_stall_not_missing_bytes(self):
        bare = self.client([], 20, 100)
        self.assertEqual(bare[:2], ["ok", "2000"])
        # Every send and every receive is "lost" once: each costs one 200 ms
        # stall (the RTO), and every byte still arrives.
        out = self.client(["--packet-loss", "100%", "--target",
                           "tcp://127.0.0.1:%d" % self.server.port], 3, 100)
        self.assertEqual(out[:2], ["ok", "300"], out)
        self.assertGreaterEqual(float(out[2]), 6 * 0.2, out)
        self.assertLess(float(out[2]), 6 * 0.2 + 1.0, out)

    def test_half_open_after_bytes_fails_with_its_error(self):
        policy = os.path.join(os.environ.get("TMPDIR", "/tmp"),
                              "fault_half_open_%d.yaml" % os.getpid())
        with open(policy, "w") as f:
            f.write("half:\n  targets: [{target: \"tcp://127.0.0.1:%d\"}]\n"
                    "  half_open: {after: 1kb, error: ECONNRESET}\n" % self.server.port)
        try:
            out = self.client(["--policy", policy], 10, 256)
        finally:
            os.unlink(policy)
        # 1 KiB moved in both directions: two 256-byte round trips (1024
        # bytes) pass, then every operation fails with the error.
        self.assertEqual(out[:3], ["error", "ECONNRESET", "512"], out)


if __name__ == "__main__":
    unittest.main()
