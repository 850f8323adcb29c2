#!/bin/bash
# per-AL-point "AL labels / random labels needed" against the run's own random curve
cd /work/main
for n in "$@"; do
  R=runs/water-$n
  pts=$(python bench/bench_active_learning.py --report-only $R --compare-baseline $R | grep "^  AL" \
        | sed -E 's/  AL ([0-9]+) labels, ([0-9.]+) meV\/Å: random needs (.*)/\1: \3/' | paste -sd ';' | sed 's/;/; /g')
  echo "| \`$R\` | $pts |"
done
