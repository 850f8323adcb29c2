#!/bin/bash
# per-seed tables: farthest-point runs with their own random baseline; uncertainty runs against the same seed's random curve
cd /work/main
for s in "$@"; do
  echo "=== seed $s: farthest-point (own baseline) ==="
  python bench/bench_active_learning.py --report-only runs/water-last-s$s
  if [ -d runs/water-last-u-s$s ]; then
    echo "=== seed $s: uncertainty vs random curve of runs/water-last-s$s ==="
    python bench/bench_active_learning.py --report-only runs/water-last-u-s$s --compare-baseline runs/water-last-s$s
  fi
done
