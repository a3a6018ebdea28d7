#!/bin/bash
# SPDX-License-Identifier: MIT
# Cost of tracing a program that starts threads by the thousand, each living a
# moment (tests/victims/victim_threads many: N threads, 8 at a time, 11 allocations
# each): every thread gets a handle, a ring, a pair of files, and the writer takes
# them back. Runs the program untraced and under each LIB, ROUNDS times
# interleaved (bench/interleave.sh), and prints the medians of wall and CPU (user +
# system) seconds and their ratios to untraced. DIR: where the trace goes (see
# interleave.sh on why /dev/shm is the default).
#
# usage: bench/thread_churn.sh [-n THREADS] [-r ROUNDS] [-d DIR] [LIB...]
#        (LIB: build/libthagtrace.so when none is given)
set -u
threads=10000 opts=()
while getopts n:r:d: o; do
	case $o in
	n) threads=$OPTARG ;;
	r | d) opts+=("-$o" "$OPTARG") ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
for lib in "$@"; do opts+=(-l "$lib"); done
victim=$(dirname "$0")/../build/tests/victims/victim_threads
[ -x "$victim" ] || { echo "no $victim: build first (meson compile -C build)" >&2; exit 1; }
exec "$(dirname "$0")/interleave.sh" "${opts[@]}" -- "$victim" many "$threads"
