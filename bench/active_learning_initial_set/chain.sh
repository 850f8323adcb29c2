#!/bin/bash
# One AL run at a time, in order: bench/active_learning_initial_set/chain.sh NAME... runs bench/active_learning_initial_set/NAME.yaml in
# runs/water-NAME with the cached test set of runs/water (the same 50 test frames as the earlier runs).
cd "$(dirname "$0")/../.."
for name in "$@"; do
  R=runs/water-$name
  mkdir -p $R
  # the cached, labelled test set (a run without it makes the same frames from the seeded driver MD and labels them)
  [ -f runs/water/test-set.extxyz ] && cp runs/water/{test-set,test-frames}.extxyz $R/
  echo "$(date +%T) start $name" >> runs/initial-set-chain.log
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 mlpkit learn bench/active_learning_initial_set/$name.yaml --run-dir $R > $R.log 2>&1
  echo "$(date +%T) end $name rc=$?" >> runs/initial-set-chain.log
done
