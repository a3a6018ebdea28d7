#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The README's main job: install dependencies, build, trace the bundled demo
# (examples/demo.c: 200 threads, plain malloc/free, a leak, cross-thread frees) with
# thagtrace-run at its defaults, print the hotspot report and say where the flame
# graph files are. usage: scripts/demo.sh [DIR]  (DIR: a new or empty directory for
# the trace; default: a fresh one under $TMPDIR or /tmp). BUILD=dir picks the build
# directory (default build).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}

if [ $# -gt 1 ] || [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
  echo "usage: scripts/demo.sh [DIR]   (DIR: new or empty; default: a fresh temporary one)" >&2
  exit 2
fi

scripts/install-deps.sh
[ -d "$BUILD" ] || meson setup "$BUILD" >/dev/null
echo "== building ($BUILD)"
ninja -C "$BUILD" --quiet

if [ $# -eq 1 ]; then
  out=$1
  if [ -e "$out" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ]; then
    echo "demo.sh: $out already holds files; give a new or empty directory" >&2
    exit 2
  fi
else
  out=$(mktemp -d "${TMPDIR:-/tmp}/thagtrace-demo.XXXXXX")
fi

# thagtrace-run prints its summary (thagtrace-merge, then thagtrace-report) on
# stderr so the traced program's stdout stays its own; here both go to stdout in
# the order they were written, so the whole run reads (and pipes) as one text.
echo "== tracing: ./$BUILD/thagtrace-run -o $out -- ./$BUILD/demo"
echo
"./$BUILD/thagtrace-run" -o "$out" -- "./$BUILD/demo" 2>&1

m=$out/merged
cat <<EOF

== what to look for
- Totals: "exact" is every allocation counted: the demo's own, plus about 200
  made by glibc (thread setup, the stdout buffer). "allocated" is the estimate from
  the sampled events (tiered sampling: every allocation >= 10 KiB, 10 % of 1-10 KiB,
  1 % of smaller ones, boosted up to 2x at busy call sites), calibrated on them.
- read_image (16-256 KiB, always sampled) and every stack that is its call site's
  only stack are "(exact)"; the two xmalloc stacks share one call site, so their
  split is an estimate with a 95 % interval around the demo's figures.
- "Thousand cuts": tokenize, 2.4 M blocks of 8-64 bytes, 94 % of all calls.
- Leaks ("live at the end"): cache_insert, 800 blocks, 2,000,000 bytes (1.91 MiB),
  beside glibc's 4 KiB stdout buffer.

== flame graphs and pprof ($m/)
  alloc_bytes.folded  bytes allocated, per stack      alloc_count.folded  calls
  live_bytes.folded   still allocated at exit (leaks)  peak_bytes.folded   live at the peak
  profile.pb.gz       all four, for pprof              summary.json        thagtrace-report --json
Render one with any of:
  flamegraph.pl --countname=bytes $m/alloc_bytes.folded > alloc.svg
      (Brendan Gregg's FlameGraph scripts)
  inferno-flamegraph --countname=bytes $m/alloc_bytes.folded > alloc.svg
      (cargo install inferno)
  speedscope: drop a .folded file on its web app (or npm install -g speedscope)
  go tool pprof -top $m/profile.pb.gz      (-http=:8080 for a browser view)
More views: ./$BUILD/thagtrace-report --by live $out   (--by count, --by peak, --json)
EOF
