#!/bin/bash
# The potential-driven sampling benchmark (docs/benchmarks/screening.md, "Potential-driven sampling"): the water
# active-learning case driven by GFN2-xTB and by zero-shot CHGNet, seeds 0-2, one run at a time on one thread.
# Each run's wall and CPU (user+sys) seconds go to RUNS/NAME.time; resumable (a finished run is skipped quickly).
#   bench/active_learning_driver/run_all.sh [RUNS (default runs/driver)] [NAMES... (default: all six, paired)]
set -u
here=$(cd "$(dirname "$0")" && pwd)
runs=${1:-runs/driver}
shift || true
names=${*:-gfn2-s0 chgnet-s0 gfn2-s1 chgnet-s1 gfn2-s2 chgnet-s2}
mkdir -p "$runs"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
for name in $names; do
  echo "=== $name $(date -u +%H:%M:%S)"
  start=$(date +%s.%N)
  TIMEFORMAT="%R %U %S"
  { time python -m mlpkit learn "$here/$name.yaml" --run-dir "$runs/$name" -q > "$runs/$name.log" 2>&1 ; } 2> "$runs/$name.time.tmp"
  rc=$?
  # wall user sys (s) of this invocation; a resumed run adds its invocations' times
  read -r wall user sys < <(tail -1 "$runs/$name.time.tmp")
  echo "$wall $user $sys $rc" >> "$runs/$name.time"
  rm -f "$runs/$name.time.tmp"
  echo "=== $name rc=$rc wall=${wall}s cpu=$(python -c "print(round($user+$sys,1))")s"
done
