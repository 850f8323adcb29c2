#!/bin/bash
# A tighter target on finished runs: copy runs/water-fps-sN, set stop.force_mae 5 meV/Å with the random baseline
# off (it is the copied run's own curve, compared afterwards with --compare-baseline) and resume: the run goes on
# from its last iteration (mlpkit.workflows.active_learning.stop.reconsider_stop).
#   bench/active_learning_initial_set/tighter.sh 0 1 2
cd "$(dirname "$0")/../.."
for s in "$@"; do
  python - "$s" <<'PY'
import sys, yaml
s = sys.argv[1]
cfg = yaml.safe_load(open(f"bench/active_learning_initial_set/fps-s{s}.yaml"))
cfg["name"] = f"water-fps5-s{s}"
cfg["stop"]["force_mae"] = 0.005
cfg["baseline"]["enabled"] = False
open(f"bench/active_learning_initial_set/fps5-s{s}.yaml", "w").write(
    f"# fps-s{s}.yaml continued to a 5 meV/Å target (AL only; random curve: runs/water-fps-s{s})\n"
    + yaml.safe_dump(cfg, sort_keys=False))
PY
  dst=runs/water-fps5-s$s
  rm -rf $dst && cp -r runs/water-fps-s$s $dst && rm -rf $dst/baseline $dst/report
  echo "$(date +%T) start fps5-s$s" >> runs/initial-set-chain.log
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 mlpkit learn bench/active_learning_initial_set/fps5-s$s.yaml --run-dir $dst > $dst.log 2>&1
  echo "$(date +%T) end fps5-s$s rc=$?" >> runs/initial-set-chain.log
done
