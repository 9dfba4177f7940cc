"""`mqar figure NAME`: a paper figure end to end, from its sweep preset to the PNG, with published numbers beside
ours where the paper gives them. A thin shell over `mqar.report.figure`."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from mqar.commands import sigterm_as_ctrl_c, stop_interrupted
from mqar.commands.report import DEFAULT_OUT, check_choice, parse_list, print_report
from mqar.errors import UserError
from mqar.paths import DEFAULT_STORE
from mqar.report.aggregate import METRICS
from mqar.report.build import figure as build_figure, figure_preset
from mqar.report.paper import FIGURES, SCALES


def figure(
    name: str = typer.Argument(..., help=f"Which figure: {', '.join(FIGURES)}."),
    run: bool = typer.Option(False, "--run", help="First train the figure's runs that the store lacks (resumable)."),
    scale: str = typer.Option(
        "full", help="full: the paper's grid; reduced: the documented smaller grid in sweeps/NAME-reduced.toml "
        "(fewer lrs, seeds, examples) for one GPU; the figure says so on its face."
    ),
    store: Path = typer.Option(DEFAULT_STORE, help="The results store to read (and write, with --run)."),
    out: Path = typer.Option(DEFAULT_OUT, help="Folder for the PNG/PDF figure and the .md/.csv tables."),
    metric: Optional[str] = typer.Option(
        None, help="Override the paper's reduction (best-valid for these figures): test or best-valid."
    ),
    curves: bool = typer.Option(False, "--curves", help="Also draw learning curves of the runs behind each point."),
    devices: Optional[str] = typer.Option(None, "--devices", "--device", help="With --run: e.g. cuda:0,cuda:1 or cpu."),
    runs_per_device: int = typer.Option(1, help="With --run: runs packed on each device at once."),
    compile: bool = typer.Option(
        False, "--compile", help="With --run: torch.compile each run's model (faster steps; see mqar sweep --compile)."
    ),
) -> None:
    """Redraw a paper figure from the store: ReBased Figure 1 / Table 1 or Zoology Figure 2."""
    figure_preset(name)  # an unknown name fails before anything else
    check_choice(scale, list(SCALES), "--scale")
    if metric is not None:
        check_choice(metric, list(METRICS), "--metric")
    if runs_per_device < 1:
        raise UserError(f"--runs-per-device must be at least 1, got {runs_per_device}")
    # live=None: the sweep's rich live view on a terminal, one line per finished run otherwise.
    run_options = {"devices": parse_list(devices, "--devices"), "runs_per_device": runs_per_device, "live": None}
    if run:  # an unknown or absent device fails here, before the store is made and the runs registered
        from mqar.sweep.local import resolve_devices

        resolve_devices(run_options["devices"])
    if compile:
        from mqar.sweep.worker import compiled_train_fn

        run_options["train_fn"] = compiled_train_fn()
    with sigterm_as_ctrl_c() if run else contextlib.nullcontext() as interrupts:
        try:
            result = build_figure(name, store, out_dir=out, scale=scale, run=run, metric=metric, curves=curves,
                                  run_options=run_options)
        except KeyboardInterrupt as interrupt:
            if not run:
                raise
            # Ctrl-C (or SIGTERM) during the runs: the sweep's own line, not a figure of what had finished (or 'none
            # of the runs has finished; run ... --run', the command just stopped)
            stop_interrupted(Console(stderr=True, soft_wrap=True), str(interrupt), interrupts.signum)
    print_report(result, Console(soft_wrap=True))
