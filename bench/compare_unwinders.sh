#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Trace one real program with every event recorded (THAGTRACE_SAMPLE=all): twice
# with stacks from our call-frame-table walker (THAGTRACE_UNWIND=auto), once with
# libunwind. Prints each run's wall time and distinct stacks, and how many lines of
# the merged alloc_count.folded files differ: auto against auto (the program's own
# run-to-run variation: cc1plus's garbage collector, say) and auto against
# libunwind.
#
# usage: bench/compare_unwinders.sh BUILD_DIR -- PROG [ARGS...]
#   e.g. bench/compare_unwinders.sh build -- g++ -O1 -c t.cc -o /tmp/t.o
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR -- PROG [ARGS...]}
shift
[ "${1:-}" = "--" ] && shift
[ $# -gt 0 ] || { echo "usage: $0 BUILD_DIR -- PROG [ARGS...]" >&2; exit 2; }
lib=$(realpath "$build/libthagtrace.so")
merge=$(realpath "$build/thagtrace-merge")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for run in auto auto2 libunwind; do
  mode=${run%2}
  start=$(date +%s.%N)
  THAGTRACE_OUT="$work/$run" THAGTRACE_SAMPLE=all THAGTRACE_UNWIND=$mode \
    LD_PRELOAD="$lib" "$@" >/dev/null
  end=$(date +%s.%N)
  "$merge" -q "$work/$run"
  sort "$work/$run/merged/alloc_count.folded" >"$work/$run.sorted"
  printf '%-10s %8.2f s  %6d stacks\n' "$run" "$(echo "$end - $start" | bc)" \
    "$(wc -l <"$work/$run.sorted")"
done
differ() { diff "$work/$1.sorted" "$work/$2.sorted" | grep -c '^[<>]' || true; }
echo "lines that differ: auto/auto2 $(differ auto auto2), auto/libunwind $(differ auto libunwind)"
