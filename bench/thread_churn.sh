#!/bin/bash
# SPDX-License-Identifier: MIT
# Cost of tracing a program that starts threads by the thousand, each living a
# moment (tests/victims/victim_threads many: N threads, 8 at a time, 11 allocations
# each): every thread gets a handle, a ring, a pair of files, and the writer takes
# them back. Runs the program untraced and under each LIB, ROUNDS times
# interleaved, and prints the medians of wall and CPU (user + system) seconds and
# their ratios to untraced.
#
# The output directory's file system matters: on ext4 that has just deleted many
# thousands of files (as these benchmarks do), creating a file costs ~10x what it
# costs on a fresh directory, and file creation then dominates. DIR defaults to
# /dev/shm (tmpfs; $TMPDIR or /tmp where there is none), where what the tracer
# itself costs shows.
#
# usage: bench/thread_churn.sh [-n THREADS] [-r ROUNDS] [-d DIR] [LIB...]
#        (LIB: build/libthagtrace.so when none is given)
set -u
threads=10000 rounds=5 dir=
while getopts n:r:d: o; do
	case $o in
	n) threads=$OPTARG ;;
	r) rounds=$OPTARG ;;
	d) dir=$OPTARG ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
libs=("$@")
[ ${#libs[@]} -eq 0 ] && libs=(build/libthagtrace.so)
victim=$(dirname "$0")/../build/tests/victims/victim_threads
[ -x "$victim" ] || { echo "no $victim: build first (meson compile -C build)" >&2; exit 1; }
if [ -z "$dir" ]; then
	dir=/dev/shm
	[ -d "$dir" ] || dir=${TMPDIR:-/tmp}
elif [ ! -d "$dir" ]; then
	echo "thread_churn.sh: -d $dir: no such directory" >&2
	exit 2
fi
work=$(mktemp -d "$dir/churn.XXXXXX")
trap 'rm -rf "$work"' EXIT

# One run: "wall cpu" seconds.
run() {
	local lib=$1 pre=()
	rm -rf "$work/out" && mkdir "$work/out"
	[ "$lib" != none ] && pre=(env THAGTRACE_OUT="$work/out" LD_PRELOAD="$(realpath "$lib")")
	/usr/bin/time -o "$work/t" -f "%e %U %S" "${pre[@]}" "$victim" many "$threads" \
		>/dev/null 2>&1
	awk '{print $1, $2 + $3}' "$work/t"
}
median() { printf '%s\n' "$@" | sort -n | awk '{x[NR] = $1} END {print x[int((NR + 1) / 2)]}'; }

all=(none "${libs[@]}")
declare -A wall cpu
for ((r = 0; r < rounds; r++)); do
	for i in "${!all[@]}"; do
		read -r w c < <(run "${all[$i]}")
		wall[$i]+="$w " cpu[$i]+="$c "
	done
done
echo "$threads short-lived threads, 8 at a time; output in $dir; median of $rounds interleaved runs"
for i in "${!all[@]}"; do
	# shellcheck disable=SC2086
	w=$(median ${wall[$i]}) c=$(median ${cpu[$i]})
	[ "$i" -eq 0 ] && { w0=$w c0=$c; }
	awk -v w="$w" -v c="$c" -v w0="$w0" -v c0="$c0" -v name="${all[$i]}" \
		'BEGIN {printf "%-40s wall %.2f s (%.2fx)  cpu %.2f s (%.2fx)\n", name, w, w / w0, c, c / c0}'
done
