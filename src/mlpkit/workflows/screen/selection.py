"""The picks of one round of ``mlpkit screen``: the top k by score among candidates not picked yet, passing over
near-duplicates (same formula, nearly the same score) while distinct candidates remain."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from mlpkit.workflows.screen.candidates import rank


def pick_top(
    scores: Mapping[str, float], formula: Mapping[str, str], taken: Sequence[str], top: int, distinct: float
) -> tuple[list[str], int]:
    """(picked candidate hashes, number of near-duplicates passed over) for one round.

    ``scores``: candidate hash → score (lowest first, NaN last); ``formula``: hash → chemical formula; ``taken``:
    hashes picked in earlier rounds (never picked again); ``top``: how many to pick. With ``distinct`` > 0 (score
    units), a candidate of the same formula as a pick and a score within ``distinct`` of its score is passed over (a
    near-duplicate, e.g. two starting points relaxed to the same minimum) while others remain.
    """
    tol = distinct
    kept = [(formula[h], scores[h]) for h in taken if math.isfinite(scores.get(h, math.nan))]
    chosen, passed = [], []
    for h in (h for h in rank(scores) if h not in set(taken)):
        if len(chosen) == top:
            break
        if tol > 0 and any(f == formula[h] and abs(v - scores[h]) < tol for f, v in kept):
            passed.append(h)
            continue
        chosen.append(h)
        if math.isfinite(scores[h]):
            kept.append((formula[h], scores[h]))
    chosen += passed[: top - len(chosen)]  # too few distinct ones left: the budget is still spent
    return chosen, len(passed)
