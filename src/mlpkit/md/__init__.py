"""Dynamics with a potential: NVE/NVT via ASE integrators, an uncertainty watchdog, trajectory writing.

``mlpkit.md.dynamics`` (run_md, UncertaintyWatchdog, MDResult); properties of trajectories live in
``mlpkit.md.properties`` and the speed table in ``mlpkit.md.speed``.
"""

from mlpkit.md.dynamics import MDResult, UncertaintyWatchdog, run_md

__all__ = ["MDResult", "UncertaintyWatchdog", "run_md"]
