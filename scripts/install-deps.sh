#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install what libthagtrace needs to build and test, from Debian's archive.
# Idempotent: does nothing when every package is already there. Needs root (or sudo).
set -euo pipefail

PACKAGES=(
  build-essential meson ninja-build pkg-config python3
  liburcu-dev libmsgpack-dev libzstd-dev libcriterion-dev
  libunwind-dev libdw-dev libelf-dev libprotobuf-c-dev protobuf-c-compiler zlib1g-dev
  golang-github-google-pprof-dev
  clang libclang-rt-14-dev zstd
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
