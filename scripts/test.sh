#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The README's test command: install dependencies, build with warnings as errors,
# run every test, print "N passed, N failed". Works on a fresh Debian 12 as root.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
BUILD=${BUILD:-build}
if [ -d "$BUILD" ]; then
  meson setup --reconfigure "$BUILD" -Dwerror=true >/dev/null
else
  meson setup "$BUILD" -Dwerror=true >/dev/null
fi
ninja -C "$BUILD"
rc=0
meson test -C "$BUILD" --print-errorlogs || rc=$?
python3 scripts/summarize.py "$BUILD/meson-logs/testlog.json" || rc=1
exit $rc
