#!/usr/bin/python3
"""Runs each benchmark program under `fault starlark` and under python3 in
the same run, several repetitions each (interleaved), and prints a Markdown
table of median CPU times (user+sys of the child) and their ratio.

  tools/bench/starlark/compare.py [--fault build/release/bin/fault] [--reps 5]
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = [
    ("fib.star", "fibonacci by loop"),
    ("strings.star", "string building"),
    ("dicts.star", "dict-heavy"),
    ("sort.star", "sorting"),
]


def cpu_time(cmd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return t, out.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fault", default=os.path.join(HERE, "../../../build/release/bin/fault"))
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    rows = []
    for prog, desc in PROGRAMS:
        star = os.path.join(HERE, prog)
        py = os.path.join(HERE, prog.replace(".star", ".py"))
        ts, tp = [], []
        for _ in range(args.reps):
            t, out_s = cpu_time([args.fault, "starlark", star])
            ts.append(t)
            t, out_p = cpu_time([args.python, py])
            tp.append(t)
            if out_s != out_p:
                sys.exit("%s: outputs differ: %r vs %r" % (prog, out_s, out_p))
        ms, mp = statistics.median(ts), statistics.median(tp)
        rows.append((desc, prog, ms, mp, ms / mp))
    print("| program | file | fault starlark (s) | python3 (s) | ratio (starlark/python) |")
    print("|---|---|---:|---:|---:|")
    for desc, prog, ms, mp, r in rows:
        print("| %s | %s | %.3f | %.3f | %.2f |" % (desc, prog, ms, mp, r))
    print()
    print("Median CPU time (user+sys) of %d interleaved runs each; %s." % (
        args.reps, subprocess.run([args.python, "--version"], stdout=subprocess.PIPE, text=True).stdout.strip()))


main()
