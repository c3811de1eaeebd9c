#!/usr/bin/env bash
# Whole-program overhead of `fault exec` on a loopback request/response
# workload (tests/targets/pingpong.cc: ROUNDS round trips of 64 bytes over
# one TCP connection on 127.0.0.1), paired against the bare program: fault
# exec with no policy, with a policy that matches nothing, with a seccomp
# filter that covers nothing the workload does (with and without the shim),
# fiu-run -x, and strace injecting into an unrelated syscall. Prints a
# Markdown table of median per-pair ratios with 95% intervals for the loop's
# wall and CPU time and the whole run's wall and process-tree CPU time
# (tools/bench/whole_program.py explains the method).
#
#   tools/bench/exec_overhead.sh [BUILD_DIR] [whole_program.py options]
#   e.g. tools/bench/exec_overhead.sh build/release --long --instructions
#   (default: build/release, a 150 s budget, 10000 round trips)
#
# Build first: cmake --preset release && cmake --build --preset release \
#   --target fault fault_shim fault_target_pingpong
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$root/build/release}"
shift || true
exec /usr/bin/python3 "$root/tools/bench/whole_program.py" --build "$build" \
  --rounds 10000 "$@" pingpong
