"""The sweep's live view: runs done / running / failed / left, an ETA, and the best accuracy so far per arch × width.

It only reads the store, so it shows the work of every process writing there (other workers, other sweeps of the
same runs). On a terminal it is a rich Live panel refreshed in place, with the running runs' epochs; elsewhere (logs,
CI, pipes) it prints one line per run as it finishes and, every few minutes while runs are going, one status line
with their epochs, so a log file tells the same story and a long run is not silent.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from typing import Optional, TextIO

import pandas as pd

from mqar.sweep.store import Store

STATUS_EVERY_S = 300.0  # log mode: how often a status line is printed while runs are going
MAX_RUNNING_SHOWN = 12  # live panel: rows of the running-runs table


class SweepView:
    """Poll the store and show the sweep's progress. Use as a context manager; call `refresh()` periodically."""

    def __init__(self, store: Store, sweep: str, *, live: Optional[bool] = None, stream: TextIO = sys.stdout,
                 title: str = "") -> None:
        self.store = store
        self.sweep = sweep
        self.stream = stream
        self.live = stream.isatty() if live is None else live
        self.title = title or f"sweep {sweep}"
        self.started = time.monotonic()
        self.finished_at_start: Optional[int] = None
        self._seen_finished: set[str] = set()
        self._live = None
        self._last_status = time.monotonic()

    # Data -----------------------------------------------------------------------------------------------
    def _rows(self):
        return self.store.query(
            "SELECT r.id, r.status, r.arch, r.d_model, r.seq_len, r.num_kv_pairs, r.lr, r.seed, "
            "r.best_valid_accuracy, r.seconds, r.error FROM sweep_runs s JOIN runs r ON r.id = s.run_id "
            "WHERE s.sweep = ? ORDER BY s.position",
            (self.sweep,),
        )

    def _running_progress(self) -> list[dict]:
        """For each running run: what it is, its last stored epoch (None before the first) and that epoch's accuracy."""
        from mqar.results import progress_table

        return [
            {"run": f"{row.arch} d={row.d_model} L={row.seq_len} lr={row.lr:g} seed={row.seed}",
             "epoch": None if pd.isna(row.epoch) else int(row.epoch), "max_epochs": row.max_epochs,
             "valid_accuracy": None if pd.isna(row.valid_accuracy) else float(row.valid_accuracy),
             "seconds": None if pd.isna(row.seconds) else float(row.seconds)}
            for row in progress_table(self.store.path, self.sweep).itertuples(index=False)
        ]

    def snapshot(self) -> dict:
        rows = self._rows()
        counts = defaultdict(int)
        best: dict[tuple[str, int], float] = {}
        for row in rows:
            counts[row["status"]] += 1
            accuracy = row["best_valid_accuracy"]
            if row["status"] == "done" and accuracy is not None:
                key = (row["arch"], row["d_model"])
                best[key] = max(best.get(key, 0.0), accuracy)
        finished = counts["done"] + counts["failed"]
        if self.finished_at_start is None:
            self.finished_at_start = finished
        finished_now = finished - self.finished_at_start
        left = counts["pending"] + counts["running"]
        elapsed = time.monotonic() - self.started
        running = self._running_progress() if counts["running"] else []
        finished_seconds = [row["seconds"] for row in rows if row["status"] == "done" and row["seconds"]]
        eta = estimate_eta(running, counts["pending"], finished_seconds)
        return {"rows": rows, "counts": dict(counts), "best": best, "total": len(rows), "eta_s": eta,
                "eta_rough": not finished_seconds, "elapsed_s": elapsed, "finished_now": finished_now,
                "running": running}

    # Rendering ------------------------------------------------------------------------------------------
    def _render(self, snap: dict):
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        counts = snap["counts"]
        line = Text.assemble(
            (f"{self.title}: ", "bold"),
            (f"{counts.get('done', 0)} done", "green"), "  ",
            (f"{counts.get('running', 0)} running", "cyan"), "  ",
            (f"{counts.get('failed', 0)} failed", "red"), "  ",
            f"{counts.get('pending', 0)} left of {snap['total']}", "  ",
            f"elapsed {format_seconds(snap['elapsed_s'])}", "  ",
            f"ETA {format_eta(snap)}",
        )
        table = Table(box=None)
        widths = sorted({d for _, d in snap["best"]})
        archs = sorted({a for a, _ in snap["best"]})
        table.add_column("arch")
        for width in widths:
            table.add_column(f"d={width}", justify="right")
        for arch in archs:
            table.add_row(arch, *(f"{snap['best'][(arch, w)]:.3f}" if (arch, w) in snap["best"] else "-" for w in widths))
        parts = [line]
        if archs:
            parts += [Text("best validation accuracy so far:", style="italic"), table]
        if snap["running"]:
            running = Table(box=None)
            for column, justify in (("running", "left"), ("epoch", "right"), ("acc", "right")):
                running.add_column(column, justify=justify)
            for entry in snap["running"][:MAX_RUNNING_SHOWN]:
                running.add_row(entry["run"], f"{entry['epoch'] or 0}/{entry['max_epochs']}",
                                "-" if entry["valid_accuracy"] is None else f"{entry['valid_accuracy']:.3f}")
            parts.append(running)
        return Group(*parts)

    def _print_finished(self, snap: dict) -> None:
        for row in snap["rows"]:
            if row["status"] not in ("done", "failed") or row["id"] in self._seen_finished:
                continue
            self._seen_finished.add(row["id"])
            progress = f"[{len(self._seen_finished)}/{snap['total']}]"
            what = f"{row['arch']} d={row['d_model']} L={row['seq_len']} kv={row['num_kv_pairs']} lr={row['lr']:g} seed={row['seed']}"
            if row["status"] == "done":
                outcome = f"acc {row['best_valid_accuracy']:.3f} in {format_seconds(row['seconds'] or 0)}"
            else:
                last_line = (row["error"] or "").strip().splitlines()[-1:] or ["?"]
                outcome = f"FAILED: {last_line[0][:160]}"
            print(f"{progress} {row['id']} {what}: {outcome}", file=self.stream, flush=True)

    def _print_status(self, snap: dict) -> None:
        """Log mode, every STATUS_EVERY_S while runs are going: counts and how far the running runs have come."""
        if not snap["running"] or time.monotonic() - self._last_status < STATUS_EVERY_S:
            return
        self._last_status = time.monotonic()
        counts = snap["counts"]
        epochs = sorted(entry["epoch"] or 0 for entry in snap["running"])
        maxima = sorted({entry["max_epochs"] for entry in snap["running"]})
        span = f"{epochs[0]}" if epochs[0] == epochs[-1] else f"{epochs[0]}-{epochs[-1]}"
        print(f"[status] {counts.get('done', 0)} done, {counts.get('running', 0)} running (epoch {span} of "
              f"{'/'.join(map(str, maxima))}), {counts.get('failed', 0)} failed, {counts.get('pending', 0)} left; "
              f"elapsed {format_seconds(snap['elapsed_s'])}, ETA {format_eta(snap)}", file=self.stream,
              flush=True)

    def refresh(self) -> dict:
        first = self.finished_at_start is None
        snap = self.snapshot()
        if first:  # runs finished before this session are not news
            self._seen_finished = {row["id"] for row in snap["rows"] if row["status"] in ("done", "failed")}
        if self._live is not None:
            self._live.update(self._render(snap))
        elif not self.live:
            self._print_finished(snap)
            self._print_status(snap)
        return snap

    def __enter__(self) -> "SweepView":
        if self.live:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(console=Console(file=self.stream), refresh_per_second=2, transient=False)
            self._live.__enter__()
        self.refresh()
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.refresh()
        finally:
            if self._live is not None:
                self._live.__exit__(*exc)
                self._live = None


def estimate_eta(running: list[dict], pending: int, finished_seconds: list[float]) -> Optional[float]:
    """Seconds until the sweep ends: the work left, shared by the slots (the running runs).

    A run's length is known for finished runs (`finished_seconds`) and projected for running ones (seconds per
    epoch so far × their maximum epochs); the mean of these is the length of each pending run and of a running
    run without an epoch yet. A running run with epochs has its own projected rest. The work left, divided by the
    slots, is the ETA, but never less than the longest rest of one running run.

    Why not finished runs per elapsed second: the first runs to end are the ones that stop early, and a grid
    packed on 8 slots ends runs in waves: five minutes into the Table-1 sweep of 2026-11-30 that rate said 1h55m,
    and the next 28 runs took 21 minutes. None until some length is known; early stops make the truth shorter.
    """
    timed = [entry for entry in running if entry["epoch"] and entry["seconds"]]
    per_epoch = [entry["seconds"] / entry["epoch"] for entry in timed]
    lengths = list(finished_seconds) + [rate * entry["max_epochs"] for rate, entry in zip(per_epoch, timed)]
    if not lengths:
        return None
    typical = sum(lengths) / len(lengths)
    rests = [rate * (entry["max_epochs"] - entry["epoch"]) for rate, entry in zip(per_epoch, timed)]
    rests += [typical] * (len(running) - len(timed))
    work = sum(rests) + typical * pending
    return max(work / max(len(running), 1), max(rests, default=0.0))


def format_eta(snap: dict) -> str:
    """'12m30s' from finished runs, '~12m30s' from the running runs' epochs (rough), '?' without either."""
    if snap["eta_s"] is None:
        return "?"
    return ("~" if snap["eta_rough"] else "") + format_seconds(snap["eta_s"])


def format_seconds(seconds: Optional[float]) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 48 * 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds / 86400:,.0f} days"
