"""results/bench/mps-packing/run.sh adds packed processes' tokens/s only where they timed the same interval.

Run with stand-ins for python3's bench (it writes a train.json with the window it was asked for), nvidia-smi and the
MPS daemon, so only the script's plumbing and its summary are tested: each process gets the same --start-at and
--seconds, and the summary flags processes that started late or windows that do not overlap.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "results" / "bench" / "mps-packing" / "run.sh"

FAKE_PYTHON = '''#!{python}
import json, os, subprocess, sys
args = sys.argv[1:]
if args[:4] != ["-m", "mqar", "bench", "train"]:  # the summary and the version line: the real interpreter
    sys.exit(subprocess.run([{python!r}, *args]).returncode)
option = dict(zip(args[4::2], args[5::2]))
out = option["--out"]
start, seconds = float(option["--start-at"]), float(option["--seconds"])
measured = {{"tokens_per_s": 1e6, "window": [start, start + seconds]}}
if os.path.basename(out) == os.environ.get("LATE"):  # this process's warm-up outlasted the agreed start
    measured.update(window=[start + seconds / 2, start + 1.5 * seconds], late_start_s=seconds / 2)
os.makedirs(out)
json.dump({{"rows": [{{"mqar": measured}}]}}, open(os.path.join(out, "train.json"), "w"))
with open(os.environ["CALLS"], "a") as calls:
    calls.write(" ".join(args) + "\\n")
'''


@pytest.fixture
def run_script(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text(FAKE_PYTHON.format(python=sys.executable))
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\necho 'GPU 0: stand-in'\n")
    (bin_dir / "nvidia-cuda-mps-control").write_text("#!/bin/sh\ncat > /dev/null\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)

    def run(**env: str) -> str:
        out = tmp_path / "out"
        shutil.rmtree(out, ignore_errors=True)
        environment = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "OUT": str(out),
                       "CALLS": str(tmp_path / "calls.txt"), "WAIT": "0", "SECONDS_TIMED": "10", **env}
        subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, env=environment, check=True, capture_output=True)
        return (out / "mps" / "summary.md").read_text()

    return run


def summary_rows(summary: str) -> dict[tuple[str, str], list[str]]:
    rows = [line.strip("|").split("|") for line in summary.splitlines()[2:]]
    return {(cells[0].strip(), cells[1].strip()): [cell.strip() for cell in cells[2:]] for cells in rows}


def test_processes_time_one_agreed_window_and_are_added_up(tmp_path, run_script) -> None:
    rows = summary_rows(run_script(COUNTS="1 4", CASES="rebased:16:256"))
    assert rows[("rebased:16:256", "1")] == ["1.0", "1.0", "1.00", "ok"]
    assert rows[("rebased:16:256", "4")] == ["4.0", "4.0", "1.00", "ok"]
    calls = (tmp_path / "calls.txt").read_text().splitlines()
    assert len(calls) == 2 * (1 + 4)
    starts = {call.split("--start-at ")[1].split()[0] for call in calls if "-n4-" in call}
    assert len(starts) == 1 and all("--seconds 10" in call for call in calls)  # one start for the 8 processes


def test_a_late_process_is_flagged_not_silently_added(run_script) -> None:
    rows = summary_rows(run_script(COUNTS="4", CASES="rebased:16:256", LATE="mps-n4-2-rebased_16_256"))
    plain, mps, _, check = rows[("rebased:16:256", "4")]
    assert plain == mps == "4.0"
    assert check == "MPS: 1 started late; windows overlap 33%"
