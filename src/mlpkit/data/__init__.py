"""The dataset store and structure files."""

from mlpkit.data.dataset import STATUSES, AddReport, Dataset, Label, split_images
from mlpkit.data.hashing import configuration_hash
from mlpkit.data.structures import check_structure, molecule_from_name, read_structures

__all__ = [
    "STATUSES",
    "AddReport",
    "Dataset",
    "Label",
    "check_structure",
    "configuration_hash",
    "molecule_from_name",
    "read_structures",
    "split_images",
]
