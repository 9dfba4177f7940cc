"""Where and with what a result was produced: library versions and a one-line device description."""

from __future__ import annotations

import platform
from importlib import metadata

import mqar


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def versions() -> dict[str, str]:
    """Versions of mqar and the libraries its numbers depend on (torch's own string, so "+cu128" shows)."""
    import numpy
    import torch

    found = {
        "mqar": mqar.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "triton": _version("triton"),
    }
    if torch.version.cuda:
        found["cuda"] = torch.version.cuda
    return found


def resolve_device(device: str = "auto") -> str:
    """"auto" -> "cuda" when a GPU is visible, else "cpu"; anything else is checked and returned as given."""
    import torch

    from mqar.errors import UserError

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as error:
        raise UserError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from error
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device {device!r} asked for, but no CUDA GPU is visible; use --device cpu")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise UserError(f"device {device!r} does not exist: {torch.cuda.device_count()} GPU(s) visible")
    elif parsed.type != "cpu":
        raise UserError(f"device type {parsed.type!r} is not supported; use auto, cpu, cuda or cuda:N")
    return device


def describe_device(device: str) -> str:
    """e.g. "cpu (x86_64, 16 threads)" or "cuda:0 (NVIDIA H200)"."""
    import torch

    parsed = torch.device(device)
    if parsed.type == "cuda":
        index = parsed.index if parsed.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"
