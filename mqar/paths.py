"""Where the project's data folders are: tasks/, sweeps/ and results/ sit at the repository root.

mqar is meant to be installed editable from its checkout (`pip install -e .`), so the named task suites and
sweep presets are read from the checkout rather than copied into site-packages.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TASKS_DIR = REPO_ROOT / "tasks"
SWEEPS_DIR = REPO_ROOT / "sweeps"
RESULTS_DIR = REPO_ROOT / "results"
DEFAULT_STORE = RESULTS_DIR / "mqar.db"
