#!/usr/bin/python3
"""`fault policy validate` and `fault policy show` as a user runs them.

usage: policy_cli_test.py FAULT_BINARY EXAMPLES_DIR TESTDATA_DIR
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

FAULT, EXAMPLES, TESTDATA = sys.argv[1:4]


def run(*args):
    p = subprocess.run([FAULT, *args], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


class PolicyCliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, name, text):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_validate_ok(self):
        spike = os.path.join(EXAMPLES, "spike.json")
        everything = os.path.join(EXAMPLES, "everything.yaml")
        rc, out, err = run("policy", "validate", spike, everything)
        self.assertEqual((rc, err), (0, ""))
        self.assertEqual(out, f"{spike}: 1 policy OK\n{everything}: 4 policies OK\n")

    def test_validate_reports_every_error_and_exits_1(self):
        bad = self.write("slow.yaml",
                         "# slow link\nslow_link:\n  jitter: 3ms\n  latency: \"7 ms\"\n"
                         "other:\n  packet_loss: 150%\n")
        good = self.write("good.yaml", "g: {latency: 1ms}\n")
        rc, out, err = run("policy", "validate", bad, good)
        self.assertEqual(rc, 1)
        self.assertEqual(out, f"{good}: 1 policy OK\n")
        self.assertEqual(
            err,
            f"{bad}:4:12: policy \"slow_link\": latency: \"7 ms\" is not a duration: "
            "unknown unit \" ms\" (use ns, us, ms, s, m or h)\n"
            f"{bad}:6:16: policy \"other\": packet_loss: \"150%\" is not a probability: "
            "above 100%\n")

    def test_validate_accepts_hundreds_of_targets(self):
        # The table holds 1024 targets over all policies, not 8 per policy.
        text = "many:\n  latency: 1ms\n  targets:\n"
        text += "".join(f"    - tcp://127.0.0.1:{1000 + i}\n" for i in range(200))
        p = self.write("many.yaml", text)
        rc, out, err = run("policy", "validate", p)
        self.assertEqual((rc, err), (0, ""))
        self.assertEqual(out, f"{p}: 1 policy OK\n")

    def test_validate_refuses_what_exec_refuses(self):
        # Bounds of the table that only the compiler knows: validate runs it.
        cases = {
            "rules.yaml": ("".join(f"p{i}: {{latency: 1ms}}\n" for i in range(65)),
                           "65 policies; the table holds at most 64 (FAULT_MAX_RULES)"),
            "targets.yaml": (
                "".join(f"p{k}:\n  latency: 1ms\n  targets:\n" +
                        "".join(f"    - tcp://127.0.0.1:{1000 + i}\n" for i in range(513))
                        for k in range(2)),
                "1026 targets in all policies; the table holds at most 1024 "
                "(FAULT_MAX_TARGETS_TOTAL)"),
            "syscalls.yaml": (
                "s:\n  syscalls:\n" + "    - write: deny(EIO)\n" * 129,
                "129 syscall faults in all policies; the table holds at most 128 "
                "(FAULT_MAX_SYSCALL_RULES)"),
            "partitions.yaml": (
                "s:\n  partition: [" + ", ".join(f"[a, b{i}]" for i in range(9)) + "]\n",
                "9 partitions in all policies; the table holds at most 8 "
                "(FAULT_MAX_PARTITIONS)"),
            "intervals.yaml": (
                "s:\n  latency: 1ms\n  schedule: {kind: intervals, intervals: \"" +
                ";".join(f"start:{i}s,duration:1s" for i in range(9)) + "\"}\n",
                "policy \"s\": schedule has 9 intervals; the table holds at most 8 "
                "(FAULT_MAX_INTERVALS)"),
        }
        for name, (text, message) in cases.items():
            with self.subTest(name):
                p = self.write(name, text)
                rc, out, err = run("policy", "validate", p)
                self.assertEqual((rc, out), (1, ""), err)
                self.assertEqual(err, f"{p}: {message}\n")

    def test_validate_files_that_fit_alone_but_not_together(self):
        def targets(name):
            return (f"{name}:\n  latency: 1ms\n  targets:\n" +
                    "".join(f"    - tcp://127.0.0.1:{1000 + i}\n" for i in range(600)))
        a = self.write("a.yaml", targets("a"))
        b = self.write("b.yaml", targets("b"))
        rc, out, err = run("policy", "validate", a, b)
        self.assertEqual(rc, 1)
        self.assertEqual(out, f"{a}: 1 policy OK\n{b}: 1 policy OK\n")
        self.assertEqual(err, "the files together: 1200 targets in all policies; the table "
                              "holds at most 1024 (FAULT_MAX_TARGETS_TOTAL)\n")

    def test_validate_refuses_devices_before_reading(self):
        rc, out, err = run("policy", "validate", "/dev/zero")
        self.assertEqual((rc, out), (1, ""))
        self.assertEqual(err, "/dev/zero: cannot read: a character device, not a regular "
                              "file\n")

    def test_validate_json_syntax_error(self):
        bad = self.write("bad.json", "{\"a\": {\"latency\": \"7ms\",}}")
        rc, out, err = run("policy", "validate", bad)
        self.assertEqual((rc, out), (1, ""))
        self.assertEqual(err, f"{bad}:1:25: syntax error while parsing object key - "
                              "unexpected '}'; expected string literal\n")

    def test_validate_duplicate_names_across_files(self):
        a = self.write("a.yaml", "x: {latency: 1ms}\n")
        b = self.write("b.yaml", "y: {latency: 1ms}\nx: {jitter: 1ms}\n")
        rc, out, err = run("policy", "validate", a, b)
        self.assertEqual(rc, 1)
        self.assertEqual(err, f"{b}:2:1: policy \"x\" is already defined at {a}:1:1\n")

    def test_validate_missing_file_and_usage(self):
        rc, _, err = run("policy", "validate", os.path.join(self.tmp.name, "none.yaml"))
        self.assertEqual(rc, 1)
        self.assertIn("none.yaml: cannot read: No such file or directory", err)
        rc, _, _ = run("policy", "validate")
        self.assertEqual(rc, 2)

    def test_show_json_is_the_canonical_proto(self):
        rc, out, err = run("policy", "show", os.path.join(EXAMPLES, "spike.json"), "--json")
        self.assertEqual((rc, err), (0, ""))
        with open(os.path.join(TESTDATA, "spike.show.json")) as f:
            expected = json.load(f)
        self.assertEqual(json.loads(out), expected)
        link = json.loads(out)["policies"][0]["link"]
        self.assertEqual(link["latency"]["fixed_ns"], "7000000")
        self.assertEqual(link["packet_loss_ppm"], 2000)

    def test_show_text_uses_canonical_units(self):
        p = self.write("p.yaml", "p: {latency: 0.25s, packet_loss: 0.5, rate: 1500kbps}\n")
        rc, out, err = run("policy", "show", p)
        self.assertEqual((rc, err), (0, ""))
        self.assertEqual(out, "p:\n  latency: 250ms\n  packet_loss: 50%\n  rate: 1.5mbps\n")

    def test_show_invalid_file_exits_1(self):
        p = self.write("p.yaml", "p: {latncy: 1ms}\n")
        rc, out, err = run("policy", "show", p)
        self.assertEqual((rc, out), (1, ""))
        self.assertEqual(err, f"{p}:1:5: policy \"p\": unknown field \"latncy\" "
                              "(did you mean \"latency\"?)\n")


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
