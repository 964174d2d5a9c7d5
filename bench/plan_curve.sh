#!/bin/bash
# `bitops plan --format json` on generated repos of N environments x 4 deployments (DESIGN §6:
# 10,000 x 4 in at most 0.5 s and 200 MB on ext4, linear to 100,000).
#
#   bench/plan_curve.sh [N ...]          (default: 1000 10000 100000)
#
# Environment:
#   BITOPS_BIN     bitops binary (default: <repo>/target/release/bitops)
#   BITOPS_SHARED  folder holding bench/{gen_dag,dag_to_opsrepo}.py (default: <repo>/../shared)
#   DATA           where the repos are generated, once, and kept (default: <repo>/../bench-data).
#                  Put it on the filesystem you mean to measure: not tmpfs for ext4 figures.
#   RUNS           timed runs per size after one warm-up (default 3); the median is printed.
#
# Per size: wall time, CPU time (user + system) and peak memory of the whole process. On a
# shared machine the wall time depends on the load; the CPU time much less.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SHARED=$(cd "${BITOPS_SHARED:-$REPO/../shared}" && pwd)
BITOPS=${BITOPS_BIN:-$REPO/target/release/bitops}
DATA=${DATA:-$REPO/../bench-data}
RUNS=${RUNS:-3}
mkdir -p "$DATA"
DATA=$(cd "$DATA" && pwd)
[ -x "$BITOPS" ] || { echo "no bitops binary at $BITOPS (cargo build --release)" >&2; exit 1; }
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 10000 100000)

echo "# bitops plan --format json   $(date -u +%FT%TZ)   $(nproc) CPUs   $(df -T "$DATA" | awk 'NR==2 {print $2}') at $DATA"
echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| %-10s | %8s | %8s | %8s | %10s |\n' "envs x 4" "wall s" "cpu s" "cpu/env" "peak MB"
printf '| %-10s | %8s | %8s | %8s | %10s |\n' "---" "---:" "---:" "---:" "---:"
for n in "${sizes[@]}"; do
  repo=$DATA/repo$n
  if [ ! -f "$repo/bitops.config.yaml" ]; then
    python3 "$SHARED/bench/gen_dag.py" -n "$n" --layers 50 --seed 1 --action true --out "$DATA/dag$n" > /dev/null
    python3 "$SHARED/bench/dag_to_opsrepo.py" "$DATA/dag$n/dag.json" "$repo" --deployments 4 > /dev/null
  fi
  "$BITOPS" plan -C "$repo" --format json > /dev/null   # warm-up: the page cache, not a figure
  lines=$(for _ in $(seq "$RUNS"); do
    /usr/bin/time -f '%e %U %S %M' "$BITOPS" plan -C "$repo" --format json 2>&1 > /dev/null | tail -1
  done | sort -n)
  med=$(echo "$lines" | awk -v r="$RUNS" 'NR == int((r + 1) / 2)')
  read -r wall user sys kb <<< "$med"
  awk -v n="$n" -v w="$wall" -v u="$user" -v s="$sys" -v kb="$kb" 'BEGIN {
    printf "| %-10s | %8.2f | %8.2f | %6.0f us | %10.0f |\n", n, w, u + s, (u + s) / n * 1e6, kb / 1024 }'
done
