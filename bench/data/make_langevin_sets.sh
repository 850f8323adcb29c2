#!/usr/bin/env bash
# Independent, equilibrated test runs of one water molecule, made with mlpkit's own commands (run from this folder):
# GFN2-xTB-driven Langevin MD (0.5 fs, friction 0.01/fs) at 300 K and 1000 K, 4400 steps, a frame every 40 steps
# (20 fs), the first 10 frames (200 fs) dropped as equilibration, the remaining 100 labelled with PySCF
# PBE/def2-SVP (conv_tol 1e-10), the level of theory of ../shared/data/h2o-pbe-svp-500K-nve.extxyz.
set -euo pipefail
export OMP_NUM_THREADS=1
for T in 1000 300; do
  mlpkit sample md --structure H2O --temperature $T --thermostat langevin --timestep 0.5 --friction 0.01 \
    --steps 4400 --every 40 --calc gfn2 --seed 7$T --out raw-$T.extxyz
  python -c "from ase.io import read, write; write('eq-$T.extxyz', read('raw-$T.extxyz', index=':')[10:])"
  mlpkit label --input eq-$T.extxyz --db h2o-$T.db --method pyscf --xc PBE --basis def2-SVP --param conv_tol=1e-10 --workers 2
  mlpkit data export --db h2o-$T.db --out h2o-pbe-svp-${T}K-langevin.extxyz
  rm -f raw-$T.extxyz eq-$T.extxyz h2o-$T.db
done
