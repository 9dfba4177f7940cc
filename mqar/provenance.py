"""Where and with what a result was produced: library versions and a one-line device description."""

from __future__ import annotations

import functools
import hashlib
import platform
from importlib import metadata
from pathlib import Path

import mqar


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


@functools.lru_cache(maxsize=1)
def source_digest() -> str:
    """sha256 (first 12 hex digits) of mqar's own Python source: every mqar/**/*.py, by relative path and bytes.

    Why not the git commit: a sweep may run from a copy of the working tree (a lent GPU machine gets the files,
    not always a current .git), and uncommitted edits change results too. Equal digests mean the same code; the
    same digest over a commit's files finds the commit. Hashed once per process, at the first call (a long-lived
    worker: when its first run ends), so a checkout edited while a sweep runs is not caught."""
    root = Path(mqar.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def versions() -> dict[str, str]:
    """Versions of mqar (release and source digest) and the libraries its numbers depend on (torch's own string,
    so "+cu128" shows)."""
    import numpy
    import torch

    found = {
        "mqar": mqar.__version__,
        "mqar_source": source_digest(),
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
    """e.g. "cpu (x86_64, 16 threads)" or "cuda:0 (NVIDIA H200, GPU-52b0c693)".

    The index is this process's: Ray and CUDA_VISIBLE_DEVICES renumber the GPUs a process sees, so every Ray worker's
    GPU is its cuda:0. The first block of the GPU's UUID (as `nvidia-smi -L` prints it) names the physical GPU."""
    import torch

    parsed = torch.device(device)
    if parsed.type == "cuda":
        index = parsed.index if parsed.index is not None else torch.cuda.current_device()
        properties = torch.cuda.get_device_properties(index)
        uuid = str(getattr(properties, "uuid", "") or "")
        return f"cuda:{index} ({properties.name}, GPU-{uuid[:8]})" if uuid else f"cuda:{index} ({properties.name})"
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"
