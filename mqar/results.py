"""Read the results store into pandas: what reports, notebooks and `mqar results` use.

    from mqar.results import load, load_epochs
    runs = load("results/mqar.db", sweep="quick")     # one row per (sweep, run)
    curves = load_epochs("results/mqar.db", runs.run_id)
    running = progress_table("results/mqar.db")         # running runs: last epoch, accuracy so far

Reading never writes: a missing store is a UserError, not a new empty file; an empty file (as `touch` makes) is a
store with no runs, as it is to `mqar sweep`, which makes its tables there.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Iterable, Optional

import pandas as pd

from mqar.errors import UserError

RUN_COLUMNS = (
    "sweep", "run_id", "status", "arch", "d_model", "seq_len", "num_kv_pairs", "vocab_size", "lr", "seed",
    "best_valid_accuracy", "best_epoch", "test_accuracy", "final_valid_accuracy", "epochs", "stopped_early",
    "seconds", "tokens_per_s", "num_params", "peak_memory_bytes", "device", "host", "attempts", "error",
    "started_at", "ended_at", "versions", "config",
)
EPOCH_COLUMNS = ("run_id", "epoch", "train_loss", "valid_loss", "valid_accuracy", "lr", "seconds")
EXPORT_FORMATS = ("csv", "parquet")


def _connect(store: str | os.PathLike) -> sqlite3.Connection:
    path = Path(store)
    if not path.is_file():
        raise UserError(f"no results store at {path}; run `mqar sweep` first or pass --store PATH")
    from mqar.sweep.store import empty_store_connection, has_no_tables

    try:
        conn = sqlite3.connect(path, timeout=60)
        if not has_no_tables(conn, path):
            return conn
    except sqlite3.DatabaseError as error:
        raise UserError(f"{path} is not an mqar results store ({error})") from None
    # A database with no tables (a 0-byte file, as `touch` makes) is a store with no runs yet, as to `mqar sweep`,
    # which makes its tables there. A reader must not write them: it reads an empty store held in memory.
    conn.close()
    return empty_store_connection()


def load(store: str | os.PathLike, sweep: Optional[str] = None, status: Optional[str] = None) -> pd.DataFrame:
    """One row per (sweep, run) with the run's config fields, status, metrics, timings and config JSON.

    `sweep` keeps only that sweep's runs (an unknown name is a UserError); `status` only runs in that status
    (filtered in the query: the live view asks for the few running runs of a large grid twice a second). Runs
    stored without a sweep (e.g. by `record_result` alone) appear with sweep = None when no sweep is asked for.
    """
    conn = _connect(store)
    try:
        if sweep is not None:
            known = [row[0] for row in conn.execute("SELECT name FROM sweeps")]
            if sweep not in known:
                raise UserError(
                    f"no sweep named {sweep!r} in {store}; known: {', '.join(sorted(known)) or 'none'}"
                )
        run_fields = ", ".join(f"r.{column}" for column in RUN_COLUMNS[2:])
        query = (
            f"SELECT s.sweep AS sweep, r.id AS run_id, {run_fields} "
            "FROM runs r LEFT JOIN sweep_runs s ON s.run_id = r.id"
        )
        conditions = [(column, value) for column, value in (("s.sweep", sweep), ("r.status", status))
                      if value is not None]
        if conditions:
            query += " WHERE " + " AND ".join(f"{column} = ?" for column, _ in conditions)
        params = tuple(value for _, value in conditions)
        query += " ORDER BY s.sweep, s.position, r.id"
        frame = pd.read_sql_query(query, conn, params=params)
    finally:
        conn.close()
    frame["stopped_early"] = frame["stopped_early"].map(lambda value: None if pd.isna(value) else bool(value))
    return frame[list(RUN_COLUMNS)]


def load_epochs(store: str | os.PathLike, run_ids: Optional[Iterable[str]] = None) -> pd.DataFrame:
    """The learning curves: one row per (run_id, epoch), all runs or only `run_ids`."""
    conn = _connect(store)
    try:
        query = f"SELECT {', '.join(EPOCH_COLUMNS)} FROM epochs"
        params: list = []
        if run_ids is not None:
            ids = list(run_ids)
            if not ids:
                return pd.DataFrame(columns=list(EPOCH_COLUMNS))
            query = f"WITH wanted (id) AS (VALUES {', '.join('(?)' for _ in ids)}) {query} WHERE run_id IN wanted"
            params = ids
        query += " ORDER BY run_id, epoch"
        return pd.read_sql_query(query, conn, params=params)
    finally:
        conn.close()


def status_table(store: str | os.PathLike, sweep: Optional[str] = None) -> pd.DataFrame:
    """Run counts per (sweep, arch) and status, with the best validation accuracy so far."""
    runs = load(store, sweep)
    if runs.empty:
        return pd.DataFrame(columns=["sweep", "arch", "pending", "running", "done", "failed", "total", "best_valid_accuracy"])
    runs["sweep"] = runs["sweep"].fillna("(none)")
    counts = runs.pivot_table(index=["sweep", "arch"], columns="status", values="run_id", aggfunc="count", fill_value=0)
    for status in ("pending", "running", "done", "failed"):
        if status not in counts:
            counts[status] = 0
    counts = counts[["pending", "running", "done", "failed"]]
    counts["total"] = counts.sum(axis=1)
    counts["best_valid_accuracy"] = runs.groupby(["sweep", "arch"])["best_valid_accuracy"].max()
    return counts.reset_index()


PROGRESS_COLUMNS = ("sweep", "run_id", "arch", "d_model", "seq_len", "num_kv_pairs", "lr", "seed", "epoch",
                    "max_epochs", "valid_accuracy", "best_valid_accuracy", "seconds", "host", "attempts")


def progress_table(store: str | os.PathLike, sweep: Optional[str] = None) -> pd.DataFrame:
    """The running runs and how far each has come: its last stored epoch (of the recipe's maximum), that epoch's
    validation accuracy, the best so far and the run's seconds at that epoch. Epoch columns are empty for a run
    that has not finished an epoch yet (NaN).
    """
    running = load(store, sweep, status="running")
    if running.empty:
        return pd.DataFrame(columns=list(PROGRESS_COLUMNS))
    running["max_epochs"] = [json.loads(config)["recipe"]["epochs"] for config in running["config"]]
    epochs = load_epochs(store, running["run_id"].unique())
    running = running.drop(columns=["best_valid_accuracy", "seconds"])
    if epochs.empty:
        for column in ("epoch", "valid_accuracy", "best_valid_accuracy", "seconds"):
            running[column] = float("nan")  # as the join leaves a run without epochs below
    else:
        best = epochs.groupby("run_id")["valid_accuracy"].max().rename("best_valid_accuracy")
        last = epochs.sort_values("epoch").groupby("run_id").tail(1).set_index("run_id")
        running = running.join(last[["epoch", "valid_accuracy", "seconds"]], on="run_id").join(best, on="run_id")
    return running[list(PROGRESS_COLUMNS)].reset_index(drop=True)


def export(store: str | os.PathLike, path: str | os.PathLike, fmt: Optional[str] = None,
           sweep: Optional[str] = None) -> Path:
    """Write `load(store, sweep)` to `path` as csv or parquet (from `fmt`, else the file's extension)."""
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".").lower()
    if fmt not in EXPORT_FORMATS:
        raise UserError(f"cannot export to {fmt!r}; use --csv FILE or --parquet FILE (a .csv or .parquet name)")
    runs = load(store, sweep)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "csv":
            runs.to_csv(path, index=False)
        else:
            runs.to_parquet(path, index=False)
    except OSError as error:
        raise UserError(f"cannot write {path} ({error.strerror}); choose a writable path") from None
    return path
