"""Atomic-environment descriptors: neighbour lists (vesin) and Behler-Parrinello symmetry functions in torch."""

from mlpkit.descriptors.graph import GraphArrays, GraphBatch, collate, graph_arrays, species_index
from mlpkit.descriptors.neighbors import NeighborList, VerletList, neighbor_list
from mlpkit.descriptors.symmetry import SymmetryFunctions, SymmetryFunctionSettings

__all__ = [
    "GraphArrays",
    "GraphBatch",
    "NeighborList",
    "SymmetryFunctionSettings",
    "SymmetryFunctions",
    "VerletList",
    "collate",
    "graph_arrays",
    "neighbor_list",
    "species_index",
]
