"""`mqar figure`: paper presets, the reduced grids, the published-numbers overlay, --run through the sweep runner."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import mqar.sweep
from mqar.cli import app
from mqar.report.aggregate import aggregate_points
from mqar.report.build import protocol_note
from mqar.report.paper import FIGURES, REBASED_TABLE1, rebased_table1
from mqar.report.plots import plot_by_arch
from mqar.report.tables import points_table
from mqar.sweep.spec import load_sweep_spec
from mqar.sweep.store import Store
from test_report_fixtures import fake_result, fake_table1_accuracy

runner = CliRunner()
TABLE1_REDUCED = "rebased-table1-reduced"


def sweep_summary(spec, store, *, done: int, interrupted: bool = False) -> mqar.sweep.SweepSummary:
    """What run_sweep returns, for the fakes that stand in for it."""
    return mqar.sweep.SweepSummary(
        sweep=spec.name, store=store, total=spec.size, done=done, failed=0, pending=spec.size - done, running=0,
        new_runs=spec.size, reclaimed=0, retried=0, finished_now=done, seconds=1.0, interrupted=interrupted)


def write_results(store_path, configs, sweep: str | None = None) -> None:
    with Store(store_path) as store:
        if sweep is not None:
            store.register_sweep(sweep, configs)
        for run in configs:
            store.record_result(fake_result(run, fake_table1_accuracy(run)))


@pytest.fixture(scope="module")
def table1_configs():
    return load_sweep_spec(TABLE1_REDUCED).expand()


def test_reduced_presets_are_smaller_grids_of_the_paper_tasks():
    for name, preset in FIGURES.items():
        spec = load_sweep_spec(preset.sweep_name("reduced"))
        assert spec.name == preset.sweep_name("reduced")
        assert len(spec.lrs) <= 2 and len(spec.seeds) <= 3
    table1 = load_sweep_spec(TABLE1_REDUCED)
    assert set(table1.archs) == set(REBASED_TABLE1) and table1.d_models == (16, 24, 32, 48)
    assert [(task.seq_len, task.num_kv_pairs, task.vocab_size) for task in table1.tasks] == [(256, 32, 8192)]
    assert protocol_note(table1.expand(), "reduced") == (
        "reduced protocol: 1 lr (0.003) × 2 seeds, 100000 train examples, 64 epochs")


def test_each_figure_knows_its_full_sweep():
    for name, preset in FIGURES.items():
        full, reduced = load_sweep_spec(preset.sweep_name("full")), load_sweep_spec(preset.sweep_name("reduced"))
        assert full.name == name
        # The reduced grid is a subset of the paper's in archs, widths and tasks (only the protocol shrinks).
        assert set(reduced.archs) <= set(full.archs) and set(reduced.d_models) <= set(full.d_models)
        assert set(reduced.tasks) <= set(full.tasks) and set(reduced.lrs) <= set(full.lrs)
        assert reduced.size < full.size
        assert set(full.archs) <= set(preset.arch_order)  # each arch in its place: the same colour and marker


def test_zoology_figure2_runs_zoologys_rwkv():
    """Zoology's RWKV (4 layers, n_layer-12 init, no positions), not ReBased Figure 1's 2-layer `rwkv`."""
    archs = load_sweep_spec("zoology-figure2").archs
    assert "rwkv-zoology" in archs and "rwkv" not in archs
    assert "rwkv-zoology" in FIGURES["zoology-figure2"].arch_order


def test_table1_overlay_puts_the_published_numbers_beside_ours(table1_configs):
    rows = []
    for run in table1_configs:
        value = fake_table1_accuracy(run)
        rows.append({"sweep": "t", "run_id": run.id, "status": "done", "arch": run.arch, "d_model": run.d_model,
                     "seq_len": 256, "num_kv_pairs": 32, "vocab_size": 8192, "lr": run.lr, "seed": run.seed,
                     "best_valid_accuracy": value, "test_accuracy": value})
    points = aggregate_points(pd.DataFrame(rows), "best-valid")
    assert set(points["lr"]) == {3e-3}
    table = points_table(points, rebased_table1())
    assert len(table) == 24
    # The fake runs sit on the published means (seeds ±0.01 average out), away from the clip at 0 and 1.
    cell = table[(table["arch"] == "rebased") & (table["d_model"] == 24)].iloc[0]
    assert (cell["paper_mean"], cell["paper_std"]) == (0.59, 0.06)
    assert cell["mean"] == pytest.approx(0.59) and cell["diff"] == pytest.approx(0.0, abs=1e-9)
    figure = plot_by_arch(points, title="t", reference=rebased_table1(), notes=["reduced protocol"])
    assert len(figure.axes) == 6
    for axis in figure.axes:
        assert axis.get_legend_handles_labels()[1] == ["mqar", "paper"]
    assert any(text.get_text() == "reduced protocol" for text in figure.texts)


def test_figure_command_draws_a_partial_reduced_table1(tmp_path, table1_configs):
    store = tmp_path / "mqar.db"
    done = [run for run in table1_configs if run.arch in ("based", "rebased")]
    write_results(store, done)  # stored by another sweep or by hand: the figure finds runs by id
    out = tmp_path / "figures"
    result = runner.invoke(app, ["figure", "rebased-table1", "--scale", "reduced", "--store", str(store),
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"PARTIAL: {48 - len(done)} of 48 runs missing ({48 - len(done)} absent)" in result.output
    assert "reduced protocol: 1 lr (0.003) × 2 seeds" in result.output
    table = pd.read_csv(out / f"{TABLE1_REDUCED}.csv")
    assert len(table) == 24  # every published cell, ours empty where not run yet
    assert table["mean"].notna().sum() == 8
    based = table[(table["arch"] == "based") & (table["d_model"] == 32)].iloc[0]
    assert based["diff"] == pytest.approx(based["mean"] - 0.82)
    markdown = (out / f"{TABLE1_REDUCED}.md").read_text()
    assert "paper_mean" in markdown and "## Missing runs" in markdown
    assert (out / f"{TABLE1_REDUCED}.png").stat().st_size > 10_000


def test_a_point_missing_a_seed_of_the_figure_grid_counts_that_seed_as_expected(tmp_path, table1_configs):
    # Seed 1 of based d_model 24 never reached the store (its runs came from another sweep): that point rests on
    # 1 of the 2 planned seeds, not on '1 of 1'.
    store = tmp_path / "mqar.db"
    absent = [run for run in table1_configs if (run.arch, run.d_model, run.seed) == ("based", 24, 1)]
    write_results(store, [run for run in table1_configs if run not in absent])
    out = tmp_path / "figures"
    result = runner.invoke(app, ["figure", "rebased-table1", "--scale", "reduced", "--store", str(store),
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / f"{TABLE1_REDUCED}.csv")
    cell = table[(table["arch"] == "based") & (table["d_model"] == 24)].iloc[0]
    assert (cell["n_seeds"], cell["n_expected"]) == (1, 2)
    assert set(table.loc[table["arch"] != "based", "n_expected"]) == {2}


def test_figure_run_trains_what_is_missing_through_the_sweep_runner(tmp_path, monkeypatch, table1_configs):
    calls = []

    def fake_run_sweep(spec, *, store, **options):
        calls.append((spec.name, options))
        write_results(store, spec.expand(), sweep=spec.name)
        return sweep_summary(spec, store, done=spec.size)

    monkeypatch.setattr(mqar.sweep, "run_sweep", fake_run_sweep, raising=False)
    store, out = tmp_path / "mqar.db", tmp_path / "figures"
    arguments = ["figure", "rebased-table1", "--scale", "reduced", "--run", "--store", str(store), "--out", str(out),
                 "--devices", "cuda:0,cuda:1", "--runs-per-device", "4", "--curves"]
    if not torch.cuda.is_available():  # devices absent here are refused before the store is made
        result = runner.invoke(app, arguments)
        assert result.exit_code == 2 and "cuda:0" in result.output and not store.exists() and not calls
    from mqar.sweep import local

    monkeypatch.setattr(local, "resolve_devices", lambda devices: devices)  # as if both GPUs were there
    result = runner.invoke(app, arguments)
    assert result.exit_code == 0, result.output
    assert calls == [(TABLE1_REDUCED, {"devices": ["cuda:0", "cuda:1"], "runs_per_device": 4, "live": None})]
    assert "PARTIAL" not in result.output
    assert {f"{TABLE1_REDUCED}.png", f"{TABLE1_REDUCED}-curves.png"} <= {path.name for path in out.iterdir()}
    table = pd.read_csv(out / f"{TABLE1_REDUCED}.csv")
    assert table["diff"].abs().max() == pytest.approx(0.0, abs=1e-9)


def test_figure_run_with_compile_trains_through_the_compiled_training_function(tmp_path, monkeypatch, table1_configs):
    from mqar.train import train

    calls = []

    def fake_run_sweep(spec, *, store, **options):
        calls.append(options)
        write_results(store, spec.expand(), sweep=spec.name)
        return sweep_summary(spec, store, done=spec.size)

    monkeypatch.setattr(mqar.sweep, "run_sweep", fake_run_sweep, raising=False)
    result = runner.invoke(app, ["figure", "rebased-table1", "--scale", "reduced", "--run", "--compile", "--store",
                                 str(tmp_path / "mqar.db"), "--out", str(tmp_path / "figures")])
    assert result.exit_code == 0, result.output
    (options,) = calls
    assert options["train_fn"].func is train and options["train_fn"].keywords == {"compile_model": True}


def test_figure_run_stopped_by_ctrl_c_says_so_and_draws_nothing(tmp_path, monkeypatch, table1_configs):
    # A Ctrl-C during the runs went on to draw what had finished (exit 0), or, before the first run finished, said
    # 'none of the 48 runs ... has finished; run `mqar figure ... --run` to train them' (exit 2).
    import sys

    def interrupted_run_sweep(spec, *, store, **options):
        done = [run for run in spec.expand() if run.arch == "based"]
        write_results(store, done, sweep=spec.name)
        return sweep_summary(spec, store, done=len(done), interrupted=True)

    monkeypatch.setattr(mqar.sweep, "run_sweep", interrupted_run_sweep, raising=False)
    store, out = tmp_path / "mqar.db", tmp_path / "figures"
    arguments = ["figure", "rebased-table1", "--scale", "reduced", "--run", "--store", str(store), "--out", str(out)]
    monkeypatch.setattr(sys, "argv", ["mqar", *arguments])
    result = runner.invoke(app, arguments)
    assert result.exit_code == 130, result.output
    assert "interrupted: 8 done, 0 failed, 40 left of 48. Every finished run is saved; resume with:" in result.output
    assert result.output.rstrip().endswith("mqar " + " ".join(arguments))
    assert not out.exists()


def test_figure_run_stopped_by_sigterm_says_so_with_exit_143(tmp_path, monkeypatch, table1_configs):
    # SIGTERM (a time limit, `kill PID`) during the runs killed the command at once: no resume line, exit -15.
    import os
    import signal
    import time

    def terminated_run_sweep(spec, *, store, **options):
        os.kill(os.getpid(), signal.SIGTERM)  # as the executors see it: an exception in their wait for the workers
        time.sleep(5)
        return sweep_summary(spec, store, done=0, interrupted=False)

    def unhandled(signum, frame):  # stands in for the default (death), which would end this test session
        raise RuntimeError("SIGTERM not handled")

    monkeypatch.setattr(mqar.sweep, "run_sweep", terminated_run_sweep, raising=False)
    previous = signal.signal(signal.SIGTERM, unhandled)
    try:
        result = runner.invoke(app, ["figure", "rebased-table1", "--scale", "reduced", "--run", "--store",
                                     str(tmp_path / "mqar.db"), "--out", str(tmp_path / "figures")])
        assert signal.getsignal(signal.SIGTERM) is unhandled  # the command's own handler ends with it
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert result.exit_code == 143, result.output
    assert "interrupted: Every finished run is saved; resume with:" in result.output


@pytest.mark.parametrize("args, message", [
    (["rebased-figure9"], "unknown figure 'rebased-figure9'; choose one of rebased-figure1, rebased-table1"),
    (["rebased-table1", "--scale", "tiny"], "unknown --scale 'tiny'"),
    (["rebased-table1", "--metric", "loss"], "unknown --metric 'loss'"),
    (["rebased-table1", "--runs-per-device", "0"], "--runs-per-device must be at least 1"),
    (["rebased-table1", "--scale", "reduced"], "no results store at"),
])
def test_figure_command_errors_are_one_line_and_exit_2(tmp_path, args, message):
    result = runner.invoke(app, ["figure", *args, "--store", str(tmp_path / "none.db"), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and message in result.output
    assert result.output.count("\n") == 1


def test_figure_without_finished_runs_says_how_to_run_them(tmp_path):
    store = tmp_path / "mqar.db"
    Store(store).close()
    result = runner.invoke(app, ["figure", "zoology-figure2", "--scale", "reduced", "--store", str(store)])
    assert result.exit_code == 2
    assert ("none of the 96 runs of zoology-figure2-reduced has finished" in result.output
            and f"mqar figure zoology-figure2 --scale reduced --run --store {store}`" in result.output)


def test_figure_with_failed_runs_only_names_retry_failed(tmp_path, table1_configs):
    store = tmp_path / "mqar.db"
    with Store(store) as db:
        db.register_sweep(TABLE1_REDUCED, table1_configs)
        for run in table1_configs:
            db.record_failure(run.id, "Traceback (most recent call last):\nRuntimeError: loss is NaN")
    result = runner.invoke(app, ["figure", "rebased-table1", "--scale", "reduced", "--store", str(store)])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert f"mqar sweep --preset {TABLE1_REDUCED} --store {store} --retry-failed" in result.output


def test_figure_writes_its_provenance_from_the_store(tmp_path, table1_configs):
    store, out = tmp_path / "mqar.db", tmp_path / "figures"
    done = [run for run in table1_configs if run.arch == "based"]
    write_results(store, done)
    result = runner.invoke(app, ["figure", "rebased-table1", "--scale", "reduced", "--store", str(store),
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = (out / f"{TABLE1_REDUCED}-provenance.md").read_text()
    assert f"- runs: {len(done)} done, {48 - len(done)} absent" in text
    assert "sweep preset: sweeps/rebased-table1-reduced.toml" in text and "reduced protocol: 1 lr (0.003)" in text
    assert f"| cpu on host " in text and f"| {len(done)} |" in text  # fake runs: device "cpu", this host
    assert "mqar test (source not recorded)" in text and "more than one software stack" not in text
    assert f"mqar figure rebased-table1 --scale reduced --run --store {store}" in text
    assert f"training time of the {len(done)} finished runs" in text
    result = runner.invoke(app, ["figure", "rebased-table1", "--scale", "reduced", "--store", str(store),
                                 "--out", str(out), "--metric", "test"])
    assert result.exit_code == 0, result.output
    text = (out / f"{TABLE1_REDUCED}-provenance.md").read_text()
    assert f"mqar figure rebased-table1 --scale reduced --store {store} --out {out} --metric test   # redraw" in text


def test_the_figure_provenance_commands_survive_a_space_in_a_path(tmp_path, table1_configs):
    import shlex

    store, out = tmp_path / "my results" / "mqar.db", tmp_path / "my figures"
    store.parent.mkdir()
    write_results(store, [run for run in table1_configs if run.arch == "based"])
    result = runner.invoke(app, ["figure", "rebased-table1", "--scale", "reduced", "--store", str(store),
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    commands = [shlex.split(line, comments=True) for line in (out / f"{TABLE1_REDUCED}-provenance.md").read_text()
                .splitlines() if line.startswith("mqar figure")]
    assert len(commands) == 2
    for words in commands:
        assert words[words.index("--store") + 1] == str(store)
    assert commands[1][commands[1].index("--out") + 1] == str(out)
