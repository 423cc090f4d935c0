#!/usr/bin/env bash
# Benchmark: 'heapscan strings -p' against the investigation it replaces,
# 'gcore PID' then 'strings core | sort | uniq -c | sort -rn | head', on the
# demo leaky worker (fixtures/victims/leaky_worker.c).
#
# usage: bench/bench_strings.sh [BUILD_DIR] [RECORDS] [RUNS]
#   BUILD_DIR  a heapscan build (default build/ in this repo, built
#              if missing); the worker is BUILD_DIR/victims/leaky_worker
#   RECORDS    leaked records (default 13000000: about 1.2 GiB of heap)
#   RUNS       runs of each side (default 3); medians are printed
# Environment: HS_BENCH_TMP (default /tmp) holds the core file (as large as
# the worker), HS_BENCH_ARGS extra heapscan arguments, HS_BENCH_NO_PIPE=1
# skips the gcore pipeline (heapscan figures only).
#
# Prints, side by side: wall time, target stop time, peak RSS of the tool,
# the ratio; then heapscan's throughput per core, three ways (see the
# lines printed: scan phase, end to end, per CPU-second), measured like
# for like with strings(1) at --min-len 4, and again at heapscan's own
# defaults (min-len 6: fewer short runs from binary data); then the glibc
# heap walker alone ('heapscan heap -p'; 'heapscan strings' no longer
# walks: it places strings from the free lists).  Needs gdb (gcore), binutils
# (strings) and GNU time; installs them with apt-get if missing.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/lib.sh"
build=${1:-$here/build}
records=${2:-13000000}
runs=${3:-3}
tmp=$(mktemp -d "${HS_BENCH_TMP:-/tmp}/hs-bench.XXXXXX")
heapscan=$build/src/heapscan
worker=$build/victims/leaky_worker
pipe=$([ "${HS_BENCH_NO_PIPE:-0}" = 1 ] && echo 0 || echo 1)

hs_bench_need gcore:gdb strings:binutils /usr/bin/time:time
hs_bench_build "$build"
for f in "$heapscan" "$worker"; do
	[ -x "$f" ] || { echo "bench: '$f' not built" >&2; rm -rf "$tmp"; exit 2; }
done

# Start the worker and read its ground truth up to "ready".
hs_bench_start_worker "$worker" "$records"
echo "worker pid $wpid: ${hs_fact[records]} records, VmRSS $(hs_bench_rss_mib "$wpid") MiB"
echo "  ground truth: ${hs_fact[string1]} / ${hs_fact[string2]} times; distinct tags ${hs_fact[distinct_tags]}"

med() { printf '%s\n' "$@" | hs_bench_median; }
calc() { awk "BEGIN { printf \"%.2f\n\", $* }"; }

p_wall=(); p_stop=(); p_rss=()
h_wall=(); h_cpu=(); h_stop=(); h_rss=(); h_scan=(); h_bytes=()
d_wall=(); d_cpu=(); d_scan=(); d_rss=()
w_wall=(); w_walk=(); w_bytes=(); w_chunks=()
for i in $(seq 1 "$runs"); do
	if [ "$pipe" = 1 ]; then
		# The pipeline: gcore stops the target for the whole dump.
		t0=$(hs_bench_now)
		gcore -o "$tmp/core" "$wpid" >/dev/null 2>&1
		t1=$(hs_bench_now)
		/usr/bin/time -f "%e %M" -o "$tmp/sort.time" sh -c \
			"strings '$tmp/core.$wpid' | sort | uniq -c | sort -rn | head -5 > '$tmp/pipe.out'"
		t2=$(hs_bench_now)
		rm -f "$tmp/core.$wpid"
		p_wall+=("$(calc "$t2 - $t0")")
		p_stop+=("$(calc "$t1 - $t0")")
		p_rss+=("$(awk '{print $2}' "$tmp/sort.time")")
	fi

	/usr/bin/time -f "%e %M %U %S" -o "$tmp/hs.time" "$heapscan" strings -p "$wpid" --json \
		--min-len 4 ${HS_BENCH_ARGS:-} > "$tmp/hs.json"
	read -r wall rss usr sys < "$tmp/hs.time"
	h_wall+=("$wall"); h_rss+=("$rss"); h_cpu+=("$(calc "$usr + $sys")")
	read -r stop scan bytes jobs exact < <(python3 -c '
import json,sys; s=json.load(open(sys.argv[1]))["summary"]
print(s["stop_ms"]/1e3, s["scan_ms"]/1e3, s["bytes_scanned"], s["jobs"], s["exact"])' "$tmp/hs.json")
	h_stop+=("$stop"); h_scan+=("$scan"); h_bytes+=("$bytes")

	# The same at heapscan's defaults (what 'heapscan strings -p PID' runs).
	/usr/bin/time -f "%e %M %U %S" -o "$tmp/hsd.time" "$heapscan" strings -p "$wpid" --json \
		${HS_BENCH_ARGS:-} > "$tmp/hsd.json"
	read -r wall rss usr sys < "$tmp/hsd.time"
	d_wall+=("$wall"); d_rss+=("$rss"); d_cpu+=("$(calc "$usr + $sys")")
	d_scan+=("$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["summary"]["scan_ms"]/1e3)' "$tmp/hsd.json")")
	d_minlen=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["summary"]["min_len"])' "$tmp/hsd.json")

	/usr/bin/time -f "%e %M" -o "$tmp/heap.time" "$heapscan" heap -p "$wpid" --json \
		> "$tmp/heap.json"
	w_wall+=("$(awk '{print $1}' "$tmp/heap.time")")
	read -r walk wbytes wchunks < <(python3 -c '
import json,sys; h=json.load(open(sys.argv[1]))["heap"]
n=sum(v.get("count",0) for v in h["totals"].values()) if isinstance(h["totals"], dict) else 0
print(h["walk_seconds"], h["walked_bytes"], n)' "$tmp/heap.json")
	w_walk+=("$walk"); w_bytes+=("$wbytes"); w_chunks+=("$wchunks")
done

echo
if [ "$pipe" = 1 ]; then
	echo "pipeline top 2:"; head -2 "$tmp/pipe.out"
fi
echo "heapscan top 2:"
python3 -c '
import json,sys; d=json.load(open(sys.argv[1]))
for e in d["strings"][:2]: print("  %10d %s  %s" % (e["count"], e["string"], e["classes"]))
s=d["summary"]
print("  counts exact:", s["exact"], " error bound:", s["error_bound"], " distinct:", s.get("distinct"))' "$tmp/hs.json"

hw=$(med "${h_wall[@]}"); hs=$(med "${h_stop[@]}"); hr=$(med "${h_rss[@]}")
hc=$(med "${h_scan[@]}"); hb=$(med "${h_bytes[@]}"); hu=$(med "${h_cpu[@]}")
ww=$(med "${w_wall[@]}"); wk=$(med "${w_walk[@]}")
wb=$(med "${w_bytes[@]}"); wc=$(med "${w_chunks[@]}")
gb=$(calc "$hb / 1e9")
echo
if [ "$pipe" = 1 ]; then
	pw=$(med "${p_wall[@]}"); ps=$(med "${p_stop[@]}"); pr=$(med "${p_rss[@]}")
	echo "medians of $runs runs              gcore+strings|sort|uniq    heapscan strings"
	printf "  wall time (s)                    %10.2f                %10.2f\n" "$pw" "$hw"
	printf "  target stopped (s)               %10.2f                %10.3f\n" "$ps" "$hs"
	printf "  peak RSS of the tool (MiB)       %10.1f                %10.1f\n" "$(calc "$pr / 1024")" "$(calc "$hr / 1024")"
	printf "  speed-up (wall)                  %10sx\n" "$(hs_bench_ratio "$pw" "$hw")"
else
	echo "medians of $runs runs (pipeline skipped)"
	printf "  heapscan strings: wall %.2f s, target stopped %.3f s, peak RSS %.1f MiB\n" \
		"$hw" "$hs" "$(calc "$hr / 1024")"
fi
echo "  heapscan throughput, $gb GB scanned with $jobs jobs (GB = 1e9 bytes):"
printf "    scan phase:  GB / scan time (hs_strings_scan, join included) / jobs = %s / %.3f / %s = %s GB/s per core\n" \
	"$gb" "$hc" "$jobs" "$(calc "$gb / $hc / $jobs")"
printf "    end to end:  GB / wall time of the command / jobs = %s / %.2f / %s = %s GB/s per core\n" \
	"$gb" "$hw" "$jobs" "$(calc "$gb / $hw / $jobs")"
printf "    CPU time:    GB / (user + sys CPU seconds of the command) = %s / %.2f = %s GB per CPU-second\n" \
	"$gb" "$hu" "$(calc "$gb / $hu")"
dw=$(med "${d_wall[@]}"); ds=$(med "${d_scan[@]}"); du=$(med "${d_cpu[@]}"); dr=$(med "${d_rss[@]}")
echo "  heapscan strings at its defaults (min-len $d_minlen, what 'heapscan strings -p PID' runs):"
printf "    wall %.2f s, peak RSS %.1f MiB; %s GB/s per core end to end, %s in the scan phase, %s GB per CPU-second\n" \
	"$dw" "$(calc "$dr / 1024")" "$(calc "$gb / $dw / $jobs")" "$(calc "$gb / $ds / $jobs")" "$(calc "$gb / $du")"
printf "  heapscan heap: %.0f chunks, %.2f GB of heap walked in %.3f s = %.2f GB/s (one core); wall %.2f s\n" \
	"$wc" "$(calc "$wb / 1e9")" "$wk" "$(calc "$wb / 1e9 / $wk")" "$ww"
echo "  (end to end = attach, glibc free lists for the locations, then the scan phase on $jobs)"
