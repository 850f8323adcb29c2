"""Typed settings of the universal (pretrained) families: which model, and how a fine-tune runs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mlpkit.schema import Settings
from mlpkit.training.settings import TrainerSettings

#: which parameters a fine-tune trains (the rest stay at their pretrained values)
Layers = Literal["all", "last", "head"]


class CHGNetHyperparameters(Settings):
    """Which CHGNet model and how it is evaluated."""

    model: str = Field(
        "0.3.0",
        description="pretrained CHGNet shipped in the chgnet wheel ('0.3.0': MPtrj PBE/PBE+U, the default; "
        "'0.2.0'; 'r2scan': transfer-learned on MP r2SCAN), or the path of a CHGNet checkpoint file (.pth.tar)",
    )
    dtype: Literal["float64", "float32"] = Field(
        "float64",
        description="float64: forces and stress are exact derivatives of the energy (finite differences agree to "
        "1e-6 relative; the networks were trained in float32, predictions differ by ~1e-6 eV/atom); float32: faster",
    )
    device: str = Field("cpu", description="torch device: cpu, cuda or auto")
    batch_atoms: int = Field(
        256,
        ge=1,
        description="atoms per evaluation batch (CHGNet's batching is superlinear in the number of graphs: "
        "54 nine-atom frames take 3.3 s in one batch, 0.8 s in batches of ten)",
    )


class CHGNetFitSettings(TrainerSettings):
    """Reference-energy alignment, then a fine-tune of the pretrained weights (epochs of minibatch Adam).

    ``epochs: 0`` aligns the reference energies only (the "zero-shot aligned" model). Defaults measured on 10-50
    water frames (docs/benchmarks/universal.md).
    """

    epochs: int = Field(
        100, ge=0, description="maximum fine-tuning epochs (0: align the reference energies only, no training)"
    )
    learning_rate: float = Field(
        1e-2,
        gt=0,
        le=1,
        description="initial Adam learning rate (water, 25 labels, 100 epochs: 1e-2 → 4.6 meV/Å; 3e-3 → 6.1; "
        "1e-3 for 15 epochs → 13)",
    )
    lr_final: float = Field(1e-5, gt=0, le=1, description="learning rate at the last epoch")
    scheduler: Literal["exponential", "cosine", "plateau", "constant"] = Field(
        "cosine", description="learning-rate schedule from learning_rate to lr_final"
    )
    batch_size: int = Field(4, ge=1, description="configurations per optimiser step")
    patience: int = Field(30, ge=1, description="early stopping (keep='best'): epochs without validation improvement")
    keep: Literal["best", "last"] = Field(
        "last",
        description="'last': final weights of the decayed schedule; 'best': weights of the best validation epoch, "
        "with early stopping after `patience` epochs (on 25 water labels: 4.6 vs 4.9 meV/Å, 0.03 vs 0.22 meV/atom: "
        "a validation split of a few frames picks a noisy epoch)",
    )
    valid_fraction: float = Field(
        0.1, ge=0, lt=1, description="share of the training data held out for validation when none is given"
    )
    layers: Layers = Field(
        "all",
        description="parameters trained: 'all' (every layer but CHGNet's frozen composition model), 'last' (last "
        "atom interaction block + readout, CHGNet's own fine-tuning recipe), 'head' (readout MLP only)",
    )
    align: bool = Field(
        True,
        description="fit per-element reference-energy offsets (eV/atom) to the data by least squares on "
        "composition before training, so the network learns the shape of the surface, not the reference shift",
    )
    stress_weight: float = Field(
        0.0,
        ge=0,
        description="weight of the stress MSE in GPa² (periodic labels with a reference stress; CHGNet's own training "
        "used 0.1) added to the energy and force loss; 0: energies and forces only. Crystals: Si, 40 labels, 0.1 keeps "
        "the stress and bulk modulus that energies and forces alone spoil (docs/benchmarks/universal.md)",
    )
    train_dtype: Literal["float32", "float64"] = Field(
        "float32",
        description="float type of the fine-tune (the model is cast back to its dtype afterwards): float32 is how "
        "CHGNet was trained and twice as fast on CPU, with the same test errors on water (16.1 meV/Å both)",
    )
