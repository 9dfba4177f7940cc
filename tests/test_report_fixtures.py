"""Fixture stores with known values for the reporter's tests (imported by tests/test_report*.py and
tests/test_figure*.py; named test_* to sit with them, it holds no tests itself).

Accuracies follow a formula, so each test can say what the right answer is: `accuracy(arch, d_model, seq_len,
lr, seed)`. For `based` lr 1e-2 is the better lr, for every other arch 1e-3.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from mqar.data.spec import TaskSpec
from mqar.runs import EpochRecord, Recipe, RunConfig, RunResult
from mqar.sweep.store import Store

TASKS = ((64, 4), (128, 8))
ARCHS = ("based", "rebased")
D_MODELS = (16, 32)
LRS = (1e-3, 1e-2)
SEEDS = (0, 1)
RECIPE = Recipe(epochs=4, num_train_examples=64, num_valid_examples=16, num_test_examples=16, batch_size=16)


def accuracy(arch: str, d_model: int, seq_len: int, lr: float, seed: int) -> float:
    """Best validation accuracy of the fixture run: wider and shorter is better; seeds differ by ±0.05."""
    good_lr = 1e-2 if arch == "based" else 1e-3
    base = 0.2 + 0.4 * (d_model / 32) - 0.1 * (seq_len / 64) + (0.2 if lr == good_lr else 0.0)
    return round(min(1.0, max(0.0, base + (0.05 if seed else -0.05))), 6)


def heldout_accuracy(best_valid: float) -> float:
    return round(best_valid - 0.02, 6)


def config(arch: str, d_model: int, seq_len: int, num_kv_pairs: int, lr: float, seed: int,
           recipe: Recipe = RECIPE) -> RunConfig:
    return RunConfig(task=TaskSpec(seq_len=seq_len, num_kv_pairs=num_kv_pairs), arch=arch, d_model=d_model, lr=lr,
                     seed=seed, recipe=recipe)


def grid(archs=ARCHS, d_models=D_MODELS, tasks=TASKS, lrs=LRS, seeds=SEEDS, recipe: Recipe = RECIPE) -> list[RunConfig]:
    return [config(arch, d_model, seq_len, kv, lr, seed, recipe)
            for arch in archs for d_model in d_models for seq_len, kv in tasks for lr in lrs for seed in seeds]


def fake_result(run: RunConfig, best_valid: float | None = None) -> RunResult:
    """A RunResult whose best validation accuracy is `best_valid` (default: the formula), reached at the last
    of its epochs, with a curve rising linearly to it."""
    if best_valid is None:
        best_valid = accuracy(run.arch, run.d_model, run.task.seq_len, run.lr, run.seed)
    epochs = run.recipe.epochs
    curve = tuple(
        EpochRecord(epoch=epoch, train_loss=2.0 / epoch, valid_loss=2.1 / epoch,
                    valid_accuracy=best_valid * epoch / epochs, lr=run.lr, seconds=float(epoch))
        for epoch in range(1, epochs + 1)
    )
    return RunResult(
        run_id=run.id, config=run, best_valid_accuracy=best_valid, best_epoch=epochs,
        test_accuracy=heldout_accuracy(best_valid), final_valid_accuracy=best_valid, epochs=epochs, stopped_early=False,
        curve=curve, seconds=float(epochs), tokens_per_s=1000.0, num_params=1234, peak_memory_bytes=None,
        device="cpu", versions={"mqar": "test"},
    )


def make_store(path: Path, sweep: str = "grid", configs: Iterable[RunConfig] | None = None,
               failed: Iterable[RunConfig] = (), pending: Iterable[RunConfig] = ()) -> Path:
    """A store with sweep `sweep` over `configs` (default: grid()); all done except `failed` and `pending`."""
    configs = list(grid() if configs is None else configs)
    failed_ids = {run.id for run in failed}
    pending_ids = {run.id for run in pending}
    with Store(path) as store:
        store.register_sweep(sweep, configs)
        for run in configs:
            if run.id in failed_ids:
                store.record_failure(run.id, "Traceback (most recent call last):\n  ...\nRuntimeError: loss is NaN")
            elif run.id not in pending_ids:
                store.record_result(fake_result(run))
    return path


def fake_train(config: RunConfig, *, device: str, data=None, progress: bool = False, on_epoch=None,
               checkpoint=None, keep_checkpoint=False) -> RunResult:
    """A training function with the signature of `mqar.train.train` for the real sweep runner: no training, the
    formula's result at once (module level, so worker processes can import it)."""
    return fake_result(config, fake_table1_accuracy(config))


def fake_table1_accuracy(run: RunConfig) -> float:
    """Near ReBased Table 1's published mean: seed 0 -0.01, seed 1 +0.01, seed 2 on it; 0.1 lower at lr 1e-3."""
    from mqar.report.paper import rebased_table1

    published = rebased_table1().set_index(["arch", "d_model"])["mean"]
    value = published[(run.arch, run.d_model)] + {0: -0.01, 1: 0.01}.get(run.seed, 0.0)
    return min(1.0, max(0.0, value - (0.1 if run.lr == 1e-3 else 0.0)))
