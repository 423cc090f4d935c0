#!/usr/bin/env bash
# Benchmark: the cost of the reading policy (doc/reading-policy.md) on the
# full default report, 'heapscan -p PID', against the previous way of
# reading (every page through the process: HEAPSCAN_READ_POLICY=off, a
# knob for this bench), on the demo leaky worker.
#
# usage: bench/bench_pagemap.sh [BUILD_DIR] [RECORDS] [RUNS]
#   BUILD_DIR  a heapscan build (default build/ in this repo, built
#              if missing); the worker is BUILD_DIR/victims/leaky_worker
#   RECORDS    leaked records (default 18000000: VmRSS about 1.65 GB)
#   RUNS       runs of each side (default 7); medians are printed
#
# The two sides alternate (old, new, old, new, ...) on one worker, so a
# machine busy with other work slows both alike.  Each run's JSON report
# is checked to hold the same heap and strings sections on both sides.
# Prints the medians of wall time, target stop time and CPU time, and
# new / old.  Needs GNU time (installed with apt-get if missing).
# HS_BENCH_OLD=PATH runs that heapscan binary (e.g. a build of the commit
# before the reading policy) as the old side instead of the knob.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/lib.sh"
build=${1:-$here/build}
records=${2:-18000000}
runs=${3:-7}
tmp=$(mktemp -d "${HS_BENCH_TMP:-/tmp}/hs-bench.XXXXXX")
heapscan=$build/src/heapscan
worker=$build/victims/leaky_worker

hs_bench_need /usr/bin/time:time
hs_bench_build "$build"
for f in "$heapscan" "$worker"; do
	[ -x "$f" ] || { echo "bench: '$f' not built" >&2; rm -rf "$tmp"; exit 2; }
done

hs_bench_start_worker "$worker" "$records"
echo "worker pid $wpid: ${hs_fact[records]} records, VmRSS $(hs_bench_rss_mib "$wpid") MiB"

med() { printf '%s\n' "$@" | hs_bench_median; }
calc() { awk "BEGIN { printf \"%.3f\n\", $* }"; }

# One run of side $1 (off or pagemap): wall, stop and CPU seconds.
one() {
	local side=$1 out=$tmp/$1.json wall usr sys bin=$heapscan
	[ "$side" = off ] && [ -n "${HS_BENCH_OLD:-}" ] && bin=$HS_BENCH_OLD
	HEAPSCAN_READ_POLICY=$side /usr/bin/time -f "%e %U %S" -o "$tmp/$side.time" \
		"$bin" -p "$wpid" --json > "$out"
	read -r wall usr sys < "$tmp/$side.time"
	echo "$wall $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["stop_ms"] / 1e3)' "$out") $(calc "$usr + $sys")"
}

# The same heap and strings sections on both sides, timings aside (the
# smaps figures move with the machine: Pss with other processes, and the
# off side maps file pages in).
same() {
	python3 - "$tmp/off.json" "$tmp/pagemap.json" <<'EOF'
import json, sys
def norm(d):
    drop = {"stop_ms", "time_ns", "walk_seconds", "scan_ms", "mem_peak", "pages",
            "ms", "wall_ms", "build_ms"}
    if isinstance(d, dict):
        return {k: norm(v) for k, v in d.items() if k not in drop}
    if isinstance(d, list):
        return [norm(v) for v in d]
    return d
a, b = (norm(json.load(open(p))) for p in sys.argv[1:3])
bad = [k for k in ("heap", "strings") if a.get(k) != b.get(k)]
if bad:
    print("bench: reports differ in %s" % bad, file=sys.stderr)
    sys.exit(1)
EOF
}

o_wall=(); o_stop=(); o_cpu=(); n_wall=(); n_stop=(); n_cpu=()
# One untimed run of each first: page cache, the worker's first stop.
one off >/dev/null; one pagemap >/dev/null
for i in $(seq 1 "$runs"); do
	read -r w s c < <(one off); o_wall+=("$w"); o_stop+=("$s"); o_cpu+=("$c")
	read -r w s c < <(one pagemap); n_wall+=("$w"); n_stop+=("$s"); n_cpu+=("$c")
	same || { echo "bench: the policy changed the report (run $i)" >&2; exit 1; }
done

ow=$(med "${o_wall[@]}"); os=$(med "${o_stop[@]}"); oc=$(med "${o_cpu[@]}")
nw=$(med "${n_wall[@]}"); ns=$(med "${n_stop[@]}"); nc=$(med "${n_cpu[@]}")
echo "heapscan -p PID --json, medians of $runs alternating runs (reports identical):"
if [ -n "${HS_BENCH_OLD:-}" ]; then
	echo "  old side: $HS_BENCH_OLD"
	echo "                          old binary              pagemap policy    new / old"
else
	echo "                          every page read (off)   pagemap policy    new / old"
fi
printf "  wall time (s)           %10.3f            %10.3f        %6s\n" "$ow" "$nw" "$(hs_bench_ratio "$nw" "$ow")"
printf "  target stopped (s)      %10.3f            %10.3f        %6s\n" "$os" "$ns" "$(hs_bench_ratio "$ns" "$os")"
printf "  CPU user+sys (s)        %10.3f            %10.3f        %6s\n" "$oc" "$nc" "$(hs_bench_ratio "$nc" "$oc")"
echo "  all runs, wall (s): off ${o_wall[*]}"
echo "                      pagemap ${n_wall[*]}"
