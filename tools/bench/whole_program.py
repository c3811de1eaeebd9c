#!/usr/bin/python3
"""Whole-program overhead of `fault exec` and its peers, paired against bare.

Runs a workload bare and under each peer (`fault exec` with no policy, with a
policy that matches nothing, with a seccomp filter that covers nothing the
workload does, `fiu-run -x`, strace injecting into an unrelated syscall) and
reports, for every peer, the median of per-pair ratios to bare with a 95%
confidence interval, for four measures:

  loop wall  the time the workload measures around its own loop (no start-up)
  loop CPU   user+sys the workload's process spent in that loop (all its
             threads; getrusage(RUSAGE_SELF) before and after): the per-call
             cost of a wrapper, without start-up and without the supervisor
  wall       start to exit of the whole command, as its parent sees it
  CPU        user+sys of the whole process tree (wait4's rusage of the
             command, which includes every descendant it reaped: fault's
             supervisor and the program, strace and its tracee, ...)

Pairing: every round runs the peers in a shuffled order, each bracketed by
bare runs (B P1 B P2 B ... B); a peer's ratio is its run divided by the mean
of the two bare runs next to it, so slow drifts of machine load cancel out.
Rounds repeat until the time budget is spent (at least --min-rounds). The
interval is the distribution-free one for a median (order statistics of the
ratios chosen from the binomial distribution, as for the sign test): it
assumes only that rounds are independent.

  tools/bench/whole_program.py --build build/release pingpong
  tools/bench/whole_program.py --build build/release static-io
  (--seconds N for the budget, --long for 10 minutes, --instructions for
  user-space instruction counts under callgrind; --help for the rest)
"""

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time

from benchstats import median_ci

NONMATCHING_POLICY = """\
elsewhere:
  targets:
    - target: tcp://192.0.2.1:9
  latency: 100ms
"""


class Peer:
  def __init__(self, name, prefix, args=None, goal=None, instructions=True,
               slow=False):
    self.name = name
    self.prefix = prefix          # argv before the program
    self.args = args              # program arguments (None: the workload's)
    self.goal = goal              # the ratio the project aims at, if any
    self.instructions = instructions  # meaningful under callgrind
    self.slow = slow              # runs only every --slow-every rounds
    self.vs = None                # another peer to compare with directly
    self.by_round = {}            # round -> sample
    self.samples = []             # (loop_ns, loop_cpu_ns, wall_ns, cpu_ns)
    self.ratios = []              # the same four, per pair


def workload_pingpong(build, tmp, rounds):
  prog = os.path.join(build, "bin", "fault_target_pingpong")
  fault = os.path.join(build, "bin", "fault")
  policy = os.path.join(tmp, "nonmatching.yaml")
  with open(policy, "w") as f:
    f.write(NONMATCHING_POLICY)
  rounds = rounds or 10000
  args = [str(rounds), "64"]

  def sized(n):
    return [str(n), "64"]

  def parse(out):
    # "ROUNDS round trips in N us, cpu M us"
    w = out.replace(",", " ").split()
    return int(w[4]) * 1000, int(w[7]) * 1000

  q = [fault, "exec", "--quiet"]
  peers = [
      Peer("fault exec, no policy", q + ["--"], goal=1.02),
      Peer("fault exec, non-matching network policy",
           q + ["--policy", policy, "--"], goal=1.02),
      Peer("fault exec --deny fsync=EIO (shim + seccomp filter, nothing covered)",
           q + ["--deny", "fsync=EIO", "--"], goal=1.02),
      Peer("fault exec --layer seccomp --deny fsync=EIO (filter only)",
           q + ["--layer", "seccomp", "--deny", "fsync=EIO", "--"], goal=1.02),
      Peer("fiu-run -x", ["fiu-run", "-x"]),
      Peer("strace -f -e inject=fdatasync:error=EIO",
           ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=fdatasync",
            "-e", "inject=fdatasync:error=EIO"], instructions=False, slow=True),
      Peer("strace -f --seccomp-bpf -e inject=fdatasync:error=EIO",
           ["strace", "-f", "--seccomp-bpf", "-qq", "-o", "/dev/null", "-e",
            "trace=fdatasync", "-e", "inject=fdatasync:error=EIO"],
           instructions=False, slow=True),
  ]
  what = ("%d round trips of 64 bytes over one TCP connection on 127.0.0.1 "
          "(tests/targets/pingpong.cc, dynamically linked, 2 threads)" % rounds)
  return prog, args, parse, peers, what, sized


def workload_static_io(build, tmp, rounds):
  prog = os.path.join(build, "bin", "seccomp_workload")
  fault = os.path.join(build, "bin", "fault")
  rounds = rounds or 100000
  args = [tmp, str(rounds), "4096"]
  sized = None  # callgrind cannot run a program that installs a filter

  def parse(out):
    # "ELAPSED_NS CPU_NS"
    w = out.split()
    return int(w[0]), int(w[1])

  peers = [
      Peer("ret ALLOW filter (any filter's floor)", [], args=args + ["allow"]),
      Peer("fault exec --deny connect=ECONNREFUSED (filter, nothing covered)",
           [fault, "exec", "--quiet", "--deny", "connect=ECONNREFUSED", "--"],
           goal=1.02),
      Peer("strace -f --seccomp-bpf -e inject=connect:error=ECONNREFUSED",
           ["strace", "-f", "--seccomp-bpf", "-qq", "-o", "/dev/null", "-e",
            "trace=connect", "-e", "inject=connect:error=ECONNREFUSED"],
           slow=True),
  ]
  peers[1].vs = peers[0].name  # fault's filter against the floor
  what = ("%d rounds of pwrite+pread 4 KiB, lseek, getppid on a file "
          "(tools/bench/seccomp_workload.c, statically linked)" % rounds)
  return prog, args, parse, peers, what, sized


WORKLOADS = {"pingpong": workload_pingpong, "static-io": workload_static_io}


def run(argv, parse, tmp):
  """Runs argv; returns (loop_ns, loop_cpu_ns, wall_ns, cpu_ns) or raises."""
  out_path = os.path.join(tmp, "stdout")
  err_path = os.path.join(tmp, "stderr")
  out_fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
  err_fd = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
  try:
    exe = shutil.which(argv[0]) or argv[0]
    start = time.perf_counter_ns()
    pid = os.posix_spawn(exe, argv, os.environ,
                         file_actions=[(os.POSIX_SPAWN_DUP2, out_fd, 1),
                                       (os.POSIX_SPAWN_DUP2, err_fd, 2)])
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter_ns() - start
  finally:
    os.close(out_fd)
    os.close(err_fd)
  with open(out_path) as f:
    out = f.read()
  if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
    with open(err_path) as f:
      err = f.read()
    raise RuntimeError("%s: exit status %d\n%s%s" % (" ".join(argv), status, out, err))
  cpu = int((ru.ru_utime + ru.ru_stime) * 1e9)
  return parse(out) + (wall, cpu)


def callgrind_ir(argv, tmp):
  """Instructions executed in user space by the workload (callgrind)."""
  out = os.path.join(tmp, "callgrind.out")
  if os.path.exists(out):
    os.unlink(out)
  vg = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
        "--trace-children=no"]
  # Everything before the program (fault exec ..., fiu-run -x) wraps valgrind.
  i = argv.index("@PROG@")
  cmd = argv[:i] + vg + argv[i + 1:]
  pid = os.posix_spawn(shutil.which(cmd[0]) or cmd[0], cmd, os.environ,
                       file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull,
                                      os.O_WRONLY, 0),
                                     (os.POSIX_SPAWN_OPEN, 2, os.devnull,
                                      os.O_WRONLY, 0)])
  _, status, _ = os.wait4(pid, 0)
  if status != 0 or not os.path.exists(out):
    return None
  with open(out) as f:
    for line in f:
      if line.startswith("summary:") or line.startswith("totals:"):
        return int(line.split()[1])
  return None


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("workload", choices=sorted(WORKLOADS))
  ap.add_argument("--build", default="build/release",
                  help="build directory with bin/fault and the workload")
  ap.add_argument("--seconds", type=float, default=150,
                  help="time budget for the paired rounds (default 150)")
  ap.add_argument("--long", action="store_true",
                  help="a 10-minute budget (overrides --seconds)")
  ap.add_argument("--min-rounds", type=int, default=8)
  ap.add_argument("--max-rounds", type=int, default=1000)
  ap.add_argument("--rounds", type=int, default=0,
                  help="workload size (pingpong: round trips, default 10000; "
                       "static-io: rounds, default 100000)")
  ap.add_argument("--slow-every", type=int, default=3,
                  help="run the slow peers (strace) only every N-th round, "
                       "so that the others get more pairs (default 3)")
  ap.add_argument("--seed", type=int, default=1, help="seed of the run order")
  ap.add_argument("--only", default="",
                  help="comma-separated substrings: run only matching peers")
  ap.add_argument("--instructions", action="store_true",
                  help="also count user-space instructions of the workload "
                       "under callgrind: two sizes per peer, so that the "
                       "per-round cost and the fixed (start-up) cost separate "
                       "(pingpong only)")
  ap.add_argument("--raw", help="write every sample to this file (TSV)")
  ap.add_argument("--compare-fault", metavar="PATH",
                  help="another fault binary (e.g. the previous build, in "
                       "the same bin/ directory so that it finds the shim): "
                       "adds its runs of the first fault peer, so that a "
                       "change is measured in the same run")
  a = ap.parse_args()
  budget = 600 if a.long else a.seconds
  build = os.path.abspath(a.build)

  with tempfile.TemporaryDirectory(prefix="fault-bench-") as tmp:
    prog, args, parse, peers, what, sized = WORKLOADS[a.workload](
        build, tmp, a.rounds)
    for f in [prog, os.path.join(build, "bin", "fault"),
              os.path.join(build, "lib", "libfault_shim.so")]:
      if not os.path.exists(f):
        sys.exit("whole_program: %s is missing; build the targets fault "
                 "fault_shim fault_target_pingpong seccomp_workload first" % f)
    if a.compare_fault:
      first = next(p for p in peers if p.goal)
      other = os.path.abspath(a.compare_fault)
      peers.insert(peers.index(first) + 1, Peer(
          first.name + " [" + os.path.basename(other) + "]",
          [other] + first.prefix[1:], args=first.args, goal=first.goal))
    runnable = []
    for p in peers:
      if a.only and not any(s in p.name for s in a.only.split(",")):
        continue
      if p.prefix and shutil.which(p.prefix[0]) is None:
        print("whole_program: %s not installed; skipping \"%s\"" %
              (p.prefix[0], p.name), file=sys.stderr)
        continue
      runnable.append(p)
    bare = Peer("bare", [])

    def cmd(p):
      return p.prefix + [prog] + (p.args if p.args is not None else args)

    # One warm-up of everything (page cache, first-run effects), not kept.
    run(cmd(bare), parse, tmp)
    for p in runnable:
      run(cmd(p), parse, tmp)

    rng = random.Random(a.seed)
    t0 = time.monotonic()
    rounds = 0
    raw = open(a.raw, "w") if a.raw else None
    while rounds < a.max_rounds:
      elapsed = time.monotonic() - t0
      if rounds >= a.min_rounds and elapsed > 0 and \
          elapsed * (rounds + 1) / rounds > budget:
        break
      order = [p for p in runnable
               if not p.slow or rounds % max(1, a.slow_every) == 0]
      rng.shuffle(order)
      before = run(cmd(bare), parse, tmp)
      bare.samples.append(before)
      for p in order:
        s = run(cmd(p), parse, tmp)
        after = run(cmd(bare), parse, tmp)
        bare.samples.append(after)
        p.samples.append(s)
        p.by_round[rounds] = s
        p.ratios.append(tuple(s[i] / ((before[i] + after[i]) / 2)
                              for i in range(4)))
        if raw:
          raw.write("%d\t%s\t%d\t%d\t%d\t%d\n" % ((rounds, p.name) + s))
        before = after
      rounds += 1
    elapsed = time.monotonic() - t0
    if raw:
      raw.close()

    irs = {}  # name -> (per round, fixed)
    if a.instructions and sized and shutil.which("valgrind"):
      n1, n2 = 1000, 3000
      for p in [bare] + runnable:
        if not p.instructions or p.args is not None:
          continue
        i1 = callgrind_ir(p.prefix + ["@PROG@", prog] + sized(n1), tmp)
        i2 = callgrind_ir(p.prefix + ["@PROG@", prog] + sized(n2), tmp)
        if i1 is None or i2 is None:
          print("whole_program: callgrind failed for \"%s\"" % p.name,
                file=sys.stderr)
          continue
        per = (i2 - i1) / (n2 - n1)
        irs[p.name] = (per, i1 - per * n1)

  def ms(ns):
    return ns / 1e6

  def med(i):
    return ms(statistics.median(x[i] for x in bare.samples))

  print("%s; %d rounds in %.0f s: every peer bracketed by two bare runs, "
        "order shuffled per round; median of the per-pair ratios "
        "[95%% interval]\n" % (what, rounds, elapsed))
  print("Bare (median of %d runs): loop %.1f ms wall, %.1f ms CPU; whole run "
        "%.1f ms wall, %.1f ms CPU.\n" % (len(bare.samples), med(0), med(1),
                                           med(2), med(3)))
  print("| peer | loop wall | loop CPU | whole-run wall | whole-tree CPU | "
        "≤ 2% (loop wall / loop CPU) |")
  print("|---|---:|---:|---:|---:|---|")

  def cell(p, i):
    m, lo, hi = median_ci([r[i] for r in p.ratios])
    return "%.3f× [%.3f, %.3f]" % (m, lo, hi)

  for p in runnable:
    verdict = ""
    if p.goal:
      words = []
      for i in (0, 1):
        _, lo, hi = median_ci([r[i] for r in p.ratios])
        words.append("met" if hi <= p.goal else
                     "not met" if lo > p.goal else "undecided")
      verdict = " / ".join(words)
    print("| %s | %s | %s | %s | %s | %s |" % (
        p.name, cell(p, 0), cell(p, 1), cell(p, 2), cell(p, 3), verdict))
  names = {p.name: p for p in runnable}
  for p in runnable:
    ref = names.get(p.vs)
    if ref is None:
      continue
    same = [r for r in p.by_round if r in ref.by_round]
    if not same:
      continue
    cells = []
    for i in range(4):
      m, lo, hi = median_ci([p.by_round[r][i] / ref.by_round[r][i]
                             for r in same])
      cells.append("%.3f× [%.3f, %.3f]" % (m, lo, hi))
    print("| %s vs %s (same round) | %s |  |" % (p.name, ref.name,
                                               " | ".join(cells)))
  if irs:
    print("\nUser-space instructions of the workload under callgrind (runs of "
          "1000 and 3000 rounds: the difference gives the cost per round, "
          "the rest is the fixed cost of start-up and exit; the supervisor "
          "and the kernel are not counted):\n")
    print("| run | instructions per round | vs bare | fixed instructions |")
    print("|---|---:|---:|---:|")
    base = irs.get("bare", (0, 0))[0]
    for name, (per, fixed) in irs.items():
      print("| %s | %.0f | %s | %.0f |" % (
          name, per, "%.3f×" % (per / base) if base else "n/a", fixed))

if __name__ == "__main__":
  main()
