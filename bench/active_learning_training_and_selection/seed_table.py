"""Per-seed saving (AL labels / random labels needed) of the cold runs, from each run's report/summary.json."""

import json
from pathlib import Path


def saving(name: str) -> tuple[str, float]:
    b = json.loads((Path("runs") / f"water-{name}" / "report" / "summary.json").read_text())["baseline"]
    if b.get("saving") is not None:
        return f"{b['saving']:.0%}", b["saving"]
    return f"< {b['saving_bound']:.0%}", b["saving_bound"]


for label, prefix in (("farthest-point (`cold-sN`)", "cold-s"), ("uncertainty (`cold-u-sN`)", "cold-u-s")):
    cells, vals = [], []
    for s in range(5):
        try:
            text, v = saving(f"{prefix}{s}")
        except FileNotFoundError:
            text, v = "not run", None
        cells.append(text)
        if v is not None:
            vals.append(v)
    met = sum(v <= 0.5 for v in vals)
    print(f"| {label} | {' | '.join(cells)} | {sum(vals) / len(vals):.0%} ({met} of {len(vals)} ≤ 50%) |")
