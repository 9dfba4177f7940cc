"""`mqar generate` and the app's top-level flags, through the real typer app."""

from __future__ import annotations

import re

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mqar import __version__
from mqar.cli import app
from mqar.data import generate, load

runner = CliRunner()


def test_version_and_help() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"mqar {__version__}"
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "generate" in result.output


@pytest.mark.parametrize("extension", ["parquet", "npz"])
def test_generate_one_task(tmp_path, extension: str) -> None:
    path = tmp_path / f"mqar.{extension}"
    args = ["generate", "--seq-len", "64", "--num-kv-pairs", "8", "-n", "200", "--seed", "3", "-o", str(path),
            "--vocab-size", "512", "--power-a", "0.5", "--random-non-queries", "--num-passes", "2", "--split", "test"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "200 examples" in result.output and "sha256" in result.output
    dataset = load(path)
    assert dataset.metadata["split"] == "test" and dataset.metadata["seed"] == 3
    expected = generate(dataset.spec, 200, 3, split="test")
    assert np.array_equal(dataset.inputs, expected[0]) and np.array_equal(dataset.labels, expected[1])
    assert dataset.spec.num_passes == 2 and dataset.spec.random_non_queries


def test_generate_haystack(tmp_path) -> None:
    path = tmp_path / "hay.npz"
    result = runner.invoke(app, ["generate", "--seq-len", "128", "--num-kv-pairs", "4", "-n", "10", "-o", str(path),
                                 "--haystack-depth", "0.5"])
    assert result.exit_code == 0, result.output
    assert load(path).spec.haystack_depth == 0.5


def test_generate_suite(tmp_path) -> None:
    result = runner.invoke(app, ["generate", "--task", "zoology", "-n", "20", "-o", str(tmp_path / "suite"),
                                 "--format", "npz", "--split", "valid"])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "suite").iterdir())
    assert names == sorted(f"zoology-L{L}-kv{k}-valid.npz" for L, k in [(64, 4), (128, 8), (256, 16), (512, 64)])
    assert "4 tasks, 80 examples" in result.output


def write_bad_suite(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('name = "bad"\n[[tasks]]\nseq_len = 64\nnum_kv_pairs = 4\nkv_pairs = 3\n')
    return path


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seq-len", "63", "--num-kv-pairs", "4"], "even"),
        (["--seq-len", "64", "--num-kv-pairs", "40"], "--num-kv-pairs"),
        (["--seq-len", "64", "--num-kv-pairs", "8", "--vocab-size", "8"], "--vocab-size"),
        (["--seq-len", "64", "--num-kv-pairs", "8", "--split", "dev"], "--split"),
        (["--num-kv-pairs", "8"], "--seq-len"),
        (["--task", "no-such-suite"], "no task suite"),
        (["--task", "zoology", "--seq-len", "64"], "drop --seq-len"),
        # Spec options with defaults were silently ignored with --task.
        (["--task", "zoology", "--vocab-size", "64"], "drop --vocab-size"),
        (["--task", "zoology", "--haystack-depth", "0.5", "--num-passes", "2"], "drop --num-passes/--haystack-depth"),
        (["--task", "zoology", "--random-non-queries"], "drop --random-non-queries"),
        (["--task", "BAD"], "kv_pairs"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message) -> None:
    args = [a if a != "BAD" else str(write_bad_suite(tmp_path)) for a in args]
    out = tmp_path / "out.parquet"
    result = runner.invoke(app, ["generate", "-n", "10", "-o", str(out), *args])
    assert result.exit_code == 2
    lines = [line for line in result.output.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.output
    assert not out.exists()


def test_bad_extension_and_unwritable_path_leave_no_file(tmp_path) -> None:
    not_a_folder = tmp_path / "notes.txt"  # a file where the output's folder should be: no permission bits needed
    not_a_folder.write_text("")
    for target, message in [(tmp_path / "data.csv", ".parquet or .npz"), (not_a_folder / "d.npz", "pass a writable path")]:
        result = runner.invoke(app, ["generate", "--seq-len", "32", "--num-kv-pairs", "4", "-n", "5", "-o", str(target)])
        assert result.exit_code == 2 and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == [not_a_folder]


def test_missing_folders_are_created(tmp_path, monkeypatch) -> None:
    # The README's first example writes to data/, which a fresh checkout lacks; --task creates its folder too.
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["generate", "--seq-len", "32", "--num-kv-pairs", "4", "-n", "5", "-o", "data/sub/d.parquet"])
    assert result.exit_code == 0, result.output
    assert load(tmp_path / "data" / "sub" / "d.parquet").inputs.shape == (5, 32)


def test_output_that_is_a_folder_is_one_line(tmp_path) -> None:
    folder = tmp_path / "data.npz"  # a folder whose name has a dataset extension: was an IsADirectoryError traceback
    folder.mkdir()
    result = runner.invoke(app, ["generate", "--seq-len", "32", "--num-kv-pairs", "4", "-n", "5", "-o", str(folder)])
    assert result.exit_code == 2 and "it is a folder" in result.output, result.output
    assert list(tmp_path.iterdir()) == [folder] and list(folder.iterdir()) == []


def test_bad_folder_fails_before_generating(tmp_path, monkeypatch) -> None:
    # It used to be found by save, after generating every example (minutes for a large -n).
    import mqar.commands.generate as command

    monkeypatch.setattr(command, "generate_arrays", lambda *args, **kwargs: pytest.fail("generated before the check"))
    (tmp_path / "folder.npz").mkdir()
    (tmp_path / "notes.txt").write_text("")
    targets = [tmp_path / "notes.txt" / "d.npz", tmp_path / "folder.npz"]
    if Path("/proc/self").is_dir():  # a folder that exists and takes no files, even for root
        targets.append(Path("/proc/self/d.npz"))
    for target in targets:
        result = runner.invoke(app, ["generate", "--seq-len", "32", "--num-kv-pairs", "4", "-n", "5", "-o", str(target)])
        assert result.exit_code == 2 and result.output.startswith("error: cannot "), result.output


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc: a folder that exists and refuses files")
def test_a_suite_into_a_folder_that_takes_no_files_fails_before_generating(monkeypatch) -> None:
    # The suite only made its folder: one that exists and takes no files failed in save, after the first task's examples.
    import mqar.data.suites as suites

    monkeypatch.setattr(suites, "generate", lambda *args, **kwargs: pytest.fail("generated before the check"))
    result = runner.invoke(app, ["generate", "--task", "rebased", "-n", "5", "-o", "/proc/self"])
    assert result.exit_code == 2 and result.output.startswith("error: cannot write suite rebased into /proc/self (")


def test_suite_tasks_with_one_file_name_are_an_error(tmp_path) -> None:
    # Two tasks differing only in power_a both wrote dup-L64-kv4-train.parquet: the second silently replaced the first.
    suite = tmp_path / "dup.toml"
    suite.write_text('name = "dup"\n[[tasks]]\nseq_len = 64\nnum_kv_pairs = 4\n'
                     '[[tasks]]\nseq_len = 64\nnum_kv_pairs = 4\npower_a = 1.0\n')
    result = runner.invoke(app, ["generate", "--task", str(suite), "-n", "5", "-o", str(tmp_path / "out")])
    assert result.exit_code == 2 and "tasks 1 and 2" in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_more_examples_than_memory_is_one_line(tmp_path) -> None:
    # 10**11 examples of 512 tokens (~380 TiB) ended in numpy's _ArrayMemoryError traceback.
    out = tmp_path / "big.npz"
    result = runner.invoke(app, ["generate", "--seq-len", "512", "--num-kv-pairs", "4", "-n", str(10**11), "-o", str(out)])
    assert result.exit_code == 2 and result.output.strip().startswith("error:") and "fewer examples (-n)" in result.output
    assert not out.exists()


def test_help_states_the_kv_bound_with_passes() -> None:
    # The help said 4·kv ≤ seq_len, which --num-passes 2 breaks: TaskSpec needs 2·kv·(passes + 1).
    import inspect

    import mqar.commands.generate as command

    help_text = inspect.signature(command.generate).parameters["num_kv_pairs"].default.help
    assert "2·kv·(passes + 1) ≤ seq_len" in help_text


def test_a_large_suite_shows_a_progress_bar_and_each_files_full_sha256(tmp_path, monkeypatch) -> None:
    # The single-file path drew a bar from PROGRESS_MIN_EXAMPLES examples on; a suite of any size drew none, and
    # its lines gave each file's sha256 cut to 16 hex digits, where the single-file line gives all 64.
    import mqar.commands.generate as command

    monkeypatch.setattr(command, "PROGRESS_MIN_EXAMPLES", 80)  # zoology's 4 tasks × 20 examples: a large job
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich draws a bar only on a terminal
    out = tmp_path / "suite"
    result = runner.invoke(app, ["generate", "--task", "zoology", "-n", "20", "-o", str(out)])
    assert result.exit_code == 0, result.output
    output = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", result.output)  # the terminal's colours and cursor moves
    assert "generating zoology" in output and "80/80" in output
    for path in sorted(out.iterdir()):
        assert f"wrote {path}: 20 examples, " in output
        assert f"sha256 {load(path).metadata['sha256']}, " in output
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith(f"suite zoology: 4 tasks, 80 examples, 19200 tokens, 4 files in {out}, "), summary
    small = runner.invoke(app, ["generate", "--task", "zoology", "-n", "19", "-o", str(tmp_path / "small")])
    assert small.exit_code == 0 and "generating" not in small.output  # 76 examples: below the threshold
