"""The Ray executor: the same grid as Ray tasks across a cluster; only the driver touches the store.

The driver claims runs in the store (owned by the driver's process), submits each as a Ray task that asks for a
GPU share (`1 / runs_per_device` of a GPU when the cluster has GPUs, one CPU otherwise), and records each outcome
as it comes back. Workers need no access to the store's file system: results travel back through Ray. Each node
keeps its own dataset cache (the same `results/cache/` layout), so a task's data are generated once per node.

The number of tasks in flight is bounded by the cluster's capacity, so a driver killed mid-sweep leaves only that
many runs 'running'; they are reclaimed on the next `mqar sweep` (their owner, the driver, is dead).
"""

from __future__ import annotations

import time
from typing import Optional

from mqar.errors import UserError
from mqar.sweep.store import Store
from mqar.sweep.worker import Outcome, TrainFn, run_one

HEARTBEAT_S = 60.0


def _ray_task(config_dict: dict, train_fn: Optional[TrainFn], cache_dir: Optional[str]) -> dict:
    """Runs on a Ray worker: one run, its outcome as a plain dict (never raises for a failed run)."""
    import ray

    from mqar.runs import RunConfig

    config = RunConfig.from_dict(config_dict)
    gpu_ids = ray.get_gpu_ids()
    # Ray sets CUDA_VISIBLE_DEVICES to the task's GPU(s), so the first visible GPU is ours.
    device = "cuda:0" if gpu_ids else "cpu"
    return run_one(config, device, train_fn, cache_dir).to_dict()


def run_ray(
    store: Store,
    sweep: str,
    *,
    address: Optional[str] = None,
    runs_per_device: int = 1,
    train_fn: Optional[TrainFn] = None,
    cache_dir: Optional[str] = None,
    view=None,
) -> bool:
    """Run the sweep's pending runs as Ray tasks. Returns True when interrupted (Ctrl-C).

    `address`: "auto" or "HOST:PORT" joins a running cluster; None joins the Ray instance this process already
    started (`ray.init(...)`) or starts a local one.
    """
    try:
        import ray
    except ImportError:
        raise UserError("the ray backend needs Ray: pip install 'mqar[ray]' (or use --backend local)") from None
    if runs_per_device < 1:
        raise UserError(f"--runs-per-device must be at least 1, got {runs_per_device}")
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except ConnectionError as error:
            raise UserError(f"cannot reach a Ray cluster at {address!r} ({error}); start one with `ray start --head` "
                            f"or leave out --address for a local instance") from None
    resources = ray.cluster_resources()
    num_gpus = resources.get("GPU", 0.0)
    if num_gpus >= 1:
        task = ray.remote(num_gpus=1.0 / runs_per_device, num_cpus=1, max_retries=0)(_ray_task)
        capacity = int(num_gpus * runs_per_device)
    else:
        task = ray.remote(num_cpus=1, max_retries=0)(_ray_task)
        capacity = max(1, int(resources.get("CPU", 1.0)))

    in_flight: dict = {}  # ObjectRef -> run id
    last_heartbeat = time.monotonic()
    try:
        while True:
            while len(in_flight) < capacity:
                config = store.claim(sweep)
                if config is None:
                    break
                in_flight[task.remote(config.to_dict(), train_fn, cache_dir)] = config.id
            if not in_flight:
                break
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=1.0)
            for ref in ready:
                run_id = in_flight.pop(ref)
                try:
                    outcome = Outcome.from_dict(ray.get(ref))
                except Exception as error:  # the worker process itself died, or the result could not travel
                    outcome = Outcome(run_id=run_id, error=f"Ray task failed: {type(error).__name__}: {error}")
                outcome.record_in(store)
            if time.monotonic() - last_heartbeat > HEARTBEAT_S:
                for run_id in in_flight.values():
                    store.heartbeat(run_id)
                last_heartbeat = time.monotonic()
            if view is not None:
                view.refresh()
        return False
    except KeyboardInterrupt:
        for ref in in_flight:
            ray.cancel(ref, force=True)
        for run_id in in_flight.values():
            store.release(run_id)
        return True
