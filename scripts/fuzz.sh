#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fuzz the decoder with libFuzzer (clang, address+undefined) for SECONDS, seeded with
# the golden v1 files. Exit 0 when no crash was found.  usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
out=build/fuzz
mkdir -p "$out/corpus"
cp tests/data/golden-v1/golden.* "$out/corpus/" 2>/dev/null || true
rm -f "$out"/corpus/*.dump "$out"/corpus/README*
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Iinclude $(pkg-config --cflags msgpack libzstd) \
  tests/fuzz/fuzz_decode.c src/analysis/decode.c \
  $(pkg-config --libs msgpack libzstd) -o "$out/fuzz_decode"
"$out/fuzz_decode" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=1024 \
  -artifact_prefix="$out/" "$out/corpus" 2>&1 | tail -n 5
