#!/usr/bin/env python3
"""Control plane benchmark: how soon a change made through `fault exec
--control` reaches the program.

  tools/bench/control.py [--fault build/default/bin/fault] [--rounds 300] [--markdown]

The program under test (python3) calls fsync(2) on a file in /dev/shm in a
tight loop (about a microsecond a call) and prints CLOCK_MONOTONIC each time
the result changes between success and EIO. The benchmark, a Python gRPC
client on the run's Unix socket, alternates PutPolicies (a policy denying
fsync with EIO) and DeletePolicy, and for each takes the time from the call
returning to the first call in the program that saw the change (the end of
that fsync). Negative values mean the program saw the change before the
client got the answer: the table is published before the call returns. The
client's own round trip (request to answer) is reported too.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples", "control"))
import fault_control  # noqa: E402

TARGET = r"""
import os, sys, time
fd = os.open("/dev/shm/fault-bench-%d" % os.getpid(), os.O_CREAT | os.O_WRONLY, 0o600)
os.unlink("/dev/shm/fault-bench-%d" % os.getpid())
stop = sys.argv[1]
denied = False
n = 0
while True:
    try:
        os.fsync(fd)
        now = False
    except OSError:
        now = True
    if now != denied:
        denied = now
        print(time.monotonic_ns(), int(now), flush=True)
    n += 1
    if n % 100000 == 0 and os.path.exists(stop):
        break
"""

POLICY = "bench:\n  syscalls:\n    - fsync: deny(EIO)\n"


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fault", default=os.path.join(HERE, "..", "..", "build", "default", "bin",
                                                    "fault"))
    ap.add_argument("--rounds", type=int, default=300, help="puts (and as many deletes)")
    ap.add_argument("--markdown", action="store_true", help="the table as Markdown")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="fault-bench-control-")
    sock = os.path.join(tmp, "control.sock")
    stop = os.path.join(tmp, "STOP")
    proc = subprocess.Popen([args.fault, "exec", "--quiet", "--layer", "preload", "--control",
                             "unix:" + sock, "--", "/usr/bin/python3", "-c", TARGET, stop],
                            stdout=subprocess.PIPE, text=True)
    changes = []  # (monotonic ns, denied)
    lock = threading.Condition()

    def read():
        for line in proc.stdout:
            t, d = line.split()
            with lock:
                changes.append((int(t), d == "1"))
                lock.notify_all()

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 10
    while not os.path.exists(sock):
        if time.monotonic() > deadline or proc.poll() is not None:
            sys.exit("fault exec did not start its control plane")
        time.sleep(0.01)
    control = fault_control.connect("unix:" + sock)
    control.status()  # connected and serving
    time.sleep(0.2)  # the program is in its loop

    seen = {"put": [], "delete": []}
    rtt = {"put": [], "delete": []}
    for _ in range(args.rounds):
        for kind in ("put", "delete"):
            with lock:
                count = len(changes)
            t0 = time.monotonic_ns()
            if kind == "put":
                control.put(POLICY, "bench.yaml")
            else:
                control.delete("bench")
            t1 = time.monotonic_ns()
            with lock:
                if not lock.wait_for(lambda: len(changes) > count, timeout=5):
                    sys.exit("the program did not see the %s within 5 s" % kind)
                t, denied = changes[count]
            if denied != (kind == "put"):
                sys.exit("the program saw the wrong change")
            seen[kind].append((t - t1) / 1000.0)
            rtt[kind].append((t1 - t0) / 1000.0)
    open(stop, "w").close()
    control.close()
    proc.wait(30)

    rows = []
    for kind in ("put", "delete"):
        rows.append(("%s returned -> first call that sees it" % kind,
                     statistics.median(seen[kind]), percentile(seen[kind], 99),
                     max(seen[kind])))
        rows.append(("%s call (request -> answer)" % kind, statistics.median(rtt[kind]),
                     percentile(rtt[kind], 99), max(rtt[kind])))
    if args.markdown:
        print("| measure (%d rounds), µs | p50 | p99 | max |" % args.rounds)
        print("|---|---:|---:|---:|")
        for name, p50, p99, mx in rows:
            print("| %s | %.0f | %.0f | %.0f |" % (name, p50, p99, mx))
    else:
        print("%-44s %10s %10s %10s" % ("microseconds (%d rounds)" % args.rounds, "p50", "p99",
                                        "max"))
        for name, p50, p99, mx in rows:
            print("%-44s %10.0f %10.0f %10.0f" % (name, p50, p99, mx))
    os.unlink(stop)
    os.rmdir(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
