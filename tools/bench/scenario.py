#!/usr/bin/env python3
"""The scenario load generator's ceiling: `fault scenario run` beside wrk.

  tools/bench/scenario.py [--fault build/default/bin/fault] [--rounds 3] [--duration 5]
  tools/bench/scenario.py --quick        # about 15 s
  tools/bench/scenario.py --markdown     # the table as Markdown for docs/benchmarks.md

One nginx (worker_processes 1, master_process off, access_log off, keep-alive) serves a
small file on 127.0.0.1, pinned to one core. Each generator runs pinned to another core
(taskset), with the same number of keep-alive connections (--connections, default 64), no
fault and no proxy (a scenario item without faults calls its server directly):

  wrk       wrk -t1 -cN -d D --latency              (closed loop: as fast as it can)
  fault     a load item, clients N, connections N, rps per client set so that the offered
            load is twice what wrk reached in the same round (open loop: the generator
            is saturated); requests/s = answered requests / duration

Rounds alternate the two; the table shows each one's median over the rounds and the median
of fault's per-round ratio to wrk. Exit status 0; 1 when a generator failed.
"""

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "../.."))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def start_nginx(tmp, port, cpu):
    root = os.path.join(tmp, "www")
    os.makedirs(root)
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("x" * 612)
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""worker_processes 1;
master_process off;
daemon off;
error_log %s/error.log;
pid %s/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 60;
  client_body_temp_path %s;
  proxy_temp_path %s;
  fastcgi_temp_path %s;
  uwsgi_temp_path %s;
  scgi_temp_path %s;
  server { listen 127.0.0.1:%d; root %s; }
}
""" % ((tmp,) * 7 + (port, root)))
    p = subprocess.Popen(["taskset", "-c", str(cpu), shutil.which("nginx") or "/usr/sbin/nginx",
                          "-c", conf, "-p", tmp], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    if not wait_port(port):
        p.kill()
        raise SystemExit("nginx did not start (see %s/error.log)" % tmp)
    return p


def run_wrk(port, cpu, connections, duration):
    out = subprocess.run(["taskset", "-c", str(cpu), "wrk", "-t1", "-c%d" % connections,
                          "-d%ds" % duration, "--latency", "http://127.0.0.1:%d/" % port],
                         capture_output=True, text=True, timeout=duration + 30).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise RuntimeError("wrk: no Requests/sec in its output")
    return float(m.group(1))


def run_fault(fault, tmp, port, cpu, connections, duration, offered):
    rps = max(1, int(offered / connections))
    path = os.path.join(tmp, "load.yaml")
    with open(path, "w") as f:
        f.write("""title: ceiling
items:
- call: {method: GET, url: "http://127.0.0.1:%d/", timeout: 10000}
  context:
    upstreams: []
    faults: []
    strategy: {mode: load, duration: %ds, clients: %d, rps: %d, connections: %d}
""" % (port, duration, connections, rps, connections))
    results = os.path.join(tmp, "results.json")
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    subprocess.run(["taskset", "-c", str(cpu), fault, "scenario", "run", "-s", path,
                    "-r", os.path.join(tmp, "report.md"), "--result", results, "--no-progress"],
                   capture_output=True, text=True, timeout=duration + 120, env=env, cwd=tmp)
    with open(results) as f:
        item = json.load(f)["results"][0]["results"][0]
    ok = sum(1 for r in item["results"] if (r["metrics"]["protocol"] or {}).get("code") == 200)
    return ok / duration, item["fault"]["unsent"], rps * connections


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fault", default=os.path.join(ROOT, "build/default/bin/fault"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.duration = 2, 2
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit("%s is not installed (tools/install-deps installs it)" % tool)
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, client_cpu = cpus[0], cpus[-1]
    tmp = tempfile.mkdtemp(prefix="fault-bench-scenario-")
    port = free_port()
    nginx = start_nginx(tmp, port, server_cpu)
    wrk, fault, unsent, offered = [], [], [], []
    failed = False
    try:
        for r in range(a.rounds):
            try:
                w = run_wrk(port, client_cpu, a.connections, a.duration)
                wrk.append(w)
            except Exception as e:  # noqa: BLE001 - reported, the run goes on
                print("wrk failed: %s" % e, file=sys.stderr)
                failed = True
                continue
            try:
                got, lost, off = run_fault(a.fault, tmp, port, client_cpu, a.connections,
                                           a.duration, 2 * w)
                fault.append(got)
                unsent.append(lost)
                offered.append(off)
            except Exception as e:  # noqa: BLE001
                print("fault failed: %s" % e, file=sys.stderr)
                failed = True
            print("round %d: wrk %.0f req/s, fault %s req/s" %
                  (r + 1, w, "%.0f" % fault[-1] if len(fault) == len(wrk) else "failed"),
                  file=sys.stderr)
    finally:
        nginx.terminate()
        nginx.wait(10)
        shutil.rmtree(tmp, True)
    if not wrk or not fault:
        return 1
    mw, mf = statistics.median(wrk), statistics.median(fault)
    # The ratio of each round (same machine load), then their median.
    ratio = statistics.median(f / w for f, w in zip(fault, wrk))
    rows = [("wrk -t1 -c%d (closed loop)" % a.connections, "%.0f" % mw, "1.00", "-"),
            ("fault scenario load, %d connections, offered %.0f req/s (open loop)" %
             (a.connections, statistics.median(offered)), "%.0f" % mf, "%.2f" % ratio,
             "%.0f" % statistics.median(unsent))]
    head = ("generator (one core, no fault, nginx on another core)", "req/s (median of %d)" %
            len(fault), "vs wrk", "planned, not sent")
    if a.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(x[i]) for x in [head] + rows) for i in range(len(head))]
        for row in [head] + rows:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
