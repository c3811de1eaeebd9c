#!/usr/bin/python3
"""`fault test` as a user runs it: the example specs against the bundled demo
services, spec errors before anything runs, and a hanging scenario.

usage: spec_cli_test.py FAULT_BINARY EXAMPLES_DIR TESTDATA_DIR KV_SERVER
"""
import html.parser
import json
import os
import random
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

FAULT, EXAMPLES, TESTDATA, KV_SERVER = sys.argv[1:5]


def run(*args, timeout=240):
    p = subprocess.run([FAULT, *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def answered_pids(junit_path):
    """{cell name: the kv_server pid its scenario printed} from JUnit system-out."""
    suite = ET.parse(junit_path).getroot().find("testsuite")
    pids = {}
    for tc in suite.iter("testcase"):
        out = tc.find("system-out")
        m = re.search(r"kv answered as PID (\d+)", out.text if out is not None and out.text else "")
        if m:
            pids[tc.get("name")] = int(m.group(1))
    return pids


def seccomp_layer_available():
    p = subprocess.run([FAULT, "exec", "--layer", "seccomp", "--quiet", "--", "/bin/true"],
                       capture_output=True, timeout=30)
    return p.returncode == 0


def port_outside_ephemeral_range():
    """A free loopback port below the kernel's ephemeral range, which other
    programs' outgoing connections do not take while a spec runs."""
    low = 32768
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    for port in random.sample(range(max(1024, low - 10000), low), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port below %d" % low)


class HtmlPage(html.parser.HTMLParser):
    """The parts of `fault test --html` the tests check: the rows of the
    cell table, the text of each element with an id, the timeline marks per
    cell section, and any reference to another resource."""

    def __init__(self, path):
        super().__init__()
        self.rows, self.text, self.marks, self.external = [], {}, {}, []
        self.ids, self.section, self.in_tbody, self.cell = [], None, False, None
        with open(path, encoding="utf-8") as f:
            self.feed(f.read())

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("src", "href"):
            if key in a and not a[key].startswith("#"):
                self.external.append(a[key])
        if tag == "link" or tag == "script":
            self.external.append(tag)
        if "id" in a:
            self.ids.append((tag, a["id"]))
            self.text.setdefault(a["id"], "")
        if tag == "section":
            self.section = a.get("id")
        if tag == "tbody":
            self.in_tbody = True
        if tag == "tr" and self.in_tbody:
            self.rows.append({"class": a.get("class"), "cells": []})
        if tag == "td" and self.in_tbody:
            self.cell = ""
        if tag == "rect" and "event" in a.get("class", "") and self.section:
            self.marks[self.section] = self.marks.get(self.section, 0) + 1

    def handle_endtag(self, tag):
        if tag == "tbody":
            self.in_tbody = False
        if tag == "td" and self.cell is not None:
            self.rows[-1]["cells"].append(self.cell.strip())
            self.cell = None
        if tag == "section":
            self.section = None
        if self.ids and self.ids[-1][0] == tag:
            self.ids.pop()

    def handle_data(self, data):
        for _, i in self.ids:
            self.text[i] += data
        if self.cell is not None:
            self.cell += data


class SpecCliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def run_spec(self, spec, *extra):
        return run("test", os.path.join(EXAMPLES, spec), "--var", "kv_server=" + KV_SERVER,
                   "--junit", self.path("out.xml"), "--json", self.path("out.json"),
                   "--report", self.path("out.md"), "--html", self.path("out.html"),
                   "--cell-timeout", "20s", *extra)

    def test_notes_example(self):
        rc, out, err = self.run_spec("notes.star")
        self.assertEqual(rc, 1, out + err)
        self.assertTrue(out.endswith("\n12 passed, 1 failed\n"), out)
        with open(self.path("out.json")) as f:
            report = json.load(f)
        status = {c["name"]: c["status"] for c in report["cells"]}
        self.assertEqual(status, {
            "write_note/none": "passed",
            "write_note/disk_io_error": "passed",      # override: a clean 500
            "write_note/disk_full": "failed",         # expected to fail
            "write_note/slow_everything": "passed",   # composition + override
            "upstream/none": "passed",
            "upstream/upstream_refused": "passed",
            "upstream/upstream_slow_connect": "passed",
            "upstream/upstream_partitioned": "passed",  # both services, one supervisor
            "resolve/none": "passed",
            "resolve/dns_down": "passed",
            "health/none": "passed",
            "health/slow_network": "passed",
            "health/lossy_network": "passed",
        })
        cells = {c["name"]: c for c in report["cells"]}
        failed = cells["write_note/disk_full"]
        self.assertIn("Error in assert_eq: got 500, want 201", failed["message"])
        self.assertIn("database or disk is full", failed["message"])

        def effects(name):
            return {(e["effect"], e["op"], e.get("errno_name", "")) for e in cells[name]["events"]}

        self.assertIn(("deny", "write", "ENOSPC"), effects("write_note/disk_full"))
        self.assertIn(("deny", "fdatasync", "EIO"), effects("write_note/disk_io_error"))
        self.assertIn(("deny", "connect", "ECONNREFUSED"), effects("upstream/upstream_refused"))
        self.assertIn(("delay", "connect", ""), effects("upstream/upstream_slow_connect"))
        self.assertEqual(effects("upstream/upstream_partitioned"),
                         {("partition", "connect", "ECONNREFUSED")})
        self.assertIn("partition:\n", cells["upstream/upstream_partitioned"]["policy"])
        self.assertIn(("dns_nxdomain", "dns", ""), effects("resolve/dns_down"))
        both = {e for e, _, _ in effects("write_note/slow_everything")}
        self.assertTrue({"latency", "delay"} <= both, both)
        self.assertTrue(all(e["service"] == "notes" for c in report["cells"] for e in c["events"]))
        self.assertEqual(cells["write_note/none"]["events"], [])
        self.assertIn("fsync:\n        deny: EIO", cells["write_note/disk_io_error"]["policy"])

        suite = ET.parse(self.path("out.xml")).getroot().find("testsuite")
        self.assertEqual((suite.get("tests"), suite.get("failures")), ("13", "1"))
        failures = [tc.get("name") for tc in suite.iter("testcase") if tc.find("failure") is not None]
        self.assertEqual(failures, ["write_note/disk_full"])

        with open(self.path("out.md")) as f:
            md = f.read()
        self.assertTrue(md.startswith("# fault test: "), md)
        self.assertIn("12 passed, 1 failed (seed 1)", md)
        self.assertIn("| write_note | disk_full | **FAIL** |", md)
        self.assertIn("| resolve | dns_down | pass |", md)
        self.assertIn("### write_note/disk_full", md)

        # The HTML page: one row per cell, the failure in full, a timeline
        # mark per fault event, nothing fetched from elsewhere.
        page = HtmlPage(self.path("out.html"))
        self.assertEqual(len(page.rows), 13)
        self.assertEqual([r["cells"][:3] for r in page.rows if r["class"] == "failed"],
                         [["write_note", "disk_full", "FAIL"]])
        self.assertIn("12 passed, 1 failed (seed 1)", page.text["totals"])
        self.assertIn("database or disk is full", page.text["cell-2"])
        for i, c in enumerate(report["cells"]):
            self.assertEqual(page.marks.get("cell-%d" % i, 0), len(c["events"]), c["name"])
        self.assertFalse(page.external, page.external)

    def test_static_binary_example(self):
        rc, out, err = self.run_spec("kv.star")
        lines = out.splitlines()
        if seccomp_layer_available():
            self.assertEqual(rc, 0, out + err)
            self.assertEqual(lines[-1], "3 passed, 0 failed")
            with open(self.path("out.json")) as f:
                cells = {c["name"]: c for c in json.load(f)["cells"]}
            self.assertEqual({e["layer"] for e in cells["set/fsync_fails"]["events"]}, {"seccomp"})
            # kv is shared: one process answered in every cell, and each cell
            # saw exactly its own fault, from that process.
            pids = answered_pids(self.path("out.xml"))
            self.assertEqual(set(pids), {"set/none", "set/fsync_fails", "set/kv_disk_full"})
            self.assertEqual(len(set(pids.values())), 1, pids)
            pid = pids["set/none"]

            def seen(name):
                return sorted({(e["op"], e["errno_name"], e["rule"], e["pid"])
                               for e in cells[name]["events"]})

            self.assertEqual(cells["set/none"]["events"], [])
            self.assertEqual(seen("set/fsync_fails"), [("fsync", "EIO", "fsync_fails", pid)])
            self.assertEqual(seen("set/kv_disk_full"), [("write", "ENOSPC", "kv_disk_full", pid)])
        else:
            self.assertEqual(rc, 1, out + err)
            self.assertEqual(lines[-1], "1 passed, 2 failed")
            self.assertIn("service \"kv\" is a static binary and this build's `fault exec` has no "
                          "seccomp layer", out)

    def test_shared_service_restarts_after_it_dies(self):
        if not seccomp_layer_available():
            self.skipTest("no seccomp layer: the static kv_server cannot be faulted")
        rc, out, err = run("test", os.path.join(TESTDATA, "shared_restart.star"), "--var",
                           "kv_server=" + KV_SERVER, "--json", self.path("r.json"),
                           "--junit", self.path("r.xml"))
        self.assertEqual(rc, 1, out + err)
        self.assertEqual(out.splitlines()[-1], "3 passed, 1 failed")
        with open(self.path("r.json")) as f:
            cells = {c["name"]: c for c in json.load(f)["cells"]}
        self.assertEqual({n: c["status"] for n, c in cells.items()}, {
            "before/none": "passed", "crash/none": "failed", "after/none": "passed",
            "set/fsync_fails": "passed"})
        self.assertEqual(cells["crash/none"]["message"],
                         "shared service \"kv\" exited (exit status 3) during the cell; it is "
                         "started again for the next cell")
        pids = answered_pids(self.path("r.xml"))
        self.assertNotEqual(pids["before/none"], pids["after/none"])  # started again
        self.assertEqual(pids["after/none"], pids["set/fsync_fails"])  # and kept
        # The new process took the next cell's fault by a reload.
        self.assertEqual({(e["op"], e["errno_name"], e["pid"]) for e in cells["set/fsync_fails"]["events"]},
                         {("fsync", "EIO", pids["set/fsync_fails"])})

    def test_shared_dynamic_service(self):
        rc, out, err = run("test", os.path.join(TESTDATA, "shared_notes.star"), "--json",
                           self.path("n.json"))
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(out.splitlines()[-1], "5 passed, 0 failed")
        with open(self.path("n.json")) as f:
            cells = {c["name"]: c for c in json.load(f)["cells"]}
        # count/none saw the notes of the earlier cells: one database, one
        # service. Each cell has only its own fault's events.
        effects = {n: {(e["effect"], e["rule"]) for e in c["events"]} for n, c in cells.items()}
        self.assertEqual(effects["write/none"], set())
        self.assertEqual(effects["write/disk_io_error"], {("deny", "disk_io_error")})
        self.assertEqual(effects["write/slow_network"], {("latency", "slow_network")})
        self.assertEqual(effects["again/none"], set())
        self.assertEqual(effects["count/none"], set())
        pids = {e["pid"] for c in cells.values() for e in c["events"]}
        self.assertEqual(len(pids), 1, pids)

    def test_partition_between_python_services(self):
        # Two dynamically linked services and no static one: the partition
        # cell still gets the seccomp layer, and front's connection to back
        # is refused; without the fault it goes through.
        rc, out, err = run("test", os.path.join(TESTDATA, "partition_python.star"), "--json",
                           self.path("p.json"))
        if not seccomp_layer_available():
            self.assertEqual(rc, 1, out + err)
            self.assertIn("fault \"split\" has a partition, which needs the seccomp layer of "
                          "`fault exec`, and it does not work here: ", out)
            return
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(out.splitlines()[-1], "2 passed, 0 failed")
        with open(self.path("p.json")) as f:
            cells = {c["name"]: c for c in json.load(f)["cells"]}
        self.assertEqual(cells["call/none"]["events"], [])
        self.assertEqual({(e["effect"], e["op"], e["errno_name"], e["layer"], e["service"])
                          for e in cells["call/split"]["events"]},
                         {("partition", "connect", "ECONNREFUSED", "seccomp", "front")})

    def test_rate_fault_fires(self):
        # The reply takes about 2 s at 100kbps (the spec checks the times) and
        # the cell has the rate events, so it is not failed as never fired.
        rc, out, err = run("test", os.path.join(TESTDATA, "rate.star"), "--json",
                           self.path("r.json"))
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(out.splitlines()[-1], "2 passed, 0 failed")
        with open(self.path("r.json")) as f:
            cells = {c["name"]: c for c in json.load(f)["cells"]}
        self.assertEqual(cells["big/none"]["events"], [])
        events = cells["big/slow_link"]["events"]
        self.assertTrue(events, cells["big/slow_link"])
        self.assertEqual({(e["effect"], e["rule"], e["service"]) for e in events},
                         {("rate", "slow_link", "pong")})

    def test_protocol_faults(self):
        # http_error answers POST /orders/* in the service's place and
        # http_drop resets GET /gone; the other routes reach the service
        # (the spec checks the replies), and the cells have the events.
        rc, out, err = run("test", os.path.join(TESTDATA, "protocol.star"), "--json",
                           self.path("p.json"))
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(out.splitlines()[-1], "4 passed, 0 failed")
        with open(self.path("p.json")) as f:
            cells = {c["name"]: c for c in json.load(f)["cells"]}
        self.assertEqual(cells["orders/none"]["events"], [])
        self.assertEqual({(e["effect"], e["rule"], e["op"], e.get("status"))
                          for e in cells["orders/orders_down"]["events"]},
                         {("http_error", "orders_down", "recv", 503)})
        self.assertEqual({(e["effect"], e["rule"])
                          for e in cells["lost/gone"]["events"]},
                         {("protocol_drop", "gone")})

    def test_port_taken_before_the_service_bound_it(self):
        # The first start fails as a bind to a taken port does; the cell
        # starts again with new ports, says so, and passes.
        spec = os.path.join(TESTDATA, "port_taken.star")
        marker = self.path("starts")
        rc, out, err = run("test", spec, "--var", "marker=" + marker, "--junit",
                           self.path("p.xml"))
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(out.splitlines()[-1], "1 passed, 0 failed")
        with open(marker) as f:
            self.assertEqual(f.read(), "start\n")
        case = next(ET.parse(self.path("p.xml")).getroot().find("testsuite").iter("testcase"))
        self.assertIn('service "api" could not listen: its port was taken before it started '
                      "(address already in use); the cell started again with new ports",
                      case.find("system-out").text)
        # A port that is never free: three starts, then the cell fails with
        # the service's own message.
        marker = self.path("starts-always")
        rc, out, err = run("test", spec, "--var", "marker=" + marker, "--var", "always=1")
        self.assertEqual(rc, 1, out + err)
        self.assertIn('service "api" exited (exit status 1) before it was ready', out)
        with open(marker) as f:
            self.assertEqual(f.read(), "start\n" * 3)

    def test_protocol_fault_errors(self):
        spec = os.path.join(TESTDATA, "protocol_errors.star")
        rc, out, err = run("test", spec)
        self.assertEqual((rc, out), (2, ""))
        self.assertEqual(err.splitlines()[0],
                         f"{spec}:3:60: http_error: status: \"700\" is not an HTTP status: "
                         "above 599")

    def test_targets_narrow_socket_rules(self):
        # recv= and send= with targets= fail front's traffic with back only:
        # its reads of /proc, a Unix socket pair and its exchange with the
        # runner are untouched (the spec checks the replies).
        port = port_outside_ephemeral_range()
        rc, out, err = run("test", os.path.join(TESTDATA, "targets.star"), "--var",
                           "back_port=%d" % port, "--json", self.path("t.json"))
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(out.splitlines()[-1], "3 passed, 0 failed")
        with open(self.path("t.json")) as f:
            cells = {c["name"]: c for c in json.load(f)["cells"]}

        def seen(name):
            return {(e["effect"], e["op"], e["errno_name"], e["target"])
                    for e in cells[name]["events"]}

        back = "127.0.0.1:%d" % port
        self.assertEqual(cells["probe/none"]["events"], [])
        self.assertEqual(seen("probe/back_resets"), {("deny", "recv", "ECONNRESET", back)})
        self.assertEqual(seen("probe/back_gone"), {("deny", "send", "EPIPE", back)})

    def test_fault_windows(self):
        # A read fault on conf (window_server.py reads window.conf when it
        # starts): in the scenario's window it fails GET /config and leaves
        # the start alone; from_start=True keeps the service from starting.
        spec = os.path.join(TESTDATA, "windows.star")
        rc, out, err = run("test", spec, "--json", self.path("w.json"))
        self.assertEqual(rc, 1, out + err)
        self.assertEqual(out.splitlines()[-1], "6 passed, 2 failed")
        with open(self.path("w.json")) as f:
            cells = {c["name"]: c for c in json.load(f)["cells"]}
        self.assertEqual({n: c["status"] for n, c in cells.items()}, {
            "config/none": "passed",
            "config/unreadable": "passed",  # ready, then 500 in the window
            "config/unreadable_from_start": "failed",
            "ping/unreadable": "failed",  # nothing read in the window
            "inside/none": "passed",
            "inside_slow/none": "passed",
            "start_stop/none": "passed",
            "quiet_window/none": "passed",
        })
        self.assertEqual(cells["config/unreadable_from_start"]["message"],
                         "service \"conf\" exited (exit status 1) before it was ready:\n"
                         "cannot read window.conf: Input/output error\n")
        self.assertEqual(cells["ping/unreadable"]["message"],
                         "fault \"unreadable\" never fired (no fault events from \"conf\"): the "
                         "scenario did not reach it; if that is expected, give "
                         "fault_assumption(..., expect_events=False)")

        def seen(name):
            return {(e["service"], e["rule"], e["effect"], e["op"]) for e in cells[name]["events"]}

        self.assertEqual(cells["config/none"]["events"], [])
        self.assertEqual(seen("config/unreadable"), {("conf", "unreadable", "deny", "read")})
        self.assertEqual(len(cells["config/unreadable"]["events"]), 1)  # GET /config only
        self.assertEqual(seen("start_stop/none"), {("conf", "unreadable", "deny", "read")})
        # A window of effect keywords is named after where it opens.
        self.assertEqual(seen("inside/none"), {("conf", "window-47-19", "deny", "read")})
        self.assertEqual({e["effect"] for e in cells["inside_slow/none"]["events"]}, {"latency"})
        self.assertEqual(cells["quiet_window/none"]["events"], [])

    def test_fault_window_errors(self):
        spec = os.path.join(TESTDATA, "window_errors.star")
        rc, out, err = run("test", spec, "--json", self.path("e.json"))
        self.assertEqual(rc, 1, out + err)
        self.assertEqual(out.splitlines()[-1], "0 passed, 7 failed")
        with open(self.path("e.json")) as f:
            last = {c["name"]: c["message"].splitlines()[-1] for c in json.load(f)["cells"]}
        self.assertEqual(last, {
            "nested/none":
                f"Error in fault_start: {spec}:17:16: service \"conf\" already has a fault "
                f"window, opened by fault_start at {spec}:16:16: a service has one window at a "
                "time (windows on one service do not nest or overlap); close it first with "
                "fault_stop(\"conf\")",
            "nested_run/none":
                f"Error in fault: {spec}:20:36: service \"conf\" already has a fault window, "
                f"opened by fault at {spec}:20:10: a service has one window at a time (windows "
                "on one service do not nest or overlap)",
            "stop_without_start/none":
                f"Error in fault_stop: {spec}:23:15: no fault window is open on service \"conf\"",
            "unknown_service/none":
                f"Error in fault: {spec}:26:11: no service named \"nope\" (services: \"conf\")",
            "never_fired/none":
                f"fault window \"window-29-10\" on \"conf\" (fault at {spec}:29:10) never fired "
                "(no fault events from \"conf\" while it was open): nothing in the window "
                "reached it; if that is expected, give fault(..., expect_events = False)",
            "counted/none":
                f"Error in fault: {spec}:32:29: \"window-32-10\": read= has a when counter, "
                "which a window cannot start from zero (it counts the service's calls since it "
                "started); give the fault to the matrix instead, where when counts from the "
                "start of the scenario",
            "in_check/none":
                f"Error in fault: {spec}:35:10: only inside a scenario's run function: the "
                "cell's faults are removed when it returns, before the check",
        })

    def test_fault_windows_on_a_shared_static_service(self):
        if not seccomp_layer_available():
            self.skipTest("no seccomp layer: the static kv_server cannot be faulted")
        spec = os.path.join(TESTDATA, "shared_window.star")
        rc, out, err = run("test", spec, "--var", "kv_server=" + KV_SERVER, "--json",
                           self.path("s.json"), "--junit", self.path("s.xml"))
        self.assertEqual(rc, 1, out + err)
        self.assertEqual(out.splitlines()[-1], "2 passed, 1 failed")
        with open(self.path("s.json")) as f:
            cells = {c["name"]: c for c in json.load(f)["cells"]}
        self.assertEqual({n: c["status"] for n, c in cells.items()}, {
            "window/none": "passed", "other_family/none": "failed",
            "set/fsync_fails": "passed"})
        self.assertEqual(cells["other_family/none"]["message"].splitlines()[-1],
                         f"Error in fault: {spec}:35:10: service \"kv\" runs with the seccomp "
                         "layer, whose filter fault exec built when the service started, for the "
                         "syscall families of the faults that target it (fsync); it cannot add "
                         "mkdir while the service runs: give mkdir to a fault_assumption that "
                         "targets \"kv\" (the filter then covers it from the start)")
        # One process, which took the window's fault and the next cell's.
        pid = answered_pids(self.path("s.xml"))["window/none"]
        self.assertEqual({(e["rule"], e["op"], e["layer"], e["pid"])
                          for e in cells["window/none"]["events"]},
                         {("fsync_fails", "fsync", "seccomp", pid)})
        self.assertEqual({(e["rule"], e["pid"]) for e in cells["set/fsync_fails"]["events"]},
                         {("fsync_fails", pid)})
        self.assertEqual(cells["other_family/none"]["events"], [])

    def spec_error(self, body):
        """Loads a spec of one service and `body`; returns (its path, stderr)."""
        spec = self.path("spec.star")
        with open(spec, "w") as f:
            f.write('svc = service("s", command = ["/bin/sleep", "60"])\n' + body +
                    'fault_matrix(scenarios = [scenario("a", run = lambda: 1)], faults = [x])\n')
        rc, out, err = run("test", spec)
        self.assertEqual((rc, out), (2, ""), err)
        self.assertEqual(err.splitlines()[-1], f"fault test: {spec}: spec error, nothing was run")
        return spec, err.splitlines()[0]

    def test_effects_fault_exec_does_not_apply(self):
        spec, line = self.spec_error('x = fault_assumption("x", packet_reorder = "5%")\n')
        self.assertEqual(line, f"{spec}:2:27: fault_assumption: \"x\": packet_reorder: fault exec "
                               "does not reorder packets (neither the preload shim nor the stream "
                               "engine implements packet_reorder; the shim only warns in the "
                               "service's log), so this fault would do nothing; leave it out")
        spec, line = self.spec_error(
            'x = fault_assumption("x",\n    payload_mutation = {"kind": "truncate", '
            '"truncate_to": 1})\n')
        self.assertEqual(line, f"{spec}:3:5: fault_assumption: \"x\": payload_mutation: fault "
                               "exec does not change payloads (neither the preload shim nor the "
                               "stream engine implements payload_mutation; the shim only warns in "
                               "the service's log), so this fault would do nothing; leave it out")

    def test_targets_on_a_family_they_cannot_narrow(self):
        spec, line = self.spec_error(
            'x = fault_assumption("x", read = deny("ECONNRESET"), '
            'targets = ["tcp://127.0.0.1:5432"])\n')
        self.assertEqual(line, f"{spec}:2:27: fault_assumption: \"x\": read= with targets=: "
                               "targets= select connections by their peer, and read also acts on "
                               "files, which have no peer: the rule would apply to every file the "
                               "service touches (its own files, /proc, /sys, its libraries), "
                               "whatever the targets. For one connection's traffic use recv= with "
                               "targets=; for files, give path= in a fault without targets= "
                               "(targets= apply to every rule of a fault, composed faults "
                               "included)")
        # Composed: the targets of one fault would reach the other's rule.
        spec, line = self.spec_error(
            'a = fault_assumption("a", latency = "5ms", targets = ["tcp://:80"])\n'
            'b = fault_assumption("b", fsync = deny("EIO"))\n'
            'x = fault_assumption("x", faults = [a, b])\n')
        self.assertTrue(line.startswith(f"{spec}:4:27: fault_assumption: \"x\": fsync= with "
                                        "targets=: targets= select connections by their peer, "
                                        "and fsync acts on files"), line)

    def test_filter_and_seed(self):
        runs = []
        for _ in range(2):
            rc, out, err = self.run_spec("notes.star", "--filter", "health/*", "--seed", "5")
            self.assertEqual(rc, 0, out + err)
            self.assertTrue(out.endswith("\n3 passed, 0 failed\n"), out)
            with open(self.path("out.json")) as f:
                report = json.load(f)
            self.assertEqual(report["seed"], 5)
            runs.append([(c["name"], [(e["effect"], e["op"], e.get("value", e.get("delay_ns")))
                                      for e in c["events"]]) for c in report["cells"]])
        self.assertEqual(runs[0], runs[1])

    def test_filter_matching_nothing(self):
        rc, out, err = run("test", os.path.join(EXAMPLES, "notes.star"), "--var",
                           "kv_server=" + KV_SERVER, "--filter", "nope/*")
        self.assertEqual((rc, out), (2, ""))
        self.assertEqual(err, "fault test: --filter nope/* matches no cell\n")

    def test_syntax_error(self):
        spec = os.path.join(TESTDATA, "syntax_error.star")
        rc, out, err = run("test", spec)
        self.assertEqual((rc, out), (2, ""))
        self.assertEqual(err, f"{spec}:5:1: got outdent, want )\n"
                              f"fault test: {spec}: spec error, nothing was run\n")

    def test_unknown_keyword(self):
        spec = os.path.join(TESTDATA, "unknown_keyword.star")
        rc, out, err = run("test", spec)
        self.assertEqual((rc, out), (2, ""))
        self.assertEqual(err, f"{spec}:6:5: fault_assumption: unexpected keyword argument "
                              "\"latncy\" (did you mean \"latency\"?)\n"
                              f"fault test: {spec}: spec error, nothing was run\n")

    def test_bad_errno_and_value(self):
        spec = os.path.join(TESTDATA, "bad_errno.star")
        rc, out, err = run("test", spec)
        self.assertEqual(rc, 2)
        self.assertEqual(err.splitlines()[0], f"{spec}:3:64: deny: \"EIOO\" is not an errno name "
                                              "(e.g. ENOSPC, EIO, ECONNREFUSED)")
        spec = os.path.join(TESTDATA, "bad_value.star")
        rc, out, err = run("test", spec)
        self.assertEqual(rc, 2)
        self.assertEqual(err.splitlines()[0], f"{spec}:3:49: fault_assumption: \"lossy\": "
                                              "packet_loss: \"150%\" is not a probability: above 100%")

    def test_missing_var(self):
        spec = os.path.join(EXAMPLES, "kv.star")
        rc, out, err = run("test", spec)
        self.assertEqual((rc, out), (2, ""))
        self.assertEqual(err, f"{spec}:16:20: key \"kv_server\" not in dict\n"
                              f"fault test: {spec}: spec error, nothing was run\n")

    def test_composition_conflict(self):
        spec = os.path.join(TESTDATA, "conflict.star")
        rc, out, err = run("test", spec)
        self.assertEqual(rc, 2)
        self.assertEqual(err.splitlines()[0], f"{spec}:5:33: fault_assumption: \"both\": latency is "
                                              "set twice differently: \"50ms\" by \"a\" and \"100ms\" by \"b\"")

    def test_hanging_scenario(self):
        spec = os.path.join(TESTDATA, "hang.star")
        start = time.monotonic()
        rc, out, err = run("test", spec, "--cell-timeout", "1s", "--junit", self.path("h.xml"))
        elapsed = time.monotonic() - start
        self.assertEqual(rc, 1, out + err)
        self.assertLess(elapsed, 20)
        lines = out.splitlines()
        self.assertEqual(lines[-1], "1 passed, 2 failed")
        self.assertRegex(lines[1], r"^hangs +none +FAIL .* Error in sleep: cell timed out after 1s "
                                   r"\(--cell-timeout\)$")
        self.assertRegex(lines[2], r"^spins +none +FAIL .*cell timed out after 1s \(--cell-timeout\)$")
        self.assertRegex(lines[3], r"^quick +none +PASS ")
        suite = ET.parse(self.path("h.xml")).getroot().find("testsuite")
        self.assertEqual(suite.get("failures"), "2")

    def test_scenario_builtins(self):
        rc, out, err = run("test", os.path.join(TESTDATA, "builtins.star"))
        self.assertEqual(rc, 0, out + err)
        self.assertTrue(out.endswith("\n3 passed, 0 failed\n"), out)

    def test_service_never_ready(self):
        rc, out, err = run("test", os.path.join(TESTDATA, "not_ready.star"))
        self.assertEqual(rc, 1, out + err)
        self.assertRegex(out.splitlines()[1], r"^noop +none +FAIL .* service \"never\" was not ready "
                                              r"after 1s \(port http \d+\)$")

    def test_service_exits_early(self):
        rc, out, err = run("test", os.path.join(TESTDATA, "exits_early.star"), "--json",
                           self.path("e.json"))
        self.assertEqual(rc, 1, out + err)
        with open(self.path("e.json")) as f:
            cell = json.load(f)["cells"][0]
        self.assertEqual(cell["message"], "service \"quits\" exited (exit status 4) before it was "
                                          "ready:\nstarting up\n")
        self.assertTrue(out.endswith("\n0 passed, 1 failed\n"), out)

    def test_cross_service_addresses(self):
        # Clients reach a server through its address read while the spec
        # loads (env, command, a reference written out, a scenario global),
        # in every cell with that cell's ports; a fixed port is the number.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            fixed_port = s.getsockname()[1]
        rc, out, err = run("test", os.path.join(TESTDATA, "cross_service.star"), "--var",
                           f"fixed_port={fixed_port}", "--json", self.path("c.json"))
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(out.splitlines()[-1], "6 passed, 0 failed")
        with open(self.path("c.json")) as f:
            cells = {c["name"]: c for c in json.load(f)["cells"]}
        self.assertEqual(set(cells), {"env/none", "command/none", "fixed/none", "written/none",
                                      "scenario/none", "env_slow/slow_client"})
        self.assertEqual({e["service"] for e in cells["env_slow/slow_client"]["events"]},
                         {"by_env"})

    def test_cross_service_reference_error(self):
        spec = os.path.join(TESTDATA, "bad_port_ref.star")
        rc, out, err = run("test", spec)
        self.assertEqual((rc, out), (2, ""))
        self.assertEqual(err, f"{spec}:3:25: service: \"client\": env DB_ADDR: "
                              "\"127.0.0.1:{db.mian}\": service \"db\" has no port \"mian\" "
                              "(its ports: \"main\")\n"
                              f"fault test: {spec}: spec error, nothing was run\n")

    def test_depends_on(self):
        # web needs api, which needs db, when they start; db listens only
        # after 0.4 s, and they are defined in the opposite order.
        spec = os.path.join(TESTDATA, "depends_on.star")
        rc, out, err = run("test", spec, "--junit", self.path("d.xml"))
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(out.splitlines()[-1], "1 passed, 0 failed")
        suite = ET.parse(self.path("d.xml")).getroot().find("testsuite")
        printed = suite.find("testcase").find("system-out").text.splitlines()[0]
        web = json.loads(printed)
        api = web["upstream"]
        db = api["upstream"]
        self.assertEqual((web["name"], api["name"], db["name"]), ("web", "api", "db"))
        # Each started after what it depends on was listening (ready).
        self.assertGreaterEqual(db["listening"] - db["started"], 0.4)
        self.assertGreater(api["started"], db["listening"])
        self.assertGreater(web["started"], api["listening"])
        # Without depends_on, all start at once and web finds nothing.
        rc, out, err = run("test", spec, "--var", "order=definition")
        self.assertEqual(rc, 1, out + err)
        self.assertIn('service "web" exited (exit status 1) before it was ready', out)

    def test_depends_on_errors(self):
        spec = os.path.join(TESTDATA, "depends_errors.star")
        want = {
            "cycle": f'{spec}:5:64: service: "b": depends_on: a cycle: "a" depends on "c", '
                     'which depends on "b", which depends on "a": none of them can start '
                     'first; remove one of these dependencies',
            "unknown": f'{spec}:9:64: service: "a": depends_on: no service named "dbb" '
                       '(services: "a", "db")',
            "itself": f'{spec}:13:50: service: depends_on: "a" cannot depend on itself',
            "shared_on_fresh": f'{spec}:17:68: service: "cache": depends_on: "db" starts again '
                               'for every cell, but "cache" is shared and starts once; make '
                               '"db" shared too, or "cache" not shared',
            "wrong_type": f'{spec}:20:70: service: depends_on: got int, want a service or its name',
        }
        for case, message in want.items():
            rc, out, err = run("test", spec, "--var", "case=" + case)
            self.assertEqual((rc, out), (2, ""), case)
            self.assertEqual(err.splitlines()[0], message)
            self.assertEqual(err.splitlines()[-1],
                             f"fault test: {spec}: spec error, nothing was run")

    def test_runs_and_replay(self):
        # flaky.star's fault denies the one fsync of a write with
        # probability 50%: whether it does depends on the seed.
        spec = os.path.join(TESTDATA, "flaky.star")
        rc, out, err = run("test", spec, "--runs", "20", "--jobs", "4",
                           "--json", self.path("runs.json"))
        self.assertEqual(rc, 1, out + err)
        lines = out.splitlines()
        self.assertRegex(lines[1], r"^write +none +PASS +20/20 ")
        m = re.match(r"^write +coin +FLAKY +(\d+)/20 +\S+ +seeds ([\d, ]+): Error in assert_eq: "
                     r"got 500, want 201", lines[2])
        self.assertTrue(m, lines[2])
        passed = int(m.group(1))
        self.assertTrue(0 < passed < 20, passed)
        failed_seeds = [int(x) for x in m.group(2).split(", ")]
        self.assertEqual(lines[-1], "1 passed, 0 failed, 1 flaky in 20 runs (seeds 1 to 20)")
        with open(self.path("runs.json")) as f:
            report = json.load(f)
        self.assertEqual(report["runs"], 20)
        cells = {(c["name"], c["seed"]): c for c in report["cells"]}
        self.assertEqual(len(cells), 40)
        self.assertEqual(sorted(s for (n, s), c in cells.items()
                                if c["status"] == "failed"), failed_seeds)
        self.assertEqual(len(failed_seeds), 20 - passed)
        # Every failed run has its replay line, and only those.
        replays = [l.strip() for l in lines if " --filter " in l]
        self.assertEqual(len(replays), len(failed_seeds))
        self.assertEqual(replays[0], f"{FAULT} test {spec} --filter write/coin --seed "
                                     f"{failed_seeds[0]}")

        def decisions(cell):
            return [(e["op"], e["effect"], e.get("errno_name")) for e in cell["events"]]

        # The replay line runs the cell alone and decides the same: it fails
        # again with the same events, and a seed that passed passes again.
        argv = shlex.split(replays[0])
        self.assertEqual(argv[0], FAULT)
        rc, out, err = run(*argv[1:], "--json", self.path("replay.json"))
        self.assertEqual(rc, 1, out + err)
        with open(self.path("replay.json")) as f:
            replayed = json.load(f)["cells"]
        self.assertEqual(len(replayed), 1)
        original = cells[("write/coin", failed_seeds[0])]
        self.assertEqual(replayed[0]["message"], original["message"])
        self.assertEqual(decisions(replayed[0]), decisions(original))
        self.assertEqual(decisions(original), [("fsync", "deny", "EIO")])
        good = min(s for (n, s), c in cells.items() if n == "write/coin" and c["status"] == "passed")
        rc, out, err = run("test", spec, "--filter", "write/coin", "--seed", str(good),
                           "--json", self.path("good.json"))
        self.assertEqual(rc, 0, out + err)
        with open(self.path("good.json")) as f:
            self.assertEqual(json.load(f)["cells"][0]["events"], [])

    def test_jobs(self):
        # Twelve cells of about 0.5 s each, four at a time: each cell has
        # its own port, directory and events.
        spec = os.path.join(TESTDATA, "jobs.star")
        start = time.monotonic()
        rc, out, err = run("test", spec, "--jobs", "4", "--json", self.path("j.json"),
                           "--junit", self.path("j.xml"))
        wall = time.monotonic() - start
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(out.splitlines()[-1], "12 passed, 0 failed")
        with open(self.path("j.json")) as f:
            cells = json.load(f)["cells"]
        serial = sum(c["seconds"] for c in cells)
        self.assertGreater(serial, 12 * 0.4)
        self.assertLess(wall, serial * 0.6, (wall, serial))
        for c in cells:
            kinds = {e["effect"] for e in c["events"]}
            self.assertEqual(kinds, {"latency"} if c["fault"] == "slow" else set(), c["name"])
        suite = ET.parse(self.path("j.xml")).getroot().find("testsuite")
        ports, dirs = set(), set()
        for tc in suite.iter("testcase"):
            m = re.search(r"^port (\d+) dir (\S+)$", tc.find("system-out").text, re.M)
            ports.add(m.group(1))
            dirs.add(m.group(2))
        self.assertEqual((len(ports), len(dirs)), (12, 12))
        # A fixed port can be bound by one cell at a time: one at a time.
        rc, out, err = run("test", spec, "--jobs", "4", "--filter", "s0/*",
                           "--var", "port=%d" % port_outside_ephemeral_range())
        self.assertEqual(rc, 0, out + err)
        self.assertRegex(err, r"fault test: --jobs 4: the cells ran one at a time: service "
                              r"\"echo\" has a fixed port \(http = \d+\), which one cell at a "
                              r"time can use\n")

    def test_runs_and_jobs_flags(self):
        spec = os.path.join(TESTDATA, "flaky.star")
        for flag, value, message in [
                ("--runs", "0", 'fault test: --runs: "0" is not a number from 1 to 10000'),
                ("--runs", "x", 'fault test: --runs: "x" is not a number from 1 to 10000'),
                ("--jobs", "65", 'fault test: --jobs: "65" is not a number from 1 to 64'),
                ("--jobs", "-1", 'fault test: --jobs: "-1" is not a number from 1 to 64')]:
            rc, out, err = run("test", spec, flag, value)
            self.assertEqual((rc, out, err), (2, "", message + "\n"), (flag, value))
        rc, out, err = run("test", spec, "--runs", "2", "--seed", str(2**64 - 1))
        self.assertEqual(rc, 2)
        self.assertIn("would pass 2^64 - 1", err)

    def test_timed_faults(self):
        # timed.star writes every 80 ms for about a second under an fsync
        # deny that is on from 300 ms for 400 ms ("late"), or for the first
        # 200 ms ("early"); "never" would start 5 s in.
        spec = os.path.join(TESTDATA, "timed.star")
        rc, out, err = run("test", spec, "--junit", self.path("t.xml"),
                           "--json", self.path("t.json"))
        self.assertEqual(rc, 1, out + err)
        self.assertEqual(out.splitlines()[-1], "2 passed, 1 failed")
        suite = ET.parse(self.path("t.xml")).getroot().find("testsuite")
        printed = {tc.get("name"): tc.find("system-out").text for tc in suite.iter("testcase")}
        with open(self.path("t.json")) as f:
            cells = {c["name"]: c for c in json.load(f)["cells"]}
        slack = 60  # ms: a reload, and a loaded machine
        for name, on, off in [("timeline/late", 300, 700), ("timeline/early", 0, 200)]:
            writes = json.loads(re.search(r"^writes (.*)$", printed[name], re.M).group(1))
            start_ns = int(re.search(r"^start_ns (\d+)$", printed[name], re.M).group(1))
            denied = 0
            for began, ended, status in writes:
                if ended < on or began > off + slack:
                    self.assertEqual(status, 201, (name, began, ended))
                elif began > on + slack and ended < off:
                    self.assertEqual(status, 500, (name, began, ended))
                    denied += 1
            self.assertGreaterEqual(denied, 2 if on == 0 else 3, (name, writes))
            # Every deny event, timed from outside, lies in the window.
            events = cells[name]["events"]
            self.assertEqual(len(events), sum(1 for w in writes if w[2] == 500))
            for e in events:
                self.assertEqual((e["op"], e["errno_name"], e["rule"]),
                                 ("fsync", "EIO", name.split("/")[1]))
                at = (e["time_ns"] - start_ns) / 1e6
                self.assertTrue(on <= at <= off + slack, (name, at))
        self.assertEqual(cells["quick/never"]["message"],
                         f'fault "never" never fired: it was to go on 5s into the scenario\'s run '
                         f'(after=, {spec}:11:71), and run() returned before; if that is '
                         f'expected, give fault_assumption(..., expect_events=False)')

    def test_timed_fault_errors(self):
        spec = os.path.join(TESTDATA, "timed_errors.star")
        want = {
            "with_from_start": f'{spec}:6:62: fault_assumption: "a": after= and lasting= time a '
                               'fault within the scenario\'s run, and from_start = True puts it in '
                               'force from the services\' start: give one or the other',
            "with_partition": f'{spec}:9:62: fault_assumption: "a": a partition applies from the '
                              'start of the cell\'s services (fault exec sets it up when it starts '
                              'them), so it cannot be timed with after= or lasting=',
            "zero": f'{spec}:12:62: fault_assumption: "a": lasting: want a duration above 0',
            "bad": f'{spec}:15:62: fault_assumption: "a": for parameter "after": "soon" is not a '
                   'duration: expected a number at "soon"',
            "parts_differ": f'{spec}:20:30: fault_assumption: "both": "x" and "y" are timed '
                            'differently (after=, lasting=), and a composition is one policy, '
                            'applied at one time: give the composition its own after= and lasting=',
        }
        for case, message in want.items():
            rc, out, err = run("test", spec, "--var", "case=" + case)
            self.assertEqual((rc, out), (2, ""), case)
            self.assertEqual(err.splitlines()[0], message)
        # In a window of the scenario: the cell fails with the position.
        rc, out, err = run("test", spec, "--var", "case=in_window", "--json", self.path("w.json"))
        self.assertEqual(rc, 1, out + err)
        with open(self.path("w.json")) as f:
            message = json.load(f)["cells"][0]["message"]
        self.assertEqual(message.splitlines()[-1],
                         f'Error in fault: {spec}:23:57: unexpected keyword argument "after" (a '
                         'window is in force where the scenario opens and closes it: sleep() '
                         'before fault_start, or between it and fault_stop; give after= and '
                         'lasting= to a fault_assumption of the matrix)')

    def test_parallel(self):
        spec = os.path.join(TESTDATA, "parallel.star")
        rc, out, err = run("test", spec, "--cell-timeout", "2s", "--json", self.path("p.json"),
                           "--junit", self.path("p.xml"))
        self.assertEqual(rc, 1, out + err)
        self.assertEqual(out.splitlines()[-1], "2 passed, 4 failed")
        with open(self.path("p.json")) as f:
            cells = {c["name"]: c for c in json.load(f)["cells"]}
        suite = ET.parse(self.path("p.xml")).getroot().find("testsuite")
        printed = {tc.get("name"): tc.find("system-out").text for tc in suite.iter("testcase")}
        # Three 400 ms sleeps at once: about 400 ms, not 1.2 s; every
        # branch printed, the results in order.
        out3 = printed["three_sleeps/none"]
        self.assertEqual(sorted(re.findall(r"^branch \d done$", out3, re.M)),
                         ["branch 1 done", "branch 2 done", "branch 3 done"])
        elapsed = int(re.search(r"^results \[1, 2, 3\] elapsed_ms (\d+)$", out3, re.M).group(1))
        self.assertTrue(400 <= elapsed < 800, elapsed)
        self.assertLess(cells["three_sleeps/none"]["seconds"], 1.1)
        # A window opened in one branch slows that branch's service only.
        m = re.search(r"^slow_ms (\d+) fast_ms (\d+) elapsed_ms (\d+)$",
                      printed["window_in_one_branch/none"], re.M)
        slow, fast, both = map(int, m.groups())
        self.assertGreaterEqual(slow, 400)
        self.assertLess(fast, 300)
        self.assertLess(both, slow + 300)
        self.assertEqual({(e["service"], e["effect"]) for e in cells["window_in_one_branch/none"]["events"]},
                         {("a", "latency")})
        last = {n: c["message"].splitlines()[-1] for n, c in cells.items() if c["message"]}
        self.assertEqual(cells["bad_one_fails/none"]["message"].splitlines()[2:],
                         ["Error in parallel: function 2 of 3 (<function boom>) failed:",
                          "Traceback (most recent call last):",
                          f"  {spec}:37:9: in boom",
                          "Error in fail: fail: branch two broke"])
        # A branch that spins is cancelled at the cell timeout.
        self.assertEqual(last["bad_spins/none"],
                         "Error in parallel: cell timed out after 2s (--cell-timeout)")
        self.assertLess(cells["bad_spins/none"]["seconds"], 4)
        self.assertEqual(last["bad_no_functions/none"],
                         "Error in parallel: got no functions, want one or more (parallel(f, g))")
        self.assertEqual(last["bad_not_a_function/none"],
                         "Error in parallel: argument 2: got string, want a function without "
                         "parameters")

    def test_mock_services(self):
        # mock.star's scenarios check the canned replies themselves (status,
        # body, headers, delay, dropped connection, default, TCP lines); here
        # what shows from outside: the cells, the delay, the mock's events.
        spec = os.path.join(TESTDATA, "mock.star")
        rc, out, err = run("test", spec, "--json", self.path("m.json"), "--junit", self.path("m.xml"))
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(out.splitlines()[-1], "4 passed, 0 failed")
        with open(self.path("m.json")) as f:
            cells = {c["name"]: c for c in json.load(f)["cells"]}
        suite = ET.parse(self.path("m.xml")).getroot().find("testsuite")
        printed = {tc.get("name"): (tc.find("system-out").text or "") for tc in suite.iter("testcase")}
        slow = int(re.search(r"^slow_ms (\d+)$", printed["http/none"], re.M).group(1))
        self.assertTrue(300 <= slow < 1000, slow)
        # A fault on the mock reaches it (it runs under fault exec).
        self.assertEqual({(e["service"], e["effect"]) for e in cells["wired/slow_mock"]["events"]},
                         {("payments", "latency")})
        self.assertEqual(cells["wired/none"]["events"], [])
        # `fault mock` on its own: a bad file is refused.
        bad = self.path("bad.json")
        with open(bad, "w") as f:
            f.write('{"protocol": "udp", "routes": []}')
        p = subprocess.run([FAULT, "mock", bad, "0"], capture_output=True, text=True, timeout=30)
        self.assertEqual((p.returncode, p.stderr),
                         (2, f"fault mock: {bad}: protocol \"udp\": want http or tcp\n"))

    def test_mock_service_errors(self):
        spec = os.path.join(TESTDATA, "mock_errors.star")
        want = {
            "both": f'{spec}:4:42: mock_service: "m": give http = {{...}} or tcp = {{...}} (one of them)',
            "neither": f'{spec}:7:17: mock_service: "m": give http = {{...}} or tcp = {{...}} (one of them)',
            "bad_key": f'{spec}:10:31: mock_service: http: "FETCH": want "METHOD /path" or "/path" '
                       '(the path may be a glob: "GET /items/*")',
            "lower_method": f'{spec}:13:31: mock_service: http: "get /x": "get" is not a method '
                            '(upper-case letters: GET, POST, ...)',
            "bad_status": f'{spec}:16:45: respond: status 700 is not an HTTP status (100 to 599)',
            "tcp_status": f'{spec}:19:30: mock_service: "m": a TCP mock replies with bytes, not an '
                          f'HTTP status (respond at {spec}:19:45): leave out the status',
            "wrong_value": f'{spec}:22:31: mock_service: got int, want respond(...) or a string',
            "bad_delay": f'{spec}:25:55: respond: for parameter "delay": "soon" is not a duration: '
                         'expected a number at "soon"',
        }
        for case, message in want.items():
            rc, out, err = run("test", spec, "--var", "case=" + case)
            self.assertEqual((rc, out), (2, ""), case)
            self.assertEqual(err.splitlines()[0], message)

    def test_faultbox_style_example(self):
        # The README's command, from the repository's root.
        root = os.path.dirname(os.path.dirname(os.path.abspath(EXAMPLES)))
        p = subprocess.run([FAULT, "test", "examples/specs/notes_upstream.star",
                            "--json", self.path("n.json")],
                           capture_output=True, text=True, timeout=120, cwd=root)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stdout.splitlines()[-1], "6 passed, 0 failed")
        with open(self.path("n.json")) as f:
            cells = {c["name"]: c for c in json.load(f)["cells"]}

        def seen(name):
            return sorted({(e["service"], e["effect"], e["op"]) for e in cells[name]["events"]})

        self.assertEqual(seen("write_two/none"), [])
        self.assertEqual(seen("disk_fails_once/none"), [("notes", "deny", "fdatasync")])
        self.assertEqual(seen("upstream/none"), [])
        self.assertEqual(seen("upstream/stock_slow"),
                         [("stock", "latency", "recv"), ("stock", "latency", "send")])
        self.assertEqual(seen("upstream/stock_refused"), [("notes", "deny", "connect")])
        self.assertEqual(seen("poll_upstream/stock_blip"), [("notes", "deny", "connect")])

    def test_explore_timing(self):
        # explore.star writes twice and reads once; only the first write
        # must succeed, so its fsync deny fails the cell only when it goes
        # on before the first operation.
        spec = os.path.join(TESTDATA, "explore.star")
        rc, out, err = run("test", spec, "--explore-timing", "--json", self.path("e.json"))
        self.assertEqual(rc, 1, out + err)
        lines = out.splitlines()
        self.assertRegex(lines[1], r"^writes +none +PASS ")
        self.assertRegex(lines[2], r"^writes +disk @op 1/3 http\.post +FAIL .* Error in assert_eq: "
                                   r"got 500, want 201: the first write must be stored$")
        self.assertRegex(lines[3], r"^writes +disk @op 2/3 http\.post +PASS ")
        self.assertRegex(lines[4], r"^writes +disk @op 3/3 http\.get +PASS ")
        self.assertEqual(lines[-1], "3 passed, 1 failed")
        replay = f"{FAULT} test {spec} --filter writes/disk --seed 1 --fault-at-op 1"
        self.assertIn("  " + replay, lines)
        with open(self.path("e.json")) as f:
            cells = json.load(f)["cells"]
        self.assertEqual([(c["fault_at_op"], c["operation"], len(c["events"])) for c in cells],
                         [(0, "", 0), (1, "http.post", 2), (2, "http.post", 1), (3, "http.get", 0)])
        # The replay line runs that position alone, with the same outcome.
        rc, out, err = run(*shlex.split(replay)[1:], "--json", self.path("r.json"))
        self.assertEqual(rc, 1, out + err)
        with open(self.path("r.json")) as f:
            again = json.load(f)["cells"]
        self.assertEqual([(c["fault_at_op"], c["status"], len(c["events"])) for c in again],
                         [(1, "failed", 2)])
        for args, message in [
                (["--fault-at-op", "0"], 'fault test: --fault-at-op: "0" is not a number from 1 '
                                         'to 1000000 (the scenario\'s operations count from 1)'),
                (["--fault-at-op", "2", "--explore-timing"],
                 "fault test: --fault-at-op and --explore-timing: give one (--explore-timing "
                 "tries every operation)")]:
            rc, out, err = run("test", spec, *args)
            self.assertEqual((rc, out, err), (2, "", message + "\n"), args)

    def test_readme_notes_command(self):
        # The README's command, from the repository's root, with kv_server
        # given relative to it (one quick cell of it).
        root = os.path.dirname(os.path.dirname(os.path.abspath(EXAMPLES)))
        p = subprocess.run([FAULT, "test", "examples/specs/notes.star", "--var",
                            "kv_server=" + os.path.relpath(KV_SERVER, root),
                            "--filter", "health/none", "--report", self.path("notes.md")],
                           capture_output=True, text=True, timeout=120, cwd=root)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stdout.splitlines()[-1], "1 passed, 0 failed")

    def test_monitors(self):
        spec = os.path.join(TESTDATA, "monitor.star")
        rc, out, err = run("test", spec, "--json", self.path("m.json"), "--junit", self.path("m.xml"))
        self.assertEqual(rc, 1, out + err)
        self.assertEqual(out.splitlines()[-1], "2 passed, 1 failed")
        with open(self.path("m.json")) as f:
            cells = {c["name"]: c for c in json.load(f)["cells"]}
        self.assertEqual({n: c["status"] for n, c in cells.items()},
                         {"ping/none": "passed", "ping/small": "passed", "ping/big": "failed"})
        message = cells["ping/big"]["message"].splitlines()
        self.assertRegex(message[0], r"^monitor <function at_most_200ms> \(" + re.escape(spec) +
                         r":15:8\) failed on the event 0\.\d{3}s pong latency (recv|send) "
                         r"127\.0\.0\.1:\d+ \(rule big\):$")
        self.assertEqual(message[-1], "Error in fail: fail: a delay of 300ms (at most 200ms)")
        # It saw each latency event of the passing cell, and printed.
        suite = ET.parse(self.path("m.xml")).getroot().find("testsuite")
        printed = {tc.get("name"): (tc.find("system-out").text or "") if tc.find("system-out") is not None else ""
                   for tc in suite.iter("testcase")}
        self.assertEqual(sorted(re.findall(r"^monitor saw .*$", printed["ping/small"], re.M)),
                         ["monitor saw latency recv 100 ms", "monitor saw latency send 100 ms"])
        self.assertNotIn("monitor saw", printed["ping/none"])
        # Mistakes.
        spec = os.path.join(TESTDATA, "monitor_errors.star")
        for case, message in {
                "not_a_function": f'{spec}:5:13: monitor: for parameter "fn": got int, want a '
                                  'function of an event',
                "unknown_kind": f'{spec}:8:29: monitor: kind "dney" is not a kind of fault event',
                "unknown_service": f'{spec}:11:29: monitor: service "nope" is not a service of '
                                   'the spec (services: "svc")'}.items():
            rc, out, err = run("test", spec, "--var", "case=" + case)
            self.assertEqual((rc, out), (2, ""), case)
            self.assertTrue(err.splitlines()[0].startswith(message), err)
        rc, out, err = run("test", spec, "--var", "case=in_scenario", "--json", self.path("e.json"))
        self.assertEqual(rc, 1, out + err)
        with open(self.path("e.json")) as f:
            self.assertEqual(json.load(f)["cells"][0]["message"].splitlines()[-1],
                             "Error in monitor: monitor: only at the top level of a spec, while "
                             "it loads")

    def test_load(self):
        # The service, a fault and the scenario functions come from loaded
        # files (lib/common.star is loaded three times and runs once).
        rc, out, err = run("test", os.path.join(TESTDATA, "load_spec.star"), "--json",
                           self.path("l.json"))
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(out.splitlines()[-1], "2 passed, 0 failed")
        with open(self.path("l.json")) as f:
            cells = {c["name"]: c for c in json.load(f)["cells"]}
        self.assertEqual({e["effect"] for e in cells["get/slow"]["events"]}, {"latency"})

    def test_load_errors(self):
        spec = os.path.join(TESTDATA, "load_missing.star")
        rc, out, err = run("test", spec)
        self.assertEqual((rc, out), (2, ""))
        self.assertEqual(err, f"{spec}:3:1: cannot load lib/nope.star: "
                              f"{TESTDATA}/lib/nope.star: cannot read: No such file or directory\n"
                              f"fault test: {spec}: spec error, nothing was run\n")
        spec = os.path.join(TESTDATA, "load_cycle.star")
        lib = os.path.join(TESTDATA, "lib", "cycle.star")
        rc, out, err = run("test", spec)
        self.assertEqual((rc, out), (2, ""))
        self.assertEqual(err.splitlines()[0],
                         f"{lib}:1:1: cannot load ../load_cycle.star: load cycle: {spec} loads "
                         f"{lib}, which loads {spec}")
        # An error in a loaded file leads with its position there; the
        # backtrace shows the load.
        spec = os.path.join(TESTDATA, "load_error.star")
        lib = os.path.join(TESTDATA, "lib", "bad.star")
        rc, out, err = run("test", spec)
        self.assertEqual((rc, out), (2, ""))
        self.assertEqual(err.splitlines()[:4], [
            f"{lib}:3:50: deny: \"EIOO\" is not an errno name (e.g. ENOSPC, EIO, ECONNREFUSED)",
            "Traceback (most recent call last):",
            f"  {spec}:2:1: in <toplevel>",
            f"  {lib}:3:49: in <toplevel>"])

    def test_bad_cell_timeout(self):
        rc, out, err = run("test", os.path.join(TESTDATA, "hang.star"), "--cell-timeout", "soon")
        self.assertEqual(rc, 2)
        self.assertTrue(err.startswith("fault test: --cell-timeout: \"soon\" is not a positive duration"), err)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1] + sys.argv[5:], verbosity=2)
