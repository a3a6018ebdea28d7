#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Golden files (one folder per format version): thagtrace-dump prints exactly the stored text for each, and bad
# input gives "thagtrace-dump: FILE: offset N: ..." with exit 1, never a crash.
# usage: check_golden.sh THAGTRACE_DUMP GOLDEN_DIR
set -u
dump=$1 dir=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/golden.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail=0
for f in "$dir"/golden.meta "$dir"/golden.bin "$dir"/golden.freq; do
  if ! "$dump" "$f" > "$tmp/out" 2> "$tmp/err"; then
    echo "FAIL: $f did not decode: $(cat "$tmp/err")"; fail=1; continue
  fi
  if ! diff -u "$f.dump" "$tmp/out"; then
    echo "FAIL: $f decodes differently from $f.dump"; fail=1
  fi
done

expect() { # expect EXIT_CODE STDERR_TEXT FILE
  "$dump" "$3" > /dev/null 2> "$tmp/err"; local rc=$?
  if [ $rc -ne "$1" ] || [ "$(cat "$tmp/err")" != "$2" ]; then
    echo "FAIL: $3: exit $rc, stderr '$(cat "$tmp/err")'; want exit $1, '$2'"; fail=1
  fi
}
bin="$dir/golden.bin"
size=$(stat -c %s "$bin")
head -c 30 "$bin" > "$tmp/cut.bin"
expect 0 "thagtrace-dump: $tmp/cut.bin: offset 24: warning: file ends inside a frame (cut short); records before it were decoded" "$tmp/cut.bin"
: > "$tmp/empty.bin"
expect 1 "thagtrace-dump: $tmp/empty.bin: offset 0: empty file, not a thagtrace file" "$tmp/empty.bin"
printf 'hello, world, this is not a trace' > "$tmp/text.bin"
expect 1 "thagtrace-dump: $tmp/text.bin: offset 0: bad magic, not a thagtrace file" "$tmp/text.bin"
{ head -c 16 "$bin"; printf '\x09\x00'; tail -c +19 "$bin"; } > "$tmp/v9.bin"
expect 1 "thagtrace-dump: $tmp/v9.bin: offset 16: format version 9 is not supported (this reader reads versions 1 to 2)" "$tmp/v9.bin"
{ cat "$bin"; printf 'garbage!'; } > "$tmp/tail.bin"
expect 1 "thagtrace-dump: $tmp/tail.bin: offset $size: corrupt compressed frame: Unknown frame descriptor" "$tmp/tail.bin"
expect 1 "thagtrace-dump: $tmp/missing.bin: offset 0: cannot open: No such file or directory" "$tmp/missing.bin"
for f in "$dir"/../fuzz-regressions/*.bin; do
  "$dump" "$f" > /dev/null 2> "$tmp/err"; rc=$?
  case "$(cat "$tmp/err")" in
    "thagtrace-dump: $f: offset "*) [ $rc -eq 1 ] || { echo "FAIL: $f: exit $rc"; fail=1; } ;;
    *) echo "FAIL: $f: exit $rc, stderr '$(cat "$tmp/err")'"; fail=1 ;;
  esac
done
"$dump" --bogus > /dev/null 2>&1; [ $? -eq 2 ] || { echo "FAIL: bad option must exit 2"; fail=1; }
"$dump" > /dev/null 2>&1; [ $? -eq 2 ] || { echo "FAIL: no file must exit 2"; fail=1; }
[ $fail -eq 0 ] && echo "golden $(basename "$dir"): ok"
exit $fail
