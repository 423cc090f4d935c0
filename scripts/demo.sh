#!/usr/bin/env bash
# Sets up, builds heapscan and runs it on the demo leaky worker: a process
# whose C-level records leak (two recurring strings per record).
# Usage: scripts/demo.sh [RECORDS]   (default 200000)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build -DHS_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
records=${1:-200000}
coproc WORKER { exec build/victims/leaky_worker "$records"; }
pid=$WORKER_PID
# The worker prints its ground truth, then "ready".
while read -r line <&"${WORKER[0]}"; do
  echo "worker: $line"
  [ "$line" = ready ] && break
done
echo "+ build/src/heapscan -p $pid"
build/src/heapscan -p "$pid" || true
exec {WORKER[1]}>&-   # EOF on its stdin ends the worker
wait "$pid" 2>/dev/null || true
