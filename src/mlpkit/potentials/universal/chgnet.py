"""CHGNet as an mlpkit potential: pretrained and offline, reference-aligned to the user's DFT, fine-tunable.

    pot = mlpkit.load("chgnet")                   # CHGNet 0.3.0 from the chgnet wheel (also "chgnet:r2scan")
    pot.fit(train, epochs=0)                      # align reference energies only ("zero-shot aligned")
    pot.fit(train, layers="all", epochs=100)      # align, then fine-tune on a few labels

Energy = network (Σ site energies, eV) + CHGNet's frozen composition model (Σ_Z n_Z w_Z, MP's reference energies)
+ the alignment offsets fitted on the user's data (Σ_Z n_Z δ_Z). Once aligned, the potential knows only the elements
it was aligned on: any other would sit on MP's energy scale, not the user's, so it is refused.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.data import chemical_symbols

from mlpkit.data.dataset import holdout
from mlpkit.data.records import methods_of, reference_results, training_set_hash
from mlpkit.errors import InputError, UnsupportedSpeciesError
from mlpkit.potentials.base import Capabilities, Potential, Prediction
from mlpkit.potentials.store import read_family_json, read_weights, write_model_dir
from mlpkit.potentials.universal import chgnet_backend as backend
from mlpkit.potentials.universal.alignment import fit_offsets, offset_energy
from mlpkit.potentials.universal.settings import CHGNetFitSettings, CHGNetHyperparameters
from mlpkit.schema import validate_settings
from mlpkit.training import FIT_DEFAULTS, Trainer, energy_force_loss
from mlpkit.training.history import FitHistory

#: CHGNet's elements, H ... Pu
CHGNET_SPECIES = tuple(chemical_symbols[1 : backend.MAX_Z + 1])
_VOIGT = ([0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1])
_GPA = 160.21766208  # GPa per eV/Å³


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class CHGNetPotential(Potential):
    """A pretrained CHGNet (see the module docstring); ``offsets`` are the alignment, eV per atom of the element."""

    family = "chgnet"
    capabilities = Capabilities(forces=True, stress=True, pretrained=True, fine_tunable=True, fit="epochs")
    Hyperparameters = CHGNetHyperparameters
    FitSettings = CHGNetFitSettings

    def __init__(
        self,
        module: torch.nn.Module,
        model_args: dict[str, Any],
        hyperparameters: dict[str, Any],
        offsets: dict[str, float] | None = None,
        fine_tune: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        self.hyperparameters = dict(hyperparameters)
        self.dtype = torch.float64 if self.hyperparameters["dtype"] == "float64" else torch.float32
        self.device = _resolve_device(self.hyperparameters["device"])
        self.module = module.to(device=self.device, dtype=self.dtype)
        self.model_args = dict(model_args)
        self.offsets = dict(offsets or {})
        #: the fine-tune settings last used (None: pretrained weights, untouched)
        self.fine_tune = fine_tune
        self.metadata = dict(metadata or {})
        self.cutoff = float(model_args.get("atom_graph_cutoff", 6.0))
        self._graphs = backend.GraphMaker(
            self.cutoff, float(model_args.get("bond_graph_cutoff", 3.0)), self.dtype, self.device
        )
        self._composition = module.composition_model.fc.weight.detach().double().cpu().numpy().ravel()

    # -- construction -----------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, model: str | None = None, **options: Any) -> CHGNetPotential:
        """A CHGNet shipped in the chgnet wheel by name (None → "0.3.0"; "0.2.0", "r2scan") or a checkpoint path.

        Offline: nothing is downloaded; a name needing a file that is not here raises InputError saying which file to
        place where. ``options``: the other hyperparameters (``dtype``, ``device``, ``batch_atoms``).
        """
        hp = validate_settings(
            CHGNetHyperparameters, {**options, "model": model or backend.DEFAULT_MODEL}, "chgnet hyperparameter"
        ).model_dump()
        dtype = torch.float64 if hp["dtype"] == "float64" else torch.float32
        module, args = backend.pretrained_module(hp["model"], dtype)
        return cls(module, args, hp, metadata={"base_model": hp["model"]})

    @classmethod
    def check_pretrained(cls, model: str | None = None) -> None:
        """The checkpoint of ``model`` (None → "0.3.0") exists here (InputError naming what is missing otherwise)."""
        backend.checkpoint_file(model or backend.DEFAULT_MODEL)

    @classmethod
    def from_data(cls, train: Sequence[Atoms], **hyperparameters: Any) -> CHGNetPotential:
        """The pretrained model (``model`` hyperparameter) for the elements of ``train``, ready to align and fit."""
        pot = cls.from_pretrained(hyperparameters.pop("model", None), **hyperparameters)
        pot.check_species(train)
        return pot

    @property
    def species(self) -> tuple[str, ...]:
        """Elements the model answers for: those it was aligned on, or all of CHGNet's (raw, zero-shot)."""
        if self.offsets:
            return tuple(sorted(self.offsets, key=chemical_symbols.index))
        return CHGNET_SPECIES

    def check_species(self, images: Sequence[Atoms]) -> None:
        if self.offsets:
            return super().check_species(images)
        for i, atoms in enumerate(images):
            if atoms.numbers.max(initial=0) > backend.MAX_Z or atoms.numbers.min(initial=1) < 1:
                bad = sorted(
                    {s for s, z in zip(atoms.get_chemical_symbols(), atoms.numbers, strict=True) if not 0 < z <= 94}
                )
                raise UnsupportedSpeciesError(
                    f"configuration {i} contains {', '.join(bad)}; CHGNet knows H to Pu (Z = 1-94) only"
                )

    # -- prediction -------------------------------------------------------------------------------------

    def _baseline(self, images: Sequence[Atoms]) -> np.ndarray:
        """(n,) eV: the parts of the energy that do not depend on positions (composition model + offsets)."""
        return backend.composition_counts(images) @ self._composition + offset_energy(images, self.offsets)

    def predict(self, images: Sequence[Atoms], *, stress: bool = False, forces: bool = True) -> Prediction:
        """Energies (n,) eV, forces (n_i, 3) eV/Å, stress (n, 6) eV/Å³ (Voigt, ASE sign; NaN rows unless periodic).

        ``forces=False`` skips the gradient (energies only, e.g. for the alignment); the forces are then zeros.
        """
        images = list(images)
        self.check_species(images)
        n = len(images)
        energy = np.zeros(n)
        out_forces: list[np.ndarray] = [np.zeros((len(a), 3)) for a in images]
        out_stress = np.full((n, 6), np.nan) if stress else None
        periodic = np.array([bool(a.pbc.all()) for a in images])
        self.module.eval()
        for idx in backend.batches(images, int(self.hyperparameters["batch_atoms"])):
            graphs = [self._graphs(images[i]) for i in idx]
            want_stress = bool(stress and periodic[idx].any())
            out = backend.run_chgnet(self.module, graphs, forces=forces, stress=want_stress, create_graph=False)
            energy[idx] = out.energy.double().cpu().numpy()
            for k, i in enumerate(idx):
                if forces:
                    out_forces[i] = out.forces[k].double().cpu().numpy()
                if want_stress and periodic[i]:
                    s = out.stress[k].double().cpu().numpy()
                    out_stress[i] = (0.5 * (s + s.T))[_VOIGT]
        energy += self._baseline(images)
        return Prediction(energy=energy, forces=out_forces, stress=out_stress)

    # -- alignment and fine-tuning ----------------------------------------------------------------------

    def align(self, train: Sequence[Atoms]) -> dict[str, float]:
        """Fit the per-element offsets (eV/atom) to ``train``'s energies (see :mod:`.alignment`); returns them."""
        self.offsets = {}
        self.check_species(train)
        model_energy = self.predict(train, forces=False).energy
        self.offsets = fit_offsets(train, model_energy)
        return dict(self.offsets)

    def _set_trainable(self, layers: str) -> list[str]:
        m = self.module
        for p in m.parameters():
            p.requires_grad_(False)
        if layers == "all":
            # CHGNet's composition model stays frozen (the offsets play its part); the magmom head has no loss
            parts = [c for name, c in m.named_children() if name not in ("composition_model", "site_wise")]
        elif layers == "last":
            parts = [m.atom_conv_layers[-1], m.readout_norm, m.mlp]
        else:
            parts = [m.readout_norm, m.mlp]
        for part in parts:
            if part is not None:
                for p in part.parameters():
                    p.requires_grad_(True)
        return [name for name, p in m.named_parameters() if p.requires_grad]

    def fit(self, train: Sequence[Atoms], valid: Sequence[Atoms] | None = None, **settings: Any) -> FitHistory:
        """Align the reference energies to ``train``, then fine-tune the current weights on energies and forces.

        Settings: :class:`CHGNetFitSettings` (``epochs`` (0: align only), ``layers``, ``learning_rate``,
        ``lr_final``, ``scheduler``, ``batch_size``, ``force_weight``,
        ``stress_weight`` (GPa²), ``keep``/``patience`` (early stopping on
        ``valid``, or on a ``valid_fraction`` split of ``train``), ``align``) and the run-time options ``seed``,
        ``progress``, ``checkpoint_dir`` (resumable), ``callback``. Fine-tuning always continues from the current
        weights (that is what fine-tuning is), so ``warm_start`` changes nothing.
        """
        typed, runtime = self.fit_settings(settings)
        cfg = {**FIT_DEFAULTS, **typed.model_dump(), **runtime}
        t0 = time.perf_counter()
        train = list(train)
        if not train:
            raise InputError("no training configurations")
        # alignment alone (epochs 0) uses every label; a fine-tune holds some out for early stopping
        train, valid = holdout(train, valid, cfg["valid_fraction"] if cfg["epochs"] > 0 else 0.0, cfg["seed"])
        if cfg["align"]:
            self.align(train)
        self.check_species(train + (valid or []))
        history = FitHistory()
        if cfg["epochs"] > 0:
            history = self._train(train, valid, cfg)
        else:
            history.stopped_because = "no_epochs"
        self.fine_tune = {k: cfg[k] for k in (*CHGNetFitSettings.model_fields, "seed")}
        methods = methods_of(train)
        fit_seconds = time.perf_counter() - t0
        self.metadata.update(
            {
                "method": methods[0] if len(methods) == 1 else methods,
                "training_set_hash": training_set_hash(train),
                "n_train": len(train),
                "n_valid": len(valid) if valid else 0,
                "fit_settings": self.fine_tune,
                "fit_seconds": fit_seconds,
                "best_epoch": history.best_epoch,
                "stopped_because": history.stopped_because,
                "offsets": dict(self.offsets),
            }
        )
        history.seconds = fit_seconds
        return history

    def _items(self, images: Sequence[Atoms], graphs: backend.GraphMaker) -> list[tuple[Any, float, np.ndarray, Any]]:
        """(graph, target network energy = E_dft − composition − offsets (eV), forces (eV/Å), reference stress (6,)
        eV/Å³ Voigt for periodic labels that carry one, else None) per configuration."""
        energies, forces = reference_results(images)
        targets = energies - self._baseline(images)
        stresses = [_reference_stress(a) for a in images]
        return [(graphs(a), float(e), f, s) for a, e, f, s in zip(images, targets, forces, stresses, strict=True)]

    def _train(self, train: list[Atoms], valid: list[Atoms] | None, cfg: dict[str, Any]) -> FitHistory:
        trainable = self._set_trainable(cfg["layers"])
        module, device = self.module, self.device
        dtype = torch.float32 if cfg["train_dtype"] == "float32" else torch.float64
        graphs = backend.GraphMaker(self.cutoff, self._graphs.bond_cutoff, dtype, device)
        module.to(dtype)
        force_weight = float(cfg["force_weight"])
        stress_weight = float(cfg["stress_weight"])
        force_relative = float(cfg.get("force_relative", 0.0))

        def loss_fn(items, training: bool):
            with_stress = [k for k, it in enumerate(items) if it[3] is not None] if stress_weight > 0 else []
            out = backend.run_chgnet(
                module, [it[0] for it in items], forces=True, stress=bool(with_stress), create_graph=training
            )
            e_ref = torch.tensor([it[1] for it in items], dtype=dtype, device=device)
            f_ref = torch.as_tensor(np.concatenate([it[2] for it in items]), dtype=dtype, device=device)
            n_atoms = torch.tensor([len(it[2]) for it in items], device=device)
            loss, stats = energy_force_loss(
                out.energy, e_ref, n_atoms, torch.cat(out.forces), f_ref, force_weight, force_relative=force_relative
            )
            if with_stress:
                # stress MSE in GPa² (CHGNet's convention for its weight); the reported errors stay E and F
                s_pred = torch.stack([out.stress[k] for k in with_stress])
                s_pred = (0.5 * (s_pred + s_pred.transpose(1, 2)))[:, _VOIGT[0], _VOIGT[1]]
                s_ref = torch.as_tensor(np.stack([items[k][3] for k in with_stress]), dtype=dtype, device=device)
                loss = loss + stress_weight * torch.mean(((s_pred - s_ref) * _GPA) ** 2)
            return loss, stats

        fingerprint = {
            "family": self.family,
            "hyperparameters": self.hyperparameters,
            "train": training_set_hash(train),
            "valid": training_set_hash(valid) if valid else "",
            "layers": cfg["layers"],
            "offsets": self.offsets,
            "force_weight": force_weight,
            "stress_weight": stress_weight,
            **({"force_relative": force_relative} if force_relative > 0 else {}),
            "train_dtype": cfg["train_dtype"],
            # a checkpoint resumes only the fine-tune that started from these same weights
            "start": _weights_hash(module),
        }
        trainer_cfg = {k: cfg[k] for k in FIT_DEFAULTS}
        try:
            trainer = Trainer(
                module,
                loss_fn,
                self._items(train, graphs),
                self._items(valid, graphs) if valid else None,
                trainer_cfg,
                fingerprint=fingerprint,
            )
            history = trainer.run()
        finally:
            module.to(self.dtype)
            for p in module.parameters():
                p.requires_grad_(False)
            module.eval()
        self.metadata["trained_parameters"] = sum(p.numel() for n, p in module.named_parameters() if n in trainable)
        return history

    # -- persistence ------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """``model.json`` (base model, CHGNet's constructor arguments, alignment, fine-tune settings) + the weights."""
        model_json = {
            "family": self.family,
            "base_model": self.hyperparameters["model"],
            "hyperparameters": self.hyperparameters,
            "model_args": self.model_args,
            "species": list(self.species),
            "cutoff": self.cutoff,
            "offsets": self.offsets,
            "fine_tune": self.fine_tune,
            "metadata": self.metadata,
        }
        tensors = {k: v.detach().cpu() for k, v in self.module.state_dict().items()}
        write_model_dir(path, model_json, tensors)

    @classmethod
    def load(cls, path: str | os.PathLike, **options: Any) -> CHGNetPotential:
        """Rebuild the CHGNet architecture from the saved constructor arguments and load the saved weights
        (``torch.load(weights_only=True)``); ``options`` override ``dtype``, ``device``, ``batch_atoms``."""
        meta = read_family_json(path, cls.family)
        unknown = set(options) - {"dtype", "device", "batch_atoms"}
        if unknown:
            raise InputError(f"unknown chgnet load option(s) {sorted(unknown)}; known: dtype, device, batch_atoms")
        hp = validate_settings(
            CHGNetHyperparameters, {**meta["hyperparameters"], **options}, "chgnet hyperparameter"
        ).model_dump()
        dtype = torch.float64 if hp["dtype"] == "float64" else torch.float32
        module = backend.build_chgnet(meta["model_args"], read_weights(path), dtype)
        pot = cls(module, meta["model_args"], hp, meta.get("offsets"), meta.get("fine_tune"), meta.get("metadata"))
        pot.path = Path(path)
        return pot

    def __repr__(self) -> str:
        state = (
            "fine-tuned"
            if self.fine_tune and self.fine_tune.get("epochs")
            else ("aligned" if self.offsets else "zero-shot")
        )
        return f"CHGNetPotential(model={self.hyperparameters['model']!r}, {state}, species={len(self.species)})"


def _reference_stress(atoms: Atoms) -> np.ndarray | None:
    """The reference stress (6,) eV/Å³ (Voigt, ASE sign) of a fully periodic labelled configuration, else None."""
    calc = atoms.calc
    stress = None if calc is None or not atoms.pbc.all() else calc.results.get("stress")
    if stress is None:
        return None
    stress = np.asarray(stress, dtype=float)
    return stress if stress.shape == (6,) else stress[_VOIGT]


def _weights_hash(module: torch.nn.Module) -> str:
    import hashlib

    h = hashlib.sha256()
    for name, value in module.state_dict().items():
        h.update(name.encode())
        h.update(value.detach().cpu().double().numpy().tobytes())
    return h.hexdigest()[:16]
