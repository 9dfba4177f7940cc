"""`mqar generate`: write MQAR datasets (one task, or a whole task suite) to parquet or npz files."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Callable, Iterator, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mqar.data import SPLITS, TaskSpec, generate as generate_arrays, generate_suite, load_suite, save
from mqar.data.files import prepare_output_path
from mqar.errors import UserError

# Below this many examples (of one file or a whole suite) a progress bar only flickers.
PROGRESS_MIN_EXAMPLES = 50_000

# Options that make one TaskSpec; with --task the suite file sets them.
SPEC_OPTIONS = ("seq_len", "num_kv_pairs", "vocab_size", "power_a", "random_non_queries", "num_passes", "haystack_depth")


def generate(
    ctx: typer.Context,
    output: Path = typer.Option(..., "--output", "-o", help="File (.parquet or .npz) to write; with --task, a folder."),
    num_examples: int = typer.Option(..., "--num-examples", "-n", help="Examples to generate (per task with --task)."),
    seed: int = typer.Option(0, help="Master seed; train, valid and test are disjoint streams of it."),
    split: str = typer.Option("train", help=f"Which stream of the seed: {', '.join(SPLITS)}."),
    seq_len: Optional[int] = typer.Option(None, help="Sequence length (even)."),
    num_kv_pairs: Optional[int] = typer.Option(None, help="Key-value pairs per example (2·kv·(passes + 1) ≤ seq_len)."),
    vocab_size: int = typer.Option(8192, help="Vocabulary: keys from [1, V/2), values from [V/2, V), 0 is filler."),
    power_a: float = typer.Option(0.01, help="Query-gap power law p_i ∝ a·i^(a-1); 1 is uniform."),
    random_non_queries: bool = typer.Option(False, help="Fill non-query positions with random tokens (seeded)."),
    num_passes: int = typer.Option(1, help="Times the key-value context is repeated before the queries."),
    haystack_depth: Optional[float] = typer.Option(
        None, help="Put the key-value block at this depth in [0, 1] of filler, all queries at the end."
    ),
    task: Optional[str] = typer.Option(
        None, help="A task suite (name in tasks/ or a .toml path): write every task of it into the --output folder."
    ),
    file_format_name: str = typer.Option(
        "parquet", "--format", help="With --task: file format of each task's file, parquet or npz."
    ),
) -> None:
    """Generate MQAR examples, seeded and exactly in Zoology's layout, and write them to files."""
    console = Console(stderr=True, soft_wrap=True)
    started = time.perf_counter()
    if split not in SPLITS:
        raise UserError(f"unknown --split {split!r}; use one of {', '.join(SPLITS)}")
    if task is not None:
        # Any spec option given, even one with a default (--vocab-size 64), would otherwise be silently ignored.
        # (By the source's name: typer's vendored click has its own ParameterSource enum.)
        given = [name for name in SPEC_OPTIONS if ctx.get_parameter_source(name).name != "DEFAULT"]
        if given:
            options = "/".join(f"--{name.replace('_', '-')}" for name in given)
            raise UserError(f"--task takes its tasks from the suite file; drop {options}")
        extension = f".{file_format_name.lower().lstrip('.')}"
        if extension not in (".parquet", ".npz"):
            raise UserError(f"unknown --format {file_format_name!r}; use parquet or npz")
        suite = load_suite(task)
        examples = tokens = 0
        task_started = time.perf_counter()

        def report(spec: TaskSpec, path: Path, metadata: dict) -> None:
            nonlocal examples, tokens, task_started
            examples += metadata["num_examples"]
            tokens += metadata["num_examples"] * spec.seq_len
            line = wrote_line(path, metadata["num_examples"], metadata["num_examples"] * spec.seq_len,
                              metadata["sha256"], time.perf_counter() - task_started)
            console.print(line, markup=False, highlight=False)  # above the bar; markup off: a path may hold [ ]
            task_started = time.perf_counter()

        with progress_bar(console, len(suite.tasks) * num_examples, suite.name) as progress:
            paths = generate_suite(suite, output, num_examples, seed, split=split, extension=extension,
                                   on_task=report, progress=progress)
        seconds = time.perf_counter() - started
        # No suite-wide digest: each file's sha256 (above, and in the file, checked by `load`) is what identifies it.
        typer.echo(
            f"suite {suite.name}: {len(suite.tasks)} tasks, {examples} examples, {tokens} tokens, "
            f"{len(paths)} files in {output}, {seconds:.2f} s"
        )
        return

    if seq_len is None or num_kv_pairs is None:
        raise UserError("give --seq-len and --num-kv-pairs (or --task SUITE for a whole suite)")
    spec = TaskSpec(
        seq_len=seq_len,
        num_kv_pairs=num_kv_pairs,
        vocab_size=vocab_size,
        power_a=power_a,
        random_non_queries=random_non_queries,
        num_passes=num_passes,
        haystack_depth=haystack_depth,
    )
    prepare_output_path(output)  # fail on a bad extension or folder before spending time generating
    with progress_bar(console, num_examples) as progress:
        inputs, labels = generate_arrays(spec, num_examples, seed, split=split, progress=progress)
    metadata = save(output, inputs, labels, spec, split, seed)
    typer.echo(wrote_line(output, inputs.shape[0], inputs.size, metadata["sha256"], time.perf_counter() - started))


def wrote_line(path: Path, examples: int, tokens: int, sha256: str, seconds: float) -> str:
    """The line for each file written, by one task or a suite: the whole sha256, to compare with the file's."""
    return f"wrote {path}: {examples} examples, {tokens} tokens, sha256 {sha256}, {seconds:.2f} s"


@contextlib.contextmanager
def progress_bar(console: Console, total: int, label: str = "") -> Iterator[Optional[Callable[[int], None]]]:
    """A transient bar of the examples generated, as `progress(done)` for `generate` or `generate_suite`; None
    (no bar) for a job of fewer than PROGRESS_MIN_EXAMPLES examples."""
    if total < PROGRESS_MIN_EXAMPLES:
        yield None
        return
    columns = (TextColumn(f"generating {label}".strip()), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task("generate", total=total)
        yield lambda done: progress.update(bar, completed=done)
