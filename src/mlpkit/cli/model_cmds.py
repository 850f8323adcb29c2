"""``mlpkit train`` and ``mlpkit evaluate``: fit a potential on labelled data, and measure it on held-out data."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from ase import Atoms
from rich.console import Console
from rich.table import Table

from mlpkit.cli import app
from mlpkit.errors import InputError, MixedMethodError

out = Console()


def load_labelled(data: str, method: str | None = None, split: str | None = None) -> list[Atoms]:
    """Labelled configurations from a dataset (``.db`` or a postgresql:// URL) or any file ASE reads (extxyz...).

    From a file, frames without energy and forces are refused, and so is a mix of ``method`` values unless
    ``method`` names the one to keep.
    """
    from mlpkit.data.records import methods_of, reference_results

    if "://" in data or Path(data).suffix in (".db", ".sqlite", ".sqlite3"):
        from mlpkit.data import Dataset

        if "://" not in data and not Path(data).exists():
            raise InputError(f"dataset {data} does not exist")
        images = Dataset(data).to_atoms(method=method, split=split)
        if not images:
            what = f" with method {method!r}" if method else ""
            raise InputError(f"{data} holds no labelled configurations{what}{f' in split {split!r}' if split else ''}")
        return images
    from mlpkit.data import read_structures

    images = read_structures(data)
    reference_results(images)  # raises InputError for frames without energy/forces
    if method:
        for a in images:
            a.info.setdefault("method", method)
        images = [a for a in images if str(a.info.get("method")) == method]
        if not images:
            raise InputError(f"{data} holds no configurations with method {method!r}")
    else:
        found = [m for m in methods_of(images) if m != "unknown"]
        if len(found) > 1:
            raise MixedMethodError(f"{data} mixes methods {', '.join(found)}; choose one with --method")
    return images


def _parse_hidden(hidden: str | None) -> list[int] | None:
    if hidden is None:
        return None
    try:
        widths = [int(x) for x in hidden.replace("x", ",").split(",") if x.strip()]
    except ValueError as exc:
        raise InputError(f"--hidden must look like 64,64, got {hidden!r}") from exc
    if not widths or min(widths) < 1:
        raise InputError(f"--hidden must list positive widths, got {hidden!r}")
    return widths


@app.command("train")
def train_cmd(
    data: str = typer.Option(..., "--data", "-d", help="Labelled data: a dataset (.db) or an extxyz/any ASE file."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Directory to write the model to."),
    family: str = typer.Option("bpnn", "--family", help="Model family."),
    method: str = typer.Option(None, "--method", help="Level of theory to train on (when the data hold several)."),
    valid: str = typer.Option(None, "--valid", help="Separate validation data (default: split off --valid-fraction)."),
    valid_fraction: float = typer.Option(0.1, "--valid-fraction", help="Fraction held out for early stopping."),
    epochs: int = typer.Option(None, "--epochs", help="Maximum epochs (default: the family's)."),
    force_weight: float = typer.Option(None, "--force-weight", help="Weight of forces in the loss."),
    learning_rate: float = typer.Option(None, "--learning-rate", "--lr", help="Initial learning rate."),
    batch_size: int = typer.Option(None, "--batch-size", help="Configurations per step."),
    patience: int = typer.Option(None, "--patience", help="Early-stopping patience (epochs)."),
    seed: int = typer.Option(0, "--seed", help="Random seed (split, initial weights, batch order)."),
    cutoff: float = typer.Option(None, "--cutoff", help="Descriptor cutoff in Å (default: from the data)."),
    hidden: str = typer.Option(None, "--hidden", help="Hidden layer widths, e.g. 64,64."),
    dropout: float = typer.Option(None, "--dropout", help="Dropout probability (for MC-dropout uncertainty)."),
    hyper: list[str] = typer.Option(None, "--hyper", help="Any other hyperparameter as key=value (repeatable)."),
    checkpoint_dir: Path = typer.Option(
        None, "--checkpoint-dir", help="Checkpoints go here (default: OUT.ckpt); re-running resumes a killed run."
    ),
    threads: int = typer.Option(None, "--threads", help="torch CPU threads."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Train a potential on labelled data and save it (model.json + weights.pt) to --out."""
    import torch

    from mlpkit.cli.data_cmds import _parse_params
    from mlpkit.potentials.registry import create_potential

    if threads:
        torch.set_num_threads(threads)
    images = load_labelled(data, method)
    valid_images = load_labelled(valid, method) if valid else None
    if not 0 <= valid_fraction < 1:
        raise InputError(f"--valid-fraction must be in [0, 1), got {valid_fraction}")
    hp = _parse_params(hyper)
    for key, value in (("cutoff", cutoff), ("hidden", _parse_hidden(hidden)), ("dropout", dropout)):
        if value is not None:
            hp[key] = value
    pot = create_potential(family, images, **hp)
    ckpt = checkpoint_dir or out_dir.with_name(out_dir.name + ".ckpt")
    settings = {
        "epochs": epochs,
        "force_weight": force_weight,
        "learning_rate": learning_rate,
        "batch_size": batch_size,
        "patience": patience,
        "seed": seed,
        "valid_fraction": valid_fraction,
        "checkpoint_dir": str(ckpt),
        "progress": progress,
    }
    n_train = len(images) if valid_images else len(images) - round(valid_fraction * len(images))
    out.print(f"training {family} on {n_train} configurations ({', '.join(pot.species)}), cutoff {pot.cutoff} Å")
    history = pot.fit(images, valid_images, **{k: v for k, v in settings.items() if v is not None})
    pot.save(out_dir)
    last = history.epochs[history.best_epoch - 1] if history.best_epoch > 0 else history.epochs[-1]
    table = Table(
        title=f"{out_dir}  (best epoch {history.best_epoch}, {history.stopped_because}, {history.seconds:.0f} s)"
    )
    table.add_column("set")
    table.add_column("energy MAE (meV/atom)", justify="right")
    table.add_column("force MAE (meV/Å)", justify="right")
    for prefix in ("train", "valid"):
        if f"{prefix}_energy_mae" in last:
            table.add_row(
                prefix, f"{1000 * last[f'{prefix}_energy_mae']:.3f}", f"{1000 * last[f'{prefix}_forces_mae']:.1f}"
            )
    out.print(table)


@app.command("evaluate")
def evaluate_cmd(
    model: Path = typer.Argument(..., help="A saved model directory."),
    data: str = typer.Option(..., "--data", "-d", help="Labelled test data: a dataset (.db) or extxyz/any ASE file."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Directory for metrics.json and the parity plots."),
    method: str = typer.Option(None, "--method", help="Level of theory of the test labels (when several)."),
    split: str = typer.Option(None, "--split", help="Only this split of a dataset (e.g. test)."),
) -> None:
    """Errors of a model on labelled data: metrics.json, parity_energy.png, parity_forces.png, error_histograms.png."""
    import mlpkit
    from mlpkit.validation.metrics import evaluate
    from mlpkit.validation.parity import error_histograms, parity_plots

    pot = mlpkit.load(model)
    images = load_labelled(data, method, split)
    trained_on = pot.metadata.get("method")
    test_methods = sorted({str(a.info.get("method", "unknown")) for a in images} - {"unknown"})
    if isinstance(trained_on, str) and test_methods and test_methods != [trained_on]:
        raise MixedMethodError(
            f"the model was trained on {trained_on} labels but the test data are {', '.join(test_methods)}"
        )
    metrics, table = evaluate(pot, images)
    metrics.update({"model": str(model), "data": str(data), "family": pot.family, "method": trained_on})
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    paths = parity_plots(table, out_dir, label=pot.family.upper())
    error_histograms(table, out_dir)
    t = Table(title=f"{model} on {data} ({metrics['n_configs']} configurations)")
    t.add_column("quantity")
    t.add_column("MAE", justify="right")
    t.add_column("RMSE", justify="right")
    t.add_row(
        "energy (meV/atom)",
        f"{1000 * metrics['energy_mae_per_atom']:.3f}",
        f"{1000 * metrics['energy_rmse_per_atom']:.3f}",
    )
    t.add_row("forces (meV/Å)", f"{1000 * metrics['forces_mae']:.1f}", f"{1000 * metrics['forces_rmse']:.1f}")
    out.print(t)
    out.print(f"wrote {out_dir / 'metrics.json'}, {paths['energy'].name}, {paths['forces'].name}")
