#!/usr/bin/env bash
# Benchmark: 'heapscan dump -p' against 'gcore PID' on the demo leaky worker
# (fixtures/victims/leaky_worker.c, ~1.5 GB of leaked heap by default).
#
# usage: bench/bench_dump.sh [BUILD_DIR] [RECORDS] [RUNS]
#   BUILD_DIR  a heapscan build (default build-core next to this repo's
#              CMakeLists.txt); the worker is BUILD_DIR/victims/leaky_worker
#   RECORDS    leaked records (default 13000000: about 1.5 GB of heap)
#   RUNS       runs of each tool (default 3); medians are printed
# Environment: HS_BENCH_TMP (default /tmp) holds the core files (each up to
# the worker's size; they are deleted after each run).
#
# Prints for gcore, 'heapscan dump' and 'heapscan dump --no-sync': wall
# time, how long the target was stopped, file size and space on disk, and
# the ratios against gcore.  gcore stops the target for its whole run;
# heapscan reports its own stop time (--json stop_ms) next to the time it
# spent copying memory (copy_ms).  Needs gdb (gcore); installs it with
# apt-get if missing.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build-core}
records=${2:-13000000}
runs=${3:-3}
tmp=$(mktemp -d "${HS_BENCH_TMP:-/tmp}/hs-bench-dump.XXXXXX")
heapscan=$build/src/heapscan
worker=$build/victims/leaky_worker

command -v gcore >/dev/null || { echo "installing: gdb" >&2; apt-get install -y gdb >/dev/null; }
for f in "$heapscan" "$worker"; do
	[ -x "$f" ] || { echo "bench: '$f' not built" >&2; exit 2; }
done

cleanup() {
	if [ -n "${wpid:-}" ]; then kill "$wpid" 2>/dev/null || true; wait "$wpid" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

coproc W { exec "$worker" "$records"; }
wpid=$W_PID
while IFS= read -r line <&"${W[0]}"; do
	[ "$line" = ready ] && break
done
rss_kb=$(awk '/^VmRSS/ {print $2}' /proc/$wpid/status)
echo "worker pid $wpid: $records records, VmRSS $((rss_kb / 1024)) MiB"

median() { sort -g | awk '{a[NR]=$1} END {printf "%.6f\n", a[int((NR+1)/2)]}'; }
disk() { echo $(( $(stat -c %b "$1") * $(stat -c %B "$1") )); }

g_wall=(); g_size=(); g_disk=()
declare -A h_wall h_stop h_copy h_size h_disk
for i in $(seq 1 "$runs"); do
	# gcore: the target is stopped (attached) for the whole run.
	sync
	t0=$(date +%s.%N)
	gcore -o "$tmp/gcore" "$wpid" >/dev/null 2>&1
	t1=$(date +%s.%N)
	g_wall+=("$(echo "$t1 - $t0" | bc -l)")
	g_size+=("$(stat -c %s "$tmp/gcore.$wpid")")
	g_disk+=("$(disk "$tmp/gcore.$wpid")")
	rm -f "$tmp/gcore.$wpid"

	for mode in sync no-sync; do
		extra=()
		[ "$mode" = no-sync ] && extra=(--no-sync)
		sync
		t0=$(date +%s.%N)
		"$heapscan" dump -p "$wpid" -o "$tmp/hs.core" --json "${extra[@]}" > "$tmp/hs.json"
		t1=$(date +%s.%N)
		read -r stop copy size dsk < <(python3 -c '
import json,sys; s=json.load(open(sys.argv[1]))
print(s["stop_ms"]/1e3, s["copy_ms"]/1e3, s["file_size"], s["disk_bytes"])' "$tmp/hs.json")
		h_wall[$mode]+="$(echo "$t1 - $t0" | bc -l) "
		h_stop[$mode]+="$stop "
		h_copy[$mode]+="$copy "
		h_size[$mode]+="$size "
		h_disk[$mode]+="$dsk "
		rm -f "$tmp/hs.core"
	done
done

m() { tr ' ' '\n' | grep -v '^$' | median; }
gw=$(printf '%s\n' "${g_wall[@]}" | median)
gs=$(printf '%s\n' "${g_size[@]}" | median)
gd=$(printf '%s\n' "${g_disk[@]}" | median)
mib() { echo "$1 / 1048576" | bc -l; }

printf '\nmedians of %d runs             wall s   stopped s    copy s    file MiB   disk MiB\n' "$runs"
printf '  gcore                     %8.3f    %8.3f         -   %9.1f  %9.1f\n' \
	"$gw" "$gw" "$(mib "$gs")" "$(mib "$gd")"
for mode in sync no-sync; do
	w=$(echo "${h_wall[$mode]}" | m)
	s=$(echo "${h_stop[$mode]}" | m)
	c=$(echo "${h_copy[$mode]}" | m)
	z=$(echo "${h_size[$mode]}" | m)
	d=$(echo "${h_disk[$mode]}" | m)
	label="heapscan dump"
	[ "$mode" = no-sync ] && label="heapscan dump --no-sync"
	printf '  %-24s  %8.3f    %8.3f  %8.3f   %9.1f  %9.1f\n' "$label" "$w" "$s" "$c" \
		"$(mib "$z")" "$(mib "$d")"
	printf '    vs gcore: %.1fx faster, target stopped %.1fx shorter, %.1fx less disk; stop - copy = %.1f ms\n' \
		"$(echo "$gw / $w" | bc -l)" "$(echo "$gw / $s" | bc -l)" \
		"$(echo "$gd / ($d + 1)" | bc -l)" "$(echo "($s - $c) * 1000" | bc -l)"
done
