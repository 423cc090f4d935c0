#!/usr/bin/env bash
# Benchmark: 'heapscan strings -p' against the investigation it replaces,
# 'gcore PID' then 'strings core | sort | uniq -c | sort -rn | head', on the
# demo leaky worker (fixtures/victims/leaky_worker.c).
#
# usage: bench/bench_strings.sh [BUILD_DIR] [RECORDS] [RUNS]
#   BUILD_DIR  a heapscan build (default build-strings next to this repo's
#              CMakeLists.txt); the worker is BUILD_DIR/victims/leaky_worker
#   RECORDS    leaked records (default 13000000: about 1.5 GB of heap)
#   RUNS       runs of each side (default 3); medians are printed
# Environment: HS_BENCH_TMP (default /tmp) holds the core file (as large as
# the worker), HS_BENCH_ARGS extra heapscan arguments.
#
# Prints, side by side: wall time, target stop time, peak RSS of the tool,
# the ratio, and heapscan's throughput per core.  Needs gdb (gcore),
# binutils (strings) and GNU time; installs them with apt-get if missing.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build-strings}
records=${2:-13000000}
runs=${3:-3}
tmp=$(mktemp -d "${HS_BENCH_TMP:-/tmp}/hs-bench.XXXXXX")
heapscan=$build/src/heapscan
worker=$build/victims/leaky_worker

need=()
command -v gcore >/dev/null || need+=(gdb)
command -v strings >/dev/null || need+=(binutils)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
	echo "installing: ${need[*]}" >&2
	apt-get install -y "${need[@]}" >/dev/null
fi
for f in "$heapscan" "$worker"; do
	[ -x "$f" ] || { echo "bench: '$f' not built" >&2; exit 2; }
done

cleanup() {
	if [ -n "${wpid:-}" ]; then kill "$wpid" 2>/dev/null || true; wait "$wpid" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# Start the worker and read its ground truth up to "ready".
coproc W { exec "$worker" "$records"; }
wpid=$W_PID
declare -A fact
while IFS= read -r line <&"${W[0]}"; do
	[ "$line" = ready ] && break
	set -- $line
	fact[$1]="${*:2}"
done
rss_kb=$(awk '/^VmRSS/ {print $2}' /proc/$wpid/status)
echo "worker pid $wpid: ${fact[records]} records, VmRSS $((rss_kb / 1024)) MiB"
echo "  ground truth: ${fact[string1]} / ${fact[string2]} times; distinct tags ${fact[distinct_tags]}"

median() { sort -g | awk '{a[NR]=$1} END {printf "%.6f\n", a[int((NR+1)/2)]}'; }

p_wall=(); p_stop=(); p_rss=(); h_wall=(); h_stop=(); h_rss=(); h_scan=(); h_bytes=()
for i in $(seq 1 "$runs"); do
	# The pipeline: gcore stops the target for the whole dump.
	t0=$(date +%s.%N)
	/usr/bin/time -f "%e %M" -o "$tmp/gcore.time" gcore -o "$tmp/core" "$wpid" >/dev/null 2>&1
	t1=$(date +%s.%N)
	/usr/bin/time -f "%e %M" -o "$tmp/sort.time" sh -c \
		"strings '$tmp/core.$wpid' | sort | uniq -c | sort -rn | head -5 > '$tmp/pipe.out'"
	t2=$(date +%s.%N)
	rm -f "$tmp/core.$wpid"
	p_wall+=("$(echo "$t2 - $t0" | bc -l)")
	p_stop+=("$(echo "$t1 - $t0" | bc -l)")
	p_rss+=("$(awk '{print $2}' "$tmp/sort.time")")

	/usr/bin/time -f "%e %M" -o "$tmp/hs.time" "$heapscan" strings -p "$wpid" --json \
		--min-len 4 ${HS_BENCH_ARGS:-} > "$tmp/hs.json"
	h_wall+=("$(awk '{print $1}' "$tmp/hs.time")")
	h_rss+=("$(awk '{print $2}' "$tmp/hs.time")")
	read -r stop scan bytes jobs exact < <(python3 -c '
import json,sys; s=json.load(open(sys.argv[1]))["summary"]
print(s["stop_ms"]/1e3, s["scan_ms"]/1e3, s["bytes_scanned"], s["jobs"], s["exact"])' "$tmp/hs.json")
	h_stop+=("$stop"); h_scan+=("$scan"); h_bytes+=("$bytes")
done

echo
echo "pipeline top 2:"; head -2 "$tmp/pipe.out"
echo "heapscan top 2:"
python3 -c '
import json,sys; d=json.load(open(sys.argv[1]))
for e in d["strings"][:2]: print("  %10d %s  %s" % (e["count"], e["string"], e["classes"]))
print("  counts exact:", d["summary"]["exact"], " error bound:", d["summary"]["error_bound"])' "$tmp/hs.json"

pw=$(printf '%s\n' "${p_wall[@]}" | median); ps=$(printf '%s\n' "${p_stop[@]}" | median)
pr=$(printf '%s\n' "${p_rss[@]}" | median)
hw=$(printf '%s\n' "${h_wall[@]}" | median); hs=$(printf '%s\n' "${h_stop[@]}" | median)
hr=$(printf '%s\n' "${h_rss[@]}" | median); hc=$(printf '%s\n' "${h_scan[@]}" | median)
hb=$(printf '%s\n' "${h_bytes[@]}" | median)
echo
echo "medians of $runs runs              gcore+strings|sort|uniq    heapscan strings"
printf "  wall time (s)                    %10.2f                %10.2f\n" "$pw" "$hw"
printf "  target stopped (s)               %10.2f                %10.3f\n" "$ps" "$hs"
printf "  peak RSS of the tool (MiB)       %10.1f                %10.1f\n" "$(echo "$pr/1024" | bc -l)" "$(echo "$hr/1024" | bc -l)"
printf "  speed-up (wall)                  %10.1fx\n" "$(echo "$pw / $hw" | bc -l)"
printf "  heapscan: %.2f GB scanned in %.3f s = %.2f GB/s with %s jobs, %.2f GB/s per core\n" \
	"$(echo "$hb/1000000000" | bc -l)" "$hc" "$(echo "$hb/1000000000/$hc" | bc -l)" "$jobs" \
	"$(echo "$hb/1000000000/$hc/$jobs" | bc -l)"
