"""The kernel benchmark records a command that can be pasted back into a shell, and the GPU benches' shared loop
keeps what it measured when a run is cut short (the benchmarks themselves need CUDA)."""

from __future__ import annotations

import json
import shlex

import pytest

from mqar.bench import kernels, measure_each


def test_recorded_command_keeps_each_argument_whole(monkeypatch) -> None:
    argv = ["/env/lib/python3.12/site-packages/mqar/__main__.py", "bench", "kernels", "--method", "ours auto rebased",
            "--rep-ms", "40"]
    monkeypatch.setattr(kernels.sys, "argv", argv)
    command = kernels.command_line()
    assert command == "mqar bench kernels --method 'ours auto rebased' --rep-ms 40"
    assert shlex.split(command)[1:] == argv[1:]


def test_each_case_is_written_as_soon_as_it_is_measured(tmp_path, capsys) -> None:
    def measure(case: int) -> dict:
        if case == 3:
            raise KeyboardInterrupt  # a device call's time limit
        return {"case": case, "results": {"ours": {"fwdbwd_ms": case / 4}, "fla": {"error": "cannot run"}}}

    with pytest.raises(KeyboardInterrupt):
        measure_each([1, 2, 3], measure, lambda row: f"case {row['case']}", tmp_path, "demo",
                     lambda payload: f"{len(payload['rows'])} rows", lambda: {"device": "stand-in"})
    written = json.loads((tmp_path / "demo.json").read_text())
    assert written == {"environment": {"device": "stand-in"},
                       "rows": [measure(1), measure(2)]}
    assert (tmp_path / "demo.md").read_text() == "2 rows"
    assert capsys.readouterr().out.splitlines() == ["[case 1] fwd+bwd ms: ours 0.250, fla err",
                                                    "[case 2] fwd+bwd ms: ours 0.500, fla err"]


def test_an_unknown_method_is_one_line_not_an_empty_table(tmp_path) -> None:
    from typer.testing import CliRunner

    from mqar.cli import app

    result = CliRunner().invoke(app, ["bench", "kernels", "--quick", "--method", "ours auto rebasd",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert result.output.startswith("error: unknown --method 'ours auto rebasd'; choose from ours auto rebased")
    assert not (tmp_path / "kernels.md").exists()
