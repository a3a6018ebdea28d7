#!/bin/bash
# SPDX-License-Identifier: MIT
# The event path's cost per malloc+free pair under one or more builds of the
# library, interleaved round by round (so a noisy host hits them alike), medians:
#   unsampled  malloc(32)+free, nothing sampled past each site's first call
#              (bench_overhead --pair under tiered:boost_max=1,rate_small=1e-9)
#   sampled    malloc(16 KiB)+free at the defaults, every one recorded
#              (bench_overhead --pair-large)
# usage: bench/pair_ab.sh [-r ROUNDS] LIB...   (default 7 rounds; run from the
#        repository root after `meson setup build && ninja -C build`)
set -eu
rounds=7
if [ "${1:-}" = -r ]; then rounds=$2; shift 2; fi
[ $# -ge 1 ] || { echo "usage: $0 [-r ROUNDS] LIB..." >&2; exit 2; }
for lib in "$@"; do [ -f "$lib" ] || { echo "$0: $lib: not found" >&2; exit 2; }; done
bench=build/bench/bench_overhead
[ -x $bench ] || { echo "$0: $bench: build it first" >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
declare -A u s
for ((r = 0; r < rounds; r++)); do
	u[none]+="$($bench --pair 1 20000000) "
	s[none]+="$($bench --pair-large 1 2000000) "
	for lib in "$@"; do
		rm -rf "$out"/t && mkdir "$out"/t
		u[$lib]+="$(THAGTRACE_OUT=$out/t THAGTRACE_SAMPLE=tiered:boost_max=1,rate_small=1e-9 \
			LD_PRELOAD=$lib $bench --pair 1 20000000) "
		rm -rf "$out"/t && mkdir "$out"/t
		s[$lib]+="$(THAGTRACE_OUT=$out/t LD_PRELOAD=$lib $bench --pair-large 1 2000000) "
	done
done
med() { tr ' ' '\n' <<<"$*" | grep . | sort -n | awk '{a[NR] = $1} END {printf "%.2f", a[int((NR + 1) / 2)]}'; }
u0=$(med ${u[none]}) s0=$(med ${s[none]})
echo "ns per pair, median of $rounds interleaved rounds"
printf '%-40s %10s %10s\n' "" unsampled sampled
printf '%-40s %10s %10s\n' untraced "$u0" "$s0"
for lib in "$@"; do
	um=$(med ${u[$lib]}) sm=$(med ${s[$lib]})
	printf '%-40s %+10.2f %+10.2f\n' "$lib" "$(echo "$um - $u0" | bc)" "$(echo "$sm - $s0" | bc)"
done
