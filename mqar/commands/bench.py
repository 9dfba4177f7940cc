"""`mqar bench data|kernels|layer-norm|...`: benchmarks that print a table; JSON + markdown under results/bench/."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markdown import Markdown

from mqar.commands import user_errors
from mqar.paths import RESULTS_DIR

bench_app = typer.Typer(help="Benchmarks, side by side with their baselines and anchors.", no_args_is_help=True)
BENCH_DIR = RESULTS_DIR / "bench"
QUICK_DIR = BENCH_DIR / "quick"  # smoke runs (--quick) without --out: never over the committed measurements
# In parentheses: typer's help reads "[default: ...]" as rich markup and drops it.
OUT_DEFAULTS = "(default: results/bench; with --quick, results/bench/quick)"


def _out_dir(out: Optional[Path], quick: bool) -> Path:
    return out if out is not None else (QUICK_DIR if quick else BENCH_DIR)


@bench_app.command("data")
@user_errors
def bench_data(
    out: Optional[Path] = typer.Option(
        None, help=f"Folder for data.json and data.md {OUT_DEFAULTS}."),
    quick: bool = typer.Option(False, help="A 20× smaller run (a smoke test, not a measurement)."),
) -> None:
    """Generator speed and peak memory vs the per-example loop baseline, at (512, 128, 100k) and (2048, 512, 20k)."""
    from mqar.bench.data import markdown, run

    out = _out_dir(out, quick)
    run(out, quick=quick)
    Console().print(Markdown((out / "data.md").read_text()))


@bench_app.command("kernels")
@user_errors
def bench_kernels(
    out: Optional[Path] = typer.Option(
        None, help=f"Folder for kernels.json and kernels.md {OUT_DEFAULTS}."),
    quick: bool = typer.Option(False, help="Two small shapes only (a smoke test, not a measurement)."),
    method: list[str] = typer.Option([], help="Only these methods (repeatable), e.g. 'ours auto rebased', 'sdpa'."),
    rep_ms: int = typer.Option(100, help="Milliseconds of timed repetitions per measurement (do_bench rep)."),
) -> None:
    """Forward and forward+backward ms of mqar's Triton kernels vs FLA and torch SDPA (flash), on the GPU."""
    from mqar.bench.kernels import run

    out = _out_dir(out, quick)
    run(out, quick=quick, names=list(method) or None, rep_ms=rep_ms)
    Console().print(Markdown((out / "kernels.md").read_text()))


@bench_app.command("layer-norm")
@user_errors
def bench_layer_norm(
    out: Optional[Path] = typer.Option(
        None, help=f"Folder for layer-norm.json and layer-norm.md {OUT_DEFAULTS}."),
    quick: bool = typer.Option(False, help="Two small shapes only (a smoke test, not a measurement)."),
    rep_ms: int = typer.Option(100, help="Milliseconds of timed repetitions per measurement (do_bench rep)."),
) -> None:
    """Forward and forward+backward ms of mqar's Triton LayerNorm vs torch's (fp32, bf16, autocast), on the GPU."""
    from mqar.bench.layer_norm import run

    out = _out_dir(out, quick)
    run(out, quick=quick, rep_ms=rep_ms)
    Console().print(Markdown((out / "layer-norm.md").read_text()))


@bench_app.command("train")
@user_errors
def bench_train(
    cases: str = typer.Option(
        "rebased:128:512,based:128:512,attention:128:512,rebased:128:2048",
        help="Comma-separated arch:d_model:seq_len (kv pairs from the Figure-1 grid: L/4 from 256 on, 16 at 128).",
    ),
    device: str = typer.Option("auto", help="auto (CUDA if available), cpu, cuda or cuda:N."),
    batch_size: Optional[int] = typer.Option(None, help="Examples per optimiser step (default 512; with --quick, 8)."),
    precision: str = typer.Option("fp32", help="mqar path's precision: fp32 or bf16 (the plain path is fp32)."),
    warmup: Optional[int] = typer.Option(None, help="Untimed steps first (default 3; with --quick, 1)."),
    steps: Optional[int] = typer.Option(None, help="Timed steps (default 10; with --quick, 2)."),
    seconds: Optional[float] = typer.Option(
        None, help="Time steps for this many seconds instead of --steps (packed processes then end together)."),
    start_at: Optional[float] = typer.Option(
        None, help="Unix time at which the first timed window starts, after the warm-up: processes started "
                   "together time the same interval (see results/bench/mps-packing/run.sh)."),
    paths: str = typer.Option(
        "mqar,eager,plain", help="Which training paths: mqar (CUDA graph), eager, compiled (mqar + --compile), plain."
    ),
    out: Optional[Path] = typer.Option(
        None, help=f"Folder for train.json and train.md (train-cpu.* on the CPU) {OUT_DEFAULTS}."),
    quick: bool = typer.Option(
        False, help="Batch 8, 1 warm-up and 2 timed steps unless the flags say otherwise (a smoke test, not a "
                    "measurement)."),
) -> None:
    """Training tokens/s of mqar's step beside the plain path (DataLoader, full logits, fp32), side by side."""
    from mqar.bench.train import markdown, parse_case, run

    parsed = tuple(parse_case(case) for case in cases.split(",") if case.strip())

    def pick(given: Optional[int], default: int, quick_default: int) -> int:
        return given if given is not None else (quick_default if quick else default)

    report = run(parsed, device=device, batch_size=pick(batch_size, 512, 8), precision=precision,
                 warmup=pick(warmup, 3, 1), steps=pick(steps, 10, 2), seconds=seconds, start_at=start_at,
                 paths=tuple(p.strip() for p in paths.split(",") if p.strip()), out_dir=_out_dir(out, quick))
    Console().print(Markdown(markdown(report)))
