#!/usr/bin/python3
"""`fault test` with events(), the temporal assertions, the outcome
expectations and http.patch, as a user runs them (docs/spec.md, "Events and
temporal assertions" and "Outcome expectations").

usage: spec_events_cli_test.py FAULT_BINARY TESTDATA_DIR
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

FAULT, TESTDATA = sys.argv[1:3]


def run(*args, timeout=120):
    p = subprocess.run([FAULT, *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def run_spec(spec, tmp, *extra):
    """Runs a spec of testdata; returns (rc, stdout, stderr, {cell: JSON cell},
    {cell: JUnit system-out})."""
    json_path, junit_path = os.path.join(tmp, "out.json"), os.path.join(tmp, "out.xml")
    rc, out, err = run("test", os.path.join(TESTDATA, spec), "--json", json_path,
                       "--junit", junit_path, *extra)
    with open(json_path) as f:
        cells = {c["name"]: c for c in json.load(f)["cells"]}
    outputs = {}
    for tc in ET.parse(junit_path).getroot().iter("testcase"):
        so = tc.find("system-out")
        outputs[tc.get("name")] = so.text if so is not None and so.text else ""
    return rc, out, err, cells, outputs


# A duration as the expectations' messages write it: "4ms", "1.25s".
DURATION = r"(\d+ms|\d+(\.\d+)?s)"


def last_line(message):
    return message.splitlines()[-1] if message else ""


class EventsTest(unittest.TestCase):
    """testdata/events.star: a latency of 200ms on a TCP server; run once."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.rc, cls.out, cls.err, cls.cells, cls.outputs = run_spec(
            "events.star", cls.tmp.name, "--cell-timeout", "20s")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_cells(self):
        self.assertEqual(self.rc, 1, self.out + self.err)
        self.assertEqual(self.out.splitlines()[-1], "4 passed, 6 failed", self.out)
        status = {name: c["status"] for name, c in self.cells.items()}
        self.assertEqual(status, {
            "listed/slow": "passed",
            "passing/slow": "passed",        # every temporal assertion holds
            "waits/slow": "passed",          # within= in run() waits for the window
            "fail_eventually/slow": "failed",
            "fail_within/slow": "failed",
            "fail_never/slow": "failed",
            "fail_count/slow": "failed",
            "fail_before/slow": "failed",
            "fail_filter/slow": "failed",
            "quiet/none": "passed",          # no fault, no events
        })

    def test_events_are_the_cells_fault_events(self):
        out = self.outputs["listed/slow"]
        self.assertIn("events before the request: 0, after it: 2\n", out)
        line = next(l for l in out.splitlines() if l.startswith("events: "))
        listed = json.loads(line[len("events: "):])
        reported = self.cells["listed/slow"]["events"]
        self.assertEqual(sorted((e["service"], e["op"], e["kind"], e["rule"]) for e in listed),
                         sorted((e["service"], e["op"], e["effect"], e["rule"]) for e in reported))
        self.assertEqual({e["op"] for e in listed}, {"recv", "send"})
        for e in listed:
            self.assertEqual((e["delay_ns"], e["errno"]), (200000000, None))
            self.assertGreater(e["time"], 0)
            self.assertLess(e["time"], 5)
        self.assertEqual([e["op"] for e in listed], ["recv", "send"])  # time order
        self.assertGreaterEqual(listed[1]["time"] - listed[0]["time"], 0.19)
        # Filters that match nothing.
        self.assertIn("connect events: 0\n", out)
        self.assertIn("events of *:1 targets: 0\n", out)

    def test_failing_assertions_say_why(self):
        spec = os.path.join(TESTDATA, "events.star")
        event = r"\d+\.\d{3}s pong latency (recv|send) 127\.0\.0\.1:\d+ \(rule slow\)"

        def message(cell):
            return self.cells[cell]["message"]

        self.assertRegex(last_line(message("fail_eventually/slow")),
                         r"^Error in assert_eventually: got no fault event matching "
                         r"\{\"kind\": \"deny\"\}, want one: the request was not denied; "
                         rf"the cell's events \(2\): {event}, {event}$")
        self.assertIn(f"  {spec}:50:22: in fail_eventually\n", message("fail_eventually/slow"))
        self.assertRegex(last_line(message("fail_within/slow")),
                         r"^Error in assert_eventually: got no fault event matching "
                         r"\{\"op\": \"send\"\} within 100ms of the scenario's start, want one; "
                         rf"the cell's events \(2\): {event}, {event}$")
        self.assertRegex(last_line(message("fail_never/slow")),
                         r"^Error in assert_never: got a fault event matching \{\"op\": "
                         rf"\"send\"\}}, want none; matching: {event}$")
        self.assertRegex(last_line(message("fail_count/slow")),
                         r"^Error in assert_count: got 2 fault events matching \{\"kind\": "
                         rf"\"latency\"\}}, want at least 10; matching: {event}, {event}$")
        self.assertRegex(last_line(message("fail_before/slow")),
                         r"^Error in assert_before: the first fault event matching "
                         r"<function lambda> came before the first matching \{\"op\": \"send\"\}, "
                         r"want \{\"op\": \"send\"\} first; the first matching <function lambda>: "
                         rf"{event}; the first matching \{{\"op\": \"send\"\}}: {event}$")
        self.assertEqual(last_line(message("fail_filter/slow")),
                         "Error in events: events: kind \"dney\" is not a kind of fault event "
                         "(kinds: latency, loss, rate, timeout, connection_error, half_open, "
                         "blackhole, reorder, duplicate, session_budget, payload_mutation, "
                         "dns_delay, dns_timeout, dns_nxdomain, deny, delay, partition, "
                         "http_error, redis_error, postgres_error, protocol_drop)")
        # The summary shows the same last line.
        self.assertIn("want at least 10; matching: ", self.out)


def load(spec, text):
    """Writes `text` to `spec` and runs it."""
    with open(spec, "w") as f:
        f.write(text)
    return run("test", spec)


HEAD = ('svc = service("svc", command = ["/bin/sleep", "600"], ready = ["/bin/true"])\n'
        's = scenario("s", run = lambda: 1)\n')


class EventMistakesTest(unittest.TestCase):
    def test_mistakes(self):
        with tempfile.TemporaryDirectory() as tmp:
            spec = os.path.join(tmp, "spec.star")
            rc, out, err = load(spec, HEAD + 'n = len(events())\n')
            self.assertEqual(rc, 2)
            self.assertEqual(err.splitlines()[0],
                             f"{spec}:3:15: events: only available while a scenario runs")
            # A filter naming something the spec does not have fails the cell.
            rc, out, err = load(spec,
                                HEAD.replace("lambda: 1", "lambda: assert_never(service = \"svcc\")") +
                                'fault_matrix(scenarios = [s], faults = [None])\n')
            self.assertEqual(rc, 1, out + err)
            self.assertIn("Error in assert_never: assert_never: service \"svcc\" is not a "
                          "service of the spec (services: \"svc\")", out)


class ExpectationsTest(unittest.TestCase):
    def test_outcome_expectations_and_patch(self):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.monotonic()
            rc, out, err, cells, _ = run_spec("expect.star", tmp, "--cell-timeout", "3s")
            elapsed = time.monotonic() - start
        self.assertEqual(rc, 1, out + err)
        self.assertLess(elapsed, 60)
        self.assertEqual(out.splitlines()[-1], "5 passed, 5 failed", out)
        status = {name: c["status"] for name, c in cells.items()}
        self.assertEqual(status, {
            "write/none": "passed",              # expect_success()
            "write/disk_error": "passed",        # a 500 within 2s
            "hang/black_hole": "passed",         # still waiting at the cell timeout
            "bad_hang/black_hole": "failed",     # the same hang, not expected
            "bad_success/none": "failed",        # a 503 is an error
            "bad_late_error/none": "failed",     # the 500 came after 600ms
            "gives_up/none": "passed",           # run() failed at once
            "bad_no_error/none": "failed",
            "bad_no_hang/none": "failed",
            "patch/none": "passed",              # the server saw PATCH and the body
        })
        spec = os.path.join(TESTDATA, "expect.star")
        self.assertEqual([e["effect"] for e in cells["hang/black_hole"]["events"]][:1],
                         ["blackhole"])
        self.assertGreaterEqual(cells["hang/black_hole"]["seconds"], 3)
        self.assertEqual(cells["bad_hang/black_hole"]["message"].splitlines()[0],
                         "cell timed out after 3s (--cell-timeout)")
        self.assertRegex(cells["bad_success/none"]["message"],
                         rf"^expect_success\(\) \({spec}:50:73\): run\(\) returned an error "
                         rf"after {DURATION}: HTTP status 503; it returned http_response\(status = 503, ")
        self.assertRegex(cells["bad_late_error/none"]["message"],
                         rf"^expect_error_within\(\"300ms\"\) \({spec}:51:81\): run\(\) returned "
                         rf"an error after {DURATION}, later than 300ms: HTTP status 500$")
        self.assertRegex(cells["bad_no_error/none"]["message"],
                         rf"^expect_error_within\(\"2s\"\) \({spec}:58:55\): run\(\) returned "
                         rf"without an error after {DURATION}, want an error within 2s; it returned "
                         r"http_response\(status = 200, ")
        self.assertRegex(cells["bad_no_hang/none"]["message"],
                         rf"^expect_hang\(\) \({spec}:58:91\): run\(\) returned after {DURATION}, want "
                         r"it still running when the cell times out; it returned "
                         r"http_response\(status = 200, ")

    def test_mistakes(self):
        with tempfile.TemporaryDirectory() as tmp:
            spec = os.path.join(tmp, "spec.star")
            rc, out, err = load(spec, HEAD + 'fault_matrix(scenarios = [s], faults = [None],\n'
                                '             overrides = {(s, None): expect_error_within("soon")})\n')
            self.assertEqual((rc, out), (2, ""))
            self.assertEqual(err.splitlines()[0],
                             f"{spec}:4:58: expect_error_within: for parameter \"within\": "
                             "\"soon\" is not a duration: expected a number at \"soon\"")
            rc, out, err = load(spec, HEAD + 'fault_matrix(scenarios = [s], faults = [None],\n'
                                '             overrides = {(s, None): "expect_hang"})\n')
            self.assertEqual(rc, 2)
            self.assertEqual(err.splitlines()[0],
                             f"{spec}:4:27: fault_matrix: overrides: got string for (s, None), "
                             "want a function of the scenario's result or an expectation "
                             "(expect_success(), ...)")


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
