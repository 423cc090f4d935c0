# Shared helpers of the bench/ scripts (source it: . "$here/bench/lib.sh").
#
#   hs_bench_need CMD:PACKAGE...   installs the missing ones with apt-get
#   hs_bench_build DIR             configures (RelWithDebInfo, no tests) if
#                                  needed and builds heapscan in DIR
#   hs_bench_start_worker EXE ARGS...
#                                  starts the worker as a coproc, reads its
#                                  "key value..." facts into the associative
#                                  array hs_fact until "ready"; sets wpid
#   hs_bench_cleanup               kills the worker, removes $tmp (set by the
#                                  caller); installed as the EXIT trap by
#                                  hs_bench_start_worker
#   hs_bench_rss_mib PID           VmRSS in MiB
#   hs_bench_median                median of the numbers on stdin, one a line
#                                  or separated by spaces
#   hs_bench_disk FILE             bytes allocated on disk
#   hs_bench_now                   seconds since the epoch, with ns
#   hs_bench_ratio A B             A / B with two decimals ("-" if B is 0)
# Scripts keep their own arguments and output; this file only factors the
# worker start-up and the arithmetic.

hs_bench_build() {
	local dir=$1 src
	src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	# Always build: an incremental build is cheap, a stale binary is not.
	[ -f "$dir/CMakeCache.txt" ] || cmake -S "$src" -B "$dir" -DHS_TESTS=OFF >/dev/null
	echo "building heapscan in $dir" >&2
	cmake --build "$dir" -j"$(nproc)" >/dev/null
}

hs_bench_need() {
	local need=() spec
	for spec in "$@"; do
		command -v "${spec%%:*}" >/dev/null || need+=("${spec#*:}")
	done
	if [ ${#need[@]} -gt 0 ]; then
		echo "installing: ${need[*]}" >&2
		apt-get install -y "${need[@]}" >/dev/null
	fi
}

declare -gA hs_fact=()

hs_bench_cleanup() {
	if [ -n "${wpid:-}" ]; then
		kill "$wpid" 2>/dev/null || true
		wait "$wpid" 2>/dev/null || true
	fi
	[ -n "${tmp:-}" ] && rm -rf "$tmp"
	return 0
}

hs_bench_start_worker() {
	local line
	trap hs_bench_cleanup EXIT
	coproc HS_W { exec "$@"; }
	wpid=$HS_W_PID
	while IFS= read -r line <&"${HS_W[0]}"; do
		[ "$line" = ready ] && return 0
		set -- $line
		[ $# -gt 0 ] && hs_fact[$1]="${*:2}"
	done
	echo "bench: worker exited before 'ready'" >&2
	exit 2
}

hs_bench_rss_mib() {
	awk '/^VmRSS/ {printf "%d\n", $2 / 1024}' "/proc/$1/status"
}

hs_bench_median() {
	tr ' ' '\n' | grep -v '^$' | sort -g |
		awk '{a[NR]=$1} END {printf "%.6f\n", a[int((NR+1)/2)]}'
}

hs_bench_disk() {
	echo $(( $(stat -c %b "$1") * $(stat -c %B "$1") ))
}

hs_bench_now() {
	date +%s.%N
}

hs_bench_ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f\n", a / b }'
}
