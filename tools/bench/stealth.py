#!/usr/bin/env python3
"""What stealth capture costs a process's connects and UDP sends.

  tools/bench/stealth.py [--fault build/release/bin/fault] [--rounds 5] [--ops 20000]

Runs tools/bench/capture_connect.c (socket + connect to a closed loopback
port + close, or sendto on one UDP socket) under three conditions, in
alternating rounds so that a change of load hits all of them:

  bare          nothing attached
  not selected  `fault run --stealth` attached to the cgroup2 root, the
                workload running under a name it does not select
  captured      the same run, the workload under the selected name (each
                connect lands on fault's engine, each datagram too)

Table 1: wall clock per operation (median of the rounds) and the ratio and
difference against bare. Table 2: the kernel's own statistics
(kernel.bpf_stats_enabled, switched on only for that pass and restored):
nanoseconds the capture programs ran per operation, by program.

Needs root (the capture attaches BPF programs). Every run is bounded.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KINDS = ["tcp4", "tcp6", "udp4"]


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stealth:
    def __init__(self, fault, name):
        self.out = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [fault, "run", "--stealth", "--disable-http-proxy", "--capture-process", name],
            stdin=subprocess.DEVNULL, stdout=self.out, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            self.out.seek(0)
            if "stealth: capturing" in self.out.read():
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("fault run --stealth did not start (are you root?)")
            time.sleep(0.02)

    def prog_ids(self):
        ids = set()
        for fd in os.listdir("/proc/%d/fdinfo" % self.proc.pid):
            try:
                with open("/proc/%d/fdinfo/%s" % (self.proc.pid, fd)) as f:
                    m = re.search(r"^prog_id:\s+(\d+)", f.read(), re.M)
            except OSError:
                continue
            if m:
                ids.add(int(m.group(1)))
        return ids

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.out.close()


def run(program, kind, ops, port):
    r = subprocess.run([program, kind, str(ops), str(port)], capture_output=True, text=True,
                       timeout=300)
    if r.returncode != 0:
        raise RuntimeError("%s %s: %s" % (program, kind, r.stderr))
    return float(r.stdout) / 1000.0  # microseconds


def prog_stats(ids):
    stats = {}
    for i in ids:
        r = subprocess.run(["bpftool", "prog", "show", "id", str(i), "-j"], capture_output=True,
                           text=True, timeout=30)
        if r.returncode != 0:
            continue
        j = json.loads(r.stdout)
        stats[j.get("name", str(i))] = (j.get("run_time_ns", 0), j.get("run_cnt", 0))
    return stats


def delta(after, before):
    return {k: (v[0] - before.get(k, (0, 0))[0], v[1] - before.get(k, (0, 0))[1])
            for k, v in after.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fault", default=os.path.join(ROOT, "build/release/bin/fault"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--ops", type=int, default=20000)
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("stealth.py: needs root (it attaches BPF programs)")
    work = tempfile.mkdtemp(prefix="bench-stealth-")
    try:
        binary = os.path.join(work, "capture_connect")
        subprocess.run(["cc", "-O2", "-o", binary,
                        os.path.join(ROOT, "tools/bench/capture_connect.c")], check=True)
        plain = os.path.join(work, "fbenchplain")
        captured = os.path.join(work, "fbenchcapt")
        os.symlink(binary, plain)
        os.symlink(binary, captured)
        port = closed_port()
        wall = {(c, k): [] for c in ("bare", "not selected", "captured") for k in KINDS}
        for r in range(a.rounds):
            for k in KINDS:
                wall[("bare", k)].append(run(plain, k, a.ops, port))
            s = Stealth(a.fault, "fbenchcapt")
            try:
                for k in KINDS:
                    wall[("not selected", k)].append(run(plain, k, a.ops, port))
                    wall[("captured", k)].append(run(captured, k, a.ops, port))
            finally:
                s.stop()

        # The kernel's own accounting, in a pass of its own (it costs).
        with open("/proc/sys/kernel/bpf_stats_enabled") as f:
            saved = f.read().strip()
        kernel = {}
        s = Stealth(a.fault, "fbenchcapt")
        try:
            with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
                f.write("1")
            ids = s.prog_ids()
            for who, program in (("not selected", plain), ("captured", captured)):
                for k in KINDS:
                    before = prog_stats(ids)
                    run(program, k, a.ops, port)
                    kernel[(who, k)] = delta(prog_stats(ids), before)
        finally:
            with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
                f.write(saved)
            s.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    labels = {"tcp4": "TCP connect, IPv4", "tcp6": "TCP connect, IPv6",
              "udp4": "UDP sendto, IPv4"}
    print("### Wall clock per operation (median of %d rounds of %d)\n" % (a.rounds, a.ops))
    print("| operation | bare µs | not selected µs | ratio | +µs | captured µs | ratio | +µs |")
    print("|---|---|---|---|---|---|---|---|")
    for k in KINDS:
        b = statistics.median(wall[("bare", k)])
        n = statistics.median(wall[("not selected", k)])
        c = statistics.median(wall[("captured", k)])
        print("| %s | %.2f | %.2f | %.3f× | %+.2f | %.2f | %.3f× | %+.2f |"
              % (labels[k], b, n, n / b, n - b, c, c / b, c - b))
    print("\n### Kernel time of the capture programs per operation (bpf_stats)\n")
    print("Nanoseconds per operation over all the capture programs, then each program "
          "that ran: runs per operation and nanoseconds per run. The statistics themselves "
          "add two clock reads to every run.\n")
    print("| operation | not selected ns | programs run | captured ns | programs run |")
    print("|---|---|---|---|---|")
    for k in KINDS:
        cells = []
        for who in ("not selected", "captured"):
            d = kernel[(who, k)]
            ns = sum(v[0] for v in d.values()) / a.ops
            # Each program: runs per operation, and nanoseconds per run.
            ran = ", ".join("%s %.1f× %.0f ns" % (name, v[1] / a.ops, v[0] / max(v[1], 1))
                            for name, v in sorted(d.items()) if v[1] >= a.ops / 100)
            cells += ["%.0f" % ns, ran or "none"]
        print("| %s | %s |" % (labels[k], " | ".join(cells)))


if __name__ == "__main__":
    main()
