"""SweepSpec: one grid of runs, archs × d_models × tasks × lrs × seeds with one training recipe.

A sweep file (`sweeps/<name>.toml`, or any path) looks like:

    name = "quick"                       # optional: defaults to the file name
    description = "..."                  # optional
    archs = ["attention", "based", "rebased"]
    d_models = [64, 128]
    lrs = [1e-3, 3e-3]
    seeds = [0]                          # optional: [0]
    tasks = "rebased"                    # a task suite (tasks/<name>.toml or a path) ...
    # ... or the tasks inline, one table each:   [[tasks]]  seq_len = 128  num_kv_pairs = 16
    [task]                               # optional: TaskSpec fields set on every task (e.g. vocab_size)
    vocab_size = 8192
    [recipe]                             # optional: Recipe fields (epochs, num_train_examples, batch_size, ...)
    epochs = 64
    [recipe_by_seq_len.512]              # optional: Recipe fields for the tasks of one seq_len (Zoology's Figure 2
    batch_size = 128                     # halves its batch per doubling of the length from 256 on)

Unknown keys are errors. `SweepSpec.expand()` gives the RunConfigs in a fixed order; each run's id is the content
hash of its config, so the same grid always yields the same ids and a sweep resumes by id.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, TypeVar

import numpy as np

from mqar.config import find_toml, is_integer, is_number, read_toml, stable_id
from mqar.data.spec import TaskSpec
from mqar.errors import UserError
from mqar.paths import SWEEPS_DIR
from mqar.runs import Recipe, RunConfig

T = TypeVar("T")

FILE_KEYS = {"name", "description", "archs", "d_models", "lrs", "seeds", "tasks", "task", "recipe", "recipe_by_seq_len"}


@dataclass(frozen=True)
class SweepSpec:
    """A grid of runs. Frozen and validated; `expand()` lists its RunConfigs."""

    name: str
    archs: tuple[str, ...]
    d_models: tuple[int, ...]
    tasks: tuple[TaskSpec, ...]
    lrs: tuple[float, ...]
    seeds: tuple[int, ...] = (0,)
    recipe: Recipe = field(default_factory=Recipe)
    description: str = ""
    # {seq_len: {Recipe field: value}}: what the tasks of that length train with instead of `recipe`'s values.
    recipe_by_seq_len: Mapping[int, Mapping[str, Any]] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        # Lists given in any sequence type become tuples, duplicates dropped (order kept): the grid is a set.
        for name in ("archs", "d_models", "tasks", "lrs", "seeds"):
            values = getattr(self, name)
            # numpy arrays and scalars (np.arange, np.logspace, a DataFrame column) as Python lists and scalars, as
            # TaskSpec takes them: the checks below and the JSON of the runs' ids need Python ints and floats.
            if isinstance(values, np.ndarray):
                values = values.tolist()
            if isinstance(values, Sequence) and not isinstance(values, (str, bytes)):
                values = [value.item() if isinstance(value, np.generic) else value for value in values]
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
                raise UserError(f"sweep {self.name!r}: {name} must be a list, got {values!r}")
            if name == "tasks":  # before the de-duplication below, which needs hashable values (a dict is not)
                for task in values:
                    if not isinstance(task, TaskSpec):
                        raise UserError(f"sweep {self.name!r}: tasks must be TaskSpecs (TaskSpec.from_dict(d) for a "
                                        f"dict), got {task!r}")
            values = tuple(dict.fromkeys(values))
            if not values:
                raise UserError(f"sweep {self.name!r}: {name} is empty; give at least one value")
            object.__setattr__(self, name, values)
        if not self.name or not isinstance(self.name, str):
            raise UserError("a sweep needs a name")
        for lr in self.lrs:
            if not (is_number(lr) and 0 < lr < math.inf):
                raise UserError(f"sweep {self.name!r}: learning rates must be positive finite numbers, got {lr!r}")
        object.__setattr__(self, "lrs", tuple(float(lr) for lr in self.lrs))
        for seed in self.seeds:
            # The store keeps seeds as SQLite INTEGERs (64-bit signed): a larger one overflowed there in a traceback.
            if not (is_integer(seed) and 0 <= seed < 2**63):
                raise UserError(f"sweep {self.name!r}: seeds must be integers from 0 to 2**63 - 1, got {seed!r}")
        if not isinstance(self.recipe, Recipe):  # else expand() and to_dict() fail later on recipe.to_dict()
            raise UserError(f"sweep {self.name!r}: recipe must be a Recipe (Recipe.from_dict(d) for a dict), "
                            f"got {self.recipe!r}")
        object.__setattr__(self, "recipe_by_seq_len", self._checked_recipe_by_seq_len())
        from mqar.models.registry import check_arch  # the registry knows which archs exist and their min width

        for arch in self.archs:
            for d_model in self.d_models:
                check_arch(arch, d_model)

    def _checked_recipe_by_seq_len(self) -> dict[int, dict[str, Any]]:
        """recipe_by_seq_len with int keys (a TOML table's keys are strings), each entry checked: Recipe fields that
        make a valid Recipe over `recipe`, for a seq_len some task has (else a typo would silently do nothing)."""
        where = f"sweep {self.name!r}: recipe_by_seq_len"
        if not isinstance(self.recipe_by_seq_len, Mapping):
            raise UserError(f"{where} must be a table of seq_len = {{Recipe fields}}, e.g. [recipe_by_seq_len.512] "
                            f"batch_size = 128")
        seq_lens = sorted({task.seq_len for task in self.tasks})
        checked: dict[int, dict[str, Any]] = {}
        for key, overrides in self.recipe_by_seq_len.items():
            seq_len = int(key) if isinstance(key, str) and key.isdigit() else key
            if not is_integer(seq_len) or seq_len not in seq_lens:
                raise UserError(f"{where} names seq_len {key!r}, which no task of the sweep has (its seq_lens: "
                                f"{', '.join(map(str, seq_lens))})")
            if not isinstance(overrides, Mapping) or not overrides:
                raise UserError(f"{where}.{seq_len} must be a non-empty table of Recipe fields, e.g. batch_size = 128")
            try:
                Recipe.from_dict({**self.recipe.to_dict(), **overrides})
            except (TypeError, UserError) as error:
                raise UserError(f"{where}.{seq_len}: {error}") from None
            checked[int(seq_len)] = dict(overrides)
        return dict(sorted(checked.items()))

    def recipe_for(self, task: TaskSpec) -> Recipe:
        """The recipe `task`'s runs train with: `recipe`, with recipe_by_seq_len's fields for its length."""
        overrides = self.recipe_by_seq_len.get(task.seq_len)
        return Recipe.from_dict({**self.recipe.to_dict(), **overrides}) if overrides else self.recipe

    # The grid -------------------------------------------------------------------------------------------
    def expand(self) -> list[RunConfig]:
        """All runs, ordered arch, d_model, task, lr, seed (so a partly run sweep has whole cells done first)."""
        return [
            RunConfig(task=task, arch=arch, d_model=d_model, lr=lr, seed=seed, recipe=self.recipe_for(task))
            for arch in self.archs
            for d_model in self.d_models
            for task in self.tasks
            for lr in self.lrs
            for seed in self.seeds
        ]

    @property
    def size(self) -> int:
        return len(self.archs) * len(self.d_models) * len(self.tasks) * len(self.lrs) * len(self.seeds)

    @property
    def grid_id(self) -> str:
        """A content hash of the grid and recipe (not of the name): what makes two sweeps the same runs."""
        grid = self.to_dict()
        grid.pop("name")
        grid.pop("description")
        return stable_id(grid, length=8)

    # Serialisation --------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = {
            "name": self.name,
            "description": self.description,
            "archs": list(self.archs),
            "d_models": list(self.d_models),
            "tasks": [task.to_dict() for task in self.tasks],
            "lrs": list(self.lrs),
            "seeds": list(self.seeds),
            "recipe": self.recipe.to_dict(),
        }
        if self.recipe_by_seq_len:  # only when set: the grid ids of sweeps without it stay what they were
            data["recipe_by_seq_len"] = {str(seq_len): dict(fields)
                                         for seq_len, fields in self.recipe_by_seq_len.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "sweep spec", base_dir: Optional[Path] = None,
                  default_name: Optional[str] = None) -> "SweepSpec":
        """A SweepSpec from the file format above (`tasks` may name a suite; `task` overrides every task)."""
        unknown = sorted(set(data) - FILE_KEYS)
        if unknown:
            raise UserError(f"unknown key(s) {', '.join(map(repr, unknown))} in {where}; allowed: {', '.join(sorted(FILE_KEYS))}")
        missing = [key for key in ("archs", "d_models", "lrs", "tasks") if key not in data]
        if missing:
            raise UserError(f"{where} needs {', '.join(missing)}")
        task_data = data.get("task", {})
        if not isinstance(task_data, Mapping):
            raise UserError(f"{where}: task must be a table of TaskSpec fields for every task, e.g. [task] vocab_size = 8192")
        task_overrides = dict(task_data)
        tasks = resolve_tasks(data["tasks"], task_overrides, where=where, base_dir=base_dir)
        recipe_data = data.get("recipe", {})
        if not isinstance(recipe_data, Mapping):
            raise UserError(f"{where}: recipe must be a table of Recipe fields")
        try:
            recipe = Recipe.from_dict(recipe_data)
        except TypeError as error:
            raise UserError(f"{where}: bad recipe ({error})") from None
        return cls(
            name=str(data.get("name") or default_name or "sweep"),
            description=str(data.get("description", "")),
            archs=_as_list(data["archs"], "archs", where),
            d_models=_as_list(data["d_models"], "d_models", where),
            tasks=tasks,
            lrs=_as_list(data["lrs"], "lrs", where),
            seeds=_as_list(data.get("seeds", [0]), "seeds", where),
            recipe=recipe,
            recipe_by_seq_len=data.get("recipe_by_seq_len", {}),
        )

    # Flags override the file ----------------------------------------------------------------------------
    def with_overrides(
        self,
        *,
        name: Optional[str] = None,
        archs: Optional[Sequence[str]] = None,
        d_models: Optional[Sequence[int]] = None,
        tasks: Optional[Sequence[TaskSpec]] = None,
        task_overrides: Optional[Mapping[str, Any]] = None,
        lrs: Optional[Sequence[float]] = None,
        seeds: Optional[Sequence[int]] = None,
        recipe: Optional[Recipe] = None,
        recipe_overrides: Optional[Mapping[str, Any]] = None,
    ) -> "SweepSpec":
        """A copy with the given fields replaced (None keeps the file's value).

        recipe_by_seq_len keeps its entries for the lengths the tasks still have, less the fields `recipe_overrides`
        sets: a flag (--batch-size) sets its field for every run. When the grid changes and no `name` is given, the
        name becomes `<name>-<grid id>` so that an edited grid never mixes its runs into the preset's sweep, and the
        same command always maps to the same sweep.
        """
        new_tasks = tuple(tasks) if tasks is not None else self.tasks
        if task_overrides:
            new_tasks = tuple(_replace_task(task, task_overrides, "flags") for task in new_tasks)
        recipe = recipe if recipe is not None else self.recipe
        if recipe_overrides:
            recipe = Recipe.from_dict({**recipe.to_dict(), **recipe_overrides})
        changed = dataclasses.replace(
            self,
            archs=tuple(archs) if archs is not None else self.archs,
            d_models=tuple(d_models) if d_models is not None else self.d_models,
            tasks=new_tasks,
            lrs=tuple(lrs) if lrs is not None else self.lrs,
            seeds=tuple(seeds) if seeds is not None else self.seeds,
            recipe=recipe,
            recipe_by_seq_len=_kept_by_seq_len(self.recipe_by_seq_len, new_tasks, recipe_overrides or {}),
        )
        if name:
            return dataclasses.replace(changed, name=name)
        if changed.grid_id != self.grid_id:
            return dataclasses.replace(changed, name=f"{self.name}-{changed.grid_id}")
        return changed


def _kept_by_seq_len(by_seq_len: Mapping[int, Mapping[str, Any]], tasks: Sequence[TaskSpec],
                     overridden: Mapping[str, Any]) -> dict[int, dict[str, Any]]:
    """The recipe_by_seq_len entries for lengths among `tasks`, without the fields in `overridden`."""
    seq_lens = {task.seq_len for task in tasks}
    kept = {seq_len: {key: value for key, value in fields.items() if key not in overridden}
            for seq_len, fields in by_seq_len.items() if seq_len in seq_lens}
    return {seq_len: fields for seq_len, fields in kept.items() if fields}


def _as_list(value: Any, key: str, where: str) -> list:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        return [value]
    return list(value)


def _replace_task(task: TaskSpec, overrides: Mapping[str, Any], where: str) -> TaskSpec:
    try:
        return TaskSpec.from_dict({**task.to_dict(), **overrides})
    except TypeError as error:
        raise UserError(f"{where}: bad task field ({error})") from None


def resolve_tasks(tasks: Any, overrides: Mapping[str, Any], *, where: str, base_dir: Optional[Path] = None) -> tuple[TaskSpec, ...]:
    """`tasks` as a suite name/path or a list of TaskSpec tables -> TaskSpecs, each with `overrides` applied."""
    from mqar.data.suites import load_suite, tasks_from_tables

    if isinstance(tasks, str):
        suite_ref: str | Path = tasks
        if base_dir is not None and tasks.endswith(".toml") and not Path(tasks).is_absolute():
            suite_ref = base_dir / tasks
        specs = load_suite(suite_ref).tasks
        return tuple(_replace_task(task, overrides, where) for task in specs) if overrides else specs
    if not isinstance(tasks, (list, tuple)) or not tasks:
        raise UserError(f"{where}: tasks must be a task suite name or a non-empty list of [[tasks]] tables")
    entries = []
    for entry in tasks:
        if isinstance(entry, TaskSpec):
            entry = entry.to_dict()
        if not isinstance(entry, Mapping):
            raise UserError(f"{where}: each [[tasks]] entry must be a table with seq_len and num_kv_pairs")
        entries.append({**entry, **overrides})
    return tasks_from_tables(entries, {}, where)


def tasks_from_lists(seq_lens: Sequence[int], num_kv_pairs: Sequence[int]) -> list[TaskSpec]:
    """Pair `--seq-lens` with `--num-kv-pairs` position by position (one kv value applies to every seq_len)."""
    if len(num_kv_pairs) == 1:
        num_kv_pairs = list(num_kv_pairs) * len(seq_lens)
    if len(seq_lens) == 1 and len(num_kv_pairs) > 1:
        seq_lens = list(seq_lens) * len(num_kv_pairs)
    if len(seq_lens) != len(num_kv_pairs):
        raise UserError(
            f"--seq-lens has {len(seq_lens)} values but --num-kv-pairs has {len(num_kv_pairs)}; "
            f"give one kv count per seq_len (they pair up in order) or a single one for all"
        )
    return [TaskSpec(seq_len=seq_len, num_kv_pairs=kv) for seq_len, kv in zip(seq_lens, num_kv_pairs)]


def sweep_path(name_or_path: str | os.PathLike) -> Path:
    """A preset name (`quick`) resolves to sweeps/<name>.toml; anything else is a path."""
    return find_toml(name_or_path, SWEEPS_DIR, "sweep preset or file")


def preset_names() -> list[str]:
    return sorted(path.stem for path in SWEEPS_DIR.glob("*.toml"))


def load_sweep_spec(name_or_path: str | os.PathLike) -> SweepSpec:
    """The SweepSpec of a preset (sweeps/<name>.toml) or of a sweep file."""
    path = sweep_path(name_or_path)
    return SweepSpec.from_dict(read_toml(path), where=str(path), base_dir=path.parent, default_name=path.stem)


def parse_list(text: str, kind: Callable[[str], T], flag: str, example: str) -> list[T]:
    """`"64,128"` -> [64, 128]; a malformed list (`"64,,x"`) is one UserError naming the flag and an example."""
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not item for item in items):
        raise UserError(f"malformed {flag} {text!r}: expected comma-separated values, e.g. {flag} {example}")
    values = []
    for item in items:
        try:
            values.append(kind(item))
        except ValueError:
            raise UserError(f"malformed {flag} {text!r}: {item!r} is not a valid value; e.g. {flag} {example}") from None
    return values
