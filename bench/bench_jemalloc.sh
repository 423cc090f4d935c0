#!/usr/bin/env bash
# Benchmark: 'heapscan heap -p' on an idle redis-server (Debian's, on the
# shared libjemalloc.so.2) filled with KEYS keys, against the tool a user
# would otherwise use: 'redis-cli MEMORY MALLOC-STATS' (jemalloc's own
# malloc_stats_print: per-class counts, no regions, no addresses).
#
# usage: bench/bench_jemalloc.sh [BUILD_DIR] [KEYS] [RUNS]
#   BUILD_DIR  a heapscan build (default build/, built if missing)
#   KEYS       keys SET before measuring (default 1000000)
#   RUNS       runs of each tool, alternated (default 5); medians printed
#
# Prints wall times, heapscan's stop time and walk time, its peak RSS,
# regions walked, and whether in_use + tcache equals curregs for every
# small class (the comparison the integration test makes).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/lib.sh"
build=${1:-$here/build}
keys=${2:-1000000}
runs=${3:-5}
tmp=$(mktemp -d "${HS_BENCH_TMP:-/tmp}/hs-bench-je.XXXXXX")
heapscan=$build/src/heapscan
hs_bench_need redis-server:redis-server redis-cli:redis-tools /usr/bin/time:time
hs_bench_build "$build"

hs_bench_start_worker python3 -c '
import os, signal, socket, subprocess, sys
d, n = sys.argv[1], int(sys.argv[2])
sock = os.path.join(d, "r.sock")
p = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", sock,
                      "--save", "", "--appendonly", "no", "--dir", d],
                     stdout=subprocess.PIPE, text=True)
def bye(*a):
    p.terminate(); p.wait(); sys.exit(0)
signal.signal(signal.SIGTERM, bye)
for line in p.stdout:
    if "eady to accept" in line:
        break
s = socket.socket(socket.AF_UNIX); s.connect(sock); f = s.makefile("rb")
for lo in range(0, n, 10000):
    hi = min(n, lo + 10000)
    s.sendall(b"".join(b"*3\r\n$3\r\nSET\r\n$14\r\nbench:%08d\r\n$%d\r\n%s\r\n"
              % (i, 20 + i % 200, b"v" * (20 + i % 200)) for i in range(lo, hi)))
    for _ in range(lo, hi):
        f.readline()
print("pid", p.pid); print("sock", sock); print("ready", flush=True)
sys.stdin.read(); p.terminate(); p.wait()
' "$tmp" "$keys"
pid=${hs_fact[pid]}
sock=${hs_fact[sock]}
echo "redis-server pid $pid: $keys keys, VmRSS $(hs_bench_rss_mib "$pid") MiB"
echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"

hs=() rc=() stop=() walk=() rss=()
for r in $(seq "$runs"); do
	t0=$(hs_bench_now)
	redis-cli -s "$sock" MEMORY MALLOC-STATS >"$tmp/stats.txt"
	t1=$(hs_bench_now)
	/usr/bin/time -f "%M" -o "$tmp/time" "$heapscan" heap -p "$pid" --json >"$tmp/heap.json"
	t2=$(hs_bench_now)
	rc+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')")
	hs+=("$(awk -v a="$t1" -v b="$t2" 'BEGIN{print b-a}')")
	rss+=("$(cat "$tmp/time")")
	read -r s w < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
print(d["stop_ms"] / 1e3, d["heap"]["walk_seconds"])' "$tmp/heap.json")
	stop+=("$s"); walk+=("$w")
done
# exactness, heapscan read after the stats (the stats' own buffer aside)
redis-cli -s "$sock" MEMORY MALLOC-STATS >"$tmp/stats.txt"
exact=$(python3 -c '
import json, sys
h = json.load(open(sys.argv[1]))["heap"]
mine = {c["size"]: c["in_use"] + c["tcache"] for c in h["size_classes"]}
lines = open(sys.argv[2]).read().splitlines()
i = next(k for k, l in enumerate(lines) if l.split()[:1] == ["bins:"])
col = lines[i].split()[1:].index("curregs")
bad, n = [], 0
for r in lines[i + 1:]:
    f = r.split()
    if f == ["---"]:
        continue
    if not f or not f[0].isdigit():
        break
    n += 1
    if int(f[col]) != mine.get(int(f[0]), 0):
        bad.append(f[0])
print("regions %d; small classes %d, differing from curregs: %d %s" % (
    h["in_use"]["count"] + h["tcache"]["count"] + h["free"]["count"], n, len(bad), " ".join(bad)))
' "$tmp/heap.json" "$tmp/stats.txt")
printf '%-34s %10s\n' "median of $runs runs" "seconds"
printf '%-34s %10s\n' "redis-cli MEMORY MALLOC-STATS" "$(echo "${rc[*]}" | hs_bench_median)"
printf '%-34s %10s\n' "heapscan heap -p (wall)" "$(echo "${hs[*]}" | hs_bench_median)"
printf '%-34s %10s\n' "  target stopped" "$(echo "${stop[*]}" | hs_bench_median)"
printf '%-34s %10s\n' "  walk (tree, tcaches, regions)" "$(echo "${walk[*]}" | hs_bench_median)"
echo "heapscan peak RSS: $(echo "${rss[*]}" | hs_bench_median | cut -d. -f1) KB"
echo "$exact"
