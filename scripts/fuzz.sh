#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang, HS_FUZZ=ON) and runs one.
# usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer options...]
#   TARGET   core | glibc | profile | proc   (fuzz/fuzz_TARGET.c)
#   SECONDS  how long to fuzz (0: only replay the seeds, as a regression test)
# Seeds (and every earlier finding, kept as regress-*) are read from
# fixtures/fuzz/TARGET/; new corpus entries go to build-fuzz/corpus/TARGET
# and a crash's input to build-fuzz/artifacts/TARGET/.  Exits non-zero on
# a finding.  Environment: HS_FUZZ_BUILD (default build-fuzz), HS_FUZZ_JOBS
# (build parallelism, default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer options]" >&2; exit 64; }
target=$1 secs=$2; shift 2
[ -f "fuzz/fuzz_$target.c" ] || { echo "fuzz.sh: no harness fuzz/fuzz_$target.c" >&2; exit 64; }
build=${HS_FUZZ_BUILD:-build-fuzz}
if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=clang cmake -S . -B "$build" -DHS_FUZZ=ON -DHS_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" -j"${HS_FUZZ_JOBS:-2}" --target "fuzz_$target" >/dev/null
seeds=fixtures/fuzz/$target
corpus=$build/corpus/$target
arts=$build/artifacts/$target
mkdir -p "$corpus" "$arts"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Bounds every input must respect: heapscan's memory and time do not
# depend on what the input claims.
opts=(-rss_limit_mb=1024 -malloc_limit_mb=512 -timeout=20 -max_len=65536
      -artifact_prefix="$arts/" -print_final_stats=1)
if [ "$secs" = 0 ]; then
  exec "$build/fuzz/fuzz_$target" "${opts[@]}" -runs=0 "$@" "$seeds"
fi
exec "$build/fuzz/fuzz_$target" "${opts[@]}" -max_total_time="$secs" "$@" "$corpus" "$seeds"
