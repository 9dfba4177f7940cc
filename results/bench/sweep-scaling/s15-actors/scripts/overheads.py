"""Per-run time beyond training in this folder's stores: (ended_at - started_at) - seconds, first wave vs the rest.

Run from the repository root: python results/bench/sweep-scaling/s15-actors/scripts/overheads.py
"""
import sqlite3
from pathlib import Path

FOLDER = Path(__file__).resolve().parent.parent

for db in ["callA/scaling/local-1gpu.db", "callA/scaling/local-2gpu.db", "callB2/scaling/ray-2gpu.db",
           "callD/scaling/local-1gpu.db", "callD/scaling/ray-2gpu.db"]:
    rows = sqlite3.connect(FOLDER / db).execute(
        "select seconds, (julianday(ended_at) - julianday(started_at)) * 86400 from runs order by started_at").fetchall()
    wave = 4 if "1gpu" in db else 8  # runs started at once: GPUs x --runs-per-device 4
    training = sum(seconds for seconds, _ in rows) / len(rows)
    beyond = [span - seconds for seconds, span in rows]
    print(f"{db}: training {training:.2f} s a run; beyond training: first {wave} {sum(beyond[:wave]) / wave:.2f} s, "
          f"the rest {sum(beyond[wave:]) / len(beyond[wave:]):.2f} s")
