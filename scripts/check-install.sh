#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Check what `meson install` puts in a prefix is usable on its own: the library,
# header and pkg-config file (by building examples/consumer against them with only
# pkg-config), the tools and the man pages, and the installed thagtrace-run finding
# the installed library. Prints PASS or FAIL; exit status 0 only on PASS.
# BUILD=dir picks the build directory (default build-install); KEEP=1 keeps the prefix.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-install}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/thagtrace-install.XXXXXX")
prefix=$tmp/prefix
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "check-install: FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "check-install: ok: $*"; }

# Always a fresh configuration: the prefix is new each run.
if ! meson setup --wipe "$BUILD" --prefix="$prefix" >"$tmp/setup.log" 2>&1 &&
   ! meson setup "$BUILD" --prefix="$prefix" >"$tmp/setup.log" 2>&1; then
  cat "$tmp/setup.log"; echo "check-install: FAIL: meson setup"; exit 1
fi
if ! ninja -C "$BUILD" install >"$tmp/install.log" 2>&1; then
  tail -n 30 "$tmp/install.log"; echo "check-install: FAIL: ninja install"; exit 1
fi
ok "installed into $prefix"

libdir=$(meson introspect --buildoptions "$BUILD" |
  python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "libdir"))')
case $libdir in /*) ;; *) libdir=$prefix/$libdir ;; esac

for f in bin/thagtrace-run bin/thagtrace-merge bin/thagtrace-report bin/thagtrace-dump; do
  [ -x "$prefix/$f" ] && ok "$f" || fail "$prefix/$f missing"
done
for f in include/thagtrace.h "${libdir#"$prefix"/}/libthagtrace.so.0" \
         "${libdir#"$prefix"/}/pkgconfig/thagtrace.pc"; do
  [ -e "$prefix/$f" ] && ok "$f" || fail "$prefix/$f missing"
done
for m in thagtrace-run thagtrace-merge thagtrace-report thagtrace-dump; do
  page=$prefix/share/man/man1/$m.1
  if [ ! -f "$page" ]; then
    fail "$page missing"
  elif warn=$(groff -man -Tutf8 -ww -z "$page" 2>&1) && [ -z "$warn" ]; then
    ok "share/man/man1/$m.1"
  else
    fail "$page: groff: $warn"
  fi
done

# A project of its own, built with nothing but pkg-config.
export PKG_CONFIG_PATH=$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
cp -r examples/consumer "$tmp/consumer"
if make -s -C "$tmp/consumer" check >"$tmp/consumer.log" 2>&1; then
  ok "examples/consumer built with pkg-config and traced: $(grep '^consumer:' "$tmp/consumer.log" | tail -n 1)"
else
  cat "$tmp/consumer.log"; fail "examples/consumer"
fi

# The installed thagtrace-run, away from the build tree and with no hint: it must
# preload the installed library (beside nothing: bin/ has no libthagtrace.so).
out=$tmp/run-true
if (cd "$tmp" && env -u LD_LIBRARY_PATH -u THAGTRACE_LIB PATH="$prefix/bin:$PATH" \
      thagtrace-run -o "$out" -- /bin/true) >"$tmp/run.log" 2>&1 &&
   ls "$out"/*.meta >/dev/null 2>&1; then
  ok "installed thagtrace-run traced /bin/true into $out"
else
  cat "$tmp/run.log"; fail "installed thagtrace-run on /bin/true (no trace in $out)"
fi
if [ -s "$out/merged/summary.json" ]; then
  ok "installed thagtrace-merge wrote $out/merged/summary.json"
else
  fail "no $out/merged/summary.json from the installed tools"
fi

if [ $failures -eq 0 ]; then
  echo "check-install: PASS"
  exit 0
fi
echo "check-install: FAIL ($failures problems)"
exit 1
