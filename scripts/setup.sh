#!/usr/bin/env bash
# Installs what heapscan needs to build and test on Debian 12 (as root or
# with sudo).  Does nothing when everything is there already.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libelf-dev libdw-dev libunwind-dev
      libcapstone-dev libcmocka-dev python3 gdb elfutils util-linux
      # main_arena's symbol for heap tests, glibc's internal function
      # names in stack tests, gdb's independent heap walks
      libc6-dbg
      # gzip of pprof profiles; go tool pprof reads them in tests;
      # cpack -G DEB computes Depends with dpkg-shlibdeps and file
      zlib1g-dev golang-go dpkg-dev file
      # the man page test renders it with groff's warnings on
      groff-base
      # swapon for the swap test (util-linux has mkswap and setpriv)
      mount
      # a real pre-fork server (tests/integration/test_nginx.py)
      nginx-light
      # memcheck, the reference of the leaks tests (and its memcheck.h,
      # for the victims' client requests)
      valgrind
      # jemalloc tests: a victim linked with it, python3 preloading it,
      # redis-server on it
      libjemalloc-dev redis-server redis-tools
      # allocators heapscan must name (and say it does not walk)
      libtcmalloc-minimal4 libmimalloc2.0 musl-tools
      # the libFuzzer harnesses (scripts/fuzz.sh)
      clang libclang-rt-14-dev)
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
