"""`mqar results list|export`: what the store holds, and the runs as a CSV or Parquet table."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from mqar.commands import user_errors
from mqar.errors import UserError
from mqar.paths import DEFAULT_STORE
from mqar.results import export as export_runs, progress_table, status_table
from mqar.sweep.live import format_seconds

results_app = typer.Typer(help="Inspect and export the results store.", no_args_is_help=True)


def list_results(
    store: Path = typer.Option(DEFAULT_STORE, help="Results store (SQLite file)."),
    sweep: Optional[str] = typer.Option(None, help="Only this sweep."),
) -> None:
    """Run counts per sweep and arch by status, with the best validation accuracy so far; then the running runs
    with the epochs they have done and their accuracy so far."""
    table_data = status_table(store, sweep)
    if table_data.empty:
        Console().print(f"{store} holds no runs yet")
        return
    # Without box lines, as the running runs below, so that the numbers fit 80 columns beside a long sweep name:
    # boxed, a sweep such as rebased-table1-lr-check squeezed 'best acc' 0.991 into '0.9' over '91'. A sweep name
    # that does not fit folds; arch names and numbers stay whole.
    table = Table(title=f"runs in {store}", title_justify="left", box=None, pad_edge=False)
    for column in ("sweep", "arch", "done", "failed", "running", "pending", "total", "best acc"):
        table.add_column(column, justify="left" if column in ("sweep", "arch") else "right",
                         no_wrap=column != "sweep", overflow="fold")
    for row in table_data.itertuples(index=False):
        best = "-" if row.best_valid_accuracy != row.best_valid_accuracy else f"{row.best_valid_accuracy:.3f}"
        table.add_row(row.sweep, row.arch, str(row.done), str(row.failed), str(row.running), str(row.pending),
                      str(row.total), best)
    Console().print(table)
    _print_progress(store, sweep)


def _print_progress(store: Path, sweep: Optional[str]) -> None:
    """The running runs, one line each: how many epochs they have done and their accuracy so far."""
    progress = progress_table(store, sweep)
    if progress.empty:
        return
    sweeps = progress["sweep"].fillna("(none)").unique()
    show_sweep = len(sweeps) > 1
    title = "running now" + ("" if show_sweep else f" in {sweeps[0]}")
    table = Table(title=title, title_justify="left", box=None, pad_edge=False)  # fits 80 columns
    columns = (["sweep"] if show_sweep else []) + ["run", "arch", "d", "L", "lr", "seed", "epoch", "acc", "best",
                                                    "time"]
    for column in columns:  # folded, not cut: a run id must stay whole to be usable
        table.add_column(column, justify="left" if column in ("sweep", "run", "arch") else "right", overflow="fold")
    for row in progress.itertuples(index=False):
        started = not pd.isna(row.epoch)
        cells = [
            row.run_id, row.arch, str(row.d_model), str(row.seq_len), f"{row.lr:g}", str(row.seed),
            f"{int(row.epoch) if started else 0}/{row.max_epochs}",
            f"{row.valid_accuracy:.3f}" if started else "-", f"{row.best_valid_accuracy:.3f}" if started else "-",
            format_seconds(row.seconds) if started else "-",
        ]
        table.add_row(*([str(row.sweep)] if show_sweep else []), *cells)
    Console().print(table)


def export(
    csv: Optional[Path] = typer.Option(None, "--csv", help="Write the runs as CSV to this file."),
    parquet: Optional[Path] = typer.Option(None, "--parquet", help="Write the runs as Parquet to this file."),
    store: Path = typer.Option(DEFAULT_STORE, help="Results store (SQLite file)."),
    sweep: Optional[str] = typer.Option(None, help="Only this sweep."),
) -> None:
    """Export one row per (sweep, run): config fields, status, metrics, timings, error, config JSON."""
    if (csv is None) == (parquet is None):
        raise UserError("give exactly one of --csv FILE or --parquet FILE")
    path = export_runs(store, csv or parquet, "csv" if csv is not None else "parquet", sweep=sweep)
    typer.echo(f"wrote {path}")


results_app.command("list")(user_errors(list_results))
results_app.command("export")(user_errors(export))
