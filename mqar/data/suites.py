"""Named task suites: `tasks/<name>.toml` lists the tasks (seq_len -> kv pairs, variants) of a paper figure.

File layout: top-level `name` and `description`, a `[defaults]` table of TaskSpec fields shared by all tasks, and
one `[[tasks]]` table per task (TaskSpec fields, overriding the defaults). Unknown keys are errors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional

from mqar.config import find_toml, read_toml
from mqar.data.files import save
from mqar.data.generate import generate
from mqar.data.spec import TaskSpec
from mqar.errors import UserError
from mqar.paths import TASKS_DIR, check_writable_folder

SUITE_KEYS = {"name", "description", "defaults", "tasks"}


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    tasks: tuple[TaskSpec, ...]


def suite_path(name_or_path: str | os.PathLike) -> Path:
    """A suite name (`rebased`) resolves to tasks/<name>.toml; anything else is a path."""
    return find_toml(name_or_path, TASKS_DIR, "task suite")


def tasks_from_tables(entries: Iterable[Mapping[str, Any]], defaults: Mapping[str, Any], where: str) -> tuple[TaskSpec, ...]:
    """TaskSpecs from TOML tables of TaskSpec fields, each over `defaults`; errors name `where`."""
    try:
        return tuple(TaskSpec.from_dict({**defaults, **entry}) for entry in entries)
    except UserError as error:
        raise UserError(f"{where}: {error}") from None
    except TypeError as error:  # a required field (seq_len, num_kv_pairs) is missing
        raise UserError(f"{where}: every task needs seq_len and num_kv_pairs ({error})") from None


def load_suite(name_or_path: str | os.PathLike) -> Suite:
    path = suite_path(name_or_path)
    data = read_toml(path)
    unknown = sorted(set(data) - SUITE_KEYS)
    if unknown:
        raise UserError(f"unknown key(s) {', '.join(map(repr, unknown))} in {path}; allowed: {', '.join(sorted(SUITE_KEYS))}")
    entries = data.get("tasks", [])
    if not entries:
        raise UserError(f"{path} lists no [[tasks]]")
    defaults = data.get("defaults", {})
    # Else tasks_from_tables' TypeError would be reported as a missing seq_len.
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise UserError(f"{path}: tasks must be [[tasks]] tables of TaskSpec fields, got tasks = {entries!r}")
    if not isinstance(defaults, dict):
        raise UserError(f"{path}: defaults must be a [defaults] table of TaskSpec fields, got defaults = {defaults!r}")
    tasks = tasks_from_tables(entries, defaults, where=str(path))
    return Suite(name=data.get("name", path.stem), description=data.get("description", ""), tasks=tasks)


def generate_suite(
    suite: Suite,
    out_dir: str | os.PathLike,
    num_examples: int,
    seed: int,
    split: str = "train",
    extension: str = ".parquet",
    on_task: Optional[Callable[[TaskSpec, Path, dict], None]] = None,
    progress: Optional[Callable[[int], None]] = None,
) -> list[Path]:
    """Write one file per task of the suite, `<out_dir>/<suite>-<task name>-<split><extension>`.

    `on_task(spec, path, metadata)` is called as each file is written; `progress(n)` with the examples done over the
    whole suite (tasks before this one included) after each chunk, as `generate` calls it for one task.
    """
    out_dir = Path(out_dir)
    # The file name carries only TaskSpec.name: tasks that differ in another field would overwrite each other.
    names = [f"{suite.name}-{spec.name}-{split}{extension}" for spec in suite.tasks]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise UserError(
                f"tasks {names.index(name) + 1} and {index + 1} of suite {suite.name} would both be written to {name} "
                f"(the file name omits vocab_size, power_a and random_non_queries); put them in separate suites"
            )
    # The probe a single file's save makes (prepare_output_path), once for the folder: before the first task's examples
    check_writable_folder(out_dir, what=f"suite {suite.name} into {out_dir}", flag="folder")
    paths = []
    for index, (spec, name) in enumerate(zip(suite.tasks, names)):
        path = out_dir / name
        task_progress = None
        if progress is not None:
            task_progress = lambda done, before=index * num_examples: progress(before + done)  # noqa: E731
        inputs, labels = generate(spec, num_examples, seed, split=split, progress=task_progress)
        metadata = save(path, inputs, labels, spec, split, seed)
        if on_task is not None:
            on_task(spec, path, metadata)
        paths.append(path)
    return paths
