#!/usr/bin/env bash
# Sets up, builds and runs every heapscan test on a fresh Debian 12 machine:
#   1. a -Werror build with all unit and integration tests;
#   2. an ASan+UBSan build of heapscan and its tests (victims stay plain:
#      a sanitizer's allocator would replace the glibc heap they exhibit);
#   3. each libFuzzer harness (fuzz/) for HS_FUZZ_SECONDS (default 20) from
#      its seeds and earlier findings (fixtures/fuzz/), in build-ci-fuzz.
# Usage: scripts/test.sh [--no-asan]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
jobs=$(nproc)

run_suite() { # build-dir cmake-args...
  local dir=$1; shift
  cmake -S . -B "$dir" -DHS_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j"$jobs" >/dev/null
  (cd "$dir" && ctest --output-on-failure -j"$jobs")
}

echo "== -Werror build, all tests"
run_suite build-ci
if [ "${1:-}" != "--no-asan" ]; then
  echo "== ASan+UBSan build, all tests"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
    run_suite build-ci-asan -DHS_ASAN=ON -DHS_UBSAN=ON -DCMAKE_BUILD_TYPE=Debug
fi

echo "== libFuzzer harnesses, ${HS_FUZZ_SECONDS:-20} s each"
mkdir -p build-ci-fuzz
for t in core glibc profile proc; do
  HS_FUZZ_BUILD=build-ci-fuzz HS_FUZZ_JOBS=$jobs \
    scripts/fuzz.sh "$t" "${HS_FUZZ_SECONDS:-20}" > build-ci-fuzz/$t.log 2>&1 ||
    { tail -40 build-ci-fuzz/$t.log; echo "fuzz: $t found something" >&2; exit 1; }
  grep -h "DONE" build-ci-fuzz/$t.log | sed "s/^/  $t: /"
done
echo "fuzz: 4 passed, 0 failed"
