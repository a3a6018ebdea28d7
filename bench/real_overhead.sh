#!/bin/bash
# SPDX-License-Identifier: MIT
# Overhead of tracing real programs at the default sampling: each command run
# untraced, traced with the defaults, and traced with THAGTRACE_BLOCK_TAGS=0 (no
# pad on sampled blocks), ROUNDS times interleaved; prints the median user + system
# CPU seconds of each and the ratios to untraced. Needs g++, python3, perl, sqlite3
# (the commands missing here are skipped); g++ also builds the C++ case (std::map of
# strings and vectors: operator new and delete).
#
# usage: bench/real_overhead.sh [LIB] [ROUNDS]   (LIB: build/libthagtrace.so)
set -u
lib=$(realpath "${1:-build/libthagtrace.so}")
rounds=${2:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '#include <map>\n#include <string>\n#include <vector>\n#include <iostream>\n#include <algorithm>\n#include <regex>\nint main(){std::map<std::string,int> m; std::regex r("a+b"); for(auto&x:m) std::cout<<x.first; return 0;}\n' >"$work/t.cc"
# A C++ program of its own: containers of strings built and torn down (operator new
# and delete, not malloc), compiled once here, untimed.
printf '#include <map>\n#include <string>\n#include <vector>\n#include <cstdio>\nint main(){long s=0; for(int k=0;k<3;k++){std::map<std::string,std::vector<int>> m; for(int i=0;i<200000;i++) m[std::to_string(i*7919)+"-key"].assign(i%%16+1,i); for(auto&x:m) s+=x.second.size(); } std::printf("%%ld\\n",s); return 0;}\n' >"$work/m.cc"
cxx_cmd=()
if command -v g++ >/dev/null && g++ -O2 -o "$work/cxxmap" "$work/m.cc" 2>/dev/null; then
	cxx_cmd=("$work/cxxmap")
fi
cmds=(
	"g++ -O1 -c $work/t.cc -o $work/t.o"
	"/usr/bin/python3 -c 'import json; d={str(i):[i]*10 for i in range(200000)}; print(len(json.dumps(d)))'"
	"perl -e 'my %h; \$h{\$_} = [\$_, \"x\" x 50] for 1..300000; print scalar(keys %h)'"
	"sqlite3 :memory: 'create table t(a,b); with recursive c(x) as (select 1 union all select x+1 from c where x<300000) insert into t select x, hex(randomblob(20)) from c; create index i on t(b); select count(*) from t;'"
	"${cxx_cmd[@]}"
)
# One run: its user + system seconds.
cpu() {
	local envs=$1 cmd=$2
	rm -rf "$work/out"
	env $envs THAGTRACE_OUT="$work/out" /usr/bin/time -o "$work/t" -f "%U %S" \
		bash -c "$cmd" >/dev/null 2>&1
	awk '{print $1 + $2}' "$work/t"
}
median() { printf '%s\n' "$@" | sort -n | awk '{x[NR] = $1} END {print x[int((NR + 1) / 2)]}'; }
for cmd in "${cmds[@]}"; do
	command -v "${cmd%% *}" >/dev/null || { echo "skipped (no ${cmd%% *})"; continue; }
	a=() b=() c=()
	for ((r = 0; r < rounds; r++)); do
		a+=("$(cpu "THAGTRACE_UNUSED=1" "$cmd")")
		b+=("$(cpu "LD_PRELOAD=$lib" "$cmd")")
		c+=("$(cpu "LD_PRELOAD=$lib THAGTRACE_BLOCK_TAGS=0" "$cmd")")
	done
	echo "$(median "${a[@]}") $(median "${b[@]}") $(median "${c[@]}")" | awk -v cmd="${cmd:0:50}" \
		'{printf "untraced %.2f s  default %.2f s (%.2fx)  tags off %.2f s (%.2fx)  %s\n", $1, $2, $2 / $1, $3, $3 / $1, cmd}'
done
