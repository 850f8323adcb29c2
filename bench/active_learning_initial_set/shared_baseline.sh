#!/bin/bash
# The AL rounds alone: copy a finished fps run, switch its baseline to AL's own (farthest-point) initial set
# (baseline.initial: shared, a resumable setting), drop the old baseline and resume; only the baseline runs.
#   bench/active_learning_initial_set/shared_baseline.sh 0 1 2
cd "$(dirname "$0")/../.."
for s in "$@"; do
  src=runs/water-fps-s$s; dst=runs/water-fpsshared-s$s
  python - "$s" <<'PY'
import sys, yaml
s = sys.argv[1]
cfg = yaml.safe_load(open(f"bench/active_learning_initial_set/fps-s{s}.yaml"))
cfg["name"] = f"water-fpsshared-s{s}"
cfg["baseline"]["initial"] = "shared"
open(f"bench/active_learning_initial_set/fpsshared-s{s}.yaml", "w").write(
    f"# fps-s{s}.yaml with the random baseline starting from AL's own initial set\n" + yaml.safe_dump(cfg, sort_keys=False))
PY
  rm -rf $dst && cp -r $src $dst && rm -rf $dst/baseline $dst/report
  python - "$dst" <<'PY'
import sys
from pathlib import Path
from mlpkit.workflows.engine import WorkflowState
WorkflowState(Path(sys.argv[1]) / "state.json").forget(prefix="baseline.")
PY
  echo "$(date +%T) start fpsshared-s$s" >> runs/initial-set-chain.log
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 mlpkit learn bench/active_learning_initial_set/fpsshared-s$s.yaml --run-dir $dst > $dst.log 2>&1
  echo "$(date +%T) end fpsshared-s$s rc=$?" >> runs/initial-set-chain.log
done
