"""The results store: one SQLite file (WAL mode) that many processes read and write at once.

Tables
    meta        key/value; `schema_version` says which migrations have run.
    runs        one row per run id (a content hash of its RunConfig): config JSON, status, metrics, timings,
                owner (host + pid) while running, error with traceback when failed.
    sweeps      one row per sweep name (its spec as JSON, when given).
    sweep_runs  which runs belong to which sweep (a run shared by two sweeps is trained and stored once).
    epochs      the learning curve, one row per (run, epoch): written as each epoch ends (by the local workers;
                by the Ray driver within seconds), and rewritten whole when the run finishes.

Status of a run: 'pending' -> 'running' (claimed atomically by one process) -> 'done' | 'failed'.
Only the process that holds a 'running' run (its owner: host + pid; the Ray driver for its actors) writes its
progress, hands it back or records its end; a run nobody holds ('pending', 'failed', or not stored yet) takes a result
from anyone (fixtures, a notebook storing a run it trained itself); a 'done' run keeps its first result. A result or
failure that breaks this rule is dropped with a warning line (see `record_result`).
A 'running' run whose owner process is dead (same host: gone, a zombie, or its pid taken by a process that started
after the run's last heartbeat, as after a reboot) or whose heartbeat is older than the lease (any host)
is handed back to 'pending' by `reclaim_stale`, so a killed sweep resumes without losing or duplicating runs.

Every write is one short `BEGIN IMMEDIATE` transaction; the busy timeout makes concurrent writers wait their
turn instead of failing. The small API used by executors and by test fixtures:

    store = Store(path)                       # creates the file (and folders) if needed
    store.register_sweep("quick", configs)    # the sweep's runs; new ones start 'pending'
    run = store.claim("quick")                # -> RunConfig or None, now 'running' and owned by this process
    store.record_epoch(run_id, epoch_record)  # progress of a running run (+ heartbeat)
    store.record_result(result)               # RunResult -> 'done' (+ its curve); False if dropped
    store.record_failure(run_id, traceback)   # -> 'failed'; False if dropped
    store.release(run_id)                     # -> back to 'pending' (Ctrl-C)
    store.counts("quick")                     # {'pending': n, 'running': n, 'done': n, 'failed': n}
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from mqar.errors import UserError
from mqar.runs import EpochRecord, RunConfig, RunResult

SCHEMA_VERSION = 1
STATUSES = ("pending", "running", "done", "failed")
BUSY_TIMEOUT_S = 120.0  # how long a writer waits for another writer's transaction before giving up
DEFAULT_LEASE_S = 3600.0  # a 'running' run with no heartbeat for this long is presumed lost (any host)

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    arch TEXT NOT NULL,
    d_model INTEGER NOT NULL,
    seq_len INTEGER NOT NULL,
    num_kv_pairs INTEGER NOT NULL,
    vocab_size INTEGER NOT NULL,
    lr REAL NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    best_valid_accuracy REAL,
    best_epoch INTEGER,
    test_accuracy REAL,
    final_valid_accuracy REAL,
    epochs INTEGER,
    stopped_early INTEGER,
    seconds REAL,
    tokens_per_s REAL,
    num_params INTEGER,
    peak_memory_bytes INTEGER,
    device TEXT,
    host TEXT,
    pid INTEGER,
    versions TEXT,
    error TEXT,
    started_at TEXT,
    ended_at TEXT,
    heartbeat_at REAL
);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status);
CREATE TABLE IF NOT EXISTS sweeps (name TEXT PRIMARY KEY, spec TEXT, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sweep_runs (
    sweep TEXT NOT NULL,
    run_id TEXT NOT NULL REFERENCES runs (id),
    position INTEGER NOT NULL,
    PRIMARY KEY (sweep, run_id)
);
CREATE TABLE IF NOT EXISTS epochs (
    run_id TEXT NOT NULL REFERENCES runs (id),
    epoch INTEGER NOT NULL,
    train_loss REAL,
    valid_loss REAL,
    valid_accuracy REAL,
    lr REAL,
    seconds REAL,
    PRIMARY KEY (run_id, epoch)
);
"""

# Migration hook: MIGRATIONS[n] takes a connection at schema version n to n + 1 (inside one transaction).
# Add an entry and bump SCHEMA_VERSION when the schema changes; old stores are migrated forward on open.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {}


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# A process that started this long after a run's last heartbeat cannot be the run's owner (the owner heartbeats, so it
# was running then): its pid was reused. Not 0: process start times are read to about a second (/proc/stat's btime),
# and a forward step of the wall clock while a run trains must not make its live owner look like a stranger.
PID_REUSE_MARGIN_S = 30.0


def _process_state(pid: int) -> Optional[tuple[str, float]]:
    """(state letter, start time in seconds since the epoch) of process `pid`, from Linux's /proc; None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces and parentheses
        return fields[0], boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, ValueError, IndexError):
        return None


def owner_is_alive(host: Optional[str], pid: Optional[int], heartbeat_at: Optional[float] = None) -> Optional[bool]:
    """Whether the process `pid` on `host` still runs: True/False on this host, None (unknown) elsewhere.

    On Linux a zombie (killed, not yet reaped: a sweep's workers orphaned by a SIGKILLed driver stay so until init
    reaps them) is dead, and so is a process that started well after `heartbeat_at`, the owner's last sign of life:
    that pid now names another process (after a reboot, or once pids wrapped around), which would otherwise keep the
    run 'running' for as long as it lives.
    """
    if host != socket.gethostname() or pid is None:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    state = _process_state(pid)
    if state is not None:
        letter, started = state
        if letter in ("Z", "X"):
            return False
        if heartbeat_at is not None and started > heartbeat_at + PID_REUSE_MARGIN_S:
            return False
    return True


def _create_tables(conn: sqlite3.Connection, path: str | os.PathLike) -> None:
    """Bring the tables in `conn` (inside a write transaction) to SCHEMA_VERSION, creating them if missing."""
    for statement in filter(str.strip, _SCHEMA_V1.split(";")):
        conn.execute(statement)
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    # A new store starts from the version-1 tables just created and is migrated like an old one.
    version = int(row[0]) if row else 1
    if version > SCHEMA_VERSION:
        raise UserError(
            f"the store {path} has schema version {version}, newer than this mqar ({SCHEMA_VERSION}); upgrade mqar"
        )
    while version < SCHEMA_VERSION:
        MIGRATIONS[version](conn)
        version += 1
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (str(version),))


def has_no_tables(conn: sqlite3.Connection, path: str | os.PathLike) -> bool:
    """Whether the database has no tables yet (a new file, or a 0-byte one as `touch` makes): a store with no runs.
    One whose tables lack `runs` is someone else's data, which is neither read nor written as a store: a UserError."""
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if tables and "runs" not in tables:
        raise UserError(
            f"{path} is a SQLite database but not an mqar results store (no runs table); pass another --store PATH"
        )
    return not tables


def empty_store_connection() -> sqlite3.Connection:
    """An in-memory database with the store's tables and no rows: what readers see in a database with no tables
    (a 0-byte file, as `touch` makes), which `Store` would make its tables in. In memory, since reading never
    writes to the file."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    with _Transaction(conn):
        _create_tables(conn, ":memory:")
    return conn


class Store:
    """A results store at `path` (created with its folders if missing). See the module docstring."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except OSError as error:
            raise UserError(
                f"cannot open the results store {self.path} ({error.strerror or error}); pass a writable --store PATH"
            ) from None
        try:
            has_no_tables(self._conn, self.path)  # refuses someone else's database before adding tables to it
            self._conn.row_factory = sqlite3.Row
            self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except sqlite3.OperationalError as error:  # e.g. a read-only file or folder, a full disk
            self._conn.close()
            raise UserError(f"cannot open the results store {self.path} ({error}); pass a writable --store PATH") from None
        except sqlite3.DatabaseError as error:  # a file that is not SQLite
            self._conn.close()
            raise UserError(f"{self.path} is not an mqar results store ({error}); pass another --store PATH") from None
        except UserError:
            self._conn.close()
            raise

    # Connection -----------------------------------------------------------------------------------------
    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _write(self):
        """A short write transaction: `with self._write() as conn: ...` (BEGIN IMMEDIATE takes the lock now)."""
        return _Transaction(self._conn)

    def _migrate(self) -> None:
        with self._write() as conn:
            _create_tables(conn, self.path)

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])

    # Sweeps ---------------------------------------------------------------------------------------------
    def register_sweep(self, name: str, configs: Sequence[RunConfig], spec: Optional[dict] = None) -> int:
        """Make `configs` the runs of sweep `name` (in this order); runs not yet stored start 'pending'.

        Runs already stored (from an earlier attempt or another sweep) keep their status and results, so
        registering the same sweep again is how a sweep resumes. Returns how many runs were new to the store.
        """
        new = 0
        with self._write() as conn:
            conn.execute(
                "INSERT INTO sweeps (name, spec, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET spec = excluded.spec",
                (name, json.dumps(spec) if spec is not None else None, utc_now()),
            )
            conn.execute("DELETE FROM sweep_runs WHERE sweep = ?", (name,))
            for position, config in enumerate(configs):
                task = config.task
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO runs (id, config, arch, d_model, seq_len, num_kv_pairs, vocab_size, lr, seed)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (config.id, json.dumps(config.to_dict(), sort_keys=True), config.arch, config.d_model,
                     task.seq_len, task.num_kv_pairs, task.vocab_size, config.lr, config.seed),
                )
                new += cursor.rowcount
                conn.execute(
                    "INSERT OR IGNORE INTO sweep_runs (sweep, run_id, position) VALUES (?, ?, ?)",
                    (name, config.id, position),
                )
        return new

    def sweep_names(self) -> list[str]:
        return [row[0] for row in self._conn.execute("SELECT name FROM sweeps ORDER BY created_at, name")]

    # Claiming and finishing runs ------------------------------------------------------------------------
    def claim(self, sweep: str, *, run_ids: Optional[Iterable[str]] = None, pid: Optional[int] = None) -> Optional[RunConfig]:
        """Atomically take the next 'pending' run of `sweep` (optionally only among `run_ids`) for this process.

        Returns its RunConfig, now 'running' with owner (host, pid), or None when nothing is pending.
        Two processes never get the same run: the UPDATE only succeeds while the row is still 'pending'.
        """
        pid = os.getpid() if pid is None else pid
        allowed = None if run_ids is None else set(run_ids)
        with self._write() as conn:
            rows = conn.execute(
                "SELECT r.id, r.config FROM sweep_runs s JOIN runs r ON r.id = s.run_id "
                "WHERE s.sweep = ? AND r.status = 'pending' ORDER BY s.position",
                (sweep,),
            )
            for row in rows:
                if allowed is not None and row["id"] not in allowed:
                    continue
                cursor = conn.execute(
                    "UPDATE runs SET status = 'running', host = ?, pid = ?, started_at = ?, heartbeat_at = ?, "
                    "ended_at = NULL, error = NULL, attempts = attempts + 1 WHERE id = ? AND status = 'pending'",
                    (socket.gethostname(), pid, utc_now(), time.time(), row["id"]),
                )
                if cursor.rowcount == 1:
                    return RunConfig.from_dict(json.loads(row["config"]))
        return None

    def heartbeat(self, run_id: str) -> None:
        """Say that the run's owner, this process, is still working on it (pushes back the lease)."""
        with self._write() as conn:
            conn.execute(f"UPDATE runs SET heartbeat_at = ? WHERE id = ? AND {_HELD}", (time.time(), run_id, *_owner()))

    def record_epoch(self, run_id: str, record: EpochRecord) -> None:
        """Store one epoch of a run while it trains (so a long run shows its progress), and push back its lease.

        Only a run 'running' under this process takes it: a late call from a released or finished run, or from a
        process whose run another has claimed since (its lease expired), changes nothing. A run that
        continues from its checkpoint (or starts afresh) redoes the epochs after it: their rows go, so an earlier
        attempt's later epochs do not show as this attempt's progress, nor stay as the curve of a retry that fails
        sooner. `record_result` then writes the whole curve again.
        """
        with self._write() as conn:
            updated = conn.execute(f"UPDATE runs SET heartbeat_at = ? WHERE id = ? AND {_HELD}",
                                   (time.time(), run_id, *_owner())).rowcount
            if updated:
                conn.execute("DELETE FROM epochs WHERE run_id = ? AND epoch > ?", (run_id, record.epoch))
                conn.execute(
                    "INSERT OR REPLACE INTO epochs (run_id, epoch, train_loss, valid_loss, valid_accuracy, lr, seconds) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (run_id, record.epoch, record.train_loss, record.valid_loss, record.valid_accuracy, record.lr,
                     record.seconds),
                )

    def record_result(self, result: RunResult, *, pid: Optional[int] = None) -> bool:
        """Store a finished run: metrics, curve, status 'done'. Registers the run if it is not stored yet.

        True when stored. Dropped, with a warning line on stderr, when the run is 'done' already (the first result
        stays: a second one overwrote it, curve and all) or 'running' under another process than this one (`pid` on
        this host; default: this process): two processes trained it (its lease expired while the first still did,
        and another claimed it), and the one holding it records it. A run nobody holds takes it (see the module).
        """
        config = result.config
        task = config.task
        with self._write() as conn:
            if not _may_record(conn, result.run_id, pid, "result"):
                return False
            conn.execute(
                "INSERT OR IGNORE INTO runs (id, config, arch, d_model, seq_len, num_kv_pairs, vocab_size, lr, seed, "
                "started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (result.run_id, json.dumps(config.to_dict(), sort_keys=True), config.arch, config.d_model,
                 task.seq_len, task.num_kv_pairs, task.vocab_size, config.lr, config.seed, utc_now()),
            )
            conn.execute(
                "UPDATE runs SET status = 'done', best_valid_accuracy = ?, best_epoch = ?, test_accuracy = ?, "
                "final_valid_accuracy = ?, epochs = ?, stopped_early = ?, seconds = ?, tokens_per_s = ?, "
                "num_params = ?, peak_memory_bytes = ?, device = ?, versions = ?, error = NULL, ended_at = ?, "
                "host = COALESCE(host, ?) WHERE id = ?",
                (result.best_valid_accuracy, result.best_epoch, result.test_accuracy, result.final_valid_accuracy,
                 result.epochs, int(result.stopped_early), result.seconds, result.tokens_per_s, result.num_params,
                 result.peak_memory_bytes, result.device, json.dumps(dict(result.versions), sort_keys=True),
                 utc_now(), socket.gethostname(), result.run_id),
            )
            conn.execute("DELETE FROM epochs WHERE run_id = ?", (result.run_id,))
            conn.executemany(
                "INSERT INTO epochs (run_id, epoch, train_loss, valid_loss, valid_accuracy, lr, seconds) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(result.run_id, r.epoch, r.train_loss, r.valid_loss, r.valid_accuracy, r.lr, r.seconds)
                 for r in result.curve],
            )
        return True

    def record_failure(self, run_id: str, error: str, *, device: Optional[str] = None,
                       pid: Optional[int] = None) -> bool:
        """Mark a run 'failed' with its error (a traceback, or a one-line reason); the sweep goes on. True when
        stored; dropped as `record_result` drops a result (a failure never replaces a 'done' run's result).
        `pid`: the process that held it (default: this one), e.g. a worker that died, whose run its driver fails."""
        with self._write() as conn:
            if not _may_record(conn, run_id, pid, "failure"):
                return False
            conn.execute(
                "UPDATE runs SET status = 'failed', error = ?, ended_at = ?, device = COALESCE(?, device) WHERE id = ?",
                (error, utc_now(), device, run_id),
            )
        return True

    def release(self, run_id: str, *, pid: Optional[int] = None) -> None:
        """Hand a run that process `pid` (default: this one) was working on back to 'pending' (e.g. on Ctrl-C); a
        run another process has claimed since stays with it."""
        with self._write() as conn:
            conn.execute(
                "UPDATE runs SET status = 'pending', host = NULL, pid = NULL, started_at = NULL, heartbeat_at = NULL "
                f"WHERE id = ? AND {_HELD}",
                (run_id, *_owner(pid)),
            )

    def drop_cut_write(self) -> None:
        """Roll back a write that Ctrl-C cut between its BEGIN and its COMMIT now, not at this connection's next write
        (`_drop_cut_write`): until then it holds the store's write lock, and this connection's reads see the write's
        uncommitted changes."""
        _drop_cut_write(self._conn)

    # Resume ---------------------------------------------------------------------------------------------
    def reclaim_stale(self, sweep: Optional[str] = None, *, lease_s: float = DEFAULT_LEASE_S) -> list[str]:
        """Hand back to 'pending' the 'running' runs whose owner is dead (this host) or silent past the lease."""
        now = time.time()
        reclaimed = []
        with self._write() as conn:
            query = "SELECT r.id, r.host, r.pid, r.heartbeat_at FROM runs r WHERE r.status = 'running'"
            params: tuple = ()
            if sweep is not None:
                query += " AND r.id IN (SELECT run_id FROM sweep_runs WHERE sweep = ?)"
                params = (sweep,)
            for row in conn.execute(query, params).fetchall():
                alive = owner_is_alive(row["host"], row["pid"], row["heartbeat_at"])
                expired = row["heartbeat_at"] is None or now - row["heartbeat_at"] > lease_s
                if alive is False or (alive is None and expired):
                    conn.execute(
                        "UPDATE runs SET status = 'pending', host = NULL, pid = NULL, heartbeat_at = NULL "
                        "WHERE id = ? AND status = 'running'",
                        (row["id"],),
                    )
                    reclaimed.append(row["id"])
        return reclaimed

    def reset_failed(self, sweep: str) -> int:
        """Put the sweep's failed runs back to 'pending' (for --retry-failed). Returns how many."""
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE runs SET status = 'pending', error = NULL, host = NULL, pid = NULL "
                "WHERE status = 'failed' AND id IN (SELECT run_id FROM sweep_runs WHERE sweep = ?)",
                (sweep,),
            )
            return cursor.rowcount

    # Reading --------------------------------------------------------------------------------------------
    def counts(self, sweep: Optional[str] = None) -> dict[str, int]:
        """Runs per status, for one sweep or for the whole store."""
        if sweep is None:
            rows = self._conn.execute("SELECT status, COUNT(*) FROM runs GROUP BY status")
        else:
            rows = self._conn.execute(
                "SELECT r.status, COUNT(*) FROM sweep_runs s JOIN runs r ON r.id = s.run_id "
                "WHERE s.sweep = ? GROUP BY r.status",
                (sweep,),
            )
        counts = dict.fromkeys(STATUSES, 0)
        counts.update({status: count for status, count in rows})
        return counts

    def running_owned_by(self, pid: int, host: Optional[str] = None) -> list[str]:
        """Ids of the runs 'running' under process `pid` on `host` (default: this host)."""
        rows = self._conn.execute(
            "SELECT id FROM runs WHERE status = 'running' AND pid = ? AND host = ?",
            (pid, host or socket.gethostname()),
        )
        return [row[0] for row in rows]

    def status_of(self, run_id: str) -> Optional[str]:
        row = self._conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
        return None if row is None else row[0]

    def query(self, sql: str, params: Sequence = ()) -> list[sqlite3.Row]:
        """A read-only query (for reports and the live view)."""
        return self._conn.execute(sql, params).fetchall()


_HELD = "status = 'running' AND host = ? AND pid = ?"  # with _owner(pid): the run is held by that process


def _owner(pid: Optional[int] = None) -> tuple[str, int]:
    """(host, pid) of process `pid` on this host (default: this process), as `claim` stores its owner."""
    return socket.gethostname(), os.getpid() if pid is None else pid


def _may_record(conn: sqlite3.Connection, run_id: str, pid: Optional[int], what: str) -> bool:
    """Whether process `pid` (default: this one) may record the end of run `run_id` (see the module docstring);
    when not, a warning line on stderr says why its `what` ("result", "failure") is dropped."""
    row = conn.execute("SELECT status, host, pid FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None or row["status"] in ("pending", "failed"):
        return True
    host, pid = _owner(pid)
    if row["status"] == "running" and (row["host"], row["pid"]) == (host, pid):
        return True
    if row["status"] == "done":
        why = "is done already; its stored result stays"
    else:
        why = (f"is held by process {row['pid']} on {row['host']}, which claimed it after this process's claim "
               f"lapsed (or never had it); that process records it")
    print(f"warning: the {what} of run {run_id} from process {pid} on {host} is dropped: the run {why}",
          file=sys.stderr)
    return False


def _drop_cut_write(conn: sqlite3.Connection) -> None:
    """Roll back a write that Ctrl-C (KeyboardInterrupt) cut between its BEGIN and its COMMIT or ROLLBACK (in
    _Transaction.__enter__ after the BEGIN, or in __exit__ before either ran). It left its transaction open, holding
    the store's write lock: the release that follows on Ctrl-C failed ('cannot start a transaction within a
    transaction') and every other process waited on the lock until this one exited. Nothing of it was committed."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


class _Transaction:
    """`BEGIN IMMEDIATE` ... `COMMIT` (or `ROLLBACK` on error) on an autocommit connection; a transaction that an
    earlier write left open is dropped first (`_drop_cut_write`)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        _drop_cut_write(self.conn)
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")
