#!/bin/bash
# One AL run at a time: bench/active_learning_uncertainty_sources/chain.sh NAME... runs
# bench/active_learning_uncertainty_sources/NAME.yaml in runs/water-NAME, with the cached labelled test set of
# $TEST_FROM (default runs/water: the same 50 test frames as every water AL run in docs/benchmarks/active-learning.md).
# Names starting with ethanol- run in runs/NAME (their test set is the shared reference file: nothing to copy).
cd "$(dirname "$0")/../.."
TEST_FROM=${TEST_FROM:-runs/water}
for name in "$@"; do
  case $name in
    ethanol-*) R=runs/$name ;;
    *) R=runs/water-$name ;;
  esac
  mkdir -p $R
  case $name in
    ethanol-*) ;;
    *) [ -f $TEST_FROM/test-set.extxyz ] && [ ! -f $R/test-set.extxyz ] && cp $TEST_FROM/{test-set,test-frames}.extxyz $R/ ;;
  esac
  echo "$(date +%T) start $name" >> runs/uncertainty-sources-chain.log
  /usr/bin/time -f "%e s wall, %U s user, %S s sys" -o $R.time env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
    python -m mlpkit learn bench/active_learning_uncertainty_sources/$name.yaml --run-dir $R > $R.log 2>&1
  echo "$(date +%T) end $name rc=$?" >> runs/uncertainty-sources-chain.log
done
