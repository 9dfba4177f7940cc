"""results/run-figure-on-device.sh carries unfinished runs' checkpoints from one session's machine to the next, and
the store from one call to the next on a machine that stays warm.

Run with stand-ins for python3 and nvidia-smi (no GPU, no training), so only the script's own plumbing is tested:
PACK_CHECKPOINTS=1 returns the checkpoint folder as pieces no larger than the device returns, and a later call on a
fresh machine restores them, byte for byte, from .scratch/checkpoints/FIGURE/ unless the machine still has its own;
and a call continues from the store the previous call ended with unless the checkout's store has changed since.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "results" / "run-figure-on-device.sh"
PIECE_LIMIT = 16 * 2**20  # the device returns files of at most 16 MiB


def digests(folder: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir())}


@pytest.fixture
def machine(tmp_path):
    """A checkout with the script, and PATH stand-ins: python3 prints one device, nvidia-smi nothing."""
    if shutil.which("tar") is None or shutil.which("split") is None:
        pytest.skip("needs tar and split")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # Each call's arguments go to python3-calls.txt (one line per call); the device query reads "cuda:0"; the
    # figure's sweep "trains" by adding a line to the store.
    (bin_dir / "python3").write_text(
        f'#!/bin/sh\necho "$*" >> {tmp_path}/python3-calls.txt\necho cuda:0\n'
        'case "$*" in "-m mqar figure"*) echo trained >> results/fig/mqar.db;; esac\n'
    )
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    repo = tmp_path / "repo"
    (repo / "results" / "fig").mkdir(parents=True)
    shutil.copy(SCRIPT, repo / "run.sh")

    def run(out: Path, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        environment = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "OUT": str(out),
                       "KEEP_DIR": str(tmp_path / "machine-tmp"), **env}
        return subprocess.run(["bash", "run.sh", "fig"], cwd=repo, env=environment, check=check, capture_output=True,
                              text=True)

    return repo, run


def test_checkpoints_travel_in_pieces_and_are_restored_on_a_fresh_machine(tmp_path, machine):
    repo, run = machine
    checkpoints = repo / "results" / "fig" / "mqar.db.checkpoints"
    checkpoints.mkdir()
    (checkpoints / "a.pt").write_bytes(os.urandom(20 * 2**20))  # larger than one returned file may be
    (checkpoints / "b.pt").write_bytes(b"small")
    before = digests(checkpoints)

    run(tmp_path / "out1", PACK_CHECKPOINTS="1")
    pieces = sorted((tmp_path / "out1").glob("checkpoints.tar.part-*"))
    assert len(pieces) >= 2 and all(piece.stat().st_size <= PIECE_LIMIT for piece in pieces)

    shutil.rmtree(checkpoints)  # the next session's machine is fresh
    carried = repo / ".scratch" / "checkpoints" / "fig"
    carried.mkdir(parents=True)
    for piece in pieces:
        shutil.copy(piece, carried)
    run(tmp_path / "out2")
    assert digests(checkpoints) == before
    assert not list((tmp_path / "out2").glob("checkpoints.tar.part-*"))  # not asked to pack this time


def test_a_warm_machines_own_checkpoints_win_over_carried_ones(tmp_path, machine):
    repo, run = machine
    checkpoints = repo / "results" / "fig" / "mqar.db.checkpoints"
    checkpoints.mkdir()
    (checkpoints / "a.pt").write_bytes(b"older")
    run(tmp_path / "out1", PACK_CHECKPOINTS="1")
    carried = repo / ".scratch" / "checkpoints" / "fig"
    carried.mkdir(parents=True)
    for piece in (tmp_path / "out1").glob("checkpoints.tar.part-*"):
        shutil.copy(piece, carried)
    (checkpoints / "a.pt").write_bytes(b"newer: written on this machine after the pieces left")
    run(tmp_path / "out2")
    assert (checkpoints / "a.pt").read_bytes().startswith(b"newer")


def test_also_sweep_trains_a_second_preset_into_the_same_store(tmp_path, machine):
    repo, run = machine
    run(tmp_path / "out", ALSO_SWEEP="follow-up", RUNS_PER_DEVICE="3")
    calls = (tmp_path / "python3-calls.txt").read_text().splitlines()
    sweeps = [call for call in calls if call.startswith("-m mqar ")]
    assert len(sweeps) == 2
    assert any(call.startswith("-m mqar figure fig --scale reduced --run") for call in sweeps)
    assert any(call.startswith("-m mqar sweep --preset follow-up --store results/fig/mqar.db --devices cuda:0 "
                               "--runs-per-device 3") for call in sweeps)
    assert all("--store results/fig/mqar.db" in call for call in sweeps)


@pytest.mark.parametrize("compile_env, flagged", [({}, False), ({"COMPILE": "1"}, True)])
def test_compile_reaches_both_sweeps_only_when_asked(tmp_path, machine, compile_env, flagged):
    repo, run = machine
    run(tmp_path / "out", ALSO_SWEEP="follow-up", **compile_env)
    sweeps = [call for call in (tmp_path / "python3-calls.txt").read_text().splitlines()
              if call.startswith("-m mqar ")]
    assert len(sweeps) == 2 and all(("--compile" in call.split()) == flagged for call in sweeps)


@pytest.mark.parametrize("limit", ["0", "-30", "soon"])
def test_a_time_limit_that_timeout_would_read_as_none_is_refused(tmp_path, machine, limit):
    repo, run = machine
    result = run(tmp_path / "out", check=False, SECONDS_LIMIT=limit)
    assert result.returncode == 2 and "SECONDS_LIMIT must be" in result.stderr
    assert not (tmp_path / "python3-calls.txt").exists()  # nothing started


def test_a_warm_machine_continues_from_the_store_its_last_call_ended_with(tmp_path, machine):
    # Each call gets a fresh copy of the checkout, whose store is the committed one: without the kept store the
    # second call would start again from it and the first call's runs would be lost from what comes back.
    repo, run = machine
    store = repo / "results" / "fig" / "mqar.db"
    store.write_text("committed\n")
    run(tmp_path / "out1")
    assert store.read_text() == "committed\ntrained\n"
    store.write_text("committed\n")  # the next call's fresh copy of the checkout
    run(tmp_path / "out2")
    assert store.read_text() == "committed\ntrained\ntrained\n"


def test_a_store_changed_in_the_checkout_since_the_last_call_is_used_as_it_is(tmp_path, machine):
    repo, run = machine
    store = repo / "results" / "fig" / "mqar.db"
    store.write_text("committed\n")
    run(tmp_path / "out1")
    store.write_text("committed\ntrained\n")  # the returned store, copied back: the same as the kept one
    run(tmp_path / "out2")
    assert store.read_text() == "committed\ntrained\ntrained\n"
    store.write_text("edited by hand\n")  # neither the committed nor the kept store: the user's choice wins
    run(tmp_path / "out3")
    assert store.read_text() == "edited by hand\ntrained\n"
