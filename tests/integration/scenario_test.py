"""`fault scenario run|validate|generate` end to end (docs/scenario.md):
scenario files run against python3 HTTP servers on loopback through the
in-process fault proxy; strategies, SLOs, reliability controls, exit
statuses and every report format, observed from outside (exit status,
measured times, the results file, the reports)."""

import http.server
import json
import math
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import xml.etree.ElementTree as ET

from fault_testlib import FAULT, clean_env, need

SOURCE = os.environ.get("FAULT_SOURCE_DIR",
                        os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))
EXAMPLE = os.path.join(SOURCE, "examples/scenarios/scenario.yaml")


class Handler(http.server.BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1: / answers at once, /slow after 300 ms, /hang-once
    holds its first request (at most 4 s) and answers the others at once."""

    protocol_version = "HTTP/1.1"
    # Headers and body are two writes: without TCP_NODELAY the body would
    # wait for the proxy's delayed ACK (40 ms) now and then.
    disable_nagle_algorithm = True

    def do_GET(self):
        server = self.server
        with server.lock:
            server.hits[self.path] = server.hits.get(self.path, 0) + 1
            n = server.hits[self.path]
        if self.path == "/slow":
            time.sleep(0.3)
        elif self.path == "/hang-once" and n == 1:
            server.release.wait(4)
        body = b"ok\n"
        try:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass

    def log_message(self, *args):
        pass


class Server:
    def __init__(self, port=0):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.httpd.hits = {}
        self.httpd.lock = threading.Lock()
        self.httpd.release = threading.Event()
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def hits(self, path):
        with self.httpd.lock:
            return self.httpd.hits.get(path, 0)

    def close(self):
        self.httpd.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class ScenarioCase(unittest.TestCase):
    def setUp(self):
        self.server = Server()
        self.addCleanup(self.server.close)
        self.dir = tempfile.mkdtemp(prefix="fault-scenario-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.url = "http://127.0.0.1:%d" % self.server.port

    def scenario(self, text, name="s.yaml"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text.replace("@URL@", self.url))
        return path

    def run_fault(self, args, timeout=60):
        return subprocess.run([FAULT, "scenario", *args], capture_output=True, text=True,
                              timeout=timeout, env=clean_env(), cwd=self.dir)

    def run_scenario(self, text, extra=(), timeout=60):
        """Runs `text`; returns (process, results, seconds)."""
        path = self.scenario(text)
        results = os.path.join(self.dir, "results.json")
        if os.path.exists(results):
            os.unlink(results)
        t = time.monotonic()
        p = self.run_fault(["run", "-s", path, "-r", os.path.join(self.dir, "report.md"),
                            "--result", results, *extra], timeout=timeout)
        took = time.monotonic() - t
        self.assertIn(p.returncode, (0, 1), p.stdout + p.stderr)
        with open(results) as f:
            return p, json.load(f), took

    @staticmethod
    def items(results):
        return [it for s in results["results"] for it in s["results"]]

    @staticmethod
    def latencies(item):
        return [r["metrics"]["total_time"] for r in item["results"]]


class SingleRepeatTest(ScenarioCase):
    def test_single_call_meets_the_latency(self):
        p, res, _ = self.run_scenario("""title: single
items:
- call: {method: GET, url: "@URL@/"}
  context:
    upstreams: ["@URL@"]
    faults: [{type: latency, mean: 300, stddev: 0}]
  expect: {status: 200}
""")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        item = self.items(res)[0]
        self.assertEqual(item["requests_count"], 1)
        [lat] = self.latencies(item)
        self.assertGreaterEqual(lat, 295)
        self.assertLess(lat, 600)
        self.assertEqual(item["results"][0]["expect"]["got"]["status_code"], 200)
        self.assertEqual(item["fault"]["fault_events"], {"latency": 1})

    def test_a_call_to_another_upstream_gets_no_fault(self):
        p, res, _ = self.run_scenario("""title: not this upstream
items:
- call: {method: GET, url: "@URL@/"}
  context:
    upstreams: ["http://127.0.0.2:1"]
    faults: [{type: latency, mean: 300, stddev: 0}]
  expect: {status: 200, response_time_under: 200}
""")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertLess(self.latencies(self.items(res)[0])[0], 200)

    def test_repeat_steps_the_latency(self):
        p, res, _ = self.run_scenario("""title: stairs
items:
- call: {method: GET, url: "@URL@/"}
  context:
    upstreams: ["@URL@"]
    faults: [{type: latency, side: client, direction: ingress, mean: 100, stddev: 0}]
    strategy: {mode: repeat, step: 100, count: 4, add_baseline_call: true}
  expect: {status: 200}
""")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        lat = self.latencies(self.items(res)[0])
        self.assertEqual(len(lat), 5)
        self.assertLess(lat[0], 60, lat)  # the baseline has no fault
        for i, want in enumerate([100, 200, 300, 400]):
            self.assertGreaterEqual(lat[i + 1], want - 5, lat)
            self.assertLess(lat[i + 1], want + 80, lat)
        added = [r["fault"]["latency_added_ms"] for r in self.items(res)[0]["results"]]
        self.assertEqual(added, [0, 0, 100, 200, 300])

    def test_expectation_failure_fails_the_run(self):
        p, res, _ = self.run_scenario("""title: too slow
items:
- call: {method: GET, url: "@URL@/"}
  context:
    upstreams: ["@URL@"]
    faults: [{type: latency, mean: 200, stddev: 0}]
  expect: {status: 200, response_time_under: 100}
""")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("FAIL [1/1]", p.stdout)
        self.assertIn("Tests run: 1, Tests failed: 1", p.stdout)
        item = self.items(res)[0]
        self.assertEqual(item["failure_counts"], 1)
        self.assertEqual(item["results"][0]["expect"]["got"]["decision"], "failure")


class LoadTest(ScenarioCase):
    LOAD = """title: load
items:
- call: {method: GET, url: "@URL@@PATH@", timeout: 2000}
  context:
    upstreams: ["@URL@"]
    faults: @FAULTS@
    strategy: {mode: load, duration: 1s, clients: 4, rps: 10}
    slo:
    - {slo_type: latency, title: "p95 under 80ms", objective: 95, threshold: 80}
    - {slo_type: error, title: "under 1% errors", objective: 99, threshold: 1}
"""

    def load(self, faults="[]", path="/"):
        return self.run_scenario(self.LOAD.replace("@FAULTS@", faults).replace("@PATH@", path))

    def test_slos_pass_without_faults(self):
        p, res, took = self.load()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        item = self.items(res)[0]
        self.assertEqual(item["requests_count"], 40)
        self.assertEqual(self.server.hits("/"), 40)
        self.assertTrue(all(s["pass"] for s in item["fault"]["slo"]), item["fault"]["slo"])
        self.assertLess(took, 5)
        # Keep-alive: far fewer connections than requests.
        self.assertLess(item["fault"]["connections"], 20)

    def test_latency_slo_fails_under_latency(self):
        p, res, _ = self.load("[{type: latency, mean: 120, stddev: 0}]")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        slo = {s["title"]: s for s in self.items(res)[0]["fault"]["slo"]}
        self.assertFalse(slo["p95 under 80ms"]["pass"])
        self.assertGreaterEqual(slo["p95 under 80ms"]["value"], 115)
        self.assertTrue(slo["under 1% errors"]["pass"])
        self.assertIn('SLO "p95 under 80ms" failed', p.stdout)

    def test_open_loop_keeps_the_offered_load_and_counts_the_wait(self):
        # A server that takes 300 ms: 40 requests are still sent in 1 s (not
        # 4 clients x 1 s / 0.3 s), and each latency counts from its planned
        # start.
        p, res, took = self.load(path="/slow")
        item = self.items(res)[0]
        self.assertEqual(item["requests_count"], 40)
        self.assertEqual(self.server.hits("/slow"), 40)
        starts = sorted(r["fault"]["offset_ms"] for r in item["results"])
        self.assertLess(starts[-1], 1000)
        self.assertGreater(starts[-1], 900)
        self.assertTrue(all(l >= 295 for l in self.latencies(item)))
        self.assertLess(took, 4)
        self.assertEqual(p.returncode, 1)  # p95 above 80 ms


class HttpErrorTest(ScenarioCase):
    def test_probability_is_observed(self):
        p, res, _ = self.run_scenario("""title: flaky
items:
- call: {method: GET, url: "@URL@/"}
  context:
    upstreams: ["@URL@"]
    faults: [{type: httperror, status_code: 503, probability: 0.3}]
    strategy: {mode: load, duration: 1s, clients: 4, rps: 50}
    slo:
    - {slo_type: error, title: "transport only", objective: 99, threshold: 1}
    - {slo_type: error, title: "5xx count", objective: 99, threshold: 1, errors: [transport, 5xx]}
""")
        item = self.items(res)[0]
        codes = [r["metrics"]["protocol"]["code"] for r in item["results"]]
        n = len(codes)
        self.assertEqual(n, 200)
        k = codes.count(503)
        self.assertEqual(k + codes.count(200), n)
        # Within 4.5 standard deviations of 30%.
        sd = math.sqrt(n * 0.3 * 0.7)
        self.assertLess(abs(k - 0.3 * n), 4.5 * sd, k)
        # Answered by the proxy: the server never saw them.
        self.assertEqual(self.server.hits("/"), n - k)
        slo = {s["title"]: s for s in item["fault"]["slo"]}
        self.assertTrue(slo["transport only"]["pass"])
        self.assertFalse(slo["5xx count"]["pass"])
        self.assertAlmostEqual(slo["5xx count"]["value"], 100.0 * k / n, places=6)
        self.assertEqual(p.returncode, 1)


class ReliabilityTest(ScenarioCase):
    RETRY = """title: retries
items:
- call: {method: GET, url: "@URL@/"}
  context:
    upstreams: ["@URL@"]
    faults: [{type: httperror, status_code: 500, probability: 0.5}]
    strategy:
      mode: load
      duration: 1s
      clients: 2
      rps: 20
      @RETRY@
    slo:
    - {slo_type: error, title: "under 10% 5xx", objective: 99, threshold: 10, errors: [transport, timeout, 5xx]}
"""

    def test_retries_change_the_outcome_and_the_budget_caps_them(self):
        def run(retry):
            p, res, _ = self.run_scenario(self.RETRY.replace("@RETRY@", retry))
            return p, self.items(res)[0]

        p, none = run("")
        self.assertEqual(p.returncode, 1)
        self.assertEqual(none["fault"]["reliability"]["retry"]["retries"], 0)

        # Enough budget: nearly every request ends well, the SLO passes.
        p, ample = run("retry: {attempts: 8, backoff: 1ms, max_backoff: 5ms, budget: 10}")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        rel = ample["fault"]["reliability"]["retry"]
        self.assertGreater(rel["retries"], 20)
        self.assertEqual(rel["denied_by_budget"], 0)
        attempts = sum(r["fault"]["attempts"] for r in ample["results"])
        self.assertEqual(attempts, ample["requests_count"] + rel["retries"])

        # A budget of 10% of the requests (and no minimum): retries stop
        # there, and the SLO fails again.
        p, capped = run("retry: {attempts: 8, backoff: 1ms, max_backoff: 5ms, budget: 0.1, "
                        "budget_min: 0}")
        self.assertEqual(p.returncode, 1)
        rel = capped["fault"]["reliability"]["retry"]
        self.assertLessEqual(rel["retries"], 0.1 * capped["requests_count"])
        self.assertGreater(rel["denied_by_budget"], 5)
        self.assertTrue(any(r["fault"]["retry_denied"] for r in capped["results"]))

    def test_failure_budget_stops_the_item(self):
        text = """title: budget
items:
- call: {method: GET, url: "@URL@/"}
  context:
    upstreams: ["@URL@"]
    faults: [{type: httperror, status_code: 500, probability: 1.0}]
    strategy:
      mode: load
      duration: 3s
      clients: 1
      rps: 20
      @BUDGET@
"""
        p, res, took = self.run_scenario(text.replace("@BUDGET@", ""))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)  # no expectation, no SLO
        self.assertEqual(self.items(res)[0]["requests_count"], 60)
        self.assertGreater(took, 2.9)

        p, res, took = self.run_scenario(text.replace("@BUDGET@", "failure_budget: {max_failures: 4}"))
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        item = self.items(res)[0]
        self.assertEqual(item["requests_count"], 5)
        fb = item["fault"]["reliability"]["failure_budget"]
        self.assertTrue(fb["exhausted"])
        self.assertLess(fb["stopped_at_ms"], 600)
        self.assertLess(took, 2)
        self.assertIn("failure budget spent: 5 failed requests", p.stdout)
        with open(os.path.join(self.dir, "report.md")) as f:
            self.assertIn("failure budget spent", f.read())

    def test_watchdog_cancels_a_hung_request(self):
        text = """title: watchdog
items:
- call: {method: GET, url: "@URL@/hang-once", timeout: 2000}
  context:
    upstreams: []
    faults: []
    strategy:
      mode: single
      retry: {attempts: 2, backoff: 1ms, on: [transport, watchdog]}
      @WATCHDOG@
  expect: {status: 200}
"""
        # Without the watchdog the hung request times out after 2 s, which
        # this retry policy does not retry: the item fails.
        p, res, took = self.run_scenario(text.replace("@WATCHDOG@", ""))
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        [r] = self.items(res)[0]["results"]
        self.assertEqual(r["fault"]["failure"], "timeout")
        self.assertTrue(r["metrics"]["timed_out"])
        self.assertGreaterEqual(r["metrics"]["total_time"], 1990)
        self.server.httpd.release.set()

        # With it, the stuck request is cancelled after 300 ms and retried.
        self.server.httpd.release.clear()
        self.server.httpd.hits.clear()
        p, res, took = self.run_scenario(text.replace("@WATCHDOG@", "watchdog: {max_stall: 300ms}"))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        item = self.items(res)[0]
        [r] = item["results"]
        self.assertEqual(r["fault"]["attempts"], 2)
        self.assertEqual(r["metrics"]["protocol"]["code"], 200)
        self.assertGreaterEqual(r["metrics"]["total_time"], 295)
        self.assertLess(r["metrics"]["total_time"], 1500)
        self.assertEqual(item["fault"]["reliability"]["watchdog"]["enabled"], True)
        self.assertEqual(self.server.hits("/hang-once"), 2)


class FaultsTest(ScenarioCase):
    def test_mapping_is_faulted_without_the_http_proxy(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        p, res, _ = self.run_scenario("""title: mapping
items:
- call: {method: GET, url: "http://127.0.0.1:%d/"}
  context:
    upstreams: []
    faults: [{type: latency, mean: 250, stddev: 0}]
    proxy:
      disable_http_proxies: true
      proxies: ["%d=127.0.0.1:%d"]
  expect: {status: 200}
""" % (port, port, self.server.port))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        item = self.items(res)[0]
        self.assertGreaterEqual(self.latencies(item)[0], 245)
        self.assertEqual(item["fault"]["proxy"]["port"], 0)  # no HTTP proxy
        self.assertEqual(self.server.hits("/"), 1)

    def test_dns_fault_fails_hostname_lookups(self):
        p, res, _ = self.run_scenario("""title: dns
items:
- call: {method: GET, url: "http://localhost:%d/"}
  context:
    upstreams: ["http://localhost:%d"]
    faults: [{type: dns, rate: 1.0}]
    strategy: {mode: repeat, step: 0, count: 3}
  expect: {status: 200}
""" % (self.server.port, self.server.port))
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        item = self.items(res)[0]
        self.assertEqual([r["metrics"]["protocol"]["code"] for r in item["results"]], [502] * 3)
        self.assertEqual(item["failure_counts"], 3)
        self.assertEqual(self.server.hits("/"), 0)

    def test_blackhole_with_a_timeout(self):
        p, res, took = self.run_scenario("""title: blackhole
items:
- call: {method: GET, url: "@URL@/", timeout: 300}
  context:
    upstreams: ["@URL@"]
    faults: [{type: blackhole, direction: egress}]
    slo:
    - {slo_type: error, title: "no errors", objective: 99, threshold: 1}
""")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        [r] = self.items(res)[0]["results"]
        self.assertEqual(r["fault"]["failure"], "timeout")
        self.assertAlmostEqual(r["metrics"]["total_time"], 300, delta=60)
        self.assertEqual(self.server.hits("/"), 0)


class ExitStatusTest(ScenarioCase):
    def test_validate_names_file_and_line(self):
        path = self.scenario("""title: broken
items:
- call: {method: GET, url: "@URL@/"}
  context:
    upstreams: []
    faults:
    - type: latency
      mean: fast
""", "broken.yaml")
        p = self.run_fault(["validate", "-s", path])
        self.assertEqual(p.returncode, 2)
        self.assertIn("broken.yaml:7: faults[0].mean:", p.stderr)
        self.assertIn('"fast"', p.stderr)
        # run refuses it too, before anything starts.
        p = self.run_fault(["run", "-s", path, "--result", "r.json"])
        self.assertEqual(p.returncode, 2)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "r.json")))
        self.assertFalse(os.path.exists(os.path.join(self.dir, "report.md")))

    def test_validate_accepts_the_example(self):
        p = self.run_fault(["validate", EXAMPLE])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("8 scenarios, 8 items: OK", p.stdout)

    def test_usage_errors(self):
        ok = self.scenario("title: t\nitems:\n- call: {method: GET, url: \"@URL@/\"}\n"
                           "  context: {upstreams: [], faults: []}\n")
        p = self.run_fault(["run", "-s", ok, "--result", "r.txt"])
        self.assertEqual(p.returncode, 2)
        self.assertIn("--result r.txt", p.stderr)
        p = self.run_fault(["run", "-s", os.path.join(self.dir, "missing.yaml")])
        self.assertEqual(p.returncode, 2)
        self.assertIn("missing.yaml", p.stderr)
        p = self.run_fault(["run"])
        self.assertEqual(p.returncode, 2)
        p = self.run_fault(["run", "-s", ok])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(os.path.exists(os.path.join(self.dir, "report.md")))
        self.assertTrue(os.path.exists(os.path.join(self.dir, "results.json")))

    def test_interrupt_writes_what_ran(self):
        path = self.scenario("""title: long
items:
- call: {method: GET, url: "@URL@/"}
  context:
    upstreams: []
    faults: []
    strategy: {mode: load, duration: 20s, clients: 1, rps: 10}
- call: {method: GET, url: "@URL@/"}
  context: {upstreams: [], faults: []}
""")
        t = time.monotonic()
        p = subprocess.Popen([FAULT, "scenario", "run", "-s", path, "--result", "r.json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=clean_env(), cwd=self.dir)
        time.sleep(1)
        p.send_signal(2)
        out, err = p.communicate(timeout=10)
        self.assertEqual(p.returncode, 130, out + err)
        self.assertLess(time.monotonic() - t, 5)
        with open(os.path.join(self.dir, "r.json")) as f:
            items = self.items(json.load(f))
        self.assertEqual(len(items), 1)
        self.assertIn("interrupted", items[0]["fault"]["reasons"])
        self.assertGreater(items[0]["requests_count"], 3)
        self.assertLess(items[0]["requests_count"], 30)

    def test_progress_line_on_a_terminal(self):
        import pty
        path = self.scenario("""title: tty
items:
- call: {method: GET, url: "@URL@/"}
  context:
    upstreams: ["@URL@"]
    faults: [{type: latency, mean: 5, stddev: 0}]
    strategy: {mode: load, duration: 1s, clients: 1, rps: 20}
""")
        master, slave = pty.openpty()
        p = subprocess.Popen([FAULT, "scenario", "run", "-s", path], stdout=slave,
                             stderr=subprocess.DEVNULL, env=clean_env(), cwd=self.dir)
        os.close(slave)
        out = b""
        end = time.monotonic() + 20
        while time.monotonic() < end:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        p.wait(timeout=20)
        os.close(master)
        text = out.decode(errors="replace")
        self.assertEqual(p.returncode, 0, text)
        # Live lines rewrite themselves (CR, erase line), then the item's final line.
        self.assertRegex(text, r"\r\x1b\[K\[1/1\] tty: GET \S+ load \d\.\ds/1s, \d+ requests")
        self.assertIn("PASS [1/1] tty", text)
        # Not on a pipe.
        p = self.run_fault(["run", "-s", path])
        self.assertNotIn("\x1b[K", p.stdout)
        self.assertIn("PASS [1/1] tty", p.stdout)

    def test_a_directory_runs_every_file(self):
        sub = os.path.join(self.dir, "dir", "nested")
        os.makedirs(sub)
        one = "title: t%d\nitems:\n- call: {method: GET, url: \"@URL@/\"}\n" \
              "  context: {upstreams: [], faults: []}\n  expect: {status: %d}\n"
        with open(os.path.join(self.dir, "dir", "a.yaml"), "w") as f:
            f.write((one % (1, 200)).replace("@URL@", self.url) + "---\n" +
                    (one % (2, 200)).replace("@URL@", self.url))
        with open(os.path.join(sub, "b.yml"), "w") as f:
            f.write((one % (3, 404)).replace("@URL@", self.url))
        p = self.run_fault(["run", "-s", os.path.join(self.dir, "dir")])
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("Tests run: 3, Tests failed: 1", p.stdout)


class ReportTest(ScenarioCase):
    TEXT = """title: reported
description: every report format
items:
- call: {method: GET, url: "@URL@/", headers: {Authorization: secret-token}}
  context:
    upstreams: ["@URL@"]
    faults:
    - {type: latency, mean: 150, stddev: 0, period: "start:40%,duration:30%"}
    strategy: {mode: load, duration: 1s, clients: 2, rps: 20}
    slo:
    - {slo_type: latency, title: "p99 under 50ms", objective: 99, threshold: 50}
- call: {method: GET, url: "@URL@/"}
  context: {upstreams: [], faults: []}
  expect: {status: 200}
"""

    def test_every_format(self):
        html = os.path.join(self.dir, "report.html")
        junit = os.path.join(self.dir, "junit.xml")
        p, res, _ = self.run_scenario(self.TEXT, ["--html", html, "--junit", junit])
        self.assertEqual(p.returncode, 1)
        items = self.items(res)
        self.assertEqual(res["results"][0]["scenario"]["title"], "reported")
        # The fault window: latency from 400 ms to 700 ms of the load.
        [w] = items[0]["fault"]["fault_windows"]
        self.assertAlmostEqual(w["start_ms"], 400, delta=1)
        self.assertAlmostEqual(w["end_ms"], 700, delta=1)
        for r in items[0]["results"]:
            off, lat = r["fault"]["offset_ms"], r["metrics"]["total_time"]
            if 420 < off < 680:
                self.assertGreaterEqual(lat, 145, (off, lat))
            if off < 380 or off > 720:
                self.assertLess(lat, 100, (off, lat))
        self.assertFalse(items[0]["fault"]["passed"])
        self.assertTrue(items[1]["fault"]["passed"])

        # Markdown: their layout, the timeline, the masked header.
        with open(os.path.join(self.dir, "report.md")) as f:
            md = f.read()
        self.assertIn("# Scenarios Report", md)
        self.assertIn("## Scenario: reported  (items: 2)", md)
        self.assertIn("| Failed", md)
        self.assertIn("Authorization: xxxxxx", md)
        self.assertNotIn("secret-token", md)
        self.assertIn("`" + "." * 20 + "x" * 15 + "." * 15 + "`", md)

        # JUnit.
        root = ET.parse(junit).getroot()
        self.assertEqual(root.tag, "testsuites")
        self.assertEqual(root.get("tests"), "2")
        self.assertEqual(root.get("failures"), "1")
        self.assertRegex(root.find("testsuite").get("timestamp"),
                         r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")
        cases = root.findall("./testsuite/testcase")
        self.assertEqual(len(cases), 2)
        self.assertIsNotNone(cases[0].find("failure"))
        self.assertIn("p99 under 50ms", cases[0].find("failure").get("message"))
        self.assertIsNone(cases[1].find("failure"))

        # HTML: self-contained, and its plots survive a browser.
        with open(html) as f:
            page = f.read()
        self.assertNotIn("<script", page)
        for ref in ("src=", "<link"):
            self.assertNotIn(ref, page)
        chromium = need("chromium")
        dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                              "--dump-dom", "file://" + html],
                             capture_output=True, text=True, timeout=60).stdout
        self.assertEqual(dom.count('<svg class="plot latency"'), 2, dom[:500])
        self.assertEqual(dom.count('<svg class="plot percentiles"'), 2)
        self.assertEqual(dom.count('<svg class="plot errors"'), 2)
        self.assertGreaterEqual(dom.count('class="fault-window"'), 2)
        self.assertGreaterEqual(dom.count('<circle class="pt'), 41)

    def test_results_as_yaml(self):
        path = self.scenario("title: y\nitems:\n- call: {method: GET, url: \"@URL@/\"}\n"
                             "  context: {upstreams: [], faults: []}\n")
        p = self.run_fault(["run", "-s", path, "--result", "out.yaml"])
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(os.path.join(self.dir, "out.yaml")) as f:
            text = f.read()
        self.assertIn("requests_count: 1", text)
        self.assertIn("title: y", text)


class GenerateTest(ScenarioCase):
    def test_eight_templates_per_endpoint(self):
        spec = os.path.join(self.dir, "openapi.yaml")
        with open(spec, "w") as f:
            f.write("""openapi: 3.1.0
info: {title: t, version: "1"}
servers: [{url: "%s"}]
paths:
  /:
    get: {operationId: index__get}
  /items/{id}:
    get: {parameters: [{name: id, in: path, schema: {type: integer, example: 3}}]}
    delete: {}
""" % self.url)
        out = os.path.join(self.dir, "gen")
        p = self.run_fault(["generate", "--scenario", out, "--spec-file", spec])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(sorted(os.listdir(out)),
                         ["delete__items__id_.yaml", "get__items__id_.yaml", "index__get.yaml"])
        p = self.run_fault(["validate", out])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("24 scenarios, 24 items: OK", p.stdout)
        with open(os.path.join(out, "get__items__id_.yaml")) as f:
            self.assertIn("id: \"3\"", f.read())
        p = self.run_fault(["generate", "--scenario", out, "--spec-url", "http://x/"])
        self.assertEqual(p.returncode, 2)
        self.assertIn("--spec-url", p.stderr)


def free(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


class ExampleTest(ScenarioCase):
    """The Rust tool's example file (examples/scenarios/scenario.yaml, eight
    scenarios) unchanged against a server on localhost:9090, four items at a time
    (about 15 s)."""

    def setUp(self):
        if not free(9090):
            self.skipTest("localhost:9090 is taken")
        super().setUp()
        self.server.close()
        self.server = Server(9090)

    def test_runs_unchanged(self):
        results = os.path.join(self.dir, "results.json")
        t = time.monotonic()
        # Four items at a time: the file's loads last 43 s one after the other.
        p = self.run_fault(["run", "-s", EXAMPLE, "-r", "report.md", "--result", results,
                            "--seed", "7", "--jobs", "4"], timeout=110)
        took = time.monotonic() - t
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)  # the black hole fails its SLOs
        self.assertIn("Tests run: 8, Tests failed: 1", p.stdout)
        with open(results) as f:
            res = json.load(f)
        items = self.items(res)
        self.assertEqual([it["requests_count"] for it in items], [1, 6, 60, 1, 1, 30, 160, 60])
        self.assertGreater(self.latencies(items[0])[0], 400)    # the 800 ms spike
        lat = self.latencies(items[1])
        self.assertLess(lat[0], lat[-1] - 300)                  # the stairs
        codes = [r["metrics"]["protocol"]["code"] for r in items[6]["results"]
                 if r["metrics"]["protocol"]]
        self.assertLess(codes.count(500), 30)                   # ~5% of 160
        black = items[7]
        self.assertFalse(black["fault"]["passed"])
        timed_out = [r["fault"]["offset_ms"] for r in black["results"] if r["metrics"]["timed_out"]]
        self.assertGreater(len(timed_out), 2)
        self.assertTrue(all(4400 < off < 5600 for off in timed_out), timed_out)
        self.assertLess(took, 25)
        # The results keep the file's order; each line names its item.
        self.assertEqual([s["scenario"]["title"][:12] for s in res["results"]],
                         ["Single high-", "Stair-step l", "Periodic 150", "5% packet lo",
                          "High jitter ", "512 KBps ban", "Random 500 e", "Full black-h"])
        self.assertEqual(p.stdout.count("PASS ["), 7, p.stdout)


if __name__ == "__main__":
    unittest.main()
