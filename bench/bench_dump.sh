#!/usr/bin/env bash
# Benchmark: 'heapscan dump -p' against 'gcore PID' on the demo leaky worker
# (fixtures/victims/leaky_worker.c, ~1.5 GB of leaked heap by default).
#
# usage: bench/bench_dump.sh [BUILD_DIR] [RECORDS] [RUNS]
#   BUILD_DIR  a heapscan build (default build/ in this repo, built
#              if missing); the worker is BUILD_DIR/victims/leaky_worker
#   RECORDS    leaked records (default 13000000: about 1.5 GB of heap)
#   RUNS       runs of each tool (default 3); medians are printed
# Environment: HS_BENCH_TMP (default /tmp) holds the core files (each up to
# the worker's size; they are deleted after each run); HS_BENCH_MODES
# (default "default sync fork") picks the heapscan modes to run.
#
# For gcore and three heapscan modes it prints wall time, how long the
# target was stopped, the copy time, file size and space on disk:
#   heapscan dump          the default: no fsync, like gcore (like for like)
#   heapscan dump --sync   fsync before the rename (durable)
#   heapscan dump --fork   no fsync; stopped only to fork a snapshot
# and the ratios against gcore.  gcore stops the target for its whole run
# and does not fsync; heapscan reports its stop time (--json stop_ms) next
# to its copy time (copy_ms).  Needs gdb (gcore).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/lib.sh"
build=${1:-$here/build}
records=${2:-13000000}
runs=${3:-3}
tmp=$(mktemp -d "${HS_BENCH_TMP:-/tmp}/hs-bench-dump.XXXXXX")
heapscan=$build/src/heapscan
worker=$build/victims/leaky_worker

hs_bench_need gcore:gdb
hs_bench_build "$build"
for f in "$heapscan" "$worker"; do
	[ -x "$f" ] || { echo "bench: '$f' not built" >&2; exit 2; }
done

hs_bench_start_worker "$worker" "$records"
echo "worker pid $wpid: $records records, VmRSS $(hs_bench_rss_mib "$wpid") MiB"

modes=${HS_BENCH_MODES:-default sync fork}
declare -A wall stop copy size dsk
g_wall=""; g_size=""; g_disk=""
for i in $(seq 1 "$runs"); do
	# gcore: the target is stopped (attached) for the whole run.
	sync
	t0=$(hs_bench_now)
	gcore -o "$tmp/gcore" "$wpid" >/dev/null 2>&1
	t1=$(hs_bench_now)
	g_wall+="$(echo "$t1 - $t0" | bc -l) "
	g_size+="$(stat -c %s "$tmp/gcore.$wpid") "
	g_disk+="$(hs_bench_disk "$tmp/gcore.$wpid") "
	rm -f "$tmp/gcore.$wpid"

	for mode in $modes; do
		extra=()
		[ "$mode" = sync ] && extra=(--sync)
		[ "$mode" = fork ] && extra=(--fork)
		sync
		t0=$(hs_bench_now)
		"$heapscan" dump -p "$wpid" -o "$tmp/hs.core" --json "${extra[@]}" > "$tmp/hs.json"
		t1=$(hs_bench_now)
		read -r s c z d < <(python3 -c '
import json,sys; s=json.load(open(sys.argv[1]))
print(s["stop_ms"]/1e3, s["copy_ms"]/1e3, s["file_size"], s["disk_bytes"])' "$tmp/hs.json")
		wall[$mode]+="$(echo "$t1 - $t0" | bc -l) "
		stop[$mode]+="$s "
		copy[$mode]+="$c "
		size[$mode]+="$z "
		dsk[$mode]+="$d "
		rm -f "$tmp/hs.core"
	done
done

gw=$(echo "$g_wall" | hs_bench_median)
gs=$(echo "$g_size" | hs_bench_median)
gd=$(echo "$g_disk" | hs_bench_median)
mib() { echo "$1 / 1048576" | bc -l; }

printf '\nmedians of %d runs             wall s   stopped s    copy s    file MiB   disk MiB\n' "$runs"
printf '  gcore                     %8.3f    %8.3f         -   %9.1f  %9.1f\n' \
	"$gw" "$gw" "$(mib "$gs")" "$(mib "$gd")"
for mode in $modes; do
	w=$(echo "${wall[$mode]}" | hs_bench_median)
	s=$(echo "${stop[$mode]}" | hs_bench_median)
	c=$(echo "${copy[$mode]}" | hs_bench_median)
	z=$(echo "${size[$mode]}" | hs_bench_median)
	d=$(echo "${dsk[$mode]}" | hs_bench_median)
	case $mode in
	default) label="heapscan dump"; what="like for like (neither syncs)" ;;
	sync) label="heapscan dump --sync"; what="durable (heapscan fsyncs, gcore does not)" ;;
	fork) label="heapscan dump --fork"; what="fork snapshot" ;;
	esac
	printf '  %-24s  %8.3f    %8.3f  %8.3f   %9.1f  %9.1f\n' "$label" "$w" "$s" "$c" \
		"$(mib "$z")" "$(mib "$d")"
	printf '    %s: %sx faster than gcore, target stopped %sx shorter (%.1f ms)' \
		"$what" "$(hs_bench_ratio "$gw" "$w")" "$(hs_bench_ratio "$gw" "$s")" \
		"$(echo "$s * 1000" | bc -l)"
	if [ "$mode" = fork ]; then
		printf '\n'
	else
		printf '; stop - copy = %.1f ms\n' "$(echo "($s - $c) * 1000" | bc -l)"
	fi
done
