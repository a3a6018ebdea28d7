#!/bin/bash
# SPDX-License-Identifier: MIT
# Instructions the tracer adds on each allocation path, counted by callgrind (every
# thread, the writer's included; deterministic where this host's clocks are not):
# bench_paths' malloc, calloc and realloc loops and bench_paths_cxx's new/delete
# with nothing sampled past each site's first call (the unsampled path), and its
# deep loop at the defaults (every block recorded). Prints, per loop, the untraced
# count and what each library adds per iteration.
# Needs valgrind (apt-get install valgrind). Run from the repository root after
# `meson setup build && ninja -C build`.
# usage: bench/callgrind_paths.sh [-n N] LIB...   (N iterations, default 200000)
set -eu
n=200000
if [ "${1:-}" = -n ]; then n=$2; shift 2; fi
[ $# -ge 1 ] || { echo "usage: $0 [-n N] LIB..." >&2; exit 2; }
command -v valgrind >/dev/null || { echo "$0: needs valgrind (apt-get install valgrind)" >&2; exit 2; }
for lib in "$@"; do [ -f "$lib" ] || { echo "$0: $lib: not found" >&2; exit 2; }; done
b=build/bench
[ -x $b/bench_paths ] || { echo "$0: $b/bench_paths: build it first" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
unsampled=tiered:boost_max=1,rate_small=1e-9
# count ENV... -- CMD...: callgrind's instruction total
count() {
	local envs=()
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	rm -rf "$work/out" && mkdir "$work/out"
	env "${envs[@]}" THAGTRACE_OUT="$work/out" valgrind --tool=callgrind \
		--callgrind-out-file="$work/cg" "$@" 2>&1 >/dev/null |
		sed -n 's/.*refs: *//p' | tr -d ,
}
loops=("malloc:$b/bench_paths malloc" "calloc:$b/bench_paths calloc"
	"realloc:$b/bench_paths realloc" "deep:$b/bench_paths deep")
[ -x $b/bench_paths_cxx ] && loops+=("new/delete:$b/bench_paths_cxx")
printf '%-12s %14s' loop "untraced/iter"
for lib in "$@"; do printf ' %28s' "+$(basename "$lib")"; done
echo
for l in "${loops[@]}"; do
	name=${l%%:*} cmd=(${l#*:})
	sample=$unsampled
	[ "$name" = deep ] && sample=tiered
	u=$(count THAGTRACE_UNUSED=1 -- "${cmd[@]}" "$n")
	printf '%-12s %14.1f' "$name" "$(echo "$u / $n" | bc -l)"
	for lib in "$@"; do
		t=$(count LD_PRELOAD="$lib" THAGTRACE_SAMPLE=$sample -- "${cmd[@]}" "$n")
		printf ' %28.1f' "$(echo "($t - $u) / $n" | bc -l)"
	done
	echo
done
