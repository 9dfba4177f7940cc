"""The results store: registering, claiming, recording, resuming, concurrent writers, and `mqar.results.load`."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mqar.data.spec import TaskSpec
from mqar.errors import UserError
from mqar.results import load, load_epochs, progress_table, status_table
from mqar.runs import EpochRecord, Recipe, RunConfig, RunResult
from mqar.sweep.store import SCHEMA_VERSION, Store


def make_configs(count: int) -> list[RunConfig]:
    task = TaskSpec(seq_len=64, num_kv_pairs=4, vocab_size=64)
    return [RunConfig(task=task, arch="attention", d_model=16, lr=1e-3, seed=seed, recipe=Recipe(epochs=2))
            for seed in range(count)]


def fake_result(config: RunConfig, accuracy: float = 0.5) -> RunResult:
    curve = tuple(EpochRecord(epoch=e, train_loss=1.0 / e, valid_loss=1.0 / e, valid_accuracy=accuracy, lr=1e-3,
                              seconds=float(e)) for e in (1, 2))
    return RunResult(run_id=config.id, config=config, best_valid_accuracy=accuracy, best_epoch=2,
                     test_accuracy=accuracy, final_valid_accuracy=accuracy, epochs=2, stopped_early=False,
                     curve=curve, seconds=2.0, tokens_per_s=1000.0, num_params=123, peak_memory_bytes=None,
                     device="cpu", versions={"mqar": "0.1.0"})


def test_register_claim_record_load(tmp_path):
    path = tmp_path / "store.db"
    configs = make_configs(3)
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.register_sweep("s", configs) == 3
        assert store.register_sweep("s", configs) == 0  # idempotent: resume never duplicates
        first = store.claim("s")
        assert first == configs[0]
        store.record_result(fake_result(first, 0.75))
        second = store.claim("s")
        store.record_failure(second.id, "Traceback ...\nRuntimeError: boom")
        assert store.counts("s") == {"pending": 1, "running": 0, "done": 1, "failed": 1}
        assert store.reset_failed("s") == 1
        assert store.counts("s")["pending"] == 2
    runs = load(path, sweep="s")
    assert list(runs.run_id) == [c.id for c in configs]
    assert runs.loc[0, "status"] == "done" and runs.loc[0, "best_valid_accuracy"] == 0.75
    assert runs.loc[0, "stopped_early"] is False
    assert {"sweep", "arch", "d_model", "seq_len", "num_kv_pairs", "config", "error", "host"} <= set(runs.columns)
    assert list(load(path, sweep="s", status="done").run_id) == [configs[0].id]
    assert load(path, status="running").empty
    epochs = load_epochs(path, [configs[0].id])
    assert list(epochs.epoch) == [1, 2] and list(epochs.columns) == ["run_id", "epoch", "train_loss", "valid_loss",
                                                                     "valid_accuracy", "lr", "seconds"]
    table = status_table(path)
    assert int(table.loc[0, "done"]) == 1 and int(table.loc[0, "total"]) == 3


def test_epochs_stored_while_running_show_progress_and_the_result_rewrites_them(tmp_path):
    path = tmp_path / "store.db"
    configs = make_configs(2)
    epoch = lambda e, accuracy: EpochRecord(epoch=e, train_loss=1.0, valid_loss=1.0, valid_accuracy=accuracy,
                                            lr=1e-3, seconds=10.0 * e)
    with Store(path) as store:
        store.register_sweep("s", configs)
        assert progress_table(path).empty
        run = store.claim("s")
        assert progress_table(path).epoch.isna().all()  # running, no epoch yet
        store.record_epoch(run.id, epoch(1, 0.25))
        store.record_epoch(run.id, epoch(2, 0.125))
        store.record_epoch(configs[1].id, epoch(1, 0.9))  # not running: ignored
        progress = progress_table(path, sweep="s")
        assert list(progress.run_id) == [run.id]
        row = progress.iloc[0]
        assert (row.epoch, row.max_epochs, row.valid_accuracy, row.best_valid_accuracy, row.seconds) == \
            (2, 2, 0.125, 0.25, 20.0)
        # An earlier attempt's extra epoch (say it restarted without a checkpoint) does not outlive the result.
        store.record_epoch(run.id, epoch(3, 0.5))
        store.record_result(fake_result(run, 0.75))
        assert list(load_epochs(path, [run.id]).epoch) == [1, 2]
        assert load_epochs(path, [configs[1].id]).empty
        assert progress_table(path).empty
        store.record_epoch(run.id, epoch(3, 0.5))  # a late call after the result changes nothing
        assert list(load_epochs(path, [run.id]).epoch) == [1, 2]


def test_a_run_that_redoes_epochs_drops_the_earlier_attempts_later_rows(tmp_path):
    # Restarted from an earlier checkpoint, or afresh once its checkpoint was deleted: its progress is this attempt's,
    # and a retry that fails sooner leaves its own curve, not the last attempt's tail.
    path = tmp_path / "store.db"
    epoch = lambda e: EpochRecord(epoch=e, train_loss=1.0, valid_loss=1.0, valid_accuracy=e / 10, lr=1e-3,  # noqa: E731
                                  seconds=10.0 * e)
    with Store(path) as store:
        store.register_sweep("s", make_configs(1))
        run = store.claim("s")
        for e in (1, 2, 3):
            store.record_epoch(run.id, epoch(e))
        store.record_failure(run.id, "killed")
        store.reset_failed("s")
        assert store.claim("s").id == run.id
        store.record_epoch(run.id, epoch(1))
        assert list(load_epochs(path, [run.id]).epoch) == [1]
        assert progress_table(path, sweep="s").iloc[0].epoch == 1


def test_one_run_in_two_sweeps_is_stored_once(tmp_path):
    configs = make_configs(2)
    with Store(tmp_path / "s.db") as store:
        store.register_sweep("a", configs)
        store.register_sweep("b", configs[:1])
        store.record_result(fake_result(configs[0]))
        assert store.counts("b") == {"pending": 0, "running": 0, "done": 1, "failed": 0}
    runs = load(tmp_path / "s.db")
    assert len(runs) == 3 and runs.run_id.nunique() == 2


def test_reclaim_dead_owner_and_expired_lease(tmp_path):
    configs = make_configs(2)
    with Store(tmp_path / "s.db") as store:
        store.register_sweep("s", configs)
        dead = multiprocessing.get_context("spawn").Process(target=int)
        dead.start()
        dead.join()
        store.claim("s", pid=dead.pid)  # owner died
        store.claim("s")  # owner alive (this process)
        assert store.reclaim_stale("s") == [configs[0].id]
        assert store.reclaim_stale("s", lease_s=-1) == []  # alive on this host: the lease does not apply
        store._conn.execute("UPDATE runs SET host = 'elsewhere' WHERE id = ?", (configs[1].id,))
        assert store.reclaim_stale("s", lease_s=-1) == [configs[1].id]  # other host: lease expired
        assert store.counts("s")["pending"] == 2


def test_only_the_runs_holder_records_its_end_and_a_done_run_keeps_its_first_result(tmp_path, capsys):
    """Two processes trained one run (its lease expired while the first still trained it; another host reclaimed and
    claimed it): the first's result overwrote nothing only by luck of timing. It landed on the second's 'running' run
    (then the second's overwrote it, curve and all), and a failure recorded late turned a 'done' run 'failed'."""
    path = tmp_path / "s.db"
    first, second = os.getpid(), os.getpid() + 1  # two processes' claims, told apart by pid as the store does
    epoch = EpochRecord(epoch=1, train_loss=1.0, valid_loss=1.0, valid_accuracy=0.5, lr=1e-3, seconds=1.0)
    with Store(path) as store:
        (run,) = make_configs(1)
        store.register_sweep("s", [run])
        assert store.claim("s", pid=first) == run
        store._conn.execute("UPDATE runs SET status = 'pending' WHERE id = ?", (run.id,))  # its lease expired
        assert store.claim("s", pid=second) == run
        # The first process, still alive, finishes: its writes no longer reach the run the second holds.
        store.record_epoch(run.id, epoch)
        store.release(run.id)
        assert store.record_result(fake_result(run, 0.25)) is False
        assert store.record_failure(run.id, "late failure") is False
        assert "the result of run" in capsys.readouterr().err
        assert store.status_of(run.id) == "running" and load_epochs(path).empty
        # The holder's result is stored; the other's, arriving after it, does not replace it.
        assert store.record_result(fake_result(run, 0.75), pid=second) is True
        assert store.record_result(fake_result(run, 0.25)) is False
        assert store.record_failure(run.id, "late failure", pid=second) is False
        assert "is done already; its stored result stays" in capsys.readouterr().err
        assert store.status_of(run.id) == "done"
        assert load(path).best_valid_accuracy.tolist() == [0.75]


def test_a_run_nobody_holds_takes_a_result_or_failure(tmp_path):
    # Fixtures and notebooks store runs they trained or made up themselves: not stored yet, 'pending', 'failed'.
    path = tmp_path / "s.db"
    configs = make_configs(3)
    with Store(path) as store:
        store.register_sweep("s", configs[:2])
        assert store.record_result(fake_result(configs[0]))  # pending
        assert store.record_failure(configs[1].id, "boom")  # pending
        assert store.record_result(fake_result(configs[1]))  # failed
        assert store.record_result(fake_result(configs[2]))  # not stored: registered by its result
        assert store.counts() == {"pending": 0, "running": 0, "done": 3, "failed": 0}


def _linux_proc_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs Linux's /proc")
def test_reclaim_a_zombie_owner(tmp_path):
    """A worker killed with its SIGKILLed driver is a zombie until init reaps it (here: for seconds). os.kill(pid, 0)
    succeeds on a zombie, so an `mqar sweep` run again at once left its run 'running' and finished without it."""
    configs = make_configs(1)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])  # not waited for: a zombie once it exits
    try:
        deadline = time.monotonic() + 10
        while _linux_proc_state(zombie.pid) != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        with Store(tmp_path / "s.db") as store:
            store.register_sweep("s", configs)
            store.claim("s", pid=zombie.pid)
            assert store.reclaim_stale("s") == [configs[0].id]
    finally:
        zombie.wait()


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs Linux's /proc")
def test_reclaim_a_run_whose_owner_pid_now_names_a_newer_process(tmp_path):
    """After a reboot (or pids wrapping around) a dead worker's pid may name an unrelated live process: the run stayed
    'running' for as long as that process lived (the lease does not apply on the owner's host). A process that
    started after the run's last heartbeat cannot be its owner."""
    configs = make_configs(2)
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with Store(tmp_path / "s.db") as store:
            store.register_sweep("s", configs)
            store.claim("s", pid=stranger.pid)
            store.claim("s")  # this process: started before the claim's heartbeat, a live owner
            before_reboot = time.time() - 600  # the worker's last epoch, ten minutes before the machine came back
            store._conn.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?", (before_reboot, configs[0].id))
            assert store.reclaim_stale("s", lease_s=-1) == [configs[0].id]  # not this process's run
    finally:
        stranger.kill()
        stranger.wait()


class _InterruptedAfterBegin:
    """A store's connection on which Ctrl-C lands once, just after a BEGIN IMMEDIATE has returned."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn, self.armed = conn, True

    def __getattr__(self, name):
        return getattr(self.conn, name)

    def execute(self, sql, *args):
        cursor = self.conn.execute(sql, *args)
        if sql == "BEGIN IMMEDIATE" and self.armed:
            self.armed = False
            raise KeyboardInterrupt
        return cursor


def test_a_write_cut_by_ctrl_c_does_not_block_the_release_that_follows(tmp_path):
    """A worker's Ctrl-C landed inside a store write, between BEGIN and COMMIT: the transaction stayed open on its
    connection, so the release it does on Ctrl-C failed ('cannot start a transaction within a transaction'), with a
    traceback, while it kept the write lock from every other process."""
    path = tmp_path / "s.db"
    with Store(path) as store:
        store.register_sweep("s", make_configs(1))
        run = store.claim("s")
        connection = store._conn
        store._conn = _InterruptedAfterBegin(connection)
        with pytest.raises(KeyboardInterrupt):
            store.record_epoch(run.id, EpochRecord(epoch=1, train_loss=1.0, valid_loss=1.0, valid_accuracy=0.5,
                                                   lr=1e-3, seconds=1.0))
        store._conn = connection
        store.release(run.id)  # what the worker does on Ctrl-C
        assert store.status_of(run.id) == "pending"
        assert load_epochs(path).empty  # the interrupted write was not committed
        other = sqlite3.connect(path, timeout=0.5)
        other.execute("BEGIN IMMEDIATE")  # the write lock is free again
        other.execute("ROLLBACK")
        other.close()


def test_missing_store_and_unknown_sweep_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no results store"):
        load(tmp_path / "absent.db")
    with Store(tmp_path / "s.db") as store:
        store.register_sweep("s", make_configs(1))
    with pytest.raises(UserError, match="no sweep named"):
        load(tmp_path / "s.db", sweep="other")


def test_unwritable_store_is_a_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(UserError, match="cannot open the results store"):
        Store(blocker / "store.db")


def test_a_file_that_is_not_a_store_is_a_user_error(tmp_path):
    # `mqar sweep --store notes.txt` ended in a traceback (sqlite3.DatabaseError: file is not a database).
    path = tmp_path / "notes.txt"
    path.write_text("not a database, but long enough for SQLite to read a header from it\n" * 4)
    with pytest.raises(UserError, match="is not an mqar results store .*file is not a database.*pass another --store"):
        Store(path)


def test_someone_elses_database_is_refused_and_left_alone(tmp_path):
    # Store() made its tables inside any SQLite database, while the readers called the same file not a store.
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
    conn.close()
    with pytest.raises(UserError, match="not an mqar results store \\(no runs table\\)"):
        Store(path)
    with sqlite3.connect(path) as conn:
        assert [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["notes"]
    conn.close()


def test_newer_schema_is_refused(tmp_path):
    Store(tmp_path / "s.db").close()
    conn = sqlite3.connect(tmp_path / "s.db")
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    conn.commit()
    conn.close()
    with pytest.raises(UserError, match="newer than this mqar"):
        Store(tmp_path / "s.db")


def _claim_all(path: str, sweep: str, queue) -> None:
    """Worker: claim runs until none is pending, record each, report the ids it got."""
    claimed = []
    with Store(path) as store:
        while (config := store.claim(sweep)) is not None:
            store.record_result(fake_result(config))
            claimed.append(config.id)
    queue.put(claimed)


def test_concurrent_writers_claim_each_run_exactly_once(tmp_path):
    path = str(tmp_path / "s.db")
    configs = make_configs(40)
    with Store(path) as store:
        store.register_sweep("s", configs)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_claim_all, args=(path, "s", queue)) for _ in range(4)]
    for worker in workers:
        worker.start()
    claimed = [run_id for _ in workers for run_id in queue.get(timeout=60)]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert sorted(claimed) == sorted(c.id for c in configs)  # none lost, none twice
    runs = load(path, sweep="s")
    assert len(runs) == 40 and (runs.status == "done").all()
    assert len(load_epochs(path)) == 80


def test_old_store_is_migrated_forward(tmp_path, monkeypatch):
    from mqar.sweep import store as store_module

    Store(tmp_path / "s.db").close()  # a version-1 store
    migrated = []

    def add_notes_column(conn):
        conn.execute("ALTER TABLE runs ADD COLUMN notes TEXT")
        migrated.append(True)

    monkeypatch.setattr(store_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setitem(store_module.MIGRATIONS, SCHEMA_VERSION, add_notes_column)
    with Store(tmp_path / "s.db") as store:
        assert store.schema_version == SCHEMA_VERSION + 1 and migrated == [True]
        assert "notes" in {row["name"] for row in store.query("PRAGMA table_info(runs)")}
    with Store(tmp_path / "s.db"):
        assert migrated == [True]  # once only
    with Store(tmp_path / "new.db") as store:  # a new store gets the migrated schema too
        assert "notes" in {row["name"] for row in store.query("PRAGMA table_info(runs)")}
