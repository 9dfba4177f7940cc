"""The Ray executor: the same grid on Ray workers across a cluster; only the driver touches the store.

The driver starts one long-lived actor per device slot (`1 / runs_per_device` of a GPU when the cluster has GPUs;
otherwise `1 / runs_per_device` of a node's CPUs, or one CPU by default, as the local executor), claims runs in the
store (owned by the driver's process), hands each to an idle actor, and records each outcome as it comes back.
Workers need no access to the store's file system: results travel back through Ray. Each node keeps its own dataset
cache (the same `results/cache/` layout).

Why actors and not tasks: Ray gives every GPU *task* a fresh worker process (its default `max_calls=1` for GPU
tasks), so each run paid a Python + torch + CUDA start-up; with 2-second runs that made Ray on 2 GPUs slower than the
local executor on one (results/bench/sweep-scaling/2026-11-30-fast-runs). An actor keeps its process and its GPU
share from run to run, like a local worker.

A run is claimed only for an actor Ray has started. Two drivers on one full cluster: the second's actors wait in
Ray's queue and it claims nothing meanwhile (on one sweep, the first trains its runs); the first keeps the cluster
until it has nothing left to claim. They take turns, not runs: sharing run by run would need an actor to give its
share back after each run while another driver waits, a process start per run, which these actors exist to avoid.

Progress: workers report each finished epoch to a small collector actor; the driver moves what it holds into the
store every PROGRESS_S (and before recording each outcome), so running runs show their epochs here as with the
local executor.

A worker that dies mid-run (killed, out of host memory) fails that run, as in the local executor, and a fresh actor
takes its place; `mqar sweep --retry-failed` runs it again. Ctrl-C, or SIGTERM to `mqar sweep`, stops the actors and
hands their runs back. A driver killed mid-sweep leaves its in-flight runs 'running'; they are reclaimed on the next
`mqar sweep` (their owner, the driver, is dead). Unlike a local worker's, an actor's finished run deletes its
checkpoint before the driver stores the result (the driver may not reach the actor's disk): a driver SIGKILLed in
that moment leaves the run to be trained again from epoch 1.
"""

from __future__ import annotations

import math
import os
import time
from typing import Optional, Sequence

from mqar.errors import UserError
from mqar.sweep.store import Store
from mqar.sweep.worker import Outcome, TrainFn, interrupts_ignored, run_one

HEARTBEAT_S = 60.0
CONNECT_TIMEOUT_S = 10.0  # how long --address HOST:PORT may take to answer
PROGRESS_S = 5.0  # how often the driver stores the epochs the workers reported


class EpochCollector:
    """A Ray actor holding the epochs workers report until the driver takes them (only the driver has the store)."""

    def __init__(self) -> None:
        self._epochs: list[tuple[str, dict]] = []

    def add(self, run_id: str, record: dict) -> None:
        self._epochs.append((run_id, record))

    def take(self) -> list[tuple[str, dict]]:
        taken, self._epochs = self._epochs, []
        return taken


class RunWorker:
    """A Ray actor: trains runs one after another in one process, on the GPU share Ray gave it (or the CPU)."""

    def ready(self) -> bool:
        """Answers once Ray has placed the actor and started its process: only then is a run claimed for it."""
        return True

    def run(self, config_dict: dict, train_fn: Optional[TrainFn], cache_dir: Optional[str],
            checkpoint_dir: Optional[str] = None, collector=None) -> dict:
        """One run, its outcome as a plain dict (never raises for a failed run). Each finished epoch goes to
        `collector` (an EpochCollector), all of them delivered before the outcome returns."""
        import dataclasses

        import ray

        from mqar.runs import RunConfig

        config = RunConfig.from_dict(config_dict)
        # Ray sets CUDA_VISIBLE_DEVICES to the actor's GPU, so the first visible GPU is ours.
        device = "cuda:0" if ray.get_gpu_ids() else "cpu"
        reports: list = []
        on_epoch = None
        if collector is not None:
            on_epoch = lambda record: reports.append(  # noqa: E731
                collector.add.remote(config.id, dataclasses.asdict(record)))
        # The training deletes the checkpoint as the run ends, before the driver stores the result: the checkpoint
        # is on this actor's node, which the driver's file system may not reach (see the module docstring).
        outcome = run_one(config, device, train_fn, cache_dir, on_epoch=on_epoch, checkpoint_dir=checkpoint_dir)
        ray.get(reports)  # the driver drains the collector when the outcome arrives: let it find every epoch
        return outcome.to_dict()


def _store_reported_epochs(store: Store, collector) -> None:
    import ray

    from mqar.runs import EpochRecord

    for run_id, record in ray.get(collector.take.remote()):
        store.record_epoch(run_id, EpochRecord(**record))


def actor_slots(num_gpus: float, node_cpus: Sequence[float], runs_per_device: Optional[int]) -> tuple[str, int]:
    """Where the actors of a cluster with these resources (its GPUs, each node's CPUs) train, "cuda" or "cpu", and
    how many at once: `runs_per_device` (default 1) per GPU when it has a GPU, else as many as cpu_only_share allows.
    (`mqar sweep --dry-run` estimates with it.)"""
    if num_gpus >= 1:
        return "cuda", int(num_gpus * (runs_per_device or 1))
    share = cpu_only_share(node_cpus, runs_per_device)
    return "cpu", max(1, sum(int(cpus / share + 1e-9) for cpus in node_cpus))


def cpu_only_share(node_cpus: Sequence[float], runs_per_device: Optional[int]) -> float:
    """The CPUs each actor of a cluster without GPUs asks for. As the local executor on the CPU: by default one run
    per core (one CPU each); with --runs-per-device N, N runs at once per machine, each on 1/N of its CPUs (Ray
    gives it that many threads, OMP_NUM_THREADS). Nodes with different CPU counts: the smallest node's 1/N, so each
    node runs at least N (a larger one more). One CPU each whatever N said made --runs-per-device do nothing here."""
    if runs_per_device is None or not node_cpus:
        return 1.0
    return math.floor(min(node_cpus) / runs_per_device * 10_000) / 10_000  # Ray takes amounts to 4 decimals


def _cpu_share(runs_per_device: int) -> float:
    """The CPUs each GPU actor asks for: one, as measured (results/bench/sweep-scaling/), where every GPU node has a
    CPU per GPU slot; else the share its scarcest node allows. With one CPU each regardless, a node with fewer CPUs
    than GPU slots (1 CPU, 1 GPU, --runs-per-device 2) never started the extra actors, and the runs claimed for
    them never came back: the sweep waited forever."""
    import ray

    shares = [node["Resources"].get("CPU", 0.0) / (node["Resources"]["GPU"] * runs_per_device)
              for node in ray.nodes() if node.get("Alive") and node["Resources"].get("GPU", 0.0) >= 1]
    return math.floor(min([1.0, *shares]) * 10_000) / 10_000  # Ray takes resource amounts to 4 decimals


def import_ray():
    """The `ray` module, or a UserError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UserError("the ray backend needs Ray: pip install 'mqar[ray]' (or use --backend local)") from None
    return ray


def connect(address: Optional[str] = None):
    """Join the Ray cluster at `address` (see run_ray), or the instance this process already started; returns the
    `ray` module. A UserError when Ray is missing or the cluster cannot be reached: callers do this before they
    write to the store, so bad input leaves it untouched."""
    ray = import_ray()
    if not ray.is_initialized():
        address, named_by = resolve_address(address)
        _check_reachable(address, named_by)
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except ConnectionError as error:
            raise _unreachable(address, named_by, error) from None
    return ray


def resolve_address(address: Optional[str]) -> tuple[str, str]:
    """The address for ray.init, and where it came from (for the error message). No --address: RAY_ADDRESS if set
    (`ray job submit` sets it for its entrypoint, to name the job's cluster), else "local", a private instance.
    ray.init(address=None) instead joins the cluster a `ray start` last recorded on this machine: a sweep went to a
    cluster its command did not name (and, that cluster gone, hung trying to reach it); `--address auto` asks for
    that one."""
    if address is not None:
        return address, ""
    from_env = os.environ.get("RAY_ADDRESS", "").strip()
    if from_env:
        return from_env, " (from RAY_ADDRESS)"
    return "local", ""


def _check_reachable(address: str, named_by: str = "") -> None:
    """A HOST:PORT nothing answers on: ray.init retried for about 12 minutes and then raised a RuntimeError with a
    traceback. One TCP connection tells at once."""
    import socket

    if address in ("auto", "local"):
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        return  # not HOST:PORT: Ray says what is wrong with it
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise _unreachable(address, named_by, error.strerror or error) from None


def _unreachable(address: str, named_by: str, why) -> UserError:
    instead = "unset RAY_ADDRESS" if named_by else "leave out --address"
    return UserError(f"cannot reach a Ray cluster at {address!r}{named_by} ({why}); start one with `ray start "
                     f"--head` or {instead} for a local instance")


def run_ray(
    store: Store,
    sweep: str,
    *,
    address: Optional[str] = None,
    runs_per_device: Optional[int] = None,
    train_fn: Optional[TrainFn] = None,
    cache_dir: Optional[str] = None,
    checkpoint_dir: Optional[str] = None,
    view=None,
) -> bool:
    """Run the sweep's pending runs on Ray's workers (actors, see above). Returns True when interrupted (Ctrl-C).

    `address`: "auto" joins the cluster `ray start` started on this machine, "HOST:PORT" the one there; None: the
    Ray instance this process already started (`ray.init(...)`), else the cluster RAY_ADDRESS names, else a private
    local instance, which ends with this process (never a `ray start` cluster the command did not name).
    """
    if runs_per_device is not None and runs_per_device < 1:
        raise UserError(f"--runs-per-device must be at least 1, got {runs_per_device}")
    ray = connect(address)
    num_gpus = ray.cluster_resources().get("GPU", 0.0)
    node_cpus = [node["Resources"]["CPU"] for node in ray.nodes()
                 if node.get("Alive") and node["Resources"].get("CPU", 0.0) > 0]
    device, capacity = actor_slots(num_gpus, node_cpus, runs_per_device)
    if device == "cuda":
        per_gpu = runs_per_device or 1
        actor_class = ray.remote(num_gpus=1.0 / per_gpu, num_cpus=_cpu_share(per_gpu), max_restarts=0)(RunWorker)
    else:
        actor_class = ray.remote(num_cpus=cpu_only_share(node_cpus, runs_per_device), max_restarts=0)(RunWorker)

    idle: list = []  # started actors waiting for a run; started lazily, at most `capacity` in all
    starting: dict = {}  # ObjectRef of actor.ready() -> actor, for actors Ray has not placed or started yet
    in_flight: dict = {}  # ObjectRef -> (run id, actor)
    # Restarted if its process dies (the epochs it held are lost; each run's result brings its whole curve), so that
    # a killed collector does not end the sweep with a traceback, nor fail the runs that report to it.
    collector = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)(EpochCollector).remote()
    last_heartbeat = last_progress = time.monotonic()
    try:
        while True:
            # Runs are claimed only for started actors. A run claimed for an actor Ray could not place yet (another
            # driver holding the cluster) sat 'running' in the store, heartbeats and all, while nothing trained it
            # and no other sweep could take it.
            while idle:
                config = store.claim(sweep)
                if config is None:
                    break
                actor = idle.pop()
                in_flight[actor.run.remote(config.to_dict(), train_fn, cache_dir, checkpoint_dir, collector)] = (
                    config.id, actor)
            pending = 0 if idle else store.counts(sweep)["pending"]
            if not pending:
                # Nothing left to hand them: give their shares back now, not when the sweep ends. Another
                # driver's actors may be waiting for them while it holds what ours wait for (a deadlock).
                for actor in [*idle, *starting.values()]:
                    ray.kill(actor)
                idle.clear()
                starting.clear()
            for _ in range(min(pending, capacity - len(in_flight)) - len(starting)):
                actor = actor_class.remote()
                starting[actor.ready.remote()] = actor
            if not in_flight and not starting:
                break
            ready, _ = ray.wait([*in_flight, *starting], num_returns=1, timeout=1.0)
            for ref in [ref for ref in ready if ref in starting]:
                actor = starting.pop(ref)
                try:
                    ray.get(ref)
                    idle.append(actor)
                except Exception as error:  # its process could not start (mqar missing on that node, ...)
                    ray.kill(actor)
                    # A run fails with the reason, as when a run was claimed before its actor started: the sweep
                    # ends with it recorded (`--retry-failed` reruns it) rather than starting actors forever.
                    config = store.claim(sweep)
                    if config is not None:
                        Outcome(run_id=config.id, error=f"Ray worker failed to start: "
                                                        f"{type(error).__name__}: {error}").record_in(store)
            ready = [ref for ref in ready if ref in in_flight]
            if ready or time.monotonic() - last_progress > PROGRESS_S:
                _store_reported_epochs(store, collector)  # before the outcomes: their runs are still 'running'
                last_progress = time.monotonic()
            for ref in ready:
                run_id, actor = in_flight.pop(ref)
                try:
                    outcome = Outcome.from_dict(ray.get(ref))
                    idle.append(actor)
                except Exception as error:  # the actor's process died, or the result could not travel
                    outcome = Outcome(run_id=run_id, error=f"Ray worker failed during this run: "
                                                           f"{type(error).__name__}: {error}")
                    ray.kill(actor)  # if it is still alive; a fresh one is started for the next run
                outcome.record_in(store)
            if time.monotonic() - last_heartbeat > HEARTBEAT_S:
                for run_id, _ in in_flight.values():
                    store.heartbeat(run_id)
                last_heartbeat = time.monotonic()
            if view is not None:
                view.refresh()
        return False
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM as `mqar sweep` handles it (Ray's own handler exited at once)
        with interrupts_ignored():  # a second one must not cut the clean-up short
            # Runs whose results came back before the Ctrl-C was handled keep them (else they were trained again).
            finished = ray.wait(list(in_flight), num_returns=len(in_flight), timeout=0)[0] if in_flight else []
            for ref in finished:
                try:
                    outcome = Outcome.from_dict(ray.get(ref))
                except Exception:  # its actor died: the run is handed back below, like the unfinished ones
                    continue
                idle.append(in_flight.pop(ref)[1])
                outcome.record_in(store)
            for run_id, actor in in_flight.values():
                ray.kill(actor)
                store.release(run_id)
        return True
    finally:
        for actor in [*idle, *starting.values()]:
            ray.kill(actor)  # give their GPU shares back to the cluster
        ray.kill(collector)
