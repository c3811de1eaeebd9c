#!/usr/bin/env bash
# Whole-program cost of the seccomp layer when no policy covers what the
# program does: a static workload (tools/bench/seccomp_workload.c: pwrite +
# pread of 4 KiB, lseek and getppid on a file per round, no connect) run
# bare, with a one-instruction `ret ALLOW` filter (the floor cost of any
# filter), under `fault exec --deny connect=ECONNREFUSED` (a static program:
# the seccomp layer alone; connect is notified, the workload never connects,
# so each of its syscalls is decided on its number alone), and under
# `strace -f --seccomp-bpf` injecting into connect. Prints median per-pair
# ratios to bare with 95% intervals (tools/bench/whole_program.py explains
# the method).
#
#   tools/bench/seccomp_overhead.sh [BUILD_DIR] [whole_program.py options]
#   (default: build/release, a 90 s budget, 100000 rounds)
#
# Build first: cmake --build build/release --target fault seccomp_workload
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$root/build/release}"
shift || true
exec /usr/bin/python3 "$root/tools/bench/whole_program.py" --build "$build" \
  --rounds 100000 --seconds 90 "$@" static-io
