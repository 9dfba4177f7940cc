"""Sweeps: a grid of runs (SweepSpec), the results store (SQLite), and executors (local processes, Ray).

    from mqar.sweep import load_sweep_spec, run_sweep
    spec = load_sweep_spec("quick")                     # sweeps/quick.toml, or a path
    summary = run_sweep(spec, store="results/mqar.db")  # resumable: call again to finish what is left
"""

from mqar.sweep.runner import BACKENDS, SweepSummary, run_sweep
from mqar.sweep.spec import SweepSpec, load_sweep_spec, preset_names, tasks_from_lists
from mqar.sweep.store import SCHEMA_VERSION, Store

__all__ = [
    "BACKENDS",
    "SCHEMA_VERSION",
    "Store",
    "SweepSpec",
    "SweepSummary",
    "load_sweep_spec",
    "preset_names",
    "run_sweep",
    "tasks_from_lists",
]
