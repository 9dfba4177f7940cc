"""Fake training functions for the sweep tests (module-level, so worker processes and Ray tasks can import them).

Their behaviour is chosen by the run's seed: 13 raises, 14 diverges (NaN), 16 raises after reporting its first
epoch, 15 kills its own worker process with SIGKILL
the first time (when the file named by MQAR_FAKE_CRASH_MARKER does not exist yet; it creates it), like a worker killed
mid-run; every run sleeps MQAR_FAKE_SLEEP seconds per epoch (default 0), reports an accuracy that grows with d_model
and its worker's pid and OMP_NUM_THREADS (in `versions`). Not tests themselves.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from pathlib import Path

from mqar.runs import EpochRecord, RunConfig, RunResult

FAIL_SEED = 13
NAN_SEED = 14
CRASH_SEED = 15
FAIL_AFTER_FIRST_EPOCH_SEED = 16
CHECKPOINT_THEN_FAIL_SEED = 17  # writes its checkpoint file, then raises (a run stopped part-way keeps it)


def _first_to_create(marker: Path) -> bool:
    """Create `marker`; False if it exists. Atomic (O_EXCL): when two crash-seed runs start at once in two workers,
    one crashes, not both (a check-then-touch let both crash: a flaky Ray test, seen in CI once)."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def fake_train(config: RunConfig, *, device, data, progress=False, on_epoch=None, checkpoint=None,
               keep_checkpoint=False) -> RunResult:
    assert data.train[0].shape == (config.recipe.num_train_examples, config.task.seq_len)  # the cached splits
    # every executor hands each run its own checkpoint file in the sweep's checkpoint folder beside the store
    assert checkpoint is not None and checkpoint.name == f"{config.id}.pt", checkpoint
    assert checkpoint.parent.name.endswith(".db.checkpoints"), checkpoint
    if config.seed == FAIL_SEED:
        raise RuntimeError("fake failure for this run")
    if config.seed == CHECKPOINT_THEN_FAIL_SEED:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        checkpoint.write_bytes(b"fake checkpoint")
        raise RuntimeError("fake failure after writing the checkpoint")
    if config.seed == CRASH_SEED and _first_to_create(Path(os.environ.get("MQAR_FAKE_CRASH_MARKER", "/nonexistent/m"))):
        os.kill(os.getpid(), signal.SIGKILL)
    sleep_s = float(os.environ.get("MQAR_FAKE_SLEEP", "0"))
    accuracy = min(1.0, config.d_model / 128)
    curve = []
    for epoch in range(1, config.recipe.epochs + 1):
        time.sleep(sleep_s)
        loss = float("nan") if config.seed == NAN_SEED else 1.0 / epoch
        if loss != loss:
            raise FloatingPointError(f"training loss is nan at epoch {epoch}; lower the learning rate")
        record = EpochRecord(epoch=epoch, train_loss=loss, valid_loss=loss, valid_accuracy=accuracy * epoch / config.recipe.epochs,
                             lr=config.lr, seconds=sleep_s * epoch)
        curve.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if config.seed == FAIL_AFTER_FIRST_EPOCH_SEED:
            raise RuntimeError("fake failure after the first epoch")
    return RunResult(
        run_id=config.id, config=config, best_valid_accuracy=accuracy, best_epoch=len(curve), test_accuracy=accuracy,
        final_valid_accuracy=accuracy, epochs=len(curve), stopped_early=False, curve=tuple(curve),
        seconds=sleep_s * len(curve), tokens_per_s=1e4, num_params=config.d_model * 100, peak_memory_bytes=None,
        device=device,
        versions={"mqar": "test", "pid": str(os.getpid()), "threads": os.environ.get("OMP_NUM_THREADS", "")},
    )


def train_then_die(config: RunConfig, **kwargs) -> RunResult:
    """mqar.train.train, whose worker SIGKILLs itself the first time a run ends (MQAR_FAKE_CRASH_MARKER, as for
    CRASH_SEED), before the sweep stores the result; that result's curve goes to the marker file first, as JSON."""
    import json

    from mqar.train import train

    result = train(config, **kwargs)
    marker = Path(os.environ["MQAR_FAKE_CRASH_MARKER"])
    if _first_to_create(marker):
        marker.write_text(json.dumps([dataclasses.asdict(record) for record in result.curve]))
        os.kill(os.getpid(), signal.SIGKILL)
    return result


def dying_epoch_collector():
    """mqar.sweep.ray_backend.EpochCollector whose process kills itself with SIGKILL on the first epoch reported to
    it, the first time (the MQAR_FAKE_CRASH_MARKER file, as for CRASH_SEED), like a collector actor killed mid-sweep."""
    from mqar.sweep.ray_backend import EpochCollector

    class DyingEpochCollector(EpochCollector):
        def add(self, run_id: str, record: dict) -> None:
            if _first_to_create(Path(os.environ.get("MQAR_FAKE_CRASH_MARKER", "/nonexistent/m"))):
                os.kill(os.getpid(), signal.SIGKILL)
            super().add(run_id, record)

    return DyingEpochCollector


def unstartable_run_worker():
    """mqar.sweep.ray_backend.RunWorker whose actors cannot start (as on a node without mqar installed)."""
    from mqar.sweep.ray_backend import RunWorker

    class UnstartableRunWorker(RunWorker):
        def __init__(self) -> None:
            raise RuntimeError("fake: this node cannot start a worker")

    return UnstartableRunWorker


def worker_interrupted_after_claim(store_path: str, sweep: str, checkpoint_dir: str) -> None:
    """mqar.sweep.local's worker whose first claim is followed at once by Ctrl-C (SIGINT to itself): after the claim's
    COMMIT, before claim() returns to the worker loop. Run in a spawned process."""
    from mqar.sweep import local
    from mqar.sweep.store import Store

    claim = Store.claim

    def claim_then_ctrl_c(self, *args, **kwargs):
        config = claim(self, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # the worker's SIGINT handler raises KeyboardInterrupt here
        return config

    Store.claim = claim_then_ctrl_c
    local._worker_main(store_path, sweep, "cpu", fake_train, None, checkpoint_dir, 1, os.getppid())


def ctrl_c_swallowed_train(config: RunConfig, **kwargs) -> RunResult:
    """Ctrl-C (SIGINT to its own process) that lands in code turning the KeyboardInterrupt into another error, as
    torch.save's native writer did mid-checkpoint ("RuntimeError: ... unexpected pos 64 vs 0")."""
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    except KeyboardInterrupt:
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0") from None
    return fake_train(config, **kwargs)
