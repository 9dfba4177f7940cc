"""The loop baseline generates the same task (distribution-level), and `mqar bench data` runs end to end."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from mqar.bench.loop_generator import generate_loop
from mqar.cli import app
from mqar.data import IGNORE_INDEX, TaskSpec, generate


def test_loop_baseline_matches_the_vectorised_layout() -> None:
    spec = TaskSpec(seq_len=64, num_kv_pairs=8, vocab_size=256)
    loop_inputs, loop_labels = generate_loop(spec, 300, seed=0)
    fast_inputs, fast_labels = generate(spec, 300, seed=0)
    # same layout facts: labelled count, value range, filler share, and the mean query slot (power law)
    for inputs, labels in ((loop_inputs, loop_labels), (fast_inputs, fast_labels)):
        assert ((labels != IGNORE_INDEX).sum(axis=1) == 8).all()
        assert (labels[labels != IGNORE_INDEX] >= 128).all()
    slot = lambda labels: (np.nonzero(labels != IGNORE_INDEX)[1] - spec.context_len).mean()
    assert abs(slot(loop_labels) - slot(fast_labels)) < 1.5


def test_bench_data_quick_writes_json_and_markdown(tmp_path, monkeypatch) -> None:
    # Without --out a smoke run writes into results/bench/quick/, never over the committed results/bench/data.*
    from mqar.commands import bench

    quick = tmp_path / "bench" / "quick"
    monkeypatch.setattr(bench, "BENCH_DIR", tmp_path / "bench")
    monkeypatch.setattr(bench, "QUICK_DIR", quick)
    result = CliRunner().invoke(app, ["bench", "data", "--quick"])
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in (tmp_path / "bench").iterdir()) == ["quick"]
    report = json.loads((quick / "data.json").read_text())
    assert [(r["seq_len"], r["num_kv_pairs"]) for r in report["rows"]] == [(512, 128), (2048, 512)]
    assert all(r["examples_per_s"] > 0 and r["speedup_vs_loop"] > 1 for r in report["rows"])
    assert "speedup vs loop" in (quick / "data.md").read_text()
    # A smoke run says so: its small counts are not the benchmark's measurement.
    assert report["command"] == "mqar bench data --quick"
    assert "Command: `mqar bench data --quick`." in (quick / "data.md").read_text()


def test_bench_data_into_an_unwritable_folder_is_one_line(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(app, ["bench", "data", "--quick", "--out", str(blocker / "out")])
    assert result.exit_code == 2
    assert result.output.startswith("error: cannot write data.json and data.md into ") and "--out" in result.output
    assert result.output.count("\n") == 1


def test_bench_out_help_names_its_defaults() -> None:
    # "[default: results/bench, with --quick results/bench/quick]" was read as rich markup and dropped from --help,
    # which showed "Folder for data.json and data.md ." with no default.
    import re

    for command in ("data", "kernels", "layer-norm"):
        result = CliRunner().invoke(app, ["bench", command, "--help"])
        assert result.exit_code == 0, result.output
        text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())
        assert "(default: results/bench; with --quick, results/bench/quick)." in text, text
