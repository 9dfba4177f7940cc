"""The `mqar` command line: one typer app; each command lives in `mqar/commands/<name>.py`.

Register a command here with `app.command(name)(user_errors(function))`, or a group with `app.add_typer`.
"""

from __future__ import annotations

from typing import Optional

import typer

import mqar
from mqar.commands import user_errors

app = typer.Typer(
    name="mqar",
    help="MQAR: generate recall tasks, train Based/ReBased/attention models, sweep grids, report figures.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"mqar {mqar.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """MQAR: multi-query associative recall for efficient language models."""


from mqar.commands.generate import generate  # noqa: E402

app.command("generate")(user_errors(generate))

from mqar.commands.bench import bench_app  # noqa: E402

app.add_typer(bench_app, name="bench")

from mqar.commands.report import report  # noqa: E402
from mqar.commands.figure import figure  # noqa: E402

app.command("report")(user_errors(report))
app.command("figure")(user_errors(figure))

from mqar.commands.sweep import sweep  # noqa: E402
from mqar.commands.results import results_app  # noqa: E402

app.command("sweep")(user_errors(sweep))
app.add_typer(results_app, name="results")

from mqar.commands.train import train  # noqa: E402

app.command("train")(user_errors(train))
