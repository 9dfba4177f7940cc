"""Sweeps: grid expansion and ids, the local executor (failures, resume after SIGKILL, retry), the data cache."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mqar.data.spec import TaskSpec
from mqar.errors import UserError
from mqar.results import load, load_epochs
from mqar.runs import Recipe
from mqar.sweep import Store, SweepSpec, load_sweep_spec, preset_names, run_sweep, tasks_from_lists
from mqar.sweep.spec import parse_list

from test_sweep_fakes import CRASH_SEED, FAIL_AFTER_FIRST_EPOCH_SEED, FAIL_SEED, NAN_SEED, fake_train

TESTS_DIR = Path(__file__).resolve().parent
TINY_RECIPE = Recipe(epochs=2, num_train_examples=16, num_valid_examples=8, num_test_examples=8, batch_size=8)
TINY_TASK = TaskSpec(seq_len=16, num_kv_pairs=2, vocab_size=32)


def tiny_spec(name: str = "t", seeds=(0, 1), archs=("attention",), d_models=(16, 32), **kwargs) -> SweepSpec:
    return SweepSpec(name=name, archs=archs, d_models=d_models, tasks=(TINY_TASK,), lrs=(1e-3,), seeds=seeds,
                     recipe=TINY_RECIPE, **kwargs)


# Grid ---------------------------------------------------------------------------------------------------------
def test_expand_order_size_and_stable_ids():
    spec = SweepSpec(name="g", archs=("based", "attention"), d_models=(24, 48),
                     tasks=tuple(tasks_from_lists([64, 128], [4, 8])), lrs=(1e-3, 3e-3), seeds=(0, 1, 2))
    configs = spec.expand()
    assert len(configs) == spec.size == 2 * 2 * 2 * 2 * 3
    assert [(c.arch, c.d_model) for c in configs[:1]] == [("based", 24)]
    assert len({c.id for c in configs}) == len(configs)
    again = SweepSpec.from_dict(spec.to_dict())
    assert [c.id for c in again.expand()] == [c.id for c in configs]  # same grid, same ids
    assert spec.grid_id == again.grid_id


def test_presets_load_and_overrides_rename_the_sweep():
    quick = load_sweep_spec("quick")
    assert quick.name == "quick" and quick.size >= 3
    same = quick.with_overrides(archs=list(quick.archs))
    assert same.name == "quick"
    changed = quick.with_overrides(d_models=[48], recipe_overrides={"epochs": 1})
    assert changed.name == f"quick-{changed.grid_id}" and changed.recipe.epochs == 1
    assert quick.with_overrides(d_models=[48], name="mine").name == "mine"
    figure = load_sweep_spec("rebased-figure1")
    assert {t.seq_len: t.num_kv_pairs for t in figure.tasks}[512] == 128


def test_recipe_by_seq_len_sets_fields_for_one_length():
    spec = SweepSpec.from_dict({
        "archs": ["attention"], "d_models": [16], "lrs": [1e-3],
        "tasks": [{"seq_len": 16, "num_kv_pairs": 2}, {"seq_len": 32, "num_kv_pairs": 2}],
        "recipe": {"batch_size": 64, "epochs": 3}, "recipe_by_seq_len": {"32": {"batch_size": 16}},
    })
    assert [(c.task.seq_len, c.recipe.batch_size, c.recipe.epochs) for c in spec.expand()] == [(16, 64, 3), (32, 16, 3)]
    again = SweepSpec.from_dict(spec.to_dict())
    assert again.recipe_by_seq_len == {32: {"batch_size": 16}} and again.grid_id == spec.grid_id
    assert [c.id for c in again.expand()] == [c.id for c in spec.expand()]
    # a flag sets its field for every run; other fields of the length stay
    flagged = spec.with_overrides(recipe_overrides={"batch_size": 8})
    assert {c.recipe.batch_size for c in flagged.expand()} == {8} and flagged.recipe_by_seq_len == {}
    assert spec.with_overrides(recipe_overrides={"epochs": 1}).recipe_by_seq_len == {32: {"batch_size": 16}}
    # other tasks from flags: the entries of lengths no task has any more go
    assert spec.with_overrides(tasks=tasks_from_lists([16], [2])).recipe_by_seq_len == {}
    # a sweep without it keeps its grid id (its to_dict has no such key)
    assert "recipe_by_seq_len" not in load_sweep_spec("quick").to_dict()


@pytest.mark.parametrize("by_seq_len, message", [
    ({"64": {"batch_size": 8}}, "names seq_len '64', which no task of the sweep has (its seq_lens: 16)"),
    ({"16": {"batch": 8}}, "recipe_by_seq_len.16: unknown key(s) 'batch'"),
    ({"16": {"batch_size": 0}}, "recipe_by_seq_len.16: recipe.batch_size must be at least 1"),
    ({"16": {}}, "must be a non-empty table of Recipe fields"),
    ([16], "must be a table of seq_len"),
])
def test_recipe_by_seq_len_errors_name_the_entry(by_seq_len, message):
    with pytest.raises(UserError, match=re.escape(message)):
        SweepSpec.from_dict({"archs": ["attention"], "d_models": [16], "lrs": [1e-3],
                             "tasks": [{"seq_len": 16, "num_kv_pairs": 2}], "recipe_by_seq_len": by_seq_len})


@pytest.mark.parametrize("preset", ["zoology-figure2", "zoology-figure2-reduced"])
def test_zoology_presets_take_zoologys_batch_per_length(preset):
    # zoology/experiments/paper/zoology_figure2.py @194a712: 512 up to L=128, 256 at L=256, 128 at L=512
    batches = {config.task.seq_len: config.recipe.batch_size for config in load_sweep_spec(preset).expand()}
    assert batches == {64: 512, 128: 512, 256: 256, 512: 128}


def test_every_preset_loads_under_its_file_name():
    for name in preset_names():
        spec = load_sweep_spec(name)
        assert spec.name == name and spec.size == len({config.id for config in spec.expand()}) > 0


@pytest.mark.parametrize(
    "follow_up, reduced, shared_part, count",
    [
        ("rebased-table1-lr-check", "rebased-table1-reduced", lambda config: config.lr == 3e-3, 12),
        ("rebased-figure1-d128-lr-check", "rebased-figure1-reduced", lambda config: config.lr == 3e-3, 2),
        ("rebased-figure1-d128-seeds", "rebased-figure1-reduced", lambda config: config.seed == 0, 2),
    ],
    ids=["table1-lr-check", "figure1-lr-check", "figure1-seeds"],
)
def test_a_follow_up_sweep_reuses_the_reduced_sweeps_runs(follow_up, reduced, shared_part, count):
    # A follow-up's runs at the reduced protocol's lr and seed must be the reduced sweep's runs (same ids), or it
    # would train them again; the rest of its grid is new.
    reduced_ids = {config.id for config in load_sweep_spec(reduced).expand()}
    follow_up_configs = load_sweep_spec(follow_up).expand()
    shared = {config.id for config in follow_up_configs if shared_part(config)}
    assert len(shared) == count and shared <= reduced_ids
    assert not {config.id for config in follow_up_configs if not shared_part(config)} & reduced_ids


def test_spec_errors_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="unknown arch"):
        tiny_spec(archs=("transformerx",))
    path = tmp_path / "s.toml"
    path.write_text('archs = ["attention"]\nd_models = [16]\nlrs = [1e-3]\ntasks = "rebased"\nepochs = 3\n')
    with pytest.raises(UserError, match="unknown key.*'epochs'"):
        load_sweep_spec(path)
    path.write_text('archs = ["attention"]\nd_models = [16]\nlrs = [1e-3]\ntasks = "rebased"\n[recipe]\nepoch = 3\n')
    with pytest.raises(UserError, match="unknown key.*'epoch'"):
        load_sweep_spec(path)
    for recipe, message in (("epochs = 1.5", "recipe.epochs must be an integer"),  # every run failed on it
                            ('batch_size = "32"', "recipe.batch_size must be an integer"),
                            ('weight_decay = "0.1"', "recipe.weight_decay must be a number"),
                            # failed in AdamW, or in numpy's SeedSequence, once the data were made
                            ("weight_decay = -0.1", "recipe.weight_decay must be a finite number ≥ 0"),
                            ("weight_decay = nan", "recipe.weight_decay must be a finite number ≥ 0"),
                            ("data_seed = -1", "recipe.data_seed must be ≥ 0")):
        path.write_text(f'archs = ["attention"]\nd_models = [16]\nlrs = [1e-3]\ntasks = "rebased"\n[recipe]\n{recipe}\n')
        with pytest.raises(UserError, match=message):
            load_sweep_spec(path)
    for task in ("3", '"x"', "[1, 2]"):  # `task` not a table ended in a TypeError / ValueError traceback
        path.write_text(f'archs = ["attention"]\nd_models = [16]\nlrs = [1e-3]\ntasks = "rebased"\ntask = {task}\n')
        with pytest.raises(UserError, match="task must be a table"):
            load_sweep_spec(path)
    with pytest.raises(UserError, match="malformed --d-models"):
        parse_list("64,,x", int, "--d-models", "64,128")
    with pytest.raises(UserError, match="pair up"):
        tasks_from_lists([64, 128, 256], [4, 8])
    with pytest.raises(UserError, match="no sweep preset"):
        load_sweep_spec("no-such-preset")


def test_nested_configs_given_as_dicts_are_user_errors():
    """From Python: a dict where a TaskSpec or Recipe belongs was a TypeError (unhashable dict) or was accepted and
    failed later in expand() / to_dict() with an AttributeError."""
    with pytest.raises(UserError, match="tasks must be TaskSpecs"):
        SweepSpec(name="t", archs=("attention",), d_models=(16,), tasks=(TINY_TASK.to_dict(),), lrs=(1e-3,))
    with pytest.raises(UserError, match="recipe must be a Recipe"):
        SweepSpec(name="t", archs=("attention",), d_models=(16,), tasks=(TINY_TASK,), lrs=(1e-3,),
                  recipe=TINY_RECIPE.to_dict())


def test_numpy_arrays_and_scalars_make_the_same_grid():
    """From a notebook: seeds=np.arange(2) was refused ('must be a list'), and a list of numpy scalars too ('seeds must
    be integers', 'd_model must be an integer', 'learning rates must be positive finite numbers')."""
    import numpy as np

    spec = SweepSpec(name="t", archs=np.array(["attention"]), d_models=np.array([16, 32]), tasks=(TINY_TASK,),
                     lrs=[np.float64(1e-3)], seeds=np.arange(2), recipe=TINY_RECIPE)
    assert spec == tiny_spec()
    assert [config.id for config in spec.expand()] == [config.id for config in tiny_spec().expand()]
    assert SweepSpec(name="t", archs=("attention",), d_models=[np.int64(16)], tasks=(TINY_TASK,), lrs=[1e-3],
                     seeds=[np.int32(0)], recipe=TINY_RECIPE).size == 1


# Running ------------------------------------------------------------------------------------------------------
def test_failures_are_recorded_and_the_sweep_goes_on(tmp_path):
    store = tmp_path / "s.db"
    spec = tiny_spec(seeds=(0, FAIL_SEED, NAN_SEED))
    summary = run_sweep(spec, store, devices="cpu", runs_per_device=2, train_fn=fake_train, cache_dir=tmp_path / "cache")
    assert (summary.total, summary.done, summary.failed, summary.pending) == (6, 2, 4, 0)
    runs = load(store, sweep="t")
    failed = runs[runs.status == "failed"]
    assert set(failed.seed) == {FAIL_SEED, NAN_SEED}
    assert failed.error.str.contains("Traceback").all()
    assert failed[failed.seed == NAN_SEED].error.str.contains("nan").all()
    assert len(os.listdir(tmp_path / "cache")) == 1  # one task: one cached dataset for all six runs
    # The same call again: nothing to do, nothing duplicated.
    again = run_sweep(spec, store, devices="cpu", train_fn=fake_train, cache_dir=tmp_path / "cache")
    assert again.finished_now == 0 and len(load(store)) == 6
    # --retry-failed reruns them (they fail again: same fake), attempts count up.
    retried = run_sweep(spec, store, devices="cpu", retry_failed=True, train_fn=fake_train, cache_dir=tmp_path / "cache")
    assert retried.retried == 4 and retried.finished_now == 4
    assert set(load(store).query("status == 'failed'").attempts) == {2}
    assert len(load_epochs(store)) == 2 * TINY_RECIPE.epochs


def test_local_workers_store_each_epoch_as_it_ends(tmp_path):
    # The run fails after its first epoch: the epoch it reported is in the store all the same, so it was written
    # while the run trained, not with the result.
    store = tmp_path / "s.db"
    spec = tiny_spec(seeds=(FAIL_AFTER_FIRST_EPOCH_SEED,), d_models=(16,))
    run_sweep(spec, store, devices="cpu", train_fn=fake_train, cache_dir=tmp_path / "cache")
    failed = load(store, sweep="t")
    assert list(failed.status) == ["failed"]
    epochs = load_epochs(store, failed.run_id)
    assert list(epochs.epoch) == [1] and epochs.valid_accuracy.iloc[0] == pytest.approx(16 / 128 / 2)


def test_a_killed_worker_fails_its_run_only_and_retry_failed_recovers_it(tmp_path, monkeypatch):
    """A worker SIGKILLed mid-run: that run is failed (with the signal), the others finish, a replacement worker takes
    over; `--retry-failed` then trains it once more: nothing lost, nothing else trained twice."""
    monkeypatch.setenv("MQAR_FAKE_CRASH_MARKER", str(tmp_path / "crashed-once"))
    check_crash_fails_one_run_and_retry_recovers_it(tmp_path, "killed by signal 9", devices="cpu", runs_per_device=1)


def check_crash_fails_one_run_and_retry_recovers_it(tmp_path, message: str, **executor) -> None:
    """The killed-worker scenario on any executor (`executor`: run_sweep's backend options); `message`: what the
    failed run's error says. MQAR_FAKE_CRASH_MARKER must point into tmp_path before the workers start."""
    store = tmp_path / "s.db"
    spec = tiny_spec(seeds=(0, CRASH_SEED, 1))
    summary = run_sweep(spec, store, train_fn=fake_train, cache_dir=tmp_path / "cache", **executor)
    assert (summary.done, summary.failed, summary.pending, summary.running) == (5, 1, 0, 0)  # one crash
    failed = load(store).query("status == 'failed'")
    assert set(failed.seed) == {CRASH_SEED} and failed.error.str.contains(message).all()
    retried = run_sweep(spec, store, retry_failed=True, train_fn=fake_train, cache_dir=tmp_path / "cache", **executor)
    # The marker exists now, so the crashed run trains normally this time.
    assert (retried.retried, retried.done, retried.failed) == (1, 6, 0)
    runs = load(store)
    assert runs.run_id.is_unique and sorted(runs.attempts) == [1, 1, 1, 1, 1, 2]


DRIVER = textwrap.dedent(
    """
    import sys
    from mqar.sweep import run_sweep
    from test_sweep import tiny_spec
    from test_sweep_fakes import fake_train
    run_sweep(tiny_spec(seeds=(0, 1, 2, 3, 4)), sys.argv[1], devices="cpu", runs_per_device=1, train_fn=fake_train,
              cache_dir=sys.argv[2])
    """
)


def _wait_until_dead(pid: int) -> None:
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    pytest.fail(f"worker {pid} outlived its killed driver")


def test_resume_after_sigkill_loses_and_duplicates_nothing(tmp_path):
    store, cache = tmp_path / "s.db", tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]),
           "MQAR_FAKE_SLEEP": "0.25"}
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(store), str(cache)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    counts = {}
    while time.monotonic() < deadline:
        if store.exists():
            with Store(store) as db:
                counts = db.counts("t")
            if counts["done"] >= 2 and counts["running"] == 1:
                break
        time.sleep(0.1)
    assert counts.get("done", 0) >= 2, driver.stderr.read() if driver.poll() is not None else counts
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    with Store(store) as db:
        (worker_pid,) = [row["pid"] for row in db.query("SELECT pid FROM runs WHERE status = 'running'")]
    _wait_until_dead(worker_pid)  # the worker dies with its driver (PR_SET_PDEATHSIG)
    summary = run_sweep(tiny_spec(seeds=(0, 1, 2, 3, 4)), store, devices="cpu", train_fn=fake_train, cache_dir=cache)
    assert summary.reclaimed == 1 and summary.done == 10 and summary.pending == 0
    runs = load(store, sweep="t")
    assert len(runs) == 10 and runs.run_id.is_unique and (runs.status == "done").all()
    epochs = load_epochs(store)
    assert len(epochs) == 10 * TINY_RECIPE.epochs and not epochs.duplicated(["run_id", "epoch"]).any()


INTERRUPTED_DRIVER = textwrap.dedent(
    """
    import signal, sys
    from mqar.sweep import run_sweep
    from test_sweep import tiny_spec
    from test_sweep_fakes import fake_train
    # As a terminal's Ctrl-C, or (argv[3] "ignore") as a sweep started in a script's background, which ignores SIGINT
    # (Python keeps that disposition, and a suite run as `pytest &` passes it on to this driver).
    signal.signal(signal.SIGINT, signal.SIG_IGN if sys.argv[3] == "ignore" else signal.default_int_handler)
    summary = run_sweep(tiny_spec(seeds=tuple(range(int(sys.argv[4])))), sys.argv[1], devices="cpu", runs_per_device=2,
                        train_fn=fake_train, cache_dir=sys.argv[2])
    print("interrupted" if summary.interrupted else "finished", summary.done, summary.pending, summary.running)
    """
)


def _interrupted_sweep(tmp_path, sigint: str, seeds: int) -> tuple[str, Path]:
    """Start INTERRUPTED_DRIVER, send its process group SIGINT once a run is done; its last line and the store."""
    store, cache = tmp_path / "s.db", tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]),
           "MQAR_FAKE_SLEEP": "0.25"}
    # Its own process group, so that SIGINT reaches the driver and its workers together, as Ctrl-C in a terminal.
    driver = subprocess.Popen([sys.executable, "-c", INTERRUPTED_DRIVER, str(store), str(cache), sigint, str(seeds)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if store.exists():
            with Store(store) as db:
                if db.counts("t")["done"] >= 1:
                    break
        time.sleep(0.1)
    os.killpg(driver.pid, signal.SIGINT)
    out, err = driver.communicate(timeout=60)
    assert driver.returncode == 0, err
    return out, store


def test_ctrl_c_stops_cleanly_and_hands_runs_back(tmp_path):
    out, store = _interrupted_sweep(tmp_path, "default", seeds=40)
    state, done, pending, running = out.split()[-4:]
    # 80 runs of 0.5 s on 2 workers: ~20 s of work, so the Ctrl-C lands mid-sweep even on a slow, busy machine
    # (with 10 runs a CI machine once finished all of them before the test saw the first one done).
    assert state == "interrupted" and int(running) == 0 and int(pending) > 0, out
    with Store(store) as db:
        assert db.counts("t")["running"] == 0 and db.counts("t")["done"] == int(done)


def test_ctrl_c_to_a_worker_just_after_its_claim_hands_the_run_back(tmp_path):
    """SIGINT to one worker between its claim's COMMIT and the worker noting the run (found by the kill/resume fuzzer):
    the worker exited 0 with the run 'running' under its dead pid; the driver, which fails only the runs of workers
    that die, left it so, and the sweep ended with '1 run(s) are still running in another process'."""
    import multiprocessing

    from test_sweep_fakes import worker_interrupted_after_claim

    store = tmp_path / "s.db"
    with Store(store) as db:
        db.register_sweep("t", tiny_spec().expand())
    worker = multiprocessing.get_context("spawn").Process(
        target=worker_interrupted_after_claim, args=(str(store), "t", str(tmp_path / "s.db.checkpoints")))
    worker.start()
    worker.join(60)
    assert worker.exitcode == 0
    with Store(store) as db:
        assert db.counts("t") == {"pending": 4, "running": 0, "done": 0, "failed": 0}
        assert db.query("SELECT attempts FROM runs ORDER BY attempts")[-1][0] == 1  # it was claimed, then handed back


def test_ctrl_c_inside_the_drivers_own_write_neither_stalls_the_workers_nor_keeps_a_run(tmp_path, monkeypatch):
    """The driver's Ctrl-C landed between BEGIN and COMMIT of its record_failure for a dead worker's run (found by the
    kill/resume fuzzer): its open transaction kept the write lock from the workers handing their runs back until
    STOP_GRACE_S killed them, and its reads saw that run 'failed', so it was left 'running' when the sweep stopped."""
    from mqar.sweep import local

    monkeypatch.setenv("MQAR_FAKE_SLEEP", "0.5")
    monkeypatch.setattr(local, "STOP_GRACE_S", 6.0)
    reap = local._reap_dead_worker

    def ctrl_c_inside_a_write(store, slot):
        if store.counts("t")["running"] == 2:  # both workers mid-run: the write fails the first one's run
            store._conn.execute("BEGIN IMMEDIATE")
            store._conn.execute("UPDATE runs SET status = 'failed' WHERE pid = ?", (slot.process.pid,))
            raise KeyboardInterrupt
        return reap(store, slot)

    monkeypatch.setattr(local, "_reap_dead_worker", ctrl_c_inside_a_write)
    with Store(tmp_path / "s.db") as store:
        store.register_sweep("t", tiny_spec().expand())
        started = time.monotonic()
        assert local.run_local(store, "t", devices="cpu", runs_per_device=2, train_fn=fake_train,
                               cache_dir=str(tmp_path / "cache"), checkpoint_dir=str(tmp_path / "s.db.checkpoints"))
        stopped_in = time.monotonic() - started
        assert store.counts("t") == {"pending": 4, "running": 0, "done": 0, "failed": 0}
    assert stopped_in < local.STOP_GRACE_S  # the workers handed their runs back themselves


@pytest.mark.parametrize("cut_start", [2, 3])  # the second worker's first start; the crashed worker's replacement
def test_ctrl_c_while_a_worker_starts_stops_the_sweep_cleanly(tmp_path, monkeypatch, cut_start):
    """Ctrl-C inside the driver's Process.start() of a worker (found by the kill/resume fuzzer's author reading the
    code, reproduced here): a replacement's cut start left _stop_workers a process it could not join (AssertionError
    'can only join a started process'), and a cut first start escaped run_local, leaving the started workers' runs."""
    import multiprocessing.context

    from mqar.sweep import local

    monkeypatch.setenv("MQAR_FAKE_CRASH_MARKER", str(tmp_path / "crashed-once"))
    monkeypatch.setenv("MQAR_FAKE_SLEEP", "0.3")
    real_start, starts = multiprocessing.context.SpawnProcess.start, []

    def start(process):
        starts.append(process.name)
        if len(starts) == cut_start:
            raise KeyboardInterrupt
        return real_start(process)

    monkeypatch.setattr(multiprocessing.context.SpawnProcess, "start", start)
    with Store(tmp_path / "s.db") as store:
        store.register_sweep("t", tiny_spec(seeds=(CRASH_SEED, 0, 1)).expand())
        try:
            interrupted = local.run_local(store, "t", devices="cpu", runs_per_device=2, train_fn=fake_train,
                                          cache_dir=str(tmp_path / "cache"),
                                          checkpoint_dir=str(tmp_path / "s.db.checkpoints"))
        except KeyboardInterrupt:  # not pytest's to see: it would stop the whole session
            pytest.fail("the Ctrl-C escaped run_local")
        counts = store.counts("t")
    assert interrupted and len(starts) == cut_start and counts["running"] == 0, counts


def test_a_worker_whose_ctrl_c_is_swallowed_mid_run_still_hands_its_run_back_and_stops(tmp_path):
    """Ctrl-C reached a worker inside torch.save (its checkpoint), which turned it into a RuntimeError (found by the
    kill/resume fuzzer): the run was recorded failed, and the worker, its one interrupt spent, claimed and trained
    the rest of the sweep after the Ctrl-C, until the driver killed it after STOP_GRACE_S."""
    import multiprocessing

    from mqar.sweep import local
    from test_sweep_fakes import ctrl_c_swallowed_train

    store = tmp_path / "s.db"
    with Store(store) as db:
        db.register_sweep("t", tiny_spec().expand())
    worker = multiprocessing.get_context("spawn").Process(
        target=local._worker_main, args=(str(store), "t", "cpu", ctrl_c_swallowed_train, str(tmp_path / "cache"),
                                         str(tmp_path / "s.db.checkpoints"), 1, os.getpid()))
    worker.start()
    worker.join(60)
    assert worker.exitcode == 0
    with Store(store) as db:
        assert db.counts("t") == {"pending": 4, "running": 0, "done": 0, "failed": 0}
        assert sum(row[0] for row in db.query("SELECT attempts FROM runs")) == 1  # no run claimed after the Ctrl-C


def test_a_sweep_that_ignores_sigint_ignores_it_in_its_workers_too(tmp_path):
    # Its workers took SIGINT while it ignored it: they stopped, and it reported 'finished' with 78 runs pending.
    out, _ = _interrupted_sweep(tmp_path, "ignore", seeds=4)  # 8 runs: SIGINT comes after the first, mid-sweep
    assert out.split()[-4:] == ["finished", "8", "0", "0"], out


OVERLAPPING_DRIVER = textwrap.dedent(
    """
    import sys
    from mqar.sweep import run_sweep
    from test_sweep import tiny_spec
    from test_sweep_fakes import fake_train
    name, first_seed = sys.argv[3], int(sys.argv[4])
    summary = run_sweep(tiny_spec(name=name, seeds=tuple(range(first_seed, first_seed + 4))), sys.argv[1],
                        devices="cpu", runs_per_device=2, train_fn=fake_train, cache_dir=sys.argv[2])
    print(summary.done, summary.running)
    """
)


def test_two_sweeps_sharing_runs_at_once_train_each_run_once(tmp_path):
    # What `run-figure-on-device.sh` does with ALSO_SWEEP: a figure's sweep and a follow-up grid that shares runs
    # with it, on one store at the same time. Seeds 2 and 3 belong to both.
    store, cache = tmp_path / "s.db", tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]),
           "MQAR_FAKE_SLEEP": "0.2"}
    Store(store).close()  # both drivers open an existing store
    drivers = [subprocess.Popen([sys.executable, "-c", OVERLAPPING_DRIVER, str(store), str(cache), name, first],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for name, first in (("a", "0"), ("b", "2"))]
    for driver in drivers:
        out, err = driver.communicate(timeout=120)
        assert driver.returncode == 0, err
    runs = load(store)
    assert set(runs["sweep"]) == {"a", "b"} and (runs["status"] == "done").all()
    per_run = runs.drop_duplicates("run_id")
    assert len(per_run) == 12 and (per_run["attempts"] == 1).all()  # 6 seeds × 2 widths, each trained once
    epochs = load_epochs(store)
    assert len(epochs) == 12 * TINY_RECIPE.epochs and not epochs.duplicated(["run_id", "epoch"]).any()


def test_two_workers_share_the_queue(tmp_path, monkeypatch):
    monkeypatch.setenv("MQAR_FAKE_SLEEP", "0.2")  # long enough that the second worker is up before the queue is empty
    store = tmp_path / "s.db"
    summary = run_sweep(tiny_spec(seeds=(0, 1, 2, 3)), store, devices="cpu", runs_per_device=2,
                        train_fn=fake_train, cache_dir=tmp_path / "cache")
    assert summary.done == 8
    with Store(store) as db:
        pids = {row["pid"] for row in db.query("SELECT pid FROM runs")}
    assert len(pids) == 2


def test_real_trainer_end_to_end(tmp_path):
    store = tmp_path / "s.db"
    spec = tiny_spec(seeds=(0,), d_models=(16,))
    summary = run_sweep(spec, store, devices="cpu", runs_per_device=1, cache_dir=tmp_path / "cache")
    runs = load(store)
    assert summary.done == 1, runs.error.tolist()
    assert runs.best_valid_accuracy.between(0, 1).all() and (runs.epochs >= 1).all()
    assert (runs.device.str.startswith("cpu")).all()
    assert len(load_epochs(store, runs.run_id)) == runs.epochs.sum()


LONG_RECIPE = Recipe(epochs=20, num_train_examples=128, num_valid_examples=8, num_test_examples=8, batch_size=8,
                     early_stop_accuracy=1.0)  # never stops early: the run is long enough to be stopped mid-way

CHECKPOINTED_DRIVER = textwrap.dedent(
    """
    import sys
    from mqar.sweep import run_sweep
    from test_sweep import long_run_spec
    run_sweep(long_run_spec(), sys.argv[1], devices="cpu", runs_per_device=1, cache_dir=sys.argv[2])
    """
)


def long_run_spec() -> SweepSpec:
    return SweepSpec(name="long", archs=("attention",), d_models=(16,), tasks=(TINY_TASK,), lrs=(1e-3,), seeds=(0,),
                     recipe=LONG_RECIPE)


def test_a_killed_sweep_continues_its_run_from_the_checkpoint(tmp_path):
    """SIGKILL the sweep mid-run, then run it again: the run is picked up and continues after the last saved epoch
    (those epochs keep their original records, wall times included), with every epoch stored once."""
    from mqar.checkpoint import load_checkpoint, sweep_checkpoint_dir

    store, cache = tmp_path / "s.db", tmp_path / "cache"
    (config,) = long_run_spec().expand()
    checkpoint = sweep_checkpoint_dir(store) / f"{config.id}.pt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")])}
    driver = subprocess.Popen([sys.executable, "-c", CHECKPOINTED_DRIVER, str(store), str(cache)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    saved = None
    while time.monotonic() < deadline and driver.poll() is None:
        if checkpoint.exists():
            saved = load_checkpoint(checkpoint, config.id, "cpu")
            if saved is not None and len(saved["curve"]) >= 2:
                break
        time.sleep(0.02)
    assert driver.poll() is None, driver.stderr.read()  # the run must still be going when it is killed
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    with Store(store) as db:
        (worker_pid,) = [row["pid"] for row in db.query("SELECT pid FROM runs WHERE status = 'running'")]
    _wait_until_dead(worker_pid)  # it dies with its driver (PR_SET_PDEATHSIG)
    saved = load_checkpoint(checkpoint, config.id, "cpu")  # the last one the dead worker wrote
    kept = saved["curve"]
    assert 2 <= len(kept) < LONG_RECIPE.epochs

    summary = run_sweep(long_run_spec(), store, devices="cpu", runs_per_device=1, cache_dir=cache)
    assert summary.reclaimed == 1 and summary.done == 1
    epochs = load_epochs(store)
    assert list(epochs.epoch) == list(range(1, LONG_RECIPE.epochs + 1))
    stored = epochs.head(len(kept))
    assert list(stored.seconds) == [point["seconds"] for point in kept]  # continued, not trained again
    assert list(stored.train_loss) == [point["train_loss"] for point in kept]
    assert not checkpoint.parent.exists()  # the run's checkpoint is gone, and the emptied folder with it


def test_a_run_killed_after_training_before_its_result_is_stored_trains_nothing_again(tmp_path, monkeypatch):
    """train() deleted its checkpoint as it returned, before the worker stored the result: a worker killed (or a
    sweep stopped) in between left nothing to continue from, and the run was trained again from epoch 1. Now the
    checkpoint, of the last epoch too, goes once the result is stored: the retry only stores it."""
    import json

    from mqar.checkpoint import sweep_checkpoint_dir
    from test_sweep_fakes import train_then_die

    marker = tmp_path / "first-result.json"
    monkeypatch.setenv("MQAR_FAKE_CRASH_MARKER", str(marker))
    store, spec = tmp_path / "s.db", tiny_spec(seeds=(0,), d_models=(16,))
    (config,) = spec.expand()
    checkpoint = sweep_checkpoint_dir(store) / f"{config.id}.pt"
    first = run_sweep(spec, store, devices="cpu", runs_per_device=1, train_fn=train_then_die,
                      cache_dir=tmp_path / "cache")
    assert first.failed == 1 and checkpoint.exists()  # its worker was killed before it stored the result
    retried = run_sweep(spec, store, devices="cpu", runs_per_device=1, retry_failed=True, train_fn=train_then_die,
                        cache_dir=tmp_path / "cache")
    assert retried.done == 1
    stored = load_epochs(store).drop(columns="run_id").to_dict("records")
    assert stored == json.loads(marker.read_text())  # the first attempt's epochs, wall times and all: not retrained
    assert not checkpoint.exists() and not checkpoint.parent.exists()


def test_live_view_renders(tmp_path):
    import io

    stream = io.StringIO()
    run_sweep(tiny_spec(), tmp_path / "s.db", devices="cpu", runs_per_device=1, train_fn=fake_train,
              cache_dir=tmp_path / "cache", live=True, stream=stream)
    shown = stream.getvalue()
    assert "4 done" in shown and "best validation accuracy" in shown and "d=32" in shown


def test_live_view_and_log_show_the_running_runs_epochs(tmp_path, monkeypatch):
    import io

    from mqar.runs import EpochRecord
    from mqar.sweep import live

    with Store(tmp_path / "s.db") as store:
        store.register_sweep("t", tiny_spec().expand())
        running = store.claim("t")
        store.record_epoch(running.id, EpochRecord(epoch=1, train_loss=1.0, valid_loss=1.0, valid_accuracy=0.625,
                                                   lr=1e-3, seconds=3.0))
        store.claim("t")  # running, no epoch yet
        panel = io.StringIO()
        with live.SweepView(store, "t", live=True, stream=panel):
            pass
        assert "attention d=16 L=16 lr=0.001 seed=0" in panel.getvalue()
        assert "1/2" in panel.getvalue() and "0.625" in panel.getvalue() and "0/2" in panel.getvalue()
        # Log mode: a status line every STATUS_EVERY_S while runs are going (none when nothing runs).
        monkeypatch.setattr(live, "STATUS_EVERY_S", 0.0)
        log = io.StringIO()
        live.SweepView(store, "t", live=False, stream=log).refresh()
        assert log.getvalue() == ("[status] 0 done, 2 running (epoch 0-1 of 2), 0 failed, 2 left; "
                                  "elapsed 0s, ETA ~10s\n")  # (3 s left + 6 s × 3 runs) / 2 slots
        store.release(running.id)
        store.release(store.running_owned_by(os.getpid())[0])
        quiet = io.StringIO()
        live.SweepView(store, "t", live=False, stream=quiet).refresh()
        assert quiet.getvalue() == ""


def test_eta_shares_the_work_left_among_the_running_slots():
    from mqar.sweep.live import estimate_eta

    entry = lambda epoch, seconds, max_epochs=4: {"epoch": epoch, "seconds": seconds, "max_epochs": max_epochs}
    assert estimate_eta([], 3, []) is None
    assert estimate_eta([entry(None, None)], 3, []) is None  # no length known yet
    # Two slots at 10 s and 20 s an epoch, 1 and 2 of 4 epochs done: 30 s + 40 s left; one run without an epoch
    # yet and 3 pending count the mean projected length, (40 + 80) / 2 = 60 s, each: (70 + 4 * 60) / 3 slots.
    running = [entry(1, 10.0), entry(2, 40.0), entry(None, None)]
    assert estimate_eta(running, 3, []) == pytest.approx((30 + 40 + 4 * 60) / 3)
    # Finished runs' lengths join the mean: (40 + 80 + 30) / 3 = 50 s.
    assert estimate_eta(running, 3, [30.0]) == pytest.approx((30 + 40 + 4 * 50) / 3)
    # The last run going: its own rest, however little else is left.
    assert estimate_eta([entry(1, 100.0)], 0, [10.0, 10.0]) == pytest.approx(300.0)
    # The case that motivated it: 8 slots 45 of 64 epochs in at 6 s an epoch, 2 early stoppers done (60 s, 100 s),
    # 38 pending. Finished runs per elapsed second said 46 left × 150 s = 1h55m; the work left says ~26 min.
    wave = [entry(45, 270.0, max_epochs=64)] * 8
    typical = (60 + 100 + 8 * 384) / 10
    assert estimate_eta(wave, 38, [60.0, 100.0]) == pytest.approx((8 * 19 * 6 + 38 * typical) / 8)


def test_usable_cpus_follow_the_affinity_and_the_cgroup_quota(tmp_path, monkeypatch):
    # os.cpu_count() is the host's: on 4 cores of a 64-core node (taskset, a Slurm cpuset, docker --cpus) the CPU
    # executor started one single-threaded worker per host core.
    from mqar.sweep import local

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(4)), raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    own = tmp_path / "proc-self-cgroup"
    own.write_text("0::/job/step\n")
    (tmp_path / "job" / "step").mkdir(parents=True)
    cpu_max = tmp_path / "job" / "step" / "cpu.max"
    assert local.usable_cpus(tmp_path, own) == 4  # no cpu.max: the affinity alone
    cpu_max.write_text("max 100000\n")
    assert local.usable_cpus(tmp_path, own) == 4
    cpu_max.write_text("150000 100000\n")  # 1.5 CPUs of quota: two workers' worth, rounded up
    assert local.usable_cpus(tmp_path, own) == 2
    assert local.default_runs_per_device("cuda:0") == 1
    monkeypatch.setattr(local, "usable_cpus", lambda: 4)
    assert local.default_runs_per_device("cpu") == 4
