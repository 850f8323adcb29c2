"""The dataset store and structure files."""

from mlpkit.data.dataset import STATUSES, AddReport, Dataset, Label, holdout, split_images
from mlpkit.data.hashing import configuration_hash
from mlpkit.data.records import methods_of, reference_results, species_of, training_set_hash
from mlpkit.data.structures import check_structure, molecule_from_name, read_structures

__all__ = [
    "STATUSES",
    "AddReport",
    "Dataset",
    "Label",
    "check_structure",
    "configuration_hash",
    "holdout",
    "methods_of",
    "molecule_from_name",
    "read_structures",
    "reference_results",
    "species_of",
    "split_images",
    "training_set_hash",
]
