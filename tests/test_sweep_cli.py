"""`mqar sweep` and `mqar results` on the command line: user errors are one line with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mqar.cli import app
from mqar.sweep import Store

from test_sweep import tiny_spec
from test_sweep_fakes import fake_train

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def one_line_error(result, pattern: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and pattern in lines[0], result.output


@pytest.mark.parametrize(
    "args, pattern",
    [
        (["--archs", "based,transformerx"], "unknown arch 'transformerx'"),
        (["--d-models", "64,,x"], "malformed --d-models"),
        (["--lrs", "1e-3,abc"], "malformed --lrs"),
        (["--lrs", "1e-3,inf"], "learning rates must be positive finite numbers"),  # was accepted into the grid
        (["--seeds", "0,-1"], "seeds must be integers from 0 to 2**63 - 1"),
        (["--seeds", str(2**63)], "seeds must be integers from 0 to 2**63 - 1"),  # overflowed the store's INTEGER
        (["--seq-lens", "64,128", "--num-kv-pairs", "4,8,16"], "pair up"),
        (["--tasks", "rebased", "--num-kv-pairs", "8"], "--num-kv-pairs pairs with --seq-lens"),  # was ignored
        (["--preset", "nope"], "no sweep preset"),
        (["--backend", "spark"], "unknown --backend"),
        (["--runs-per-device", "0"], "--runs-per-device"),
    ],
)
def test_bad_flags_are_one_line_exit_2(args, pattern):
    one_line_error(invoke("sweep", "--dry-run", *args), pattern)


def test_bad_devices(tmp_path):
    store = str(tmp_path / "s.db")
    one_line_error(invoke("sweep", "--store", store, "--devices", "cpu,,"), "malformed --devices")
    one_line_error(invoke("sweep", "--store", store, "--devices", "tpu:0"), "device")
    import torch

    if not torch.cuda.is_available():
        one_line_error(invoke("sweep", "--store", store, "--devices", "cuda:0"), "no CUDA GPU is visible")


def test_unknown_key_in_config_file(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('archs = ["attention"]\nd_models = [16]\nlrs = [1e-3]\ntasks = "rebased"\nlearning_rate = 1\n')
    one_line_error(invoke("sweep", "--dry-run", "--config", str(path)), "unknown key(s) 'learning_rate'")


def test_unwritable_store(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    one_line_error(invoke("sweep", "--store", str(blocker / "s.db"), "--devices", "cpu"), "cannot open the results store")


def test_devices_with_the_ray_backend_is_one_line(tmp_path):
    # The runner refused it only after the sweep's header line was printed (two lines) and the store was created.
    store = tmp_path / "s.db"
    one_line_error(invoke("sweep", "--store", str(store), "--backend", "ray", "--devices", "cpu"), "--devices is for")
    assert not store.exists()


def test_unwritable_cache_dir(tmp_path):
    # It was not checked: every run of the sweep failed on it, each with a FileNotFoundError traceback in the store.
    blocker = tmp_path / "file"
    blocker.write_text("")
    store = tmp_path / "s.db"
    result = invoke("sweep", "--store", str(store), "--devices", "cpu", "--cache-dir", str(blocker / "cache"))
    one_line_error(result, f"cannot write into the dataset cache {blocker / 'cache'} (")
    assert "pass a writable --cache-dir" in result.output
    assert not store.exists()  # the check ran after the store was made, which left an empty store behind


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc: a folder that exists and refuses files")
def test_cache_dir_that_refuses_files(tmp_path):
    result = invoke("sweep", "--store", str(tmp_path / "s.db"), "--devices", "cpu", "--cache-dir", "/proc/self")
    one_line_error(result, "cannot write into the dataset cache /proc/self (")


def test_results_errors(tmp_path):
    one_line_error(invoke("results", "list", "--store", str(tmp_path / "absent.db")), "no results store")
    one_line_error(invoke("results", "export", "--store", str(tmp_path / "absent.db")), "exactly one of --csv")


def test_dry_run_shows_grid_size_and_estimate():
    result = invoke("sweep", "--dry-run", "--preset", "rebased-table1")
    assert result.exit_code == 0, result.output
    assert "6 × 4 × 1 × 4 × 5 = 480" in result.output and "ESTIMATE" in result.output


def test_dry_run_shows_the_recipe_per_length():
    result = invoke("sweep", "--dry-run", "--preset", "zoology-figure2")
    assert result.exit_code == 0, result.output
    assert "seq_len 256" in result.output and "batch_size 256" in result.output
    assert "seq_len 512" in result.output and "batch_size 128" in result.output


def test_results_list_and_export(tmp_path):
    from mqar.sweep import run_sweep

    store = tmp_path / "s.db"
    run_sweep(tiny_spec(seeds=(0, 13)), store, devices="cpu", train_fn=fake_train, cache_dir=tmp_path / "cache")
    listed = invoke("results", "list", "--store", str(store))
    assert listed.exit_code == 0 and "attention" in listed.output
    csv = tmp_path / "out" / "runs.csv"
    exported = invoke("results", "export", "--store", str(store), "--csv", str(csv))
    assert exported.exit_code == 0, exported.output
    import pandas as pd

    frame = pd.read_csv(csv)
    assert len(frame) == 4 and set(frame.status) == {"done", "failed"}
    parquet = tmp_path / "runs.parquet"
    assert invoke("results", "export", "--store", str(store), "--parquet", str(parquet), "--sweep", "t").exit_code == 0
    assert len(pd.read_parquet(parquet)) == 4


def test_results_list_shows_the_running_runs_progress(tmp_path):
    from mqar.runs import EpochRecord

    store_path = tmp_path / "s.db"
    with Store(store_path) as store:
        configs = tiny_spec(seeds=(0,), d_models=(16, 32)).expand()
        store.register_sweep("t", configs)
        first = store.claim("t")
        store.record_epoch(first.id, EpochRecord(epoch=1, train_loss=1.0, valid_loss=1.0, valid_accuracy=0.375,
                                                 lr=1e-3, seconds=75.0))
        store.claim("t")  # running, no epoch yet
    listed = invoke("results", "list", "--store", str(store_path))
    assert listed.exit_code == 0, listed.output
    progress = listed.output.split("running now")[1]
    assert first.id in progress and "1/2" in progress and "0.375" in progress and "1m15s" in progress
    assert "0/2" in progress


def test_flags_override_the_quick_base():
    from mqar.commands.sweep import build_spec

    none = dict(preset=None, config=None, name=None, archs=None, d_models=None, seq_lens=None, num_kv_pairs=None,
                tasks=None, vocab_size=None, lrs=None, seeds=None, epochs=None, num_train_examples=None,
                batch_size=None, precision=None)
    quick = build_spec(**none)
    assert quick.name == "quick"
    narrowed = build_spec(**{**none, "archs": "based", "epochs": 2})
    assert narrowed.archs == ("based",) and narrowed.recipe.epochs == 2 and narrowed.tasks == quick.tasks
    assert narrowed.name.startswith("quick-") and narrowed.recipe.num_train_examples == quick.recipe.num_train_examples
    # Other tasks from flags: the papers' recipe, not the quick task's, unless flags say otherwise.
    other = build_spec(**{**none, "seq_lens": "64,128", "num_kv_pairs": "8", "epochs": 3})
    assert [(t.seq_len, t.num_kv_pairs) for t in other.tasks] == [(64, 8), (128, 8)]
    assert other.recipe.epochs == 3 and other.recipe.num_train_examples == 100_000


@pytest.mark.parametrize("flag, compiled", [([], None), (["--compile"], True)])
def test_compile_flag_reaches_every_run_as_the_training_function(tmp_path, monkeypatch, flag, compiled):
    import mqar.commands.sweep as sweep_command
    from mqar.train import train

    seen = {}

    def capture(*args, train_fn=None, **kwargs):
        seen["train_fn"] = train_fn
        raise KeyboardInterrupt  # stop before training anything

    monkeypatch.setattr(sweep_command, "run_sweep", capture)
    invoke("sweep", "--archs", "based", "--d-models", "16", "--store", str(tmp_path / "s.db"), *flag)
    if compiled is None:
        assert seen["train_fn"] is None  # the default: mqar.train.train as it is
    else:
        assert seen["train_fn"].func is train and seen["train_fn"].keywords == {"compile_model": True}


@pytest.mark.parametrize("flags", [[], ["--retry-failed"]])
def test_the_retry_hint_names_retry_failed_once(tmp_path, monkeypatch, flags):
    # After `mqar sweep ... --retry-failed` left failed runs, the hint said `... --retry-failed --retry-failed`.
    import sys

    import mqar.commands.sweep as sweep_command
    from mqar.sweep import SweepSummary

    def one_failed(spec, store, **kwargs):
        return SweepSummary(sweep=spec.name, store=store, total=1, done=0, failed=1, pending=0, running=0, new_runs=0,
                            reclaimed=0, retried=0, finished_now=1, seconds=1.0, interrupted=False)

    monkeypatch.setattr(sweep_command, "run_sweep", one_failed)
    args = ["sweep", "--archs", "based", "--d-models", "16", "--store", str(tmp_path / "s.db"), *flags]
    monkeypatch.setattr(sys, "argv", ["mqar", *args])
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    hint = result.output.strip().splitlines()[-1]
    assert hint.endswith(" --retry-failed") and hint.count("--retry-failed") == 1, result.output


def test_ray_missing_is_one_line_and_leaves_the_store_alone(tmp_path, monkeypatch):
    # Ray was imported (and its cluster joined) only once the sweep was registered in the store, its failed runs
    # reset by --retry-failed and the header printed: two lines, and a store changed by a command that failed.
    import sys

    from mqar.errors import UserError
    from mqar.sweep import run_sweep

    store = tmp_path / "s.db"
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    one_line_error(invoke("sweep", "--store", str(store), "--backend", "ray"), "the ray backend needs Ray")
    # The dry run estimated a Ray sweep that could not run here without a word.
    one_line_error(invoke("sweep", "--store", str(store), "--backend", "ray", "--dry-run"), "the ray backend needs Ray")
    assert not store.exists()
    spec = tiny_spec(seeds=(13,))  # test_sweep_fakes.FAIL_SEED
    first = run_sweep(spec, store, devices="cpu", runs_per_device=1, train_fn=fake_train, cache_dir=tmp_path / "cache")
    with pytest.raises(UserError, match="needs Ray"):
        run_sweep(spec, store, backend="ray", retry_failed=True, train_fn=fake_train, cache_dir=tmp_path / "cache")
    with Store(store) as db:
        assert first.failed > 0 and db.counts("t")["failed"] == first.failed  # not reset to 'pending'


def test_an_empty_file_is_an_empty_store_everywhere(tmp_path):
    # `touch s.db` then `mqar results list --store s.db` was 'not an mqar results store (no such table: runs)',
    # while `mqar sweep --store s.db` made its store in it (and `--dry-run` wrote the tables into it).
    store = tmp_path / "s.db"
    store.touch()
    listed = invoke("results", "list", "--store", str(store))
    assert listed.exit_code == 0 and "holds no runs yet" in " ".join(listed.output.split()), listed.output
    exported = invoke("results", "export", "--store", str(store), "--csv", str(tmp_path / "runs.csv"))
    assert exported.exit_code == 0, exported.output
    assert (tmp_path / "runs.csv").read_text().startswith("sweep,run_id,status,")
    one_line_error(invoke("report", "--store", str(store), "--out", str(tmp_path / "out")), "has no runs yet")
    one_line_error(invoke("figure", "rebased-table1", "--store", str(store), "--out", str(tmp_path / "out")),
                   "has finished in")
    dry = invoke("sweep", "--dry-run", "--store", str(store))
    assert dry.exit_code == 0 and "0 (in" in dry.output, dry.output
    assert store.stat().st_size == 0  # reading never writes, a dry run included
    from mqar.sweep import run_sweep

    run_sweep(tiny_spec(seeds=(0,)), store, devices="cpu", train_fn=fake_train, cache_dir=tmp_path / "cache")
    listed = invoke("results", "list", "--store", str(store))
    assert listed.exit_code == 0 and "attention" in listed.output, listed.output


def _dry_run_estimate(*args: str) -> str:
    result = invoke("sweep", "--dry-run", "--preset", "quick", "--backend", "ray", *args)
    assert result.exit_code == 0, result.output
    rows = [line.split("│")[2] for line in result.output.splitlines() if line.count("│") == 3]
    estimate = "".join(rows[[i for i, row in enumerate(rows) if "~" in row][0]:])
    return " ".join(estimate.split())


@pytest.mark.parametrize("gpus, expected", [
    (0, "on 3 Ray CPU slot(s) on this machine (it has no GPU)"),
    (2, "on 2 Ray GPU slot(s) on this machine (2 GPU(s) × 1 run(s) at once)"),
])
def test_ray_dry_run_estimates_with_this_machines_devices(monkeypatch, gpus, expected):
    # A CPU-only machine was estimated at the CUDA rate: one 'Ray GPU slot' whatever the machine had.
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setattr("mqar.sweep.local.usable_cpus", lambda: 3)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    estimate = _dry_run_estimate("--store", "/nonexistent/s.db")
    assert expected in estimate, estimate
    assert f"built-in {'cuda' if gpus else 'cpu'} speed" in estimate, estimate


def test_ray_dry_run_without_gpus_counts_runs_per_device_per_machine(monkeypatch):
    # As run_ray places them on a cluster without GPUs: --runs-per-device runs at once on this machine's CPUs.
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("mqar.sweep.local.usable_cpus", lambda: 3)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    estimate = _dry_run_estimate("--store", "/nonexistent/s.db", "--runs-per-device", "1")
    assert "on 1 Ray CPU slot(s) on this machine (it has no GPU)" in estimate, estimate


def test_ray_dry_run_on_a_cluster_says_what_it_assumes(monkeypatch):
    estimate = _dry_run_estimate("--store", "/nonexistent/s.db", "--address", "head:6379")
    assert "one GPU slot of the Ray cluster at address head:6379 (a dry run does not join it" in estimate, estimate
    assert "built-in cuda speed" in estimate, estimate
    monkeypatch.setenv("RAY_ADDRESS", "head:6380")  # where ray.init() goes without --address
    assert "cluster at address head:6380" in _dry_run_estimate("--store", "/nonexistent/s.db")


def test_preset_help_names_every_preset():
    # It named 4 of the 10 presets in sweeps/.
    import inspect

    from mqar.commands.sweep import sweep
    from mqar.sweep import preset_names

    help_text = inspect.signature(sweep).parameters["preset"].default.help
    assert len(preset_names()) >= 10 and all(name in help_text for name in preset_names())


def test_results_list_keeps_the_numbers_whole_in_80_columns(tmp_path):
    # Boxed, a long sweep name beside arch rebased-affine left the number columns 3 characters wide: 'best acc'
    # 0.650 printed as '0.6' over '50', and the counts' headers as 'don' over 'e'.
    from test_report_fixtures import accuracy, grid, make_store

    store = make_store(tmp_path / "s.db", sweep="rebased-table1-lr-check",
                       configs=grid(archs=("rebased-affine",), tasks=((64, 4),), lrs=(1e-3,), seeds=(0,)))
    listed = invoke("results", "list", "--store", str(store))
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert max(map(len, lines)) <= 80
    header = next(line for line in lines if "arch" in line)
    assert all(word in header.split() for word in ("done", "failed", "running", "pending", "total"))
    rows = [line for line in lines if "rebased-affine" in line]
    assert len(rows) == 1 and rows[0].split()[-6:] == ["2", "0", "0", "0", "2", f"{accuracy('rebased-affine', 32, 64, 1e-3, 0):.3f}"]


# A `mqar sweep` process whose runs are the fake ones (test_sweep_fakes), for signals sent to a real command.
FAKE_TRAINING_CLI = """
import sys
import mqar.commands.sweep as command
from mqar.cli import app
from test_sweep_fakes import fake_train
run_sweep = command.run_sweep
command.run_sweep = lambda *args, train_fn=None, **kwargs: run_sweep(*args, train_fn=fake_train, **kwargs)
app(sys.argv[1:], prog_name="mqar")
"""
TINY_SWEEP_TOML = """
name = "t"
archs = ["attention"]
d_models = [16, 32]
lrs = [1e-3]
seeds = [{seeds}]

[[tasks]]
seq_len = 16
num_kv_pairs = 2
vocab_size = 32

[recipe]
epochs = 2
num_train_examples = 16
num_valid_examples = 8
num_test_examples = 8
batch_size = 8
"""


def _sigterm_a_running_sweep(tmp_path, *, to_group: bool, ignore_sigint: bool):
    """Start `mqar sweep` (80 fake runs of 0.5 s on 2 CPU workers: ~20 s of work), SIGTERM it once a run is done:
    its process group (`timeout`, a time limit) or the driver alone (`kill PID`). (exit code, stderr, seconds the
    driver took to exit, the store's counts)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from test_sweep import TESTS_DIR

    config, store = tmp_path / "t.toml", tmp_path / "s.db"
    # Seeds from 20: test_sweep_fakes' seeds 13 to 17 fail on purpose.
    config.write_text(TINY_SWEEP_TOML.format(seeds=", ".join(map(str, range(20, 60)))))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]),
           "MQAR_FAKE_SLEEP": "0.25"}
    # As `mqar sweep &` in a script: started with SIGINT ignored, which Python keeps (and passes on to the workers).
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None
    args = ["--config", str(config), "--store", str(store), "--cache-dir", str(tmp_path / "cache"), "--devices", "cpu",
            "--runs-per-device", "2", "--no-live"]
    driver = subprocess.Popen([sys.executable, "-c", FAKE_TRAINING_CLI, "sweep", *args], env=env, text=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
                              preexec_fn=ignore)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and driver.poll() is None:
            if store.exists():
                with Store(store) as db:
                    if db.counts("t")["done"] >= 1:
                        break
            time.sleep(0.1)
        assert driver.poll() is None, driver.stderr.read()
        sent = time.monotonic()
        if to_group:
            os.killpg(driver.pid, signal.SIGTERM)
        else:
            os.kill(driver.pid, signal.SIGTERM)
        _, err = driver.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    with Store(store) as db:
        counts = db.counts("t")
    return driver.returncode, err, took, counts


@pytest.mark.parametrize("to_group", [True, False], ids=["process-group", "driver-alone"])
def test_sigterm_stops_a_sweep_as_ctrl_c_does(tmp_path, to_group):
    # SIGTERM (timeout, SLURM's time limit, kill PID, docker stop) killed the driver at once (exit -15) and its
    # workers with it: their runs stayed 'running' until the next sweep reclaimed them, and no resume line.
    code, err, _, counts = _sigterm_a_running_sweep(tmp_path, to_group=to_group, ignore_sigint=False)
    assert code == 128 + 15, err
    assert "interrupted" in err and "resume with:" in err and "sweep --config" in err, err
    assert counts["running"] == 0 and counts["failed"] == 0 and counts["pending"] > 0, counts


def test_sigterm_stops_a_background_sweep_whose_workers_ignore_sigint(tmp_path, monkeypatch):
    # `mqar sweep &`: its workers ignore SIGINT, so the driver's SIGINT stop request went unheard: they trained on
    # through the 20 s grace period and were then killed. Asked with SIGTERM, they hand their runs back at once.
    code, err, took, counts = _sigterm_a_running_sweep(tmp_path, to_group=False, ignore_sigint=True)
    assert code == 128 + 15, err
    assert took < 10, f"the workers took {took:.0f} s to stop"
    assert counts["running"] == 0 and counts["failed"] == 0 and counts["pending"] > 0, counts
