"""The kernel benchmark records a command that can be pasted back into a shell (the benchmark itself needs CUDA)."""

from __future__ import annotations

import shlex

from mqar.bench import kernels


def test_recorded_command_keeps_each_argument_whole(monkeypatch) -> None:
    argv = ["/env/lib/python3.12/site-packages/mqar/__main__.py", "bench", "kernels", "--method", "ours auto rebased",
            "--rep-ms", "40"]
    monkeypatch.setattr(kernels.sys, "argv", argv)
    command = kernels.command_line()
    assert command == "mqar bench kernels --method 'ours auto rebased' --rep-ms 40"
    assert shlex.split(command)[1:] == argv[1:]
