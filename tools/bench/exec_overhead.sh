#!/usr/bin/env bash
# Whole-program overhead of `fault exec` on a loopback request/response
# workload (tests/targets/pingpong.cc: ROUNDS round trips of 64 bytes over
# one TCP connection on 127.0.0.1), against the bare program, fiu-run -x
# and strace's fault injection on an unrelated syscall. Prints a Markdown
# table (median of REPS runs, the variants interleaved within each
# repetition; ratios against bare).
#
#   tools/bench/exec_overhead.sh [BUILD_DIR [REPS [ROUNDS]]]
#   (default: build/release, 7 repetitions, 20000 round trips)
#
# Build first: cmake --preset release && cmake --build --preset release \
#   --target fault fault_shim fault_target_pingpong
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$root/build/release}"
reps="${2:-7}"
rounds="${3:-20000}"
fault="$build/bin/fault"
pingpong="$build/bin/fault_target_pingpong"
for f in "$fault" "$pingpong" "$build/lib/libfault_shim.so"; do
  if [ ! -e "$f" ]; then
    echo "exec_overhead: $f is missing; build the release preset first" >&2
    exit 2
  fi
done

# A policy that matches nothing this workload does (another address).
nonmatching="$(mktemp --suffix .yaml)"
trap 'rm -f "$nonmatching"' EXIT
cat >"$nonmatching" <<'YAML'
elsewhere:
  targets:
    - target: tcp://192.0.2.1:9
  latency: 100ms
YAML

variants=(
  "bare|"
  "fault exec, no policy|$fault exec --quiet --"
  "fault exec, non-matching policy|$fault exec --quiet --policy $nonmatching --"
  "fiu-run -x|fiu-run -x"
  "strace -f -e inject=fdatasync:error=EIO|strace -f -qq -o /dev/null -e trace=fdatasync -e inject=fdatasync:error=EIO"
  "strace --seccomp-bpf -f -e inject=fdatasync:error=EIO|strace --seccomp-bpf -f -qq -o /dev/null -e trace=fdatasync -e inject=fdatasync:error=EIO"
)

results="$(mktemp)"
trap 'rm -f "$nonmatching" "$results"' EXIT
# Check the tools once, then interleave the variants within every
# repetition so that a change of machine load affects all of them alike.
runnable=()
for v in "${variants[@]}"; do
  prefix="${v#*|}"
  first="${prefix%% *}"
  if [ -n "$prefix" ] && ! command -v "$first" >/dev/null 2>&1; then
    echo "exec_overhead: $first not installed; skipping \"${v%%|*}\"" >&2
    continue
  fi
  runnable+=("$v")
done
for _ in $(seq 1 "$reps"); do
  for v in "${runnable[@]}"; do
    name="${v%%|*}"
    prefix="${v#*|}"
    start=$(date +%s%N)
    # shellcheck disable=SC2086
    line="$($prefix "$pingpong" "$rounds" 64)"
    end=$(date +%s%N)
    loop_us="$(echo "$line" | sed -n 's/.* in \([0-9]*\) us$/\1/p')"
    echo "$name|$(( (end - start) / 1000 ))|$loop_us" >>"$results"
  done
done

/usr/bin/python3 - "$results" "$rounds" "$reps" <<'PY'
import statistics, sys
path, rounds, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = {}
for line in open(path):
    name, wall, loop = line.rstrip("\n").split("|")
    rows.setdefault(name, []).append((int(wall), int(loop)))
bare_wall = statistics.median(w for w, _ in rows["bare"])
bare_loop = statistics.median(l for _, l in rows["bare"])
print("%d round trips of 64 bytes on 127.0.0.1 TCP, median of %d runs\n" % (rounds, reps))
print("| variant | wall time (ms) | round-trip loop (ms) | µs per round trip | loop vs bare |")
print("|---|---:|---:|---:|---:|")
for name, samples in rows.items():
    wall = statistics.median(w for w, _ in samples)
    loop = statistics.median(l for _, l in samples)
    print("| %s | %.1f | %.1f | %.2f | %.3f× |" % (
        name, wall / 1000, loop / 1000, loop / rounds, loop / bare_loop))
PY
