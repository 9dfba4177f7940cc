"""`mqar report`: accuracy vs model dimension (or state size), learning curves, tables and missing runs from the
results store. A thin shell over `mqar.report.report`."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Sequence, TypeVar

import typer
from rich.console import Console

from mqar.errors import UserError
from mqar.paths import DEFAULT_STORE, RESULTS_DIR
from mqar.report.aggregate import METRICS
from mqar.report.build import PANEL_BY, Report, report as build_reports, unreported_sweeps
from mqar.report.plots import X_AXES
from mqar.report.tables import compact, missing_table, to_rich

DEFAULT_OUT = RESULTS_DIR / "figures"
T = TypeVar("T")


def parse_list(text: Optional[str], flag: str, convert: Callable[[str], T] = str) -> Optional[list[T]]:
    """'a,b,c' -> ['a', 'b', 'c'] (converted); None stays None; a malformed item is a UserError naming the flag."""
    if text is None:
        return None
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise UserError(f"{flag} is empty; give a comma-separated list, e.g. {flag} 64,128")
    try:
        return [convert(item) for item in items]
    except ValueError:
        raise UserError(f"cannot read {flag} {text!r}; give a comma-separated list, e.g. {flag} 64,128") from None


def print_report(report: Report, console: Console, max_missing_rows: int = 40) -> None:
    """The numbers as a rich table, the missing runs (first rows), the notes and the files written."""
    table, constants = compact(report.table)
    fixed = "".join(f", {column} {value}" for column, value in constants.items())
    console.print(to_rich(table, title=f"{report.name}: {len(table)} points{fixed}"))
    if report.partial:
        missing, constants = compact(missing_table(report.missing))
        fixed = "".join(f", {column} {value}" for column, value in constants.items())
        shown = missing.head(max_missing_rows)
        more = f" (first {len(shown)} of {len(missing)})" if len(missing) > len(shown) else ""
        console.print(to_rich(shown, title=f"{report.name}: missing runs{more}{fixed}"))
    for note in report.notes:
        console.print(f"[bold red]{note}[/]")
    console.print("wrote " + ", ".join(str(path) for path in report.files))


def check_choice(value: str, choices: Sequence[str], flag: str) -> str:
    if value not in choices:
        raise UserError(f"unknown {flag} {value!r}; choose one of {', '.join(choices)}")
    return value


def report(
    store: Path = typer.Option(DEFAULT_STORE, help="The results store to read (written by `mqar sweep`)."),
    sweep: Optional[str] = typer.Option(None, help="Report only this sweep (default: one report per sweep)."),
    archs: Optional[str] = typer.Option(None, "--archs", "--arch", help="Only these archs, e.g. based,rebased."),
    seq_lens: Optional[str] = typer.Option(None, "--seq-lens", "--seq-len", help="Only these sequence lengths."),
    num_kv_pairs: Optional[str] = typer.Option(None, "--num-kv-pairs", help="Only these kv-pair counts."),
    d_models: Optional[str] = typer.Option(None, "--d-models", "--d-model", help="Only these model dimensions."),
    metric: str = typer.Option(
        "test", help="test: test accuracy at the best-validation epoch; best-valid: best validation accuracy over "
        "epochs (the papers' convention). Either way the lr is chosen by the seed-mean best validation accuracy."
    ),
    x_axis: str = typer.Option("d-model", "--x", help="x axis: d-model, or state-size (recurrent state per sequence in scalars; formulas per arch in "
        "mqar/report/state_size.py)."),
    panel_by: str = typer.Option("seq-len", help="Order and title panels by seq-len or num-kv-pairs."),
    curves: bool = typer.Option(False, "--curves", help="Also draw learning curves of the runs behind each point."),
    out: Path = typer.Option(DEFAULT_OUT, help="Folder for the PNG/PDF figures and the .md/.csv tables."),
) -> None:
    # One paragraph per line in the docstring: typer's help keeps its line breaks.
    """Accuracy against model dimension: one panel per task, one line per arch, and tables.

    Each point is the mean over seeds at the best lr, with std error bars; the tables give the numbers and the runs still missing.
    """
    check_choice(metric, list(METRICS), "--metric")
    check_choice(x_axis, list(X_AXES), "--x")
    check_choice(panel_by, list(PANEL_BY), "--panel-by")
    reports = build_reports(
        store, out_dir=out, sweep=sweep, archs=parse_list(archs, "--archs"),
        seq_lens=parse_list(seq_lens, "--seq-lens", int), num_kv_pairs=parse_list(num_kv_pairs, "--num-kv-pairs", int),
        d_models=parse_list(d_models, "--d-models", int), metric=metric, x_axis=x_axis, panel_by=panel_by,
        curves=curves,
    )
    console = Console(soft_wrap=True)
    for one in reports:
        print_report(one, console)
    if sweep is None:
        for name, counts in unreported_sweeps(store, [one.name for one in reports]).items():
            console.print(f"[yellow]not reported[/]: {name} has no finished run yet ({counts})")
