"""The Ray backend on a local CPU instance: results come back to the driver, which alone writes the store."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path

import pytest

from mqar.results import load, load_epochs
from mqar.sweep import run_sweep

from test_sweep import TINY_RECIPE, check_crash_fails_one_run_and_retry_recovers_it, tiny_spec
from test_sweep_fakes import CHECKPOINT_THEN_FAIL_SEED, FAIL_AFTER_FIRST_EPOCH_SEED, FAIL_SEED, fake_train

ray = pytest.importorskip("ray")
TESTS_DIR = Path(__file__).resolve().parent


def _put_tests_on_workers_path(monkeypatch):
    """Ray workers import the fake training function by module name: the tests folder goes on their path. They take
    their environment from the instance, so call this before ray.init."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]))


def _start_private_ray(**resources):
    """A Ray instance of this test's own. address="local": a bare ray.init() joins the cluster a `ray start` left
    running on this machine (and refuses num_cpus there), so every test failed while one ran."""
    ray.init(address="local", include_dashboard=False, log_to_driver=False, **resources)


@contextlib.contextmanager
def _watching(store: Path, read, look):
    """While the body runs, call look(read()) every 0.1 s from a thread, as another process reading the store would,
    once the store can be read."""
    done = threading.Event()

    def watch():
        while not done.is_set():
            if store.exists():
                try:
                    seen = read()
                except Exception:  # the store is being created
                    seen = None
                if seen is not None:
                    look(seen)
            done.wait(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def _run_sweep_within(timeout_s: float, *args, **kwargs):
    """run_sweep in a daemon thread, waited for at most timeout_s: its summary, or None while it still runs (a hang
    the test reports rather than waits out)."""
    summaries = []
    sweep = threading.Thread(daemon=True, target=lambda: summaries.append(run_sweep(*args, **kwargs)))
    sweep.start()
    sweep.join(timeout=timeout_s)
    return summaries[0] if summaries else None


@pytest.fixture
def local_ray(monkeypatch, tmp_path):
    # The crash marker (test_sweep_fakes) is set before the instance starts, for the same reason.
    _put_tests_on_workers_path(monkeypatch)
    monkeypatch.setenv("MQAR_FAKE_CRASH_MARKER", str(tmp_path / "crashed-once"))
    _start_private_ray(num_cpus=2)
    yield
    ray.shutdown()


def test_ray_backend_runs_the_grid_and_records_failures(tmp_path, local_ray):
    store = tmp_path / "s.db"
    spec = tiny_spec(seeds=(0, FAIL_SEED))
    summary = run_sweep(spec, store, backend="ray", train_fn=fake_train, cache_dir=tmp_path / "cache")
    assert (summary.done, summary.failed, summary.pending, summary.running) == (2, 2, 0, 0)
    runs = load(store, sweep="t")
    assert runs.run_id.is_unique and len(runs) == 4
    assert runs[runs.status == "failed"].error.str.contains("fake failure").all()
    assert len(load_epochs(store)) == 2 * TINY_RECIPE.epochs
    again = run_sweep(spec, store, backend="ray", train_fn=fake_train, cache_dir=tmp_path / "cache")
    assert again.finished_now == 0


def test_ray_workers_epochs_reach_the_store_while_their_runs_train(tmp_path, local_ray):
    # The run fails after its first epoch: that epoch is stored all the same, so it came through the collector
    # while the run was going, not with the result (a failed run has none).
    store = tmp_path / "s.db"
    run_sweep(tiny_spec(seeds=(FAIL_AFTER_FIRST_EPOCH_SEED,), d_models=(16,)), store, backend="ray",
              train_fn=fake_train, cache_dir=tmp_path / "cache")
    failed = load(store, sweep="t")
    assert list(failed.status) == ["failed"]
    assert list(load_epochs(store, failed.run_id).epoch) == [1]


def test_the_driver_stores_reported_epochs_while_runs_go_on(tmp_path, monkeypatch):
    from mqar.results import progress_table
    from mqar.sweep import ray_backend

    _put_tests_on_workers_path(monkeypatch)
    monkeypatch.setenv("MQAR_FAKE_SLEEP", "1.5")  # per epoch; 2 epochs
    monkeypatch.setattr(ray_backend, "PROGRESS_S", 0.2)
    store = tmp_path / "s.db"
    seen: set = set()  # (run id, epoch) of running runs, as another process reading the store would see them

    def look(progress):
        seen.update((row.run_id, int(row.epoch)) for row in progress.itertuples() if row.epoch > 0)

    _start_private_ray(num_cpus=1)
    try:
        with _watching(store, lambda: progress_table(store), look):
            run_sweep(tiny_spec(seeds=(0,), d_models=(16,)), store, backend="ray", train_fn=fake_train,
                      cache_dir=tmp_path / "cache")
    finally:
        ray.shutdown()
    assert any(epoch == 1 for _, epoch in seen), seen  # epoch 1 was in the store while epoch 2 trained


@pytest.fixture
def local_ray_with_gpus(monkeypatch):
    """A local Ray instance that advertises 2 GPUs (none exist; the fake training never touches CUDA)."""
    _put_tests_on_workers_path(monkeypatch)
    _start_private_ray(num_cpus=4, num_gpus=2)
    yield
    ray.shutdown()


def test_gpu_runs_reuse_one_process_per_slot(tmp_path, local_ray_with_gpus):
    """Ray starts a fresh process per GPU task by default; mqar's actors keep one per GPU slot for all their runs."""
    from mqar.sweep.ray_backend import _cpu_share

    assert _cpu_share(1) == 1.0  # 4 CPUs for 2 slots: a whole CPU each, as on the GPUs measured
    store = tmp_path / "s.db"
    summary = run_sweep(tiny_spec(seeds=(0, 1, 2, 3)), store, backend="ray", runs_per_device=1, train_fn=fake_train,
                        cache_dir=tmp_path / "cache")
    assert summary.done == 8
    runs = load(store)
    pids = {json.loads(versions)["pid"] for versions in runs.versions}
    assert len(pids) <= 2  # two GPU slots
    assert set(runs.device) == {"cuda:0"}  # each actor sees only its own GPU


def test_a_killed_ray_worker_fails_its_run_only_and_retry_failed_recovers_it(tmp_path, local_ray):
    check_crash_fails_one_run_and_retry_recovers_it(tmp_path, "Ray worker failed", backend="ray")


def test_gpu_slots_beyond_the_cpus_still_run(tmp_path, monkeypatch):
    """1 CPU, 1 GPU, 2 runs per GPU: both actors start (half a CPU each), every run finishes. When each actor asked
    for a whole CPU, the second never started and the sweep waited forever for its run."""
    from mqar.sweep.ray_backend import _cpu_share

    _put_tests_on_workers_path(monkeypatch)
    _start_private_ray(num_cpus=1, num_gpus=1)
    assert _cpu_share(2) == 0.5
    try:
        summary = _run_sweep_within(120, tiny_spec(seeds=(0, 1)), tmp_path / "s.db", backend="ray",
                                    runs_per_device=2, train_fn=fake_train, cache_dir=tmp_path / "cache")
        assert summary is not None, "the sweep did not finish in 120 s"
        assert summary.done == 4
    finally:
        ray.shutdown()


def test_an_address_nothing_answers_on_is_a_user_error_at_once(tmp_path):
    # ray.init retried an unreachable HOST:PORT for about 12 minutes, then raised a RuntimeError (a traceback).
    import socket
    import threading

    from mqar.errors import UserError

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    errors = []

    def sweep():
        try:
            run_sweep(tiny_spec(), tmp_path / "s.db", backend="ray", address=f"127.0.0.1:{port}",
                      train_fn=fake_train, cache_dir=tmp_path / "cache")
        except Exception as error:
            errors.append(error)

    thread = threading.Thread(target=sweep, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert errors, "run_sweep was still trying to reach the address after 30 s"
    assert isinstance(errors[0], UserError) and "cannot reach a Ray cluster" in str(errors[0])
    assert not (tmp_path / "s.db").exists()
    assert not ray.is_initialized()


def test_idle_actors_give_their_cpus_back_while_other_runs_go_on(tmp_path, monkeypatch):
    # An actor with no run left to take kept its CPU until the whole sweep ended. Two drivers on one cluster (two
    # `mqar sweep` on one store) could then deadlock: each held an idle actor's CPU while its other actor waited
    # for the CPU the other driver held.
    _put_tests_on_workers_path(monkeypatch)
    monkeypatch.setenv("MQAR_FAKE_SLEEP", "2")  # per epoch; 2 epochs
    store = tmp_path / "s.db"
    spec = tiny_spec(seeds=(0, FAIL_SEED), d_models=(16,))  # the FAIL_SEED run ends at once, the other goes on
    free_cpus_after_the_failure = []

    def look(statuses):
        if sorted(statuses) == ["failed", "running"]:
            free_cpus_after_the_failure.append(ray.available_resources().get("CPU", 0.0))

    _start_private_ray(num_cpus=2)
    try:
        with _watching(store, lambda: load(store, sweep="t").status, look):
            summary = run_sweep(spec, store, backend="ray", train_fn=fake_train, cache_dir=tmp_path / "cache")
    finally:
        ray.shutdown()
    assert (summary.done, summary.failed) == (1, 1)
    assert free_cpus_after_the_failure and max(free_cpus_after_the_failure) >= 1.0, free_cpus_after_the_failure


def test_a_killed_epoch_collector_fails_no_run_and_the_sweep_goes_on(tmp_path, local_ray, monkeypatch):
    # The collector actor had no restarts: once its process died, the driver's next take() raised ActorDiedError
    # out of run_sweep (the sweep ended with a traceback) and the workers' reports failed the runs they came from.
    from mqar.sweep import ray_backend

    from test_sweep_fakes import dying_epoch_collector

    monkeypatch.setattr(ray_backend, "EpochCollector", dying_epoch_collector())
    store = tmp_path / "s.db"
    summary = run_sweep(tiny_spec(seeds=(0, 1)), store, backend="ray", train_fn=fake_train,
                        cache_dir=tmp_path / "cache")
    assert (tmp_path / "crashed-once").exists()  # the collector did die
    assert (summary.done, summary.failed, summary.pending, summary.running) == (4, 0, 0, 0)
    assert len(load_epochs(store)) == 4 * TINY_RECIPE.epochs


def test_a_relative_store_keeps_its_checkpoints_beside_it(tmp_path, local_ray, monkeypatch):
    # The checkpoint folder went to the workers as a relative path, so they wrote it under their own working
    # directory (the one Ray was started from, e.g. where `ray start` ran), not beside the store: a resume from
    # elsewhere started the run afresh, and deleting <store>.checkpoints did not start it afresh.
    monkeypatch.chdir(tmp_path)  # Ray's workers were started from the test's first working directory
    summary = run_sweep(tiny_spec(seeds=(CHECKPOINT_THEN_FAIL_SEED,), d_models=(16,)), "s.db", backend="ray",
                        train_fn=fake_train, cache_dir="cache")
    assert summary.failed == 1
    run_id = load(tmp_path / "s.db").run_id.iloc[0]
    assert (tmp_path / "s.db.checkpoints" / f"{run_id}.pt").exists()
    assert (tmp_path / "cache").is_dir()


def test_a_run_finished_when_ctrl_c_is_handled_keeps_its_result(tmp_path, local_ray, monkeypatch):
    # Ctrl-C while a result had come back but was not yet recorded handed that run back to 'pending' with the
    # unfinished ones: the resumed sweep trained it again, from scratch (a finished run's checkpoint is gone).
    from mqar.sweep import ray_backend

    def interrupt(store, collector):  # called once a result is ready, before it is recorded
        raise KeyboardInterrupt

    monkeypatch.setattr(ray_backend, "_store_reported_epochs", interrupt)
    monkeypatch.setattr(ray_backend, "PROGRESS_S", 1e9)  # only a ready result calls it
    store = tmp_path / "s.db"
    summary = run_sweep(tiny_spec(seeds=(0,), d_models=(16,)), store, backend="ray", train_fn=fake_train,
                        cache_dir=tmp_path / "cache")
    assert summary.interrupted
    assert (summary.done, summary.pending, summary.running) == (1, 0, 0)


def test_without_an_address_the_sweep_starts_its_own_instance_not_the_one_ray_start_left(tmp_path, monkeypatch):
    # Without --address, ray.init() joined whatever cluster `ray start` last recorded on this machine (ray_current_
    # cluster in Ray's temp folder): the sweep went to a cluster the user did not name (or, that cluster gone, hung
    # trying to reach it). Here the record names an address nothing answers on.
    import shutil
    import socket
    import tempfile

    _put_tests_on_workers_path(monkeypatch)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    ray_tmp = tempfile.mkdtemp(prefix="mqar-ray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    monkeypatch.setenv("RAY_TMPDIR", ray_tmp)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    os.makedirs(os.path.join(ray_tmp, "ray"))
    with open(os.path.join(ray_tmp, "ray", "ray_current_cluster"), "w") as record:
        record.write(f"127.0.0.1:{port}")
    try:
        summary = _run_sweep_within(90, tiny_spec(seeds=(0,), d_models=(16,)), tmp_path / "s.db", backend="ray",
                                    train_fn=fake_train, cache_dir=tmp_path / "cache")
        assert summary is not None, "the sweep was still trying to join the recorded cluster after 90 s"
        assert summary.done == 1
    finally:
        if ray.is_initialized():
            ray.shutdown()
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_without_an_address_ray_address_names_the_cluster(tmp_path, monkeypatch):
    # `ray job submit` names the job's cluster in RAY_ADDRESS: a sweep started there goes to it, not to an instance
    # of its own, and a wrong one is named as coming from RAY_ADDRESS.
    import socket

    from mqar.errors import UserError

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    with pytest.raises(UserError, match=r"from RAY_ADDRESS.*unset RAY_ADDRESS"):
        run_sweep(tiny_spec(), tmp_path / "s.db", backend="ray", train_fn=fake_train, cache_dir=tmp_path / "cache")
    assert not ray.is_initialized()


@pytest.mark.parametrize("runs_per_device, actors, threads", [(1, 1, "2"), (4, 4, "1")])
def test_runs_per_device_on_a_cpu_only_cluster_shares_each_nodes_cpus(tmp_path, monkeypatch, runs_per_device,
                                                                      actors, threads):
    # As the local executor on the CPU: N runs at once per machine, each with its cores / N threads. Ray's CPU
    # actors asked for one CPU each whatever --runs-per-device said: 1 ran two runs at once on 2 CPUs, 4 ran two.
    _put_tests_on_workers_path(monkeypatch)
    monkeypatch.setenv("MQAR_FAKE_SLEEP", "0.5")  # per epoch; 2 epochs: the four runs overlap when they can
    _start_private_ray(num_cpus=2)
    try:
        summary = run_sweep(tiny_spec(seeds=(0, 1)), tmp_path / "s.db", backend="ray", runs_per_device=runs_per_device,
                            train_fn=fake_train, cache_dir=tmp_path / "cache")
    finally:
        ray.shutdown()
    assert summary.done == 4
    versions = [json.loads(versions) for versions in load(tmp_path / "s.db").versions]
    assert len({v["pid"] for v in versions}) == actors
    assert {v["threads"] for v in versions} == {threads}  # Ray sets OMP_NUM_THREADS to an actor's whole CPUs


def test_no_run_is_claimed_for_an_actor_the_cluster_has_no_room_for(tmp_path, monkeypatch):
    # The driver claimed a run for every actor it asked for, up to the cluster's whole capacity. When another driver
    # held part of the cluster (here a stand-in actor holding one of the two CPUs), the runs claimed for actors Ray
    # could not place yet sat 'running' in the store, heartbeats and all, while nothing trained them and no other
    # `mqar sweep` could take them, until the other driver let go of its CPUs.
    _put_tests_on_workers_path(monkeypatch)
    monkeypatch.setenv("MQAR_FAKE_SLEEP", "1")  # per epoch; 2 epochs
    store = tmp_path / "s.db"
    running_at_once = []

    _start_private_ray(num_cpus=2)
    other_driver = ray.remote(num_cpus=1)(type("Holder", (), {"ping": lambda self: True})).remote()
    try:
        ray.get(other_driver.ping.remote())  # it holds its CPU
        with _watching(store, lambda: load(store, sweep="t").status,
                       lambda statuses: running_at_once.append(int((statuses == "running").sum()))):
            summary = run_sweep(tiny_spec(seeds=(0,)), store, backend="ray", train_fn=fake_train,
                                cache_dir=tmp_path / "cache")
    finally:
        ray.shutdown()
    assert summary.done == 2
    assert max(running_at_once) == 1, running_at_once  # one CPU free: one run at a time


def test_actors_that_cannot_start_fail_the_runs_with_the_reason_and_the_sweep_ends(tmp_path, local_ray, monkeypatch):
    # Runs are claimed only for started actors: one that never starts must not leave the driver starting actors
    # forever. Each failed start fails one run with its reason, as when runs were claimed before their actors started.
    from mqar.sweep import ray_backend

    from test_sweep_fakes import unstartable_run_worker

    monkeypatch.setattr(ray_backend, "RunWorker", unstartable_run_worker())
    store = tmp_path / "s.db"
    summary = run_sweep(tiny_spec(seeds=(0,)), store, backend="ray", train_fn=fake_train, cache_dir=tmp_path / "cache")
    assert (summary.done, summary.failed, summary.pending, summary.running) == (0, 2, 0, 0)
    errors = load(store).error
    assert errors.str.contains("Ray worker failed to start").all()
    assert errors.str.contains("cannot start a worker").all()
