"""The reporter: aggregation rules on hand-made frames, figures and tables, and `mqar report` on fixture stores."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mqar.cli import app
from mqar.errors import UserError
from mqar.report.aggregate import aggregate_points, filter_runs, missing_runs, per_lr_table
from mqar.report.build import build_report, expected_frame
from mqar.report.plots import plot_accuracy, plot_learning_curves
from mqar.report.state_size import state_size
from mqar.report.tables import _cell_text
from mqar.report.tables import points_table, to_markdown
from test_report_fixtures import ARCHS, D_MODELS, LRS, SEEDS, TASKS, accuracy, config, fake_result, grid, make_store

runner = CliRunner()


def run_row(arch="based", d_model=64, seq_len=128, kv=16, lr=1e-3, seed=0, valid=0.5, test=None,
            status="done", run_id=None, error=None) -> dict:
    return {
        "sweep": "s", "run_id": run_id or f"{arch}-{d_model}-{seq_len}-{lr}-{seed}", "status": status, "arch": arch,
        "d_model": d_model, "seq_len": seq_len, "num_kv_pairs": kv, "vocab_size": 8192, "lr": lr, "seed": seed,
        "best_valid_accuracy": valid if status == "done" else None,
        "test_accuracy": (valid if test is None else test) if status == "done" else None, "error": error,
    }


# Aggregation --------------------------------------------------------------------------------------------------

def test_best_lr_is_chosen_by_seed_mean_validation_not_by_test():
    # lr 1e-3: valid mean 0.8, test mean 0.5; lr 1e-2: valid mean 0.7, test mean 0.9.
    runs = pd.DataFrame([
        run_row(lr=1e-3, seed=0, valid=0.9, test=0.4), run_row(lr=1e-3, seed=1, valid=0.7, test=0.6),
        run_row(lr=1e-2, seed=0, valid=0.7, test=0.9), run_row(lr=1e-2, seed=1, valid=0.7, test=0.9),
    ])
    point = aggregate_points(runs, "test").iloc[0]
    assert point["lr"] == 1e-3
    assert point["mean"] == pytest.approx(0.5)
    assert point["std"] == pytest.approx(np.sqrt(0.02))  # sample std (ddof=1) of (0.4, 0.6), as the paper's
    assert point["selection_score"] == pytest.approx(0.8)
    assert point["lrs"] == (1e-3, 1e-2)
    valid_point = aggregate_points(runs, "best-valid").iloc[0]
    assert (valid_point["lr"], valid_point["mean"]) == (1e-3, pytest.approx(0.8))


def test_ties_go_to_the_smaller_lr_and_error_bars_are_clipped():
    runs = pd.DataFrame([
        run_row(lr=3e-3, seed=0, valid=1.0), run_row(lr=3e-3, seed=1, valid=0.8),
        run_row(lr=1e-3, seed=0, valid=0.9), run_row(lr=1e-3, seed=1, valid=0.9),
    ])
    point = aggregate_points(runs, "best-valid").iloc[0]
    assert point["lr"] == 1e-3
    runs = pd.DataFrame([run_row(seed=0, valid=1.0), run_row(seed=1, valid=0.8), run_row(seed=2, valid=1.0)])
    point = aggregate_points(runs, "best-valid").iloc[0]
    assert point["std"] == pytest.approx(np.std([1.0, 0.8, 1.0], ddof=1))
    assert point["upper"] == 1.0 and point["lower"] == pytest.approx(point["mean"] - point["std"])


def test_every_lr_of_a_cell_is_listed_with_its_seeds_and_the_chosen_one_marked():
    runs = pd.DataFrame([
        run_row(lr=1e-3, seed=1, valid=0.9, test=0.4), run_row(lr=1e-3, seed=0, valid=0.7, test=0.6),
        run_row(lr=1e-2, seed=0, valid=0.1), run_row(lr=1e-2, seed=1, status="pending"),
        run_row(d_model=32, lr=1e-3, valid=0.2),
    ])
    table = per_lr_table(runs, aggregate_points(runs, "test"), "test")
    assert table[["d_model", "lr", "n_seeds", "seeds", "chosen"]].values.tolist() == [
        [32, 1e-3, 1, "0: 0.200", True],
        [64, 1e-3, 2, "0: 0.600, 1: 0.400", True],  # seeds in order; test values, the lr chosen on valid
        [64, 1e-2, 1, "0: 0.100", False],  # the pending seed is not a value
    ]
    assert table.loc[1, "mean"] == pytest.approx(0.5) and table.loc[1, "std"] == pytest.approx(np.sqrt(0.02))
    assert np.isnan(table.loc[0, "std"])  # one seed: no spread to speak of


def test_one_seed_has_no_error_bar_and_an_empty_std_cell():
    point = aggregate_points(pd.DataFrame([run_row(seed=0, valid=0.7)]), "best-valid").iloc[0]
    assert np.isnan(point["std"]) and point["lower"] == point["upper"] == pytest.approx(0.7)
    assert _cell_text("std", point["std"]) == ""


def test_the_report_lists_every_lr_only_where_a_cell_tried_several(tmp_path):
    one_lr = pd.DataFrame([run_row(seed=0, valid=0.5), run_row(seed=1, valid=0.7)])
    build_report(one_lr, name="one", out_dir=tmp_path, curves=False)
    assert "## Every lr" not in (tmp_path / "one.md").read_text()
    two_lrs = pd.DataFrame([run_row(lr=1e-3, valid=0.5), run_row(lr=1e-2, valid=0.7)])
    build_report(two_lrs, name="two", out_dir=tmp_path, curves=False)
    text = (tmp_path / "two.md").read_text()
    assert "## Every lr" in text and "| 0.01 | 0.700 |  | 1 | 0: 0.700 | yes |" in text


def test_unfinished_runs_count_as_expected_but_not_as_seeds():
    runs = pd.DataFrame([
        run_row(seed=0, valid=0.6), run_row(seed=1, status="failed", error="Traceback\n...\nRuntimeError: NaN"),
        run_row(seed=2, status="pending"), run_row(arch="rebased", seed=0, status="pending"),
    ])
    points = aggregate_points(runs, "test")
    assert len(points) == 1  # the rebased cell has no finished run: no point, but listed as missing
    assert (points.iloc[0]["n_seeds"], points.iloc[0]["n_expected"]) == (1, 3)
    missing = missing_runs(runs)
    assert list(missing["status"]) == ["failed", "pending", "pending"]
    assert missing.iloc[0]["error"] == "RuntimeError: NaN"
    # A run of the planned grid that the store does not hold at all is 'absent'.
    planned = expected_frame([config("based", 64, 128, 16, 1e-3, 9)])
    assert "absent" in set(missing_runs(runs, planned)["status"])


def test_a_run_listed_in_two_sweeps_counts_once():
    row = run_row(valid=0.4)
    runs = pd.DataFrame([row, {**row, "sweep": "other"}, run_row(seed=1, valid=0.6)])
    assert aggregate_points(runs, "best-valid").iloc[0]["n_seeds"] == 2


def test_filters_reject_values_that_match_nothing():
    runs = pd.DataFrame([run_row(), run_row(arch="rebased")])
    assert set(filter_runs(runs, archs=["rebased"])["arch"]) == {"rebased"}
    with pytest.raises(UserError, match="no runs with arch mamba; the runs to report have arch based, rebased"):
        filter_runs(runs, archs=["mamba"])


def test_filters_take_lists_and_arrays_and_name_a_bare_value():
    """From Python: archs="based" was read letter by letter ('no runs with arch b, a, s, e, d'), seq_lens=64 was a
    TypeError, and a numpy array of several values a ValueError (ambiguous truth value)."""
    runs = pd.DataFrame([run_row(), run_row(arch="rebased")])
    with pytest.raises(UserError, match=r"archs must be a list, e.g. archs=\['based'\]"):
        filter_runs(runs, archs="based")
    with pytest.raises(UserError, match=r"seq_lens must be a list"):
        filter_runs(runs, seq_lens=run_row()["seq_len"])
    d_model = run_row()["d_model"]
    assert len(filter_runs(runs, d_models=np.array([d_model, d_model]))) == 2
    assert set(filter_runs(runs, archs=("rebased",))["arch"]) == {"rebased"}


def test_unknown_metric_is_a_user_error():
    with pytest.raises(UserError, match="unknown metric"):
        aggregate_points(pd.DataFrame([run_row()]), "accuracy")


def test_state_size_formulas():
    # based: 12 heads × 273 features × (64 // 12 = 5) + 12 × 273 normaliser + 2 × 64 conv state.
    assert state_size("based", 64, 512) == 12 * 273 * 5 + 12 * 273 + 128
    assert state_size("rebased", 128, 512) == 12 * 256 * 10 + 12 * 256 + 256
    assert state_size("attention", 64, 512) == 2 * 2 * 512 * 64
    assert state_size("conv-attention", 64, 512) == 2 * 512 * 64 + 128
    assert state_size("mamba", 64, 512) == 2 * 128 * (16 + 3)
    assert state_size("rwkv", 64, 512) == 2 * 4 * 64
    assert state_size("rwkv-zoology", 64, 512) == 4 * 4 * 64  # Zoology's 4 layers of the same time mixer
    assert state_size("hyena", 64, 512) is None
    # Attention's state grows with the sequence; a linear model's does not.
    assert state_size("based", 64, 2048) == state_size("based", 64, 128)


# Figures and tables --------------------------------------------------------------------------------------------

def fixture_frame(**kwargs) -> pd.DataFrame:
    rows = []
    for run in grid(**kwargs):
        valid = accuracy(run.arch, run.d_model, run.task.seq_len, run.lr, run.seed)
        rows.append(run_row(run.arch, run.d_model, run.task.seq_len, run.task.num_kv_pairs, run.lr, run.seed,
                            valid=valid, test=valid - 0.02, run_id=run.id))
    return pd.DataFrame(rows)


def labelled_lines(axis) -> list[str]:
    return axis.get_legend_handles_labels()[1]


def test_plot_has_a_panel_per_task_and_a_line_per_arch():
    points = aggregate_points(fixture_frame(archs=("based", "rebased", "attention")), "test")
    figure = plot_accuracy(points, title="t", notes=["PARTIAL: 1 of 2 runs missing"])
    assert len(figure.axes) == len(TASKS)
    assert [axis.get_title() for axis in figure.axes] == ["seq_len 64 · kv 4", "seq_len 128 · kv 8"]
    for axis in figure.axes:
        assert sorted(labelled_lines(axis)) == ["attention", "based", "rebased"]
    assert any("PARTIAL" in text.get_text() for text in figure.texts)
    # Panels by kv count title the kv first; state-size axes drop archs without a formula and say so.
    points.loc[points["arch"] == "attention", "arch"] = "hyena"
    figure = plot_accuracy(points, title="t", x_axis="state-size", panel_by="num_kv_pairs")
    assert figure.axes[0].get_title() == "kv 4 · seq_len 64"
    assert sorted(labelled_lines(figure.axes[0])) == ["based", "rebased"]
    assert any("no state-size formula for hyena" in text.get_text() for text in figure.texts)


def test_each_arch_has_its_own_marker_so_coinciding_lines_both_show():
    # Based and ReBased with the same accuracies (the quick sweep at d_model 24 and 64) drew one line over the
    # other, both with circles: only one arch was visible.
    points = aggregate_points(fixture_frame(archs=("based", "rebased", "attention")), "test")
    axis = plot_accuracy(points, title="t").axes[0]
    markers = {label: container.lines[0].get_marker()
               for label, container in zip(labelled_lines(axis), axis.containers)}
    assert len(set(markers.values())) == 3, markers


def test_plotted_values_are_the_means_at_the_best_lr():
    points = aggregate_points(fixture_frame(), "best-valid")
    figure = plot_accuracy(points, title="t", metric="best-valid")
    axis = figure.axes[0]  # seq_len 64
    line = axis.containers[labelled_lines(axis).index("based")].lines[0]
    expected = [np.mean([accuracy("based", d, 64, 1e-2, seed) for seed in SEEDS]) for d in D_MODELS]
    np.testing.assert_allclose(line.get_xdata(), D_MODELS)
    np.testing.assert_allclose(line.get_ydata(), expected)


def test_learning_curves_have_a_panel_per_width_and_task():
    runs = fixture_frame()
    epochs = pd.DataFrame([{"run_id": run_id, "epoch": epoch, "valid_accuracy": epoch / 4}
                           for run_id in runs["run_id"] for epoch in range(1, 5)])
    curves = epochs.merge(runs, on="run_id")
    figure = plot_learning_curves(curves, title="t")
    assert len(figure.axes) == len(D_MODELS) * len(TASKS)
    assert sorted(labelled_lines(figure.axes[0])) == ["based", "rebased"]
    assert len(figure.axes[0].lines) == len(ARCHS) * len(LRS) * len(SEEDS)


def test_learning_curves_mark_whole_epochs_only():
    # A run of 13 epochs (the quick sweep's Based at d_model 64) had ticks at 2.5, 5.0, 7.5, ...
    runs = fixture_frame()
    epochs = pd.DataFrame([{"run_id": run_id, "epoch": epoch, "valid_accuracy": epoch / 13}
                           for run_id in runs["run_id"] for epoch in range(1, 14)])
    figure = plot_learning_curves(epochs.merge(runs, on="run_id"), title="t")
    figure.canvas.draw()
    for axis in figure.axes:
        ticks = [tick for tick in axis.get_xticks() if axis.get_xlim()[0] <= tick <= axis.get_xlim()[1]]
        assert ticks and all(float(tick).is_integer() for tick in ticks), ticks


def test_markdown_table_has_the_numbers_and_seed_counts():
    points = aggregate_points(fixture_frame(), "test")
    markdown = to_markdown(points_table(points))
    assert markdown.splitlines()[0].startswith("| seq_len | num_kv_pairs | vocab_size | arch | d_model | lr |")
    best = np.mean([accuracy("rebased", 32, 128, 1e-3, seed) - 0.02 for seed in SEEDS])
    assert f"| 128 | 8 | 8192 | rebased | 32 | 0.001 | {best:.3f} | 0.071 | 2 | 2 |" in markdown


def test_build_report_writes_figures_and_tables_named_after_the_sweep(tmp_path):
    runs = fixture_frame()
    runs.loc[0, "status"] = "failed"
    report = build_report(runs, name="demo", out_dir=tmp_path)
    assert report.partial and report.notes[0] == "PARTIAL: 1 of 32 runs missing (1 failed)"
    assert {path.name for path in report.files} == {"demo.png", "demo.pdf", "demo.md", "demo.csv",
                                                    "demo-missing.csv"}
    assert "## Missing runs" in (tmp_path / "demo.md").read_text()
    assert len(pd.read_csv(tmp_path / "demo.csv")) == len(ARCHS) * len(D_MODELS) * len(TASKS)


# `mqar report` on fixture stores --------------------------------------------------------------------------------

@pytest.fixture
def store(tmp_path):
    configs = grid()
    failed = [config("rebased", 16, 128, 8, 1e-3, 1)]
    pending = [config("based", 32, 64, 4, 1e-2, 0)]
    return make_store(tmp_path / "mqar.db", configs=configs, failed=failed, pending=pending)


def test_report_command_writes_the_report_of_a_partial_grid(store, tmp_path):
    out = tmp_path / "figures"
    result = runner.invoke(app, ["report", "--store", str(store), "--out", str(out), "--curves"])
    assert result.exit_code == 0, result.output
    assert {path.name for path in out.iterdir()} == {
        "grid.png", "grid.pdf", "grid-curves.png", "grid-curves.pdf", "grid.md", "grid.csv", "grid-missing.csv",
        "grid-provenance.md"}
    assert "PARTIAL: 2 of 32 runs missing" in result.output
    missing = pd.read_csv(out / "grid-missing.csv")
    assert sorted(missing["status"]) == ["failed", "pending"]
    assert missing.loc[missing["status"] == "failed", "error"].item() == "RuntimeError: loss is NaN"
    table = pd.read_csv(out / "grid.csv")
    cell = table[(table["arch"] == "based") & (table["d_model"] == 32) & (table["seq_len"] == 64)].iloc[0]
    # The pending seed of based/32/64 at its best lr leaves one seed (seed 1) behind the point.
    assert (cell["lr"], cell["n_seeds"], cell["n_expected"]) == (1e-2, 1, 2)
    assert cell["mean"] == pytest.approx(accuracy("based", 32, 64, 1e-2, 1) - 0.02)


def test_redrawing_a_grid_that_has_finished_leaves_no_missing_runs_list(tmp_path):
    # The partial draw's NAME-missing.csv stayed beside the complete redraw, listing runs that had finished.
    configs = grid(archs=("based",), tasks=TASKS[:1])
    store = make_store(tmp_path / "mqar.db", configs=configs, pending=configs[:1])
    out = tmp_path / "figures"
    assert runner.invoke(app, ["report", "--store", str(store), "--out", str(out)]).exit_code == 0
    assert (out / "grid-missing.csv").exists()
    make_store(store, configs=configs)  # the pending run finishes
    result = runner.invoke(app, ["report", "--store", str(store), "--out", str(out)])
    assert result.exit_code == 0 and "PARTIAL" not in result.output, result.output
    assert not (out / "grid-missing.csv").exists()
    assert "grid-missing.csv" not in result.output


def test_report_command_filters_and_options(store, tmp_path):
    out = tmp_path / "figures"
    result = runner.invoke(app, ["report", "--store", str(store), "--out", str(out), "--sweep", "grid",
                                 "--archs", "rebased", "--seq-lens", "64", "--metric", "best-valid",
                                 "--x", "state-size"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "grid.csv")
    assert set(table["arch"]) == {"rebased"} and set(table["seq_len"]) == {64}
    assert table["mean"].tolist() == pytest.approx(
        [np.mean([accuracy("rebased", d, 64, 1e-3, seed) for seed in SEEDS]) for d in D_MODELS])
    assert not (out / "grid-missing.csv").exists()  # the filtered grid is complete
    # The provenance's redraw command draws this figure again, not the default one.
    assert (f"mqar report --store {store} --sweep grid --out {out} --metric best-valid --x state-size "
            "--panel-by seq-len --archs rebased --seq-lens 64\n") in (out / "grid-provenance.md").read_text()


def test_the_provenance_redraw_command_survives_a_space_in_a_path(tmp_path):
    # 'mqar report --store /tmp/my results/mqar.db ...' in the provenance file: pasted into a shell, a store named
    # /tmp/my and a stray argument.
    import shlex

    folder = tmp_path / "my results"
    store = make_store(folder / "mqar.db", configs=grid(archs=("based",), tasks=TASKS[:1]))
    out = folder / "figures"
    assert runner.invoke(app, ["report", "--store", str(store), "--out", str(out)]).exit_code == 0
    line = next(line for line in (out / "grid-provenance.md").read_text().splitlines()
                if line.startswith("mqar report"))
    words = shlex.split(line)
    assert words[words.index("--store") + 1] == str(store) and words[words.index("--out") + 1] == str(out)
    redrawn = runner.invoke(app, words[1:])
    assert redrawn.exit_code == 0, redrawn.output


def test_a_sweep_name_with_a_slash_names_files_in_the_out_folder(tmp_path):
    # `mqar sweep --name exp/one` is accepted; its report went to out/exp/one.png: a FileNotFoundError traceback.
    store = make_store(tmp_path / "mqar.db", sweep="exp/one", configs=grid(archs=("based",), tasks=TASKS[:1]))
    out = tmp_path / "out"
    result = runner.invoke(app, ["report", "--store", str(store), "--out", str(out), "--curves"])
    assert result.exit_code == 0, result.output
    assert {"exp_one.png", "exp_one-curves.png", "exp_one.md", "exp_one.csv", "exp_one-provenance.md"} <= {
        path.name for path in out.iterdir()}
    assert "# exp/one" in (out / "exp_one.md").read_text()  # the name itself is kept inside the files


def test_report_makes_one_report_per_sweep(tmp_path):
    store = make_store(tmp_path / "mqar.db", sweep="first", configs=grid(archs=("based",), tasks=TASKS[:1]))
    make_store(store, sweep="second", configs=grid(archs=("rebased",), tasks=TASKS[:1]))
    result = runner.invoke(app, ["report", "--store", str(store), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert {"first.png", "second.png"} <= {path.name for path in (tmp_path / "out").iterdir()}


def test_a_sweep_without_finished_runs_does_not_stop_the_reports_of_the_others(tmp_path):
    # A second sweep just registered (all pending) made `mqar report` exit 2 with that sweep's error: the first
    # sweep's table was never printed (its files were written, without a word).
    store = make_store(tmp_path / "mqar.db", sweep="first", configs=grid(archs=("based",), tasks=TASKS[:1]))
    later = grid(archs=("rebased",), tasks=TASKS[:1])
    make_store(store, sweep="second", configs=later, pending=later)
    out = tmp_path / "out"
    result = runner.invoke(app, ["report", "--store", str(store), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "first: 2 points" in result.output and "first.png" in {path.name for path in out.iterdir()}
    assert "not reported: second has no finished run yet (8 pending)" in result.output
    # Asked for by name, it is still the one-line error that says what to do.
    result = runner.invoke(app, ["report", "--store", str(store), "--out", str(out), "--sweep", "second"])
    assert result.exit_code == 2 and "no finished runs to report for second (8 pending)" in result.output


def test_a_filter_without_sweep_reports_the_sweeps_that_have_the_value(tmp_path):
    store = make_store(tmp_path / "mqar.db", sweep="first", configs=grid(archs=("based",), tasks=TASKS[:1]))
    make_store(store, sweep="second", configs=grid(archs=("rebased",), tasks=TASKS[:1]))
    out = tmp_path / "out"
    result = runner.invoke(app, ["report", "--store", str(store), "--out", str(out), "--archs", "rebased"])
    assert result.exit_code == 0, result.output
    assert "second.png" in {path.name for path in out.iterdir()}
    assert "first.png" not in {path.name for path in out.iterdir()}
    result = runner.invoke(app, ["report", "--store", str(store), "--out", str(out), "--archs", "mamba"])
    assert result.exit_code == 2
    assert "no runs with arch mamba; the runs to report have arch based, rebased" in result.output
    # values held by different sweeps: each sweep reports the ones it has (each sweep was filtered again by all of
    # them, and the first failed on the value only the second holds)
    both = tmp_path / "both"
    result = runner.invoke(app, ["report", "--store", str(store), "--out", str(both), "--archs", "based,rebased"])
    assert result.exit_code == 0, result.output
    assert {"first.png", "second.png"} <= {path.name for path in both.iterdir()}


@pytest.mark.parametrize("args, message", [
    (["--store", "{missing}"], "no results store at"),
    (["--sweep", "nope"], "no sweep named 'nope'"),
    (["--archs", "mamba"], "no runs with arch mamba"),
    (["--d-models", "16,x"], "cannot read --d-models '16,x'"),
    (["--seq-lens", ","], "--seq-lens is empty"),
    (["--metric", "loss"], "unknown --metric 'loss'"),
    (["--x", "params"], "unknown --x 'params'"),
    (["--panel-by", "vocab"], "unknown --panel-by 'vocab'"),
])
def test_report_command_errors_are_one_line_and_exit_2(store, tmp_path, args, message):
    args = [arg.format(missing=tmp_path / "none.db") for arg in args]
    if "--store" not in args:
        args = ["--store", str(store)] + args
    result = runner.invoke(app, ["report", "--out", str(tmp_path / "out")] + args)
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and message in result.output
    assert result.output.count("\n") == 1


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc: a folder that exists and refuses files")
def test_report_into_a_folder_that_refuses_files_is_one_line(store):
    result = runner.invoke(app, ["report", "--store", str(store), "--out", "/proc/self"])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert result.output.startswith("error: cannot write into the output folder /proc/self (")
    assert "pass a writable --out" in result.output


def test_state_size_axis_needs_a_formula_for_some_arch(tmp_path):
    runs = pd.DataFrame([run_row(arch="hyena")])
    with pytest.raises(UserError, match="no state-size formula for hyena; use --x d-model"):
        build_report(runs, name="m", out_dir=tmp_path, x_axis="state-size")


def test_report_on_an_empty_store_or_a_sweep_with_nothing_done(tmp_path):
    from mqar.sweep.store import Store

    empty = tmp_path / "empty.db"
    Store(empty).close()
    result = runner.invoke(app, ["report", "--store", str(empty)])
    assert result.exit_code == 2 and "has no runs yet" in result.output
    configs = grid(archs=("based",), tasks=TASKS[:1], seeds=(0,))
    pending_store = make_store(tmp_path / "pending.db", configs=configs, pending=configs)
    result = runner.invoke(app, ["report", "--store", str(pending_store), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "no finished runs to report for grid (4 pending)" in result.output


def test_report_on_failed_runs_only_names_retry_failed(tmp_path):
    configs = grid(archs=("based",), tasks=TASKS[:1], seeds=(0,))
    failed_store = make_store(tmp_path / "failed.db", configs=configs, failed=configs)
    result = runner.invoke(app, ["report", "--store", str(failed_store), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "no finished runs to report for grid (4 failed; e.g. RuntimeError: loss is NaN)" in result.output
    assert "--retry-failed" in result.output


def test_report_reads_what_the_real_sweep_runner_wrote(tmp_path):
    """Sweep runner (worker process, store) -> `mqar report`, with a training function that returns known
    accuracies at once, so the test checks the hand-over of the store, not training."""
    import io

    from mqar.data.spec import TaskSpec
    from mqar.sweep import SweepSpec, run_sweep
    from test_report_fixtures import RECIPE, fake_table1_accuracy, fake_train

    spec = SweepSpec(name="tiny", archs=("based", "rebased"), d_models=(16, 24),
                     tasks=(TaskSpec(seq_len=256, num_kv_pairs=32),), lrs=(1e-3, 3e-3), seeds=(0, 1), recipe=RECIPE)
    store = tmp_path / "mqar.db"
    summary = run_sweep(spec, store, devices="cpu", live=False, stream=io.StringIO(), train_fn=fake_train,
                        cache_dir=tmp_path / "cache")
    assert summary.done == spec.size
    out = tmp_path / "figures"
    result = runner.invoke(app, ["report", "--store", str(store), "--out", str(out), "--metric", "best-valid",
                                 "--curves"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "tiny.csv")
    assert len(table) == 4 and set(table["lr"]) == {3e-3} and set(table["n_seeds"]) == {2}
    for row in table.itertuples():
        runs = [run for run in spec.expand() if (run.arch, run.d_model, run.lr) == (row.arch, row.d_model, 3e-3)]
        assert row.mean == pytest.approx(np.mean([fake_table1_accuracy(run) for run in runs]))
    assert (out / "tiny-curves.png").exists()


# Diagnoses ------------------------------------------------------------------------------------------------------
def _curve_frame(run_id, train_losses, valid_losses):
    return pd.DataFrame({"run_id": run_id, "epoch": range(1, len(train_losses) + 1), "train_loss": train_losses,
                         "valid_loss": valid_losses})


def test_memorisation_is_train_loss_below_chance_while_valid_loss_is_above_it():
    from mqar.report.diagnose import chance_loss, memorisation_note, memorising_runs

    chance = chance_loss(8192)
    assert chance == pytest.approx(math.log(4096))
    runs = pd.DataFrame({"run_id": ["fits", "learns", "plateau", "pending"], "vocab_size": 8192,
                         "status": ["done", "done", "done", "pending"]})
    epochs = pd.concat([
        _curve_frame("fits", [chance, chance - 0.2, chance - 0.3], [chance, chance + 0.1, chance + 0.2]),
        _curve_frame("learns", [chance, chance - 0.2, 1.0], [chance + 0.02, chance - 0.1, 0.8]),  # both fall
        _curve_frame("plateau", [chance + 0.01, chance - 0.01], [chance + 0.02, chance + 0.03]),  # within noise
    ])
    assert list(memorising_runs(runs, epochs)) == ["fits"]
    note = memorisation_note(runs, epochs)
    assert note.startswith("memorisation: 1 of 3 finished runs") and "more examples" in note
    assert memorisation_note(runs, epochs[epochs.run_id != "fits"]) is None


def test_report_states_memorisation_beside_the_numbers(tmp_path):
    """Through `mqar report` on a store: a run whose curve memorises puts the note on the output and in NAME.md."""
    from dataclasses import replace

    from mqar.report.diagnose import chance_loss
    from mqar.runs import EpochRecord
    from mqar.sweep import Store

    config = grid()[0]
    chance = chance_loss(config.task.vocab_size)
    result = fake_result(config)
    memorised = tuple(EpochRecord(epoch=e, train_loss=chance - 0.1 * e, valid_loss=chance + 0.1 * e,
                                  valid_accuracy=0.0, lr=1e-3, seconds=float(e)) for e in (1, 2))
    store = tmp_path / "s.db"
    with Store(store) as db:
        db.register_sweep("grid", [config])
        db.record_result(replace(result, curve=memorised, epochs=2))
    output = runner.invoke(app, ["report", "--store", str(store), "--out", str(tmp_path / "out")])
    assert output.exit_code == 0, output.output
    assert "memorisation: 1 of 1 finished runs" in output.output
    assert "memorisation" in (tmp_path / "out" / "grid.md").read_text()


def test_title_and_notes_of_a_one_panel_figure_fit_inside_it():
    points = aggregate_points(fixture_frame(), "test")
    points = points[points["seq_len"] == 64]
    note = "reduced protocol: 1 lr (0.003) × 1 seed, 100000 train examples, 32 epochs"
    figure = plot_accuracy(points, title="ReBased Figure 1: MQAR accuracy vs model dimension (reduced)", notes=[note])
    assert len(figure.axes) == 1
    renderer = figure.canvas.get_renderer()
    for text in figure.texts:
        extent = text.get_window_extent(renderer)
        assert extent.x0 >= 0 and extent.x1 <= figure.bbox.width, text.get_text()


def test_the_legend_sits_beside_the_panels_not_over_them():
    archs = ("based", "rebased", "rebased-affine", "rebased-gamma", "rebased-norm", "rebased-x2")
    points = aggregate_points(fixture_frame(archs=archs), "test")
    curves = pd.DataFrame([{"run_id": f"{arch}-{d_model}", "arch": arch, "d_model": d_model, "seed": 0, "seq_len": 64,
                            "num_kv_pairs": 4, "vocab_size": 8192, "epoch": epoch, "valid_accuracy": 0.1 * epoch}
                           for arch in archs for d_model in D_MODELS for epoch in (1, 2)])
    for figure in (plot_accuracy(points[points["seq_len"] == 64], title="one panel"),
                   plot_accuracy(points, title="two panels"),
                   plot_learning_curves(curves, title="curves")):
        renderer = figure.canvas.get_renderer()
        (legend,) = figure.legends
        left = legend.get_window_extent(renderer).x0
        assert all(axis.get_window_extent(renderer).x1 <= left for axis in figure.axes)


def test_provenance_flags_runs_trained_with_different_code():
    import json

    from mqar.report.provenance import provenance_markdown

    def row(run_id, source, status="done"):
        return {"run_id": run_id, "status": status, "device": "cuda:0 (NVIDIA H200)", "host": "gpu1",
                "versions": json.dumps({"mqar": "0.1.0", "mqar_source": source, "torch": "2.11.0"}),
                "seconds": 600.0, "tokens_per_s": 4e6, "attempts": 1,
                "started_at": "2026-11-30T05:00:00+00:00", "ended_at": "2026-11-30T05:10:00+00:00"}

    runs = pd.DataFrame([row("a", "aaaaaaaaaaaa"), row("b", "bbbbbbbbbbbb"), row("c", None, status="pending")])
    text = provenance_markdown(runs, name="grid", planned=4)
    assert "- runs: 2 done, 1 pending, 1 absent" in text
    assert "mqar 0.1.0 (source aaaaaaaaaaaa), torch 2.11.0" in text and "(source bbbbbbbbbbbb)" in text
    assert "more than one software stack" in text
    assert "training time of the 2 finished runs: 0.33 run-hours (per run 10.0-10.0 min)" in text
    assert "| cuda:0 (NVIDIA H200) on host gpu1 | 2 |" in text
    same = provenance_markdown(runs.assign(versions=runs["versions"].iloc[0]), name="grid", planned=3)
    assert "more than one software stack" not in same and "- runs: 2 done, 1 pending\n" in same


def test_saved_figures_are_the_same_bytes_when_redrawn(tmp_path):
    import hashlib
    import time

    import matplotlib.pyplot as plt

    from mqar.report.plots import save_figure

    digests = []
    for attempt in range(2):
        figure = plt.figure()
        figure.gca().plot([0, 1], [0, 1])
        paths = save_figure(figure, tmp_path / str(attempt), "figure")
        digests.append([hashlib.sha256(path.read_bytes()).hexdigest() for path in paths])
        time.sleep(1.1)  # a PDF creation date (1 s resolution) would differ
    assert digests[0] == digests[1]
