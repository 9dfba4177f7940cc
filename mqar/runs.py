"""One training run as data: Recipe + RunConfig in, RunResult out.

`mqar.train.train(config) -> RunResult` consumes these; the sweep runner expands grids into RunConfigs and stores
RunResults. The run id is a content hash of the config, so the same run always has the same id.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from mqar.config import check_keys, is_integer, is_number, plain_scalars, stable_id
from mqar.data.spec import TaskSpec
from mqar.data.splits import Splits, make_splits
from mqar.errors import UserError

PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class Recipe:
    """How to train. Defaults are the ReBased Figure-1 recipe (see shared REFERENCE.md)."""

    epochs: int = 64
    num_train_examples: int = 100_000
    num_valid_examples: int = 3_000
    num_test_examples: int = 3_000
    batch_size: int = 512
    weight_decay: float = 0.1
    early_stop_accuracy: float = 0.99  # stop once validation accuracy exceeds this
    precision: str = "fp32"  # "fp32" or "bf16" (autocast, fp32 master weights)
    # The data are fixed across model seeds (as in Zoology/ReBased): `RunConfig.seed` drives init and batch order,
    # `data_seed` the train/valid/test examples, so all seeds and lrs of a task share one dataset.
    data_seed: int = 0

    def __post_init__(self) -> None:
        plain_scalars(self)  # as in TaskSpec
        # A sweep file's [recipe] is not type-checked by TOML: epochs = 1.5 or "3" would fail every run later.
        for name in ("epochs", "num_train_examples", "num_valid_examples", "num_test_examples", "batch_size",
                     "data_seed"):
            value = getattr(self, name)
            if not is_integer(value):
                raise UserError(f"recipe.{name} must be an integer, got {value!r}")
        for name in ("weight_decay", "early_stop_accuracy"):
            value = getattr(self, name)
            if not is_number(value):
                raise UserError(f"recipe.{name} must be a number, got {value!r}")
        for name in ("epochs", "num_train_examples", "num_valid_examples", "num_test_examples", "batch_size"):
            if getattr(self, name) < 1:
                raise UserError(f"recipe.{name} must be at least 1, got {getattr(self, name)}")
        # Else a negative or NaN weight decay failed in AdamW once the data were made, and a negative data seed deep
        # in numpy's SeedSequence. (early_stop_accuracy takes any number: ≥ 1 never stops, < 0 stops after epoch 1.)
        if not 0 <= self.weight_decay < math.inf:
            raise UserError(f"recipe.weight_decay must be a finite number ≥ 0, got {self.weight_decay!r}")
        if self.data_seed < 0:
            raise UserError(f"recipe.data_seed must be ≥ 0, got {self.data_seed}")
        if self.precision not in PRECISIONS:
            raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Recipe":
        check_keys(cls, data, "recipe")
        return cls(**data)


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run's result (the device does not: it is where, not what)."""

    task: TaskSpec
    arch: str
    d_model: int
    lr: float
    seed: int = 0
    recipe: Recipe = field(default_factory=Recipe)

    def __post_init__(self) -> None:
        # A dict here passed unnoticed until `id` or train() called its to_dict() (an AttributeError).
        if not isinstance(self.task, TaskSpec):
            raise UserError(f"task must be a TaskSpec (TaskSpec.from_dict(d) for a dict), got {self.task!r}")
        if not isinstance(self.recipe, Recipe):
            raise UserError(f"recipe must be a Recipe (Recipe.from_dict(d) for a dict), got {self.recipe!r}")
        # numpy scalars as Python ones, as in TaskSpec: else `id` failed in json.dumps ('Object of type int64 is not
        # JSON serializable') and a numpy seed was refused.
        plain_scalars(self)
        # The store keeps seeds in 64-bit INTEGER columns: a larger one overflowed there (or in torch) in a traceback.
        if not (is_integer(self.seed) and 0 <= self.seed < 2**63):
            raise UserError(f"seed must be an integer from 0 to 2**63 - 1, got {self.seed!r}")
        # As SweepSpec checks its lrs: else a str, negative or NaN lr failed in torch's AdamW after the data were
        # generated. Stored as a float, so lr = 1 and 1.0 are one run with one id (SweepSpec's lrs are floats).
        if not (is_number(self.lr) and 0 < self.lr < math.inf):
            raise UserError(f"lr must be a positive finite number, got {self.lr!r}")
        object.__setattr__(self, "lr", float(self.lr))

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task.to_dict(),
            "arch": self.arch,
            "d_model": self.d_model,
            "lr": self.lr,
            "seed": self.seed,
            "recipe": self.recipe.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunConfig":
        check_keys(cls, data, "run config")
        data = dict(data)
        data["task"] = TaskSpec.from_dict(data["task"])
        if "recipe" in data:
            data["recipe"] = Recipe.from_dict(data["recipe"])
        return cls(**data)

    @property
    def id(self) -> str:
        return stable_id(self.to_dict())

    def make_splits(self) -> Splits:
        """The run's train/valid/test data: its task, the recipe's data seed and split sizes."""
        recipe = self.recipe
        return make_splits(
            self.task, recipe.data_seed, recipe.num_train_examples, recipe.num_valid_examples, recipe.num_test_examples
        )


@dataclass(frozen=True)
class EpochRecord:
    """One point of the learning curve."""

    epoch: int  # 1-based
    train_loss: float
    valid_loss: float
    valid_accuracy: float
    lr: float  # learning rate at the end of the epoch
    seconds: float  # wall time since the run started


@dataclass(frozen=True)
class RunResult:
    """What one run measured. `best_valid_accuracy` is the paper's convention (best over epochs);
    `test_accuracy` is measured on the separate test split at the epoch of best validation accuracy."""

    run_id: str
    config: RunConfig
    best_valid_accuracy: float
    best_epoch: int
    test_accuracy: float
    final_valid_accuracy: float
    epochs: int  # epochs actually run (early stopping may end before recipe.epochs)
    stopped_early: bool
    curve: tuple[EpochRecord, ...]
    seconds: float
    tokens_per_s: float  # training tokens (batch × seq_len) per second of training-step time
    num_params: int
    peak_memory_bytes: Optional[int]  # peak CUDA memory; None on CPU
    device: str  # e.g. "cpu" or "cuda:0 (NVIDIA H200)"
    versions: Mapping[str, str]  # mqar, torch, triton, numpy, python

    def summary(self) -> dict[str, Any]:
        """The flat metrics (what `mqar train` prints as its last line)."""
        return {
            "run_id": self.run_id,
            "best_valid_accuracy": self.best_valid_accuracy,
            "best_epoch": self.best_epoch,
            "test_accuracy": self.test_accuracy,
            "final_valid_accuracy": self.final_valid_accuracy,
            "epochs": self.epochs,
            "stopped_early": self.stopped_early,
            "seconds": self.seconds,
            "tokens_per_s": self.tokens_per_s,
            "num_params": self.num_params,
            "peak_memory_bytes": self.peak_memory_bytes,
            "device": self.device,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "config": self.config.to_dict(),
            "curve": [dataclasses.asdict(record) for record in self.curve],
            "versions": dict(self.versions),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunResult":
        check_keys(cls, data, "run result")
        data = dict(data)
        data["config"] = RunConfig.from_dict(data["config"])
        data["curve"] = tuple(EpochRecord(**record) for record in data["curve"])
        return cls(**data)
