#!/usr/bin/env bash
# Benchmark: 'heapscan types -p' on a Python process with about 10 M live
# objects (about 1 GB; fixtures/victims/py_bench.py), beside what the
# process itself needs for gc.get_objects() (the first step of any
# in-process census: guppy, pympler, objgraph), measured inside it.
#
# usage: bench/bench_types.sh [BUILD_DIR] [OBJECTS] [RUNS] [PYTHON]
#   BUILD_DIR  a heapscan build (default build/ in this repo, built if needed)
#   OBJECTS    objects the worker makes (default 12500000: with the ints
#              and dict values they hold, about 15 M objects, 1 GB)
#   RUNS       runs (default 5); medians are printed
#   PYTHON     the interpreter (default /usr/bin/python3, Debian's 3.11)
# Prints the worker's size, then per run and as medians: heapscan's wall
# time, the time the target was stopped, heapscan's peak RSS, the objects
# it counted; and gc.get_objects()'s time inside the process.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/lib.sh"
build=${1:-$here/build}
objects=${2:-12500000}
runs=${3:-5}
python=${4:-/usr/bin/python3}
tmp=$(mktemp -d "${HS_BENCH_TMP:-/tmp}/hs-bench.XXXXXX")
heapscan=$build/src/heapscan

hs_bench_need /usr/bin/time:time
hs_bench_build "$build"
hs_bench_start_worker "$python" "$here/fixtures/victims/py_bench.py" "$objects"
echo "worker pid $wpid ($python): ${hs_fact[objects_made]} objects made," \
	"${hs_fact[gc_tracked]} GC-tracked, ${hs_fact[allocated_blocks]} pymalloc" \
	"blocks, VmRSS $(hs_bench_rss_mib "$wpid") MiB"

wall=(); stop=(); rss=(); objs=()
for i in $(seq 1 "$runs"); do
	/usr/bin/time -f "%e %M" -o "$tmp/t" "$heapscan" types -p "$wpid" --json > "$tmp/o.json"
	read -r w r < "$tmp/t"
	read -r s o < <(python3 -c '
import json,sys; d=json.load(open(sys.argv[1]))
print(d.get("stop_ms", 0)/1e3, d["python"]["objects"])' "$tmp/o.json")
	printf 'run %d: wall %.3f s, target stopped %.3f s, peak RSS %d MiB, %d objects\n' \
		"$i" "$w" "$s" $((r / 1024)) "$o"
	wall+=("$w"); stop+=("$s"); rss+=("$r"); objs+=("$o")
done
# once more with --fork: the target is stopped only to fork a snapshot
/usr/bin/time -f "%e %M" -o "$tmp/t" "$heapscan" types -p "$wpid" --fork --json > "$tmp/o.json"
read -r fw fr < "$tmp/t"
read -r fs fo < <(python3 -c '
import json,sys; d=json.load(open(sys.argv[1]))
print(d.get("stop_ms", 0)/1e3, d["python"]["objects"])' "$tmp/o.json")
printf -- '--fork: wall %.3f s, target stopped %.3f s, peak RSS %d MiB, %d objects\n' \
	"$fw" "$fs" $((fr / 1024)) "$fo"
med() { printf '%s\n' "$@" | hs_bench_median; }
mw=$(med "${wall[@]}")
echo "median: heapscan types ${mw} s (target stopped $(med "${stop[@]}") s)," \
	"peak RSS $(( $(printf '%.0f' "$(med "${rss[@]}")") / 1024 )) MiB," \
	"$(printf '%.0f' "$(med "${objs[@]}")") objects"
echo "gc.get_objects() inside the process: ${hs_fact[gc_get_objects_s]} s" \
	"(${hs_fact[gc_tracked]} GC-tracked objects only; ratio heapscan/gc" \
	"$(hs_bench_ratio "$mw" "${hs_fact[gc_get_objects_s]}"))"
