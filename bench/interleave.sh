#!/bin/bash
# SPDX-License-Identifier: MIT
# Run one command untraced and under each LIB (LD_PRELOAD, THAGTRACE_OUT in a fresh
# directory each run), ROUNDS times interleaved, and print the medians of wall and
# CPU (user + system) seconds and their ratios to untraced, then the command's own
# last line of output for each (its figures, if it prints any).
#
# The output directory's file system matters: on ext4 that has just deleted many
# thousands of files (as these benchmarks do), creating a file costs ~10x what it
# costs on a fresh directory. DIR defaults to /dev/shm (tmpfs; $TMPDIR or /tmp
# where there is none), where what the tracer itself costs shows.
#
# usage: bench/interleave.sh [-r ROUNDS] [-d DIR] [-l LIB]... [--] CMD [ARGS...]
#        (-l LIB: each library to compare; build/libthagtrace.so when none is given)
set -u
rounds=5 dir= libs=()
while getopts r:d:l: o; do
	case $o in
	r) rounds=$OPTARG ;;
	d) dir=$OPTARG ;;
	l) libs+=("$OPTARG") ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { echo "usage: $0 [-r ROUNDS] [-d DIR] [-l LIB]... [--] CMD [ARGS...]" >&2; exit 2; }
cmd=("$@")
[ ${#libs[@]} -eq 0 ] && libs=(build/libthagtrace.so)
for lib in "${libs[@]}"; do [ -f "$lib" ] || { echo "$0: $lib: not found" >&2; exit 2; }; done
if [ -z "$dir" ]; then
	dir=/dev/shm
	[ -d "$dir" ] || dir=${TMPDIR:-/tmp}
elif [ ! -d "$dir" ]; then
	echo "$0: -d $dir: no such directory" >&2
	exit 2
fi
work=$(mktemp -d "$dir/interleave.XXXXXX")
trap 'rm -rf "$work"' EXIT

# One run: "wall cpu" seconds; the command's last line in $work/last.
run() {
	local lib=$1 pre=()
	rm -rf "$work/out" && mkdir "$work/out"
	[ "$lib" != none ] && pre=(env THAGTRACE_OUT="$work/out" LD_PRELOAD="$(realpath "$lib")")
	/usr/bin/time -o "$work/t" -f "%e %U %S" "${pre[@]}" "${cmd[@]}" >"$work/o" 2>&1 ||
		{ echo "$0: ${cmd[*]} failed under $lib:" >&2; tail -3 "$work/o" >&2; exit 1; }
	tail -1 "$work/o" >"$work/last"
	awk '{print $1, $2 + $3}' "$work/t"
}
median() { printf '%s\n' "$@" | sort -n | awk '{x[NR] = $1} END {print x[int((NR + 1) / 2)]}'; }

all=(none "${libs[@]}")
declare -A wall cpu last
for ((r = 0; r < rounds; r++)); do
	for i in "${!all[@]}"; do
		read -r w c < <(run "${all[$i]}") || exit 1
		wall[$i]+="$w " cpu[$i]+="$c "
		last[$i]=$(cat "$work/last")
	done
done
echo "${cmd[*]}: output in $dir; median of $rounds interleaved runs"
for i in "${!all[@]}"; do
	# shellcheck disable=SC2086
	w=$(median ${wall[$i]}) c=$(median ${cpu[$i]})
	[ "$i" -eq 0 ] && { w0=$w c0=$c; }
	awk -v w="$w" -v c="$c" -v w0="$w0" -v c0="$c0" -v name="${all[$i]}" \
		'BEGIN {printf "%-40s wall %.2f s (%.2fx)  cpu %.2f s (%.2fx)\n", name, w, w / w0, c, c / c0}'
	[ -n "${last[$i]}" ] && echo "    last run: ${last[$i]}"
done
