#!/usr/bin/python3
"""`fault test` with events() and the temporal assertions, as a user runs
them (docs/spec.md, "Events and temporal assertions").

usage: spec_events_cli_test.py FAULT_BINARY TESTDATA_DIR
"""
import json
import os
import subprocess
import sys
import tempfile
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
                         "http_error)")
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


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
