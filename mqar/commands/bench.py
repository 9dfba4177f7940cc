"""`mqar bench data|kernels|...`: benchmarks that print a table and write JSON + markdown under results/bench/."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markdown import Markdown

from mqar.commands import user_errors
from mqar.paths import RESULTS_DIR

bench_app = typer.Typer(help="Benchmarks, side by side with their baselines and anchors.", no_args_is_help=True)
BENCH_DIR = RESULTS_DIR / "bench"


@bench_app.command("data")
@user_errors
def bench_data(
    out: Path = typer.Option(BENCH_DIR, help="Folder for data.json and data.md."),
    quick: bool = typer.Option(False, help="A 20× smaller run (a smoke test, not a measurement)."),
) -> None:
    """Generator speed and peak memory vs the per-example loop baseline, at (512, 128, 100k) and (2048, 512, 20k)."""
    from mqar.bench.data import markdown, run

    run(out, quick=quick)
    Console().print(Markdown((out / "data.md").read_text()))


@bench_app.command("kernels")
@user_errors
def bench_kernels(
    out: Path = typer.Option(BENCH_DIR, help="Folder for kernels.json and kernels.md."),
    quick: bool = typer.Option(False, help="Two small shapes only (a smoke test, not a measurement)."),
    method: list[str] = typer.Option([], help="Only these methods (repeatable), e.g. 'ours auto rebased', 'sdpa'."),
    rep_ms: int = typer.Option(100, help="Milliseconds of timed repetitions per measurement (do_bench rep)."),
) -> None:
    """Forward and forward+backward ms of mqar's Triton kernels vs FLA and torch SDPA (flash), on the GPU."""
    from mqar.bench.kernels import run

    run(out, quick=quick, names=list(method) or None, rep_ms=rep_ms)
    Console().print(Markdown((out / "kernels.md").read_text()))
