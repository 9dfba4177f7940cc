"""`run_sweep`: register a grid in the store, resume it, and run what is left on a local pool or on Ray."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, TextIO

from mqar.checkpoint import sweep_checkpoint_dir
from mqar.errors import UserError
from mqar.paths import DEFAULT_STORE
from mqar.sweep.spec import SweepSpec
from mqar.sweep.store import DEFAULT_LEASE_S, Store
from mqar.sweep.worker import TrainFn

BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class SweepSummary:
    """What a `run_sweep` call did and where the sweep stands now."""

    sweep: str
    store: Path
    total: int
    done: int
    failed: int
    pending: int
    running: int  # runs other processes still hold
    new_runs: int  # runs this call added to the store
    reclaimed: int  # runs left 'running' by a dead process, handed back to 'pending'
    retried: int  # failed runs put back to 'pending' by retry_failed
    finished_now: int  # runs finished (done or failed) during this call
    seconds: float
    interrupted: bool

    @property
    def complete(self) -> bool:
        return self.done + self.failed == self.total

    @property
    def counts(self) -> str:
        """'3 done, 1 failed, 4 left of 8': where an interrupted sweep stands (mqar sweep, mqar figure --run)."""
        return f"{self.done} done, {self.failed} failed, {self.pending} left of {self.total}"


def run_sweep(
    spec: SweepSpec,
    store: str | os.PathLike = DEFAULT_STORE,
    *,
    devices: Optional[str | Sequence[str]] = None,
    runs_per_device: Optional[int] = None,
    backend: str = "local",
    retry_failed: bool = False,
    address: Optional[str] = None,
    train_fn: Optional[TrainFn] = None,
    cache_dir: Optional[str | os.PathLike] = None,
    lease_s: float = DEFAULT_LEASE_S,
    live: Optional[bool] = False,
    stream: TextIO = sys.stdout,
) -> SweepSummary:
    """Run every run of `spec` not yet done, recording each in `store`; safe to call again to resume.

    devices: None/"auto"/"all" (every GPU, else the CPU), "cpu", "cuda:0,cuda:1" or a list (local backend).
    runs_per_device: runs trained at once per device (packs small runs onto one GPU; the CPU, here or each node of
    a Ray cluster without GPUs, is one device); None: 1 per GPU, one per core on the CPU.
    backend: "local" (worker processes on this host) or "ray" (`address`: "auto" for the cluster `ray start` started
    on this machine, "HOST:PORT", or None: the instance this process already started, else RAY_ADDRESS's cluster,
    else a private local instance).
    retry_failed: put the sweep's failed runs back in the queue first.
    train_fn: the training function (default mqar.train.train); a module-level function, see mqar.sweep.worker.
    live: True for the rich live view, False for one line per finished run, None to pick by whether `stream` is a
    terminal.
    """
    if not isinstance(spec, SweepSpec):  # else an AttributeError on .expand() (a preset name, a dict)
        raise UserError(f"run_sweep takes a SweepSpec (load_sweep_spec('quick') for a preset or a .toml file, "
                        f"SweepSpec.from_dict(d) for a dict), got {spec!r}")
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if isinstance(devices, str) and backend == "ray" and devices not in ("auto", "all"):
        raise UserError("--devices is for the local backend; Ray places tasks on the cluster's GPUs itself")
    if backend == "ray":  # Ray missing or its cluster unreachable: say so before the store is written
        from mqar.sweep.ray_backend import connect

        connect(address)
    started = time.monotonic()
    configs = spec.expand()
    # An unfinished run continues from its last epoch (mqar.checkpoint), not from epoch 1. Absolute paths, here and for
    # the cache: Ray's workers do not share this process's working directory.
    checkpoints = str(sweep_checkpoint_dir(Path(store).absolute()))
    with Store(store) as db:
        new_runs = db.register_sweep(spec.name, configs, spec.to_dict())
        reclaimed = db.reclaim_stale(spec.name, lease_s=lease_s)
        retried = db.reset_failed(spec.name) if retry_failed else 0
        before = db.counts(spec.name)
        from mqar.sweep.live import SweepView

        view = SweepView(db, spec.name, live=live, stream=stream)
        with view:
            cache = str(Path(cache_dir).absolute()) if cache_dir is not None else None
            if before["pending"] == 0:
                interrupted = False
            elif backend == "ray":
                from mqar.sweep.ray_backend import run_ray

                interrupted = run_ray(db, spec.name, address=address, runs_per_device=runs_per_device,
                                      train_fn=train_fn, cache_dir=cache, checkpoint_dir=checkpoints, view=view)
            else:
                from mqar.sweep.local import run_local

                interrupted = run_local(db, spec.name, devices=devices, runs_per_device=runs_per_device,
                                        max_workers=before["pending"],
                                        train_fn=train_fn, cache_dir=cache, checkpoint_dir=checkpoints, view=view)
        after = db.counts(spec.name)
    with contextlib.suppress(OSError):  # only when empty: the runs left unfinished keep their checkpoints
        Path(checkpoints).rmdir()
    return SweepSummary(
        sweep=spec.name, store=Path(store), total=len(configs), done=after["done"], failed=after["failed"],
        pending=after["pending"], running=after["running"], new_runs=new_runs, reclaimed=len(reclaimed),
        retried=retried,
        finished_now=(after["done"] + after["failed"]) - (before["done"] + before["failed"]),
        seconds=time.monotonic() - started, interrupted=interrupted,
    )
