#!/usr/bin/env bash
# Benchmark: 'heapscan leaks -p' on a large worker, and valgrind's memcheck
# (the tool a user would otherwise run) on a smaller one.
#
# usage: bench/bench_leaks.sh [BUILD_DIR] [RECORDS] [RUNS] [VG_RECORDS]
#   BUILD_DIR   a heapscan build (default build/, built if missing)
#   RECORDS     leaky_worker records in graph mode (default 10000000: three
#               chunks each, 30 M chunks, about 1.6 GB of heap)
#   RUNS        runs of heapscan (default 3); medians are printed
#   VG_RECORDS  records of the worker run under valgrind (default 200000:
#               memcheck runs the whole program, about 50x slower, and
#               needs its own memory for every block; 0 skips it)
#
# The worker (fixtures/victims/leaky_worker.c, "graph"): for each record a
# node links it into a list anchored from a global for 3 records in 4 (each
# node points to an older one: the list runs backwards through memory), or
# into a leaked list; a second node points into the record's middle and is
# dropped.  Its facts give the expected anchored, leaked and unreferenced
# chunk counts (heapscan also anchors glibc's tcache chunk).
#
# Prints medians of wall time, target stop time, heapscan's peak RSS, its
# phases (index = the glibc walk that indexes every chunk, mark = roots
# and marking, leaked = the sweep over leaked chunks and the closures,
# groups), and checks the counts against the facts.  Then memcheck on the
# smaller worker: the wall time of the whole run under valgrind (the leak
# check itself is not separable from the run), its leak summary, and
# heapscan on that same worker size for comparison.  chap is not packaged
# for Debian 12: not compared.  Needs GNU time; valgrind for the second
# part.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/lib.sh"
build=${1:-$here/build}
records=${2:-10000000}
runs=${3:-3}
vg_records=${4:-200000}
tmp=$(mktemp -d "${HS_BENCH_TMP:-/tmp}/hs-bench.XXXXXX")
heapscan=$build/src/heapscan
worker=$build/victims/leaky_worker

hs_bench_need /usr/bin/time:time
hs_bench_build "$build"
for f in "$heapscan" "$worker"; do
	[ -x "$f" ] || { echo "bench: '$f' not built" >&2; rm -rf "$tmp"; exit 2; }
done

med() { printf '%s\n' "$@" | hs_bench_median; }
calc() { awk "BEGIN { printf \"%.2f\n\", $* }"; }

hs_bench_start_worker "$worker" "$records" 16 graph
echo "worker pid $wpid: ${hs_fact[records]} records, VmRSS $(hs_bench_rss_mib "$wpid") MiB"
echo "  facts: anchored ${hs_fact[anchored_chunks]} (+1 tcache), leaked ${hs_fact[leaked_chunks]}, unreferenced ${hs_fact[unref_chunks]}"

h_wall=(); h_stop=(); h_rss=(); h_idx=(); h_mark=(); h_leak=(); h_grp=()
for i in $(seq 1 "$runs"); do
	/usr/bin/time -f "%e %M" -o "$tmp/hs.time" "$heapscan" leaks -p "$wpid" --json \
		--top 5 > "$tmp/hs.json"
	read -r wall rss < "$tmp/hs.time"
	h_wall+=("$wall"); h_rss+=("$rss")
	read -r stop idx mark leak grp chunks heap ok < <(python3 -c '
import json,sys; d=json.load(open(sys.argv[1])); w=d["work"]
ok = (d["anchored"]["count"] == int(sys.argv[2]) + 1 and d["leaked"]["count"] == int(sys.argv[3])
      and d["unreferenced"]["count"] == int(sys.argv[4]))
print(d["stop_ms"]/1e3, w["index_ms"]/1e3, w["mark_ms"]/1e3, w["leaked_ms"]/1e3,
      w["groups_ms"]/1e3, d["inuse"]["count"], w["heap_bytes"], "yes" if ok else "NO")' \
		"$tmp/hs.json" "${hs_fact[anchored_chunks]}" "${hs_fact[leaked_chunks]}" \
		"${hs_fact[unref_chunks]}")
	h_stop+=("$stop"); h_idx+=("$idx"); h_mark+=("$mark"); h_leak+=("$leak"); h_grp+=("$grp")
	echo "  run $i: wall $wall s, stopped $stop s, RSS $((rss / 1024)) MiB, counts match the facts: $ok"
done
kill "$wpid" 2>/dev/null || true
wait "$wpid" 2>/dev/null || true
wpid=

echo
echo "heapscan leaks, $chunks chunks in $(calc "$heap / 1e9") GB of heap, medians of $runs runs:"
printf "  wall %.2f s, target stopped %.2f s, peak RSS %.0f MiB\n" \
	"$(med "${h_wall[@]}")" "$(med "${h_stop[@]}")" "$(calc "$(med "${h_rss[@]}") / 1024")"
printf "  phases: index %.2f s, mark %.2f s, leaked %.2f s, groups %.2f s\n" \
	"$(med "${h_idx[@]}")" "$(med "${h_mark[@]}")" "$(med "${h_leak[@]}")" "$(med "${h_grp[@]}")"

[ "$vg_records" -gt 0 ] || exit 0
if ! command -v valgrind >/dev/null; then
	echo "valgrind not installed (apt-get install valgrind): memcheck not compared"
	exit 0
fi
echo
echo "memcheck on leaky_worker $vg_records 16 graph (whole run; the worker asks for the leak check at \"ready\", the first summary below):"
t0=$(hs_bench_now)
echo | /usr/bin/time -f "%e %M" -o "$tmp/vg.time" valgrind --leak-check=full \
	--show-leak-kinds=definite,indirect --log-file="$tmp/vg.log" "$worker" "$vg_records" 16 graph >/dev/null
t1=$(hs_bench_now)
read -r vwall vrss < "$tmp/vg.time"
grep -m3 -E "definitely lost:|indirectly lost:|still reachable:" "$tmp/vg.log" | sed 's/^==[0-9]*==  */  /'
hs_bench_start_worker "$worker" "$vg_records" 16 graph
/usr/bin/time -f "%e %M" -o "$tmp/hs.time" "$heapscan" leaks -p "$wpid" --json --top 1 > "$tmp/hs.json"
read -r swall srss < "$tmp/hs.time"
python3 -c '
import json,sys; d=json.load(open(sys.argv[1]))
print("  heapscan: definite %d blocks, indirect %d blocks, anchored %d (memcheck does not see glibc tcache chunk)"
      % (d["definite"]["count"], d["indirect"]["count"], d["anchored"]["count"]))' "$tmp/hs.json"
printf "  wall: valgrind run %.2f s (peak RSS %.0f MiB) vs heapscan leaks %.2f s (peak RSS %.0f MiB) on a running worker: %sx\n" \
	"$vwall" "$(calc "$vrss / 1024")" "$swall" "$(calc "$srss / 1024")" "$(hs_bench_ratio "$vwall" "$swall")"
