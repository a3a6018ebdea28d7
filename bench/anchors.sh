#!/bin/bash
# SPDX-License-Identifier: MIT
# The design brief's anchors, measured side by side with libthagtrace on one
# workload in one run: bench_overhead's (THREADS threads, TOTAL allocations of
# mixed sizes, a quarter of the frees cross-thread; see the head of
# bench/bench_overhead.c), run ROUNDS times interleaved under each of
#
#   glibc            untraced (the baseline of the tools that keep glibc's malloc)
#   thagtrace        LD_PRELOAD=libthagtrace.so at the defaults
#   thagtrace-all    THAGTRACE_SAMPLE=all (every event)
#   heaptrack        heaptrack -o FILE (every event; its wall includes writing FILE)
#   jemalloc         libjemalloc.so.2 preloaded, profiling off (the next one's baseline)
#   jemalloc-prof    MALLOC_CONF=prof:true,lg_prof_sample:19,prof_final:true: 512 KiB
#                    Poisson byte sampling, the profile dumped at exit
#   tcmalloc         libtcmalloc.so.4 preloaded (the next one's baseline)
#   tcmalloc-heapprof  HEAPPROFILE=FILE (gperftools' heap profiler, every event)
#
# and prints the median wall and CPU (user + system of the process and what it
# waited for: heaptrack's interpreter included) seconds of each, with their ratios
# to the allocator it runs on (the tool's own cost: wall/own, cpu/own) and the wall
# ratio to glibc untraced (wall/glibc), and for
# libthagtrace the median share of its events dropped (rings full) and of the
# allocations shed under load (src/core/shed.h: the writer fell behind). What is
# not installed is skipped, with the package that has it:
#   apt-get install libjemalloc2 heaptrack libgoogle-perftools4
# gperftools' profiler takes ~20 s a run at 4 threads and 8 M allocations; -q leaves
# it out; -T runs libthagtrace alone (glibc, thagtrace, thagtrace-all: to compare
# builds, or their drops); -E NAME:VAR=VALUE adds the tracer at the defaults with
# that variable set, as config NAME (say notags:THAGTRACE_BLOCK_TAGS=0), interleaved
# with the rest.
#
# usage: bench/anchors.sh [-r ROUNDS] [-t THREADS] [-n TOTAL] [-q] [-T]
#                         [-E NAME:VAR=VALUE]... [LIB]
#        (LIB: build/libthagtrace.so; ROUNDS 5, THREADS 4, TOTAL 8000000)
set -u
rounds=5 threads=4 total=8000000 quick=0 alone=0 extra=()
while getopts r:t:n:qTE: o; do
	case $o in
	T) alone=1 ;;
	E) case $OPTARG in
		[a-z]*:THAGTRACE_*=*) extra+=("$OPTARG") ;;
		*) echo "$0: -E $OPTARG: NAME:THAGTRACE_VAR=VALUE" >&2; exit 2 ;;
		esac ;;
	r) rounds=$OPTARG ;;
	t) threads=$OPTARG ;;
	n) total=$OPTARG ;;
	q) quick=1 ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
lib=$(realpath -e "${1:-build/libthagtrace.so}" 2>/dev/null) || { echo "$0: ${1:-build/libthagtrace.so}: not found" >&2; exit 2; }
case $lib in *[[:space:]]*) echo "$0: $lib: a path without spaces, please" >&2; exit 2 ;; esac
prog=$(realpath -e build/bench/bench_overhead 2>/dev/null) ||
	{ echo "$0: build/bench/bench_overhead: build it first (meson setup build && ninja -C build)" >&2; exit 2; }
libdir=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
jemalloc=$libdir/libjemalloc.so.2
tcmalloc=$libdir/libtcmalloc.so.4
dir=/dev/shm
[ -d "$dir" ] || dir=${TMPDIR:-/tmp}
work=$(mktemp -d "$dir/anchors.XXXXXX")
trap 'rm -rf "$work"' EXIT

# name, baseline's name, then the command's prefix (env assignments, wrappers).
configs=("glibc||")
configs+=("thagtrace|glibc|env LD_PRELOAD=$lib THAGTRACE_OUT=$work/out")
configs+=("thagtrace-all|glibc|env LD_PRELOAD=$lib THAGTRACE_OUT=$work/out THAGTRACE_SAMPLE=all")
for e in "${extra[@]}"; do
	configs+=("${e%%:*}|glibc|env LD_PRELOAD=$lib THAGTRACE_OUT=$work/out ${e#*:}")
done
# The other tools, unless -T; each skipped, with the package that has it, when
# it is not installed.
anchor() { # NAME... -- TEST... -- PACKAGE: the configs in $pending when TEST holds
	local names=() test=()
	while [ "$1" != -- ]; do names+=("$1"); shift; done
	shift
	while [ "$1" != -- ]; do test+=("$1"); shift; done
	if "${test[@]}" >/dev/null 2>&1; then
		configs+=("${pending[@]}")
	else
		echo "skipped ${names[*]}: not installed (apt-get install $2)"
	fi
}
if [ $alone = 0 ]; then
	pending=("heaptrack|glibc|heaptrack -o $work/out/heaptrack")
	anchor heaptrack -- command -v heaptrack -- heaptrack
	pending=("jemalloc|glibc|env LD_PRELOAD=$jemalloc"
		"jemalloc-prof|jemalloc|env LD_PRELOAD=$jemalloc MALLOC_CONF=prof:true,lg_prof_sample:19,prof_final:true,prof_prefix:$work/out/jeprof")
	anchor jemalloc jemalloc-prof -- test -f "$jemalloc" -- libjemalloc2
	pending=("tcmalloc|glibc|env LD_PRELOAD=$tcmalloc")
	[ $quick = 1 ] || pending+=("tcmalloc-heapprof|tcmalloc|env LD_PRELOAD=$tcmalloc HEAPPROFILE=$work/out/heap")
	anchor tcmalloc tcmalloc-heapprof -- test -f "$tcmalloc" -- libgoogle-perftools4
fi

dump=$(realpath -e build/thagtrace-dump 2>/dev/null) || { echo "$0: build/thagtrace-dump: build it first" >&2; exit 2; }
# The shares of events dropped and of allocations shed in the last run's trace, in
# percent (its .meta's PROCESS_END totals), or "- -" when there is no trace.
dropped() {
	local m=("$work"/out/*.meta)
	[ -f "${m[0]}" ] || { echo - -; return; }
	"$dump" "${m[@]}" | grep '^process-end' | awk -v n="$total" '{
		for (i = 1; i <= NF; i++) {
			if (match($i, /"emitted"=>[0-9]+/)) e += substr($i, 12) + 0
			if (match($i, /"dropped"=>[0-9]+/)) d += substr($i, 12) + 0
			if (match($i, /"shed"=>[0-9]+/)) s += substr($i, 9) + 0
		}
	} END {if (e) printf "%.2f %.2f\n", 100 * d / e, 100 * s / n; else print "- -"}'
}

# One run of config $1's prefix: prints "wall cpu".
run() {
	local -a pre
	read -r -a pre <<<"$1"
	rm -rf "$work/out" && mkdir "$work/out"
	/usr/bin/time -o "$work/t" -f "%e %U %S" "${pre[@]}" "$prog" --work "$threads" "$total" \
		>"$work/o" 2>&1 || { echo "$0: failed: ${pre[*]} $prog:" >&2; tail -3 "$work/o" >&2; return 1; }
	echo "$(awk '{print $1, $2 + $3}' "$work/t") $(dropped)"
}
median() { printf '%s\n' "$@" | sort -n | awk '{x[NR] = $1} END {print x[int((NR + 1) / 2)]}'; }

declare -A wall cpu drop shed
for ((r = 0; r < rounds; r++)); do
	for c in "${configs[@]}"; do
		name=${c%%|*} rest=${c#*|}
		read -r w u d sh < <(run "${rest#*|}") || exit 1
		wall[$name]+="$w " cpu[$name]+="$u " drop[$name]+="$d " shed[$name]+="$sh "
	done
done
echo "bench_overhead --work $threads $total, median of $rounds interleaved runs (wall includes start-up and exit)"
printf '%-18s %8s %8s %12s %12s %10s %9s %9s\n' config wall cpu "wall/own" "cpu/own" "wall/glibc" \
	dropped shed
declare -A mw mc
for c in "${configs[@]}"; do
	name=${c%%|*} rest=${c#*|} base=${rest%%|*}
	# shellcheck disable=SC2086
	mw[$name]=$(median ${wall[$name]}) mc[$name]=$(median ${cpu[$name]})
	[ -z "$base" ] && base=$name
	# shellcheck disable=SC2086
	d=$(median ${drop[$name]}) sh=$(median ${shed[$name]})
	[ "$d" = - ] || d="$d %" sh="$sh %"
	awk -v n="$name" -v w="${mw[$name]}" -v c="${mc[$name]}" -v bw="${mw[$base]}" \
		-v bc="${mc[$base]}" -v gw="${mw[glibc]}" -v b="$base" -v d="$d" -v sh="$sh" '
		function ratio(x, y) { return y > 0 ? sprintf("%.2fx", x / y) : "-" }
		BEGIN {
		printf "%-18s %7.2fs %7.2fs %8s (%s) %7s %10s %9s %9s\n", n, w, c, ratio(w, bw),
			substr(b, 1, 5), ratio(c, bc), ratio(w, gw), d, sh }'
done
