#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fuzz the decoder with libFuzzer (clang, address+undefined) for SECONDS, seeded with
# the golden v1 and v2 files and past regressions. Exit 0 when nothing was found; otherwise
# the report is printed and the input kept as build/fuzz/crash-* (copy it into
# tests/data/fuzz-regressions/ with the fix).  usage: scripts/fuzz.sh [SECONDS]
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
out=build/fuzz
mkdir -p "$out/corpus"
cp tests/data/golden-v1/golden.meta tests/data/golden-v1/golden.bin \
  tests/data/golden-v1/golden.freq tests/data/fuzz-regressions/*.bin "$out/corpus/"
cp tests/data/golden-v2/golden.bin "$out/corpus/golden-v2.bin"
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Iinclude $(pkg-config --cflags msgpack libzstd) \
  tests/fuzz/fuzz_decode.c src/analysis/decode.c \
  $(pkg-config --libs msgpack libzstd) -o "$out/fuzz_decode" || exit 1
"$out/fuzz_decode" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=1024 \
  -malloc_limit_mb=512 -artifact_prefix="$out/" "$out/corpus" > "$out/log" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
  grep -v '^#[0-9]*	\(NEW\|REDUCE\|pulse\)' "$out/log" | tail -n 60
else
  tail -n 2 "$out/log"
fi
exit $rc
