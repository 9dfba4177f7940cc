"""CLI commands: thin typed shells over library calls. `mqar/cli.py` registers them.

Every command is wrapped by `user_errors`, which turns a `UserError` from the library into one line on
stderr and exit code 2, so bad input never ends in a traceback.
"""

from __future__ import annotations

import functools
import shlex
import sys
from typing import Callable, NoReturn, TypeVar

import typer
from rich.console import Console

from mqar.errors import UserError

F = TypeVar("F", bound=Callable)


def fail(message: str) -> NoReturn:
    """Print `error: message` on stderr and exit with code 2."""
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code=2)


def this_command() -> str:
    """The command line this process runs, as `mqar ...`: the one to run again to resume it."""
    return "mqar " + " ".join(shlex.quote(arg) for arg in sys.argv[1:])


def stop_interrupted(console: Console, counts: str) -> NoReturn:
    """After Ctrl-C stopped a sweep's runs (mqar sweep, mqar figure --run): where it stands and how to resume it, then
    exit code 130, as the shell gives an interrupted command."""
    counts = f"{counts}. " if counts else ""
    console.print(f"[yellow]interrupted[/]: {counts}Every finished run is saved; resume with:\n  {this_command()}")
    raise typer.Exit(code=130)


def user_errors(function: F) -> F:
    """Wrap a command so that a UserError becomes one clear line and exit code 2."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except UserError as error:
            fail(str(error))

    return wrapper  # type: ignore[return-value]
