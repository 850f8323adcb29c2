"""Markdown rows for the benchmark doc, read from each run's report/summary.json (numbers are not typed by hand)."""

import json
import sys
from pathlib import Path

for name in sys.argv[1:]:
    run = Path("runs") / f"water-{name}"
    s = json.loads((run / "report" / "summary.json").read_text())
    seen, al = set(), []
    for c in s["curve"]:
        if c["n_labels"] not in seen and c.get("forces_mae") is not None:
            seen.add(c["n_labels"])
            al.append(f"{c['n_labels']}→{1000 * c['forces_mae']:.1f}")
    b = s.get("baseline") or {}
    rnd = ", ".join(f"{p['n_labels']}→{1000 * p['forces_mae']:.1f}" for p in b.get("points", []))
    need = b.get("random_labels_needed")
    if b.get("saving") is not None:
        sav, needs = f"**{b['saving']:.0%}**", f"{need:.1f}"
    elif b.get("saving_bound") is not None:
        sav, needs = f"**< {b['saving_bound']:.0%}** (bound)", f"> {b['points'][-1]['n_labels']}"
    else:
        sav, needs = "-", "-"
    print(f"| `{run}` | {', '.join(al)} | {rnd} | {needs} | {sav} | {s.get('wall_seconds', float('nan')):.0f} s |")
