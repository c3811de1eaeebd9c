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
        self.assertEqual(out, f"{spike}: 1 policy OK\n{everything}: 3 policies OK\n")

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
