#!/usr/bin/env bash
# Whole-program cost of the seccomp layer when no policy covers what the
# program does: a static workload (pwrite/pread of BYTES, lseek, getppid on a
# file: four syscalls per round) run
#   bare       directly
#   allow-all  with a one-instruction `ret ALLOW` filter: the floor cost of
#              any seccomp filter (the kernel's syscall slow path)
#   filter     under seccomp_driver with a connect policy: the filter is
#              installed (connect notified) but the workload never connects,
#              so every one of its syscalls is decided on the number alone
#   strace     under strace -f --seccomp-bpf -e trace=connect
#              -e inject=connect:error=ECONNREFUSED (the same policy)
# Reports the minimum and the median of the workload's own timing (ns,
# measured inside the program, so process start-up is excluded) over
# interleaved repetitions, and their ratios to bare, as a Markdown table.
# On a shared machine the minimum is the better estimate of the intrinsic
# cost (interference only ever adds time).
#
# Usage: tools/bench/seccomp_overhead.sh [BUILD_DIR] [ROUNDS] [REPEAT] [BYTES]
set -euo pipefail
build=${1:-build/release}
rounds=${2:-200000}
repeat=${3:-7}
bytes=${4:-4096}
bin=$build/bin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for f in "$bin/seccomp_workload" "$bin/seccomp_driver"; do
  [ -x "$f" ] || { echo "seccomp_overhead: $f missing; build seccomp_workload and seccomp_driver" >&2; exit 2; }
done

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
minimum() { sort -n | head -1; }

: >"$work/bare"; : >"$work/allow-all"; : >"$work/filter"; : >"$work/strace"
for _ in $(seq "$repeat"); do
  "$bin/seccomp_workload" "$work" "$rounds" "$bytes" >>"$work/bare"
  "$bin/seccomp_workload" "$work" "$rounds" "$bytes" allow >>"$work/allow-all"
  "$bin/seccomp_driver" --deny connect=ECONNREFUSED -- \
    "$bin/seccomp_workload" "$work" "$rounds" "$bytes" >>"$work/filter" 2>/dev/null
  if command -v strace >/dev/null; then
    strace -f -qq --seccomp-bpf -e trace=connect -e inject=connect:error=ECONNREFUSED -o /dev/null \
      "$bin/seccomp_workload" "$work" "$rounds" "$bytes" >>"$work/strace"
  fi
done

bare=$(median <"$work/bare")
bare_min=$(minimum <"$work/bare")
echo "| run ($bytes-byte I/O) | min ns ($rounds rounds, $repeat runs) | ratio | median ns | ratio |"
echo "|---|---:|---:|---:|---:|"
for k in bare allow-all filter strace; do
  [ -s "$work/$k" ] || { echo "| $k | n/a | n/a | n/a | n/a |"; continue; }
  m=$(median <"$work/$k")
  n=$(minimum <"$work/$k")
  echo "| $k | $n | $(awk -v a="$n" -v b="$bare_min" 'BEGIN {printf "%.3fx", a / b}') | $m |" \
       "$(awk -v a="$m" -v b="$bare" 'BEGIN {printf "%.3fx", a / b}') |"
done
