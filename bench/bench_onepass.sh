#!/usr/bin/env bash
# Benchmark for issue #21: the default report against the floor of reading
# the target's memory once.
#
# usage: bench/bench_onepass.sh [BUILD_DIR] [RUNS] [RECORDS...]
#   BUILD_DIR  a heapscan build (default build/, built if missing)
#   RUNS       runs of each command per size (default 5); medians printed
#   RECORDS    leaky_worker sizes (default 18000000, about 1.65 GB, and
#              85000000, about 8 GB: the largest this 24 GiB machine holds
#              comfortably beside heapscan)
#
# For each size, on one worker, alternating the commands within each run:
#   copy      bench/copy.c: process_vm_readv of every private writable
#             mapping, 1 MiB at a time (the floor: what any reader pays)
#   heap      heapscan heap -p
#   strings   heapscan strings -p
#   scan      heapscan -p (the default report: heap, then strings)
#   fork      heapscan -p --fork: how long the target is stopped
# and prints wall medians, the ratio to the copy, the target's stop, and
# heapscan's peak RSS.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/lib.sh"
build=${1:-$here/build}
runs=${2:-5}
shift $(( $# >= 2 ? 2 : $# ))
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(18000000 85000000)
tmp=$(mktemp -d "${HS_BENCH_TMP:-/tmp}/hs-onepass.XXXXXX")
heapscan=$build/src/heapscan
worker=$build/victims/leaky_worker

hs_bench_need /usr/bin/time:time cc:gcc
hs_bench_build "$build"
cc -O2 -o "$tmp/copy" "$here/bench/copy.c"

med() { printf '%s\n' "$@" | hs_bench_median; }
calc() { awk "BEGIN { printf \"%.3f\n\", $* }"; }
# stop_ms of a report: top level (heap, scan) or the strings summary
stop_of() {
	python3 -c '
import json,sys; d=json.load(open(sys.argv[1]))
s=d.get("stop_ms")
if s is None: s=d.get("target",{}).get("stop_ms")
if s is None: s=d.get("summary",{}).get("stop_ms")
if s is None: s=d.get("strings",{}).get("summary",{}).get("stop_ms")
print((s or 0)/1e3)' "$1"
}

for records in "${sizes[@]}"; do
	hs_bench_start_worker "$worker" "$records"
	echo
	echo "worker pid $wpid: $records records, VmRSS $(hs_bench_rss_mib "$wpid") MiB"
	declare -A wall=() stop=() rss=()
	copy=()
	for i in $(seq 1 "$runs"); do
		for c in heap strings scan fork; do
			args=("$c" -p "$wpid" --json)
			[ "$c" = fork ] && args=(scan -p "$wpid" --json --fork)
			/usr/bin/time -f "%e %M" -o "$tmp/t" "$heapscan" "${args[@]}" > "$tmp/$c.json" || true
			read -r w r < "$tmp/t"
			wall[$c]+=" $w"; rss[$c]+=" $r"; stop[$c]+=" $(stop_of "$tmp/$c.json")"
		done
		read -r s _ < <("$tmp/copy" "$wpid")
		copy+=("$s")
	done
	cm=$(med "${copy[@]}")
	printf "  medians of %s       wall (s)   x copy   target stopped (s)   x copy   peak RSS (MiB)\n" "$runs"
	printf "  %-16s %10.3f %8s %20.3f %8s %16s\n" "copy (floor)" "$cm" "1.00" "$cm" "1.00" "-"
	for c in heap strings scan fork; do
		w=$(med ${wall[$c]}); s=$(med ${stop[$c]}); r=$(med ${rss[$c]})
		printf "  %-16s %10.3f %8s %20.3f %8s %16.1f\n" "$c" "$w" \
			"$(hs_bench_ratio "$w" "$cm")" "$s" "$(hs_bench_ratio "$s" "$cm")" "$(calc "$r / 1024")"
	done
	unset wall stop rss
	hs_bench_cleanup
	wpid=
	tmp=$(mktemp -d "${HS_BENCH_TMP:-/tmp}/hs-onepass.XXXXXX")
	cc -O2 -o "$tmp/copy" "$here/bench/copy.c"
done
rm -rf "$tmp"
