#!/bin/bash
# one AL run at a time, in order
cd /work/main
for name in "$@"; do
  R=runs/water-$name
  mkdir -p $R && cp runs/water/{test-set,initial,test-frames}.extxyz $R/
  echo "$(date +%T) start $name" >> runs/cfg/chain.log
  OMP_NUM_THREADS=1 mlpkit learn runs/cfg/$name.yaml --run-dir $R > $R.log 2>&1
  echo "$(date +%T) end $name rc=$?" >> runs/cfg/chain.log
done
