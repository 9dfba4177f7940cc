"""Running one run of a sweep, the same way for every executor: data from the cache, train, catch any failure.

A training function has the signature of `mqar.train.train`:

    train_fn(config, *, device, data, progress, on_epoch, checkpoint, keep_checkpoint) -> RunResult

(`checkpoint`: a path for mid-run checkpoints, see mqar.checkpoint; `keep_checkpoint`: leave it when the run ends,
for the executor to delete once the result is stored; a fake may ignore both.)

Executors take it as a parameter (default: mqar.train.train) so tests can inject fakes that succeed, raise, return
NaN or sleep. It must be importable by name (a module-level function) because it travels to worker processes.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from mqar.runs import EpochRecord, RunConfig, RunResult

TrainFn = Callable[..., RunResult]


def default_train_fn() -> TrainFn:
    from mqar.train import train

    return train


def compiled_train_fn() -> TrainFn:
    """`--compile`: mqar.train.train with compile_model=True, as a partial of the module-level function so that it
    pickles to worker processes. How each run is computed, not what: run ids and the store do not change."""
    from mqar.train import train

    return functools.partial(train, compile_model=True)


@dataclass(frozen=True)
class Outcome:
    """What became of one run: a result, or the error (with traceback) that stopped it."""

    run_id: str
    result: Optional[RunResult] = None
    error: Optional[str] = None
    device: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.result is not None

    def record_in(self, store, checkpoint_dir: Optional[str | os.PathLike] = None) -> bool:
        """Write this outcome to a `mqar.sweep.store.Store`: the result ('done') or the error ('failed'), as the
        run's owner, this process. False when the store dropped it (the run is no longer this process's).

        With `checkpoint_dir` (where run_one kept the run's checkpoint, see keep_checkpoint), the checkpoint of a run
        the store now holds as done is deleted: only now, so that a sweep stopped between the end of the training
        and this write continues the run from its last epoch, which trains nothing, instead of from epoch 1."""
        if self.ok:
            recorded = store.record_result(self.result)
        else:
            recorded = store.record_failure(self.run_id, self.error, device=self.device)
        checkpoint = checkpoint_path(checkpoint_dir, self.run_id)
        if checkpoint is not None and self.ok and store.status_of(self.run_id) == "done":
            from mqar.checkpoint import remove_checkpoint

            remove_checkpoint(checkpoint)
        return recorded

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "result": None if self.result is None else self.result.to_dict(),
                "error": self.error, "device": self.device}

    @classmethod
    def from_dict(cls, data: dict) -> "Outcome":
        result = data.get("result")
        return cls(run_id=data["run_id"], result=None if result is None else RunResult.from_dict(result),
                   error=data.get("error"), device=data.get("device"))


@contextlib.contextmanager
def interrupts_ignored():
    """Ignore Ctrl-C and SIGTERM within (an executor's clean-up after the first), then put their handlers back."""
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)  # None: not set from Python


def run_one(
    config: RunConfig,
    device: str,
    train_fn: Optional[TrainFn] = None,
    cache_dir: Optional[str | os.PathLike] = None,
    on_epoch: Optional[Callable[[EpochRecord], None]] = None,
    checkpoint_dir: Optional[str | os.PathLike] = None,
    keep_checkpoint: bool = False,
) -> Outcome:
    """Train `config` on `device`, continuing from its checkpoint in `checkpoint_dir` if a stopped attempt left one.
    Any exception (a bug, CUDA out-of-memory, a NaN loss) becomes a failed Outcome with its traceback; only
    KeyboardInterrupt (Ctrl-C) and SystemExit pass through. keep_checkpoint: leave the finished run's checkpoint for
    `outcome.record_in(store, checkpoint_dir)` to delete once the result is stored."""
    try:
        from mqar.sweep.cache import DEFAULT_CACHE_DIR, cached_splits

        train_fn = train_fn or default_train_fn()
        data = cached_splits(config, Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR)
        checkpoint = checkpoint_path(checkpoint_dir, config.id)
        result = train_fn(config, device=device, data=data, progress=False, on_epoch=on_epoch, checkpoint=checkpoint,
                          keep_checkpoint=keep_checkpoint)
        if result.run_id != config.id:
            raise RuntimeError(f"training function returned run_id {result.run_id}, expected {config.id}")
        return Outcome(run_id=config.id, result=result, device=result.device)
    except Exception:
        _free_cuda_memory()
        return Outcome(run_id=config.id, error=traceback.format_exc(), device=device)


def checkpoint_path(checkpoint_dir: Optional[str | os.PathLike], run_id: str) -> Optional[Path]:
    """The run's checkpoint file in the sweep's `checkpoint_dir` (mqar.checkpoint.sweep_checkpoint_dir); None
    without."""
    return Path(checkpoint_dir) / f"{run_id}.pt" if checkpoint_dir is not None else None


def _free_cuda_memory() -> None:
    """After an out-of-memory error, give the cached blocks back so the next run starts clean."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
