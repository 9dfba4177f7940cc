"""CLI commands: thin typed shells over library calls. `mqar/cli.py` registers them.

Every command is wrapped by `user_errors`, which turns a `UserError` from the library into one line on
stderr and exit code 2, so bad input never ends in a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import shlex
import signal
import sys
from typing import Callable, Iterator, NoReturn, TypeVar

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


def stop_interrupted(console: Console, counts: str, signum: int = signal.SIGINT) -> NoReturn:
    """After Ctrl-C (or SIGTERM, see `sigterm_as_ctrl_c`) stopped a sweep's runs (mqar sweep, mqar figure --run):
    where it stands and how to resume it, then exit code 128 + the signal's number (130, 143), as the shell gives a
    command the signal ended."""
    counts = f"{counts}. " if counts else ""
    console.print(f"[yellow]interrupted[/]: {counts}Every finished run is saved; resume with:\n  {this_command()}")
    raise typer.Exit(code=128 + signum)


class _Interrupts:
    """Which signal stopped the command: SIGINT unless a SIGTERM came."""

    signum: int = signal.SIGINT


@contextlib.contextmanager
def sigterm_as_ctrl_c() -> Iterator[_Interrupts]:
    """Within it SIGTERM stops a command as Ctrl-C does (mqar sweep, figure --run, train): `timeout`, SLURM's time
    limit, `kill PID` and `docker stop` send it, and by default it killed a sweep's driver at once (its workers with
    it), with no hand-back of the unfinished runs and no resume line. It raises KeyboardInterrupt instead, which the
    executors catch; the yielded object's `signum` then says SIGTERM, for the exit code (143). Set here, after Ray's
    init, which installs its own."""
    interrupts = _Interrupts()

    def interrupt(signum, frame) -> None:
        interrupts.signum = signal.SIGTERM
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield interrupts
    finally:
        signal.signal(signal.SIGTERM, previous)


def user_errors(function: F) -> F:
    """Wrap a command so that a UserError becomes one clear line and exit code 2."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except UserError as error:
            fail(str(error))

    return wrapper  # type: ignore[return-value]
