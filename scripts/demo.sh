#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The README's main job: install dependencies, build, trace the bundled demo (a
# custom pool allocator on the explicit API, 8 threads) and summarize what was
# written. The hotspot report (thagtrace-report) and LD_PRELOAD tracing of unmodified
# programs (thagtrace-run) are not built yet; see the README's status.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null
out=$(mktemp -d "${TMPDIR:-/tmp}/thagtrace-demo.XXXXXX")
./build/pool_demo "$out"
echo
echo "files in $out:"
ls -l "$out" | tail -n +2
echo
echo "per file, records of each kind (thagtrace-dump --counts):"
./build/thagtrace-dump --counts "$out"/*.meta "$out"/*.bin "$out"/*.freq
echo
echo "process totals:"
./build/thagtrace-dump "$out"/*.meta | grep '^process-end'
echo
echo "look at any file with: ./build/thagtrace-dump $out/<file>"
