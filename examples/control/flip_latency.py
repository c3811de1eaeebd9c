"""An example: a program that flips faults on itself while it runs.

    fault exec --control unix -- /usr/bin/python3 examples/control/flip_latency.py

It starts a loopback echo server, times a request, puts a 50 ms latency
policy for the server's port through the control plane, times again,
deletes the policy and times once more; it prints the three round trips and
exits 1 if the fault did not show.
"""

import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fault_control  # noqa: E402


def serve(listener):
    while True:
        c, _ = listener.accept()
        with c:
            c.sendall(c.recv(100))


def round_trip(port):
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"ping")
        s.recv(100)
    return time.monotonic() - t0


def main():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    threading.Thread(target=serve, args=(listener,), daemon=True).start()

    control = fault_control.connect()
    before = round_trip(port)
    control.put("slow:\n  latency: 50ms\n  targets: [\"tcp://127.0.0.1:%d\"]\n" % port)
    during = round_trip(port)
    control.delete("slow")
    after = round_trip(port)
    print("before %.1f ms, with the policy %.1f ms, after %.1f ms"
          % (before * 1e3, during * 1e3, after * 1e3))
    return 0 if during >= 0.05 > max(before, after) else 1


if __name__ == "__main__":
    sys.exit(main())
