"""``mlpkit train`` and ``mlpkit evaluate``: fit a potential on labelled data, and measure it on held-out data."""

from __future__ import annotations

import json
import time
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


def _key_values(items: list[str] | None, option: str) -> dict:
    """``["hidden=[16,16]", "cutoff=4"]`` -> dict; values parsed as JSON where they parse (numbers, lists, true),
    and ``a,b,c`` as a list."""
    result: dict = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{option} must look like key=value, got {item!r}")
        try:
            result[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            parts = [p.strip() for p in value.split(",")]
            parsed = []
            for part in parts:
                try:
                    parsed.append(json.loads(part))
                except json.JSONDecodeError:
                    parsed.append(part)
            result[key.strip()] = parsed if len(parts) > 1 else value
    return result


def training_rows(images: list[Atoms], split: str | None, include_test: bool, data: str) -> list[Atoms]:
    """The rows to train on: ``split`` if given; else every row not marked ``test`` (a test row is never trained on
    unless ``include_test``)."""
    if split is not None:
        return images
    test = [a for a in images if a.info.get("split") == "test"]
    if test and not include_test:
        out.print(f"[dim]{len(test)} rows of {data} are in the test split and stay out of training[/]")
        images = [a for a in images if a.info.get("split") != "test"]
        if not images:
            raise InputError(f"every labelled row of {data} is in the test split; pass --include-test to use them")
    return images


@app.command("train")
def train_cmd(
    data: str = typer.Option(..., "--data", "-d", help="Labelled data: a dataset (.db) or an extxyz/any ASE file."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Directory to write the model to."),
    family: str = typer.Option("bpnn", "--family", help="Model family (see the list below)."),
    hyper: list[str] = typer.Option(
        None, "--set", "--hyper", help="A hyperparameter of the family as key=value (repeatable), e.g. hidden=16,16."
    ),
    fit: list[str] = typer.Option(
        None, "--fit", help="A fit setting of the family as key=value (repeatable), e.g. epochs=300."
    ),
    committee: int = typer.Option(1, "--committee", help="Train a committee of this many members (uncertainty)."),
    method: str = typer.Option(None, "--method", help="Level of theory to train on (when the data hold several)."),
    split: str = typer.Option(
        None, "--split", help="Train on this split of a dataset only (default: every row not in the 'test' split)."
    ),
    include_test: bool = typer.Option(False, "--include-test", help="Also train on rows marked as test data."),
    valid: str = typer.Option(None, "--valid", help="Separate validation data (default: split off by the family)."),
    seed: int = typer.Option(0, "--seed", help="Random seed (split, initial weights, batch order)."),
    checkpoint_dir: Path = typer.Option(
        None, "--checkpoint-dir", help="Checkpoints go here (default: OUT.ckpt); re-running resumes a killed run."
    ),
    threads: int = typer.Option(None, "--threads", help="torch CPU threads."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Train a potential of any family on labelled data and save it to --out.

    Hyperparameters and fit settings are the family's own (checked before training, with the allowed keys):
    `mlpkit families` lists every family with them.
    """
    import torch
    from pydantic import ValidationError

    from mlpkit.config import format_validation_error
    from mlpkit.uncertainty.model_spec import ModelSpec, fit_model

    if threads:
        torch.set_num_threads(threads)
    try:
        spec = ModelSpec(
            family=family,
            hyperparameters=_key_values(hyper, "--set"),
            fit=_key_values(fit, "--fit"),
            committee={"n_members": committee},
        )
    except ValidationError as exc:
        raise InputError(format_validation_error(exc, "mlpkit train's model settings", ModelSpec)) from None
    images = training_rows(load_labelled(data, method, split), split, include_test, data)
    valid_images = load_labelled(valid, method) if valid else None
    ckpt = checkpoint_dir or out_dir.with_name(out_dir.name + ".ckpt")
    what = f"a committee of {committee} {family} potentials" if committee > 1 else f"a {family} potential"
    out.print(f"training {what} on {len(images)} configurations")
    start = time.perf_counter()
    pot = fit_model(spec, images, valid_images, seed=seed, progress=progress, checkpoint_dir=str(ckpt))
    seconds = time.perf_counter() - start
    pot.save(out_dir)
    _print_fit_summary(pot, out_dir, seconds)


@app.command("finetune")
def finetune_cmd(
    model: str = typer.Argument(..., help="A pretrained model by name (chgnet, chgnet:r2scan) or a saved model."),
    data: str = typer.Option(..., "--data", "-d", help="Labelled data: a dataset (.db) or an extxyz/any ASE file."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Directory to write the fine-tuned model to."),
    fit: list[str] = typer.Option(
        None, "--fit", metavar="KEY=VALUE", help="A fit setting (repeatable), e.g. epochs=50 or layers=head."
    ),
    committee: int = typer.Option(1, "--committee", help="Fine-tune this many members (different seeds)."),
    method: str = typer.Option(None, "--method", help="Level of theory to train on (when the data hold several)."),
    split: str = typer.Option(None, "--split", help="Fine-tune on this split of a dataset only."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Fine-tune a pretrained (universal) potential, or continue a saved one, on a few labels: energies aligned to
    your reference first, then the layers the fit settings name; resumable from OUT.ckpt."""
    from pydantic import ValidationError

    from mlpkit.config import format_validation_error
    from mlpkit.potentials import family_class, known_families, load_potential
    from mlpkit.potentials.store import is_model_dir, read_model_json
    from mlpkit.uncertainty.model_spec import ModelSpec, fit_model

    previous = None
    if is_model_dir(model):
        family, hyper = read_model_json(model)["family"], {}
        previous = load_potential(model)
    else:
        family, _, name = model.partition(":")
        if family not in known_families():
            raise InputError(f"{model!r} is neither a saved model nor a pretrained name (FAMILY or FAMILY:MODEL)")
        hyper = {"model": name} if name else {}
    if not family_class(family).capabilities.fine_tunable:
        raise InputError(f"the {family} family cannot be fine-tuned; train it with `mlpkit train --family {family}`")
    try:
        spec = ModelSpec(
            family=family,
            hyperparameters=hyper,
            fit=_key_values(fit, "--fit"),
            committee={"n_members": committee, "warm_start": previous is not None},
        )
    except ValidationError as exc:
        raise InputError(format_validation_error(exc, "mlpkit finetune's settings", ModelSpec)) from None
    images = training_rows(load_labelled(data, method, split), split, False, data)
    ckpt = out_dir.with_name(out_dir.name + ".ckpt")
    out.print(f"fine-tuning {model} on {len(images)} configurations")
    start = time.perf_counter()
    pot = fit_model(spec, images, seed=seed, previous=previous, progress=progress, checkpoint_dir=str(ckpt))
    pot.save(out_dir)
    _print_fit_summary(pot, out_dir, time.perf_counter() - start)


def _print_fit_summary(pot, out_dir: Path, seconds: float) -> None:
    """The training numbers each member recorded (errors on its training and validation data)."""
    members = getattr(pot, "members", [pot])
    table = Table(title=f"{out_dir}  ({pot.family}, {seconds:.0f} s)")
    table.add_column("member")
    table.add_column("set")
    table.add_column("energy MAE (meV/atom)", justify="right")
    table.add_column("force MAE (meV/Å)", justify="right")
    for k, m in enumerate(members):
        metrics = m.metadata.get("metrics", {})
        for prefix in ("train", "valid"):
            if f"{prefix}_energy_mae" in metrics:
                table.add_row(
                    f"{k} ({m.family})",
                    prefix,
                    f"{1000 * metrics[f'{prefix}_energy_mae']:.3f}",
                    f"{1000 * metrics[f'{prefix}_forces_mae']:.1f}",
                )
    if table.row_count:
        out.print(table)
    else:  # families without per-epoch numbers (closed-form fits, alignment only)
        for k, m in enumerate(members):
            seconds = m.metadata.get("fit_seconds")
            out.print(f"member {k} ({m.family}): fitted on {m.metadata.get('n_train', '?')} configurations"
                      + (f" in {seconds:.1f} s" if seconds else ""))  # fmt: skip
    out.print(f"saved {out_dir}")


@app.command("families")
def families_cmd() -> None:
    """The model families mlpkit knows, what each can do, and its hyperparameters and fit settings."""
    from mlpkit.potentials.registry import family_class, known_families
    from mlpkit.uncertainty.model_spec import WRAPPERS

    for name in known_families():
        if name in WRAPPERS:
            continue
        try:
            cls = family_class(name)
        except InputError as exc:
            out.print(f"[bold]{name}[/]: not available ({exc})")
            continue
        caps = cls.capabilities
        out.print(
            f"[bold]{name}[/]: uncertainty {caps.uncertainty}, fit {caps.fit}"
            + (", pretrained" if caps.pretrained else "")
            + (", fine-tunable" if caps.fine_tunable else "")
        )
        for title, model in (("hyperparameters", cls.Hyperparameters), ("fit settings", cls.FitSettings)):
            fields = model.model_fields
            if fields:
                out.print(f"  {title}:")
                for key, info in fields.items():
                    out.print(f"    {key} = {info.default!r}: {info.description or ''}", highlight=False)


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
