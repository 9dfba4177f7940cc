"""`mqar generate`: write MQAR datasets (one task, or a whole task suite) to parquet or npz files."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mqar.data import SPLITS, TaskSpec, generate as generate_arrays, generate_suite, load_suite, save
from mqar.data.files import prepare_output_path
from mqar.errors import UserError

# Below this many examples a progress bar only flickers.
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
        total = {"examples": 0, "tokens": 0}

        def report(spec: TaskSpec, path: Path, metadata: dict) -> None:
            total["examples"] += metadata["num_examples"]
            total["tokens"] += metadata["num_examples"] * spec.seq_len
            console.print(f"wrote {path} ({metadata['num_examples']} examples, sha256 {metadata['sha256'][:16]})")

        generate_suite(suite, output, num_examples, seed, split=split, extension=extension, on_task=report)
        seconds = time.perf_counter() - started
        typer.echo(
            f"suite {suite.name}: {len(suite.tasks)} tasks, {total['examples']} examples, {total['tokens']} tokens "
            f"into {output} in {seconds:.2f} s"
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
    if num_examples >= PROGRESS_MIN_EXAMPLES:
        columns = (TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            bar = progress.add_task("generate", total=num_examples)
            inputs, labels = generate_arrays(
                spec, num_examples, seed, split=split, progress=lambda done: progress.update(bar, completed=done)
            )
    else:
        inputs, labels = generate_arrays(spec, num_examples, seed, split=split)
    metadata = save(output, inputs, labels, spec, split, seed)
    seconds = time.perf_counter() - started
    typer.echo(
        f"wrote {output}: {inputs.shape[0]} examples, {inputs.size} tokens, sha256 {metadata['sha256']}, "
        f"{seconds:.2f} s"
    )
