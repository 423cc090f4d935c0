#!/usr/bin/env bash
# Installs what heapscan needs to build and test on Debian 12 (as root or
# with sudo).  Does nothing when everything is there already.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libelf-dev libdw-dev libunwind-dev
      libcapstone-dev libcmocka-dev python3 gdb elfutils util-linux
      libc6-dbg  # libc6-dbg: main_arena's symbol for heap tests, glibc's
                 # internal function names in stack tests
      clang libclang-rt-14-dev) # the libFuzzer harnesses (scripts/fuzz.sh)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "setup: installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
