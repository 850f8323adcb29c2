"""Whether a BPNN of liquid water is limited by its size or by its data: the labels of a finished liquid project
(train + valid splits of its dataset) refitted with several network sizes, descriptor sizes and epoch counts, each
scored on that project's independent test frames per temperature (force MAE, and as a share of the RMS reference
force component: issue 19's bar is ≤ 5 %).

    python bench/liquid_bpnn_capacity.py examples/liquid-water/run
    python bench/liquid_bpnn_capacity.py RUN --variants "24x24 r8 a4 e300" "48x48 r12 a6 e600"
    python bench/liquid_bpnn_capacity.py RUN --extra 60 --sizes 34 64 94 --variants "24x24 r8 a4 e1000"

``--extra N`` adds N more labelled boxes: frames drawn at random (seed 0) from the run's active-learning exploration
(``iter-*/explored.extxyz``, the committee's MD at the domain's temperatures, frames that were never labelled), labelled
with the project's reference method once and kept in ``RUN/capacity-extra-labels.extxyz``; ``--sizes`` then fits each
variant on the project's labels followed by the first extra ones up to each size (a learning curve: is it the data?).

A variant reads ``HxH rN aM eE``: hidden layers, radial and angular functions per element pair, epochs. One member
each (init seed 0), the project's cutoff and stress weight, all labels for training (no early stopping), last
weights. Prints one table; CPU time is this process's user + sys.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

DEFAULT_VARIANTS = ["24x24 r8 a4 e300", "24x24 r8 a4 e1000", "48x48 r8 a4 e1000", "48x48 r12 a8 e1000"]


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _variant(text: str) -> dict:
    parts = text.split()
    hidden = [int(h) for h in parts[0].split("x")]
    rest = {p[0]: int(p[1:]) for p in parts[1:]}
    return {"hidden": hidden, "n_radial": rest.get("r", 8), "n_angular": rest.get("a", 4), "epochs": rest.get("e", 300)}


def extra_labels(run_dir: Path, n: int, known: list) -> list:
    """``n`` explored frames of the run that are not among the ``known`` (labelled) ones, drawn at random (seed 0)
    and labelled with its reference method; kept in
    ``run_dir/capacity-extra-labels.extxyz`` and appended to frame by frame (a killed run keeps what it labelled)."""
    import json

    from ase.io import read, write

    from mlpkit.data.labels import single_point
    from mlpkit.labelers import make_labeler

    cache = run_dir / "capacity-extra-labels.extxyz"
    done = read(cache, index=":") if cache.is_file() else []
    if len(done) >= n:
        return done[:n]
    pool = [a for path in sorted(run_dir.glob("iter-*/explored.extxyz")) for a in read(path, index=":")]
    # frames of the walkers (their info is copied from the labelled start box), none identical to a labelled box
    labelled = {np.round(a.positions, 6).tobytes() for a in known}
    pool = [a for a in pool if "walker" in a.info and np.round(a.positions, 6).tobytes() not in labelled]
    order = np.random.default_rng(0).permutation(len(pool))
    config = json.loads((run_dir / "config.json").read_text())
    labeler = make_labeler(config["reference"])
    print(f"labelling {n - len(done)} of {len(pool)} explored frames with {labeler.method} into {cache}", flush=True)
    for k in order[len(done) : n]:
        atoms = pool[k].copy()
        atoms.calc = single_point(atoms, labeler.label(atoms))
        write(cache, atoms, format="extxyz", append=True)
        done.append(atoms)
    return done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path, help="a finished project's run directory (its dataset.db and config.json)")
    ap.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS)
    ap.add_argument("--cutoff", type=float, default=4.5, help="Å (the liquid example's)")
    ap.add_argument("--stress-weight", type=float, default=10.0)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--extra", type=int, default=0, help="label this many explored frames too (see above)")
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="training-set sizes (default: all labels)")
    args = ap.parse_args()
    from mlpkit.data import Dataset
    from mlpkit.potentials import create_potential

    data = Dataset(args.run_dir / "dataset.db")
    train = data.to_atoms(split="train") + data.to_atoms(split="valid")
    test = data.to_atoms(split="test")
    if args.extra:
        train = train + extra_labels(args.run_dir, args.extra, train + test)
    sizes = args.sizes or [len(train)]
    if max(sizes) > len(train):
        raise SystemExit(f"--sizes up to {max(sizes)} but only {len(train)} labelled boxes (--extra adds more)")
    temps = sorted({float(a.info.get("temperature", 0.0)) for a in test})
    print(f"{len(train)} training boxes, {len(test)} test boxes ({len(test[0])} atoms) at {temps} K")
    ref = {t: np.concatenate([a.get_forces() for a in test if a.info.get("temperature") == t]) for t in temps}
    rms = {t: float(np.sqrt(np.mean(f**2))) for t, f in ref.items()}
    head = " | ".join(f"{t:.0f} K F MAE meV/Å (% of RMS {1000 * rms[t]:.0f})" for t in temps)
    print(f"\n| variant | training boxes | parameters | train F MAE meV/Å | {head} | fit CPU s |")
    print("|---|---|---|---|" + "---|" * len(temps) + "---|")
    everything = train
    for n, text in ((n, text) for n in sizes for text in args.variants):
        train = everything[:n]
        v = _variant(text)
        c = _cpu()
        pot = create_potential("bpnn", train, cutoff=args.cutoff, hidden=v["hidden"], n_radial=v["n_radial"],
                               n_angular=v["n_angular"], init_seed=0)  # fmt: skip
        pot.fit(train, stress_weight=args.stress_weight, epochs=v["epochs"], batch_size=args.batch_size,
                valid_fraction=0.0, keep="last", progress=False)  # fmt: skip
        cpu = _cpu() - c
        ftrain = np.concatenate(list(pot.predict(train).forces))
        train_mae = 1000 * float(np.mean(np.abs(ftrain - np.concatenate([a.get_forces() for a in train]))))
        cells = []
        for t in temps:
            frames = [a for a in test if a.info.get("temperature") == t]
            mae = 1000 * float(np.mean(np.abs(np.concatenate(list(pot.predict(frames).forces)) - ref[t])))
            cells.append(f"{mae:.1f} ({mae / (10 * rms[t]):.1f} %)")
        module = getattr(pot, "module", None)
        n_par = sum(p.numel() for p in module.parameters()) if module is not None else "?"
        print(f"| {text} | {n} | {n_par} | {train_mae:.1f} | " + " | ".join(cells) + f" | {cpu:.0f} |", flush=True)


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"\nwall {time.perf_counter() - t0:.0f} s")
