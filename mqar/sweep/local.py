"""The local executor: one worker process per device slot (GPU × runs-per-device, or the CPU), all on this host.

Workers claim runs from the store themselves (an atomic UPDATE), train, and write the result back, so two sweep
commands on the same store share the work instead of repeating it. The driver only watches: it shows the live view,
marks the run of a worker that died (segfault, out of host memory) as failed and starts a replacement, and on Ctrl-C
(or SIGTERM, as `mqar sweep` handles it) asks the workers to stop, hands their unfinished runs back to 'pending', and
returns. A worker stops cleanly on SIGINT and on SIGTERM, which a time limit or `timeout` may send it directly.

Workers die with the driver (Linux: PR_SET_PDEATHSIG; elsewhere they notice a new parent before the next claim),
so a SIGKILLed sweep leaves no orphan training on; its 'running' rows are reclaimed by the next `mqar sweep`.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from mqar.errors import UserError
from mqar.sweep.store import Store
from mqar.sweep.worker import TrainFn, interrupts_ignored, run_one

POLL_S = 0.5  # how often the driver looks at the workers and refreshes the view
STOP_GRACE_S = 20.0  # after Ctrl-C, how long workers get to hand their runs back before they are killed
MAX_RESTARTS_PER_SLOT = 5


def resolve_devices(devices: Optional[str | Sequence[str]]) -> list[str]:
    """`None`/"auto"/"all" -> every visible GPU (cuda:0, cuda:1, ...), or ["cpu"] when there is none;
    "cuda:0,cuda:1" or a list -> those devices, each checked."""
    import torch

    if devices is None or devices in ("auto", "all"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if devices == "all" and count == 0:
            return ["cpu"]
        return [f"cuda:{index}" for index in range(count)] or ["cpu"]
    names = devices.split(",") if isinstance(devices, str) else list(devices)
    names = [name.strip() for name in names]
    if not names or any(not name for name in names):
        raise UserError(f"malformed --devices {devices!r}: expected e.g. cuda:0,cuda:1 or all or cpu")
    from mqar.provenance import resolve_device

    resolved = []
    for name in names:
        name = resolve_device(name)
        if name == "cuda":
            name = "cuda:0"
        resolved.append(name)
    return list(dict.fromkeys(resolved))


def usable_cpus(cgroup_root: Path = Path("/sys/fs/cgroup"), own_cgroup: Path = Path("/proc/self/cgroup")) -> int:
    """The CPUs this process may use: its affinity (taskset, a Slurm or container cpuset) capped by its cgroup v2 CPU
    quota (`docker --cpus`), not the host's count. os.cpu_count() is the host's: on 4 cores of a 64-core node it
    started 64 workers of one thread each, 16 per core."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity API (macOS, Windows)
        cpus = os.cpu_count() or 1
    try:  # "0::/path" is the process's cgroup v2; inside a container's namespace usually "0::/"
        own = next(line[3:].strip() for line in own_cgroup.read_text().splitlines() if line.startswith("0::"))
        quota, period = (cgroup_root / own.lstrip("/") / "cpu.max").read_text().split()
        if quota != "max":
            cpus = min(cpus, math.ceil(int(quota) / int(period)))
    except (OSError, StopIteration, ValueError):  # no cgroup v2 (or not Linux): the affinity is all there is
        pass
    return max(1, cpus)


def default_runs_per_device(device: str) -> int:
    """One run per GPU; one per usable core on the CPU."""
    return usable_cpus() if device == "cpu" else 1


@dataclass
class _Slot:
    device: str
    index: int
    process: Optional[multiprocessing.process.BaseProcess] = None
    restarts: int = 0


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies, so a killed sweep leaves no orphan workers."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


_stop_asked = False  # a worker's Ctrl-C, noted even where the KeyboardInterrupt it raised got swallowed


def _stop_on_first_interrupt(signum, frame) -> None:
    # One stop may arrive twice (Ctrl-C from the terminal, SIGTERM from a time limit, then the driver's own request):
    # raise once, ignore the rest.
    global _stop_asked
    _stop_asked = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def _worker_main(store_path: str, sweep: str, device: str, train_fn: Optional[TrainFn], cache_dir: Optional[str],
                 checkpoint_dir: Optional[str], cpu_threads: Optional[int], parent_pid: int,
                 driver_ignores_sigint: bool = False) -> None:
    """One worker: claim, train, record, until nothing is pending or the driver says stop."""
    _die_with_parent()
    # As the driver: a sweep started where SIGINT is ignored (`mqar sweep &` in a script) ignores it in its workers
    # too; they stopped alone, the driver then found them gone and reported the sweep finished with runs pending.
    signal.signal(signal.SIGINT, signal.SIG_IGN if driver_ignores_sigint else _stop_on_first_interrupt)
    # SIGTERM always stops it: it is how the driver asks it to stop (it reaches a worker that ignores SIGINT), and
    # what a time limit sends to every process of the job. By default it died with its run held ('running').
    signal.signal(signal.SIGTERM, _stop_on_first_interrupt)
    if cpu_threads:
        # Several CPU workers share the cores; without this each would start one thread per core.
        os.environ["OMP_NUM_THREADS"] = str(cpu_threads)
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(cpu_threads)
    if device.startswith("cuda"):
        import torch

        torch.cuda.set_device(torch.device(device))
    store = Store(store_path)
    try:
        while os.getppid() == parent_pid and not _stop_asked:
            config = store.claim(sweep)
            if config is None:
                break
            # The run's checkpoint outlives its training until its result is stored (record_in deletes it then).
            outcome = run_one(config, device, train_fn, cache_dir, checkpoint_dir=checkpoint_dir, keep_checkpoint=True,
                              on_epoch=lambda record: store.record_epoch(config.id, record))
            if _stop_asked and not outcome.ok:
                # The Ctrl-C landed in native code that turned it into another error (in torch.save's writer:
                # "RuntimeError: ... unexpected pos 64 vs 0"): the run was recorded failed, and this worker, its one
                # interrupt spent, went on claiming and training runs after the sweep was stopped. Hand it back.
                raise KeyboardInterrupt
            outcome.record_in(store, checkpoint_dir)
    except KeyboardInterrupt:
        store.drop_cut_write()  # first: a write the Ctrl-C cut holds the lock, and the read below would see it
        # Every run still 'running' under this worker, not only the one it trains: a Ctrl-C that landed in claim()
        # after its COMMIT left a run 'running' under a worker that then exited 0, which the driver does not fail.
        for run_id in store.running_owned_by(os.getpid()):
            store.release(run_id)
    finally:
        store.close()


def run_local(
    store: Store,
    sweep: str,
    *,
    devices: Optional[str | Sequence[str]] = None,
    runs_per_device: Optional[int] = None,
    max_workers: Optional[int] = None,
    train_fn: Optional[TrainFn] = None,
    cache_dir: Optional[str] = None,
    checkpoint_dir: Optional[str] = None,
    view=None,
) -> bool:
    """Run the sweep's pending runs on this host's devices. Returns True when interrupted (Ctrl-C).

    runs_per_device: worker processes per device; None: 1 per GPU, one per core on the CPU (each with one thread:
    the models of a CPU sweep are small, and one run per core beats one run on all cores).
    max_workers: start no more workers than this (e.g. the number of pending runs).
    """
    if runs_per_device is not None and runs_per_device < 1:
        raise UserError(f"--runs-per-device must be at least 1, got {runs_per_device}")
    device_names = resolve_devices(devices)
    slots = [_Slot(device, index) for device in device_names
             for index in range(runs_per_device or default_runs_per_device(device))]
    if max_workers is not None:
        slots = slots[: max(1, max_workers)]
    cpu_slots = sum(slot.device == "cpu" for slot in slots)
    cpu_threads = max(1, usable_cpus() // cpu_slots) if cpu_slots else None
    context = multiprocessing.get_context("spawn")  # fork after torch/CUDA init is unsafe

    def start(slot: _Slot) -> None:
        process = context.Process(
            target=_worker_main,
            args=(str(store.path), sweep, slot.device, train_fn, cache_dir, checkpoint_dir,
                  cpu_threads if slot.device == "cpu" else None, os.getpid(),
                  signal.getsignal(signal.SIGINT) is signal.SIG_IGN),
            name=f"mqar-{slot.device}-{slot.index}",
            daemon=True,
        )
        process.start()
        # Only once started: a Ctrl-C inside start() left a process that _stop_workers could not join
        # ('can only join a started process', an AssertionError instead of a clean stop).
        slot.process = process

    try:
        for slot in slots:  # inside the try: a Ctrl-C between two starts stops the workers already started
            start(slot)
        while any(slot.process.is_alive() for slot in slots):
            time.sleep(POLL_S)
            for slot in slots:
                if _reap_dead_worker(store, slot) and store.counts(sweep)["pending"] and slot.restarts < MAX_RESTARTS_PER_SLOT:
                    slot.restarts += 1
                    start(slot)
            if view is not None:
                view.refresh()
        for slot in slots:
            _reap_dead_worker(store, slot)
        return False
    except KeyboardInterrupt:
        with interrupts_ignored():  # a second Ctrl-C or SIGTERM must not cut the clean-up short
            # Before the workers are asked to stop: a Ctrl-C that landed inside one of this process's writes (failing
            # a dead worker's run) left its transaction open. It held the write lock that the workers need to hand
            # their runs back (they waited until STOP_GRACE_S killed them), and the reads below saw its uncommitted
            # 'failed', so that run was not handed back either and stayed 'running'.
            store.drop_cut_write()
            _stop_workers(slots)
            for slot in slots:
                if slot.process is not None:  # None: a start that the Ctrl-C cut
                    for run_id in store.running_owned_by(slot.process.pid):
                        store.release(run_id, pid=slot.process.pid)
        return True


def _reap_dead_worker(store: Store, slot: _Slot) -> bool:
    """If the slot's worker died abnormally, fail the run it held. True when it died that way (now handled)."""
    process = slot.process
    if process is None or process.is_alive() or process.exitcode in (0, None):
        return False
    code = process.exitcode
    cause = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
    for run_id in store.running_owned_by(process.pid):
        store.record_failure(
            run_id,
            f"worker process {process.pid} on {slot.device} died ({cause}) during this run; "
            f"a crash in native code or running out of host memory are the usual causes",
            device=slot.device, pid=process.pid,
        )
    slot.process = _Finished(process.pid)
    return True


class _Finished:
    """Stands in for a reaped worker process so that it is reported once."""

    exitcode = 0

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def is_alive(self) -> bool:
        return False


def _stop_workers(slots: list[_Slot]) -> None:
    """Ctrl-C: ask every worker to stop, wait a little, then kill the stragglers. SIGTERM, not SIGINT: a sweep
    started where SIGINT is ignored (`mqar sweep &`) has workers that ignore it, which sat out the grace period
    and were killed."""
    for slot in slots:
        if slot.process is not None and slot.process.is_alive():
            try:
                os.kill(slot.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + STOP_GRACE_S
    for slot in slots:
        if isinstance(slot.process, multiprocessing.process.BaseProcess):
            slot.process.join(max(0.0, deadline - time.monotonic()))
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join()
