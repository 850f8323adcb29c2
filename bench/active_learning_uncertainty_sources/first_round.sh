#!/bin/bash
# Every uncertainty source's first model on the same 20 labels: the initial sets (and test set) of the GP-variance
# and MTP-γ runs (docs/benchmarks/active-learning.md), seeds 0 and 1. OUT (default /work/uq-firstround)/SOURCE-on-RUN.
# Usage: PYTHONPATH=src bench/active_learning_uncertainty_sources/first_round.sh [RUNS_DIR] [OUT]
cd "$(dirname "$0")/../.."
RUNS=${1:-../al-mtp/runs}
OUT=${2:-/work/uq-firstround}
B=bench
for labels in gap-s0 mtp-s0 gap-s1 mtp-s1; do
  seed=${labels#*-s}
  for source in same-family:$B/active_learning_initial_set/fps-s$seed.yaml \
                mixed:$B/active_learning_uncertainty_sources/mixed-s$seed.yaml \
                dropout:$B/active_learning_uncertainty_sources/dropout-s$seed.yaml \
                gap:$B/active_learning_own_uncertainty/gap-s$seed.yaml \
                mtp:$B/active_learning_own_uncertainty/mtp-s$seed.yaml; do
    name=${source%%:*}; config=${source#*:}
    [ -f $OUT/$name-on-$labels/first-round-calibration.json ] && continue
    OMP_NUM_THREADS=1 python bench/active_learning_uncertainty_sources/first_round_calibration.py $config \
      $RUNS/$labels $OUT/$name-on-$labels
  done
done
