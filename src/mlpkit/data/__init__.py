"""The dataset store and structure files."""

from mlpkit.data.boxes import box_from_spec, molecular_box, parse_box_spec
from mlpkit.data.dataset import STATUSES, AddReport, Dataset
from mlpkit.data.hashing import configuration_hash
from mlpkit.data.labels import Label
from mlpkit.data.records import methods_of, reference_results, species_of, training_set_hash
from mlpkit.data.split import holdout, split_images
from mlpkit.data.structures import check_structure, molecule_from_name, read_structures, structure_from_name

__all__ = [
    "STATUSES",
    "AddReport",
    "Dataset",
    "Label",
    "box_from_spec",
    "check_structure",
    "configuration_hash",
    "holdout",
    "methods_of",
    "molecular_box",
    "molecule_from_name",
    "parse_box_spec",
    "read_structures",
    "reference_results",
    "species_of",
    "split_images",
    "structure_from_name",
    "training_set_hash",
]
