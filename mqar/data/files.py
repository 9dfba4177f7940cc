"""Dataset files other projects read: parquet (one row per example) and npz, chosen by extension.

Both carry the same metadata (JSON): the task spec, split, seed, generator and mqar versions, and a sha256 of the
arrays, which `load` checks. Files are written under a temporary name and renamed, so a failed or interrupted
write never leaves a partial file behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

import mqar
from mqar.data.generate import SPLITS, TOKEN_DTYPE
from mqar.data.spec import GENERATOR_VERSION, IGNORE_INDEX, TaskSpec
from mqar.errors import UserError
from mqar.paths import check_writable_folder

FORMATS = (".parquet", ".npz")
METADATA_KEY = "mqar"


@dataclass(frozen=True)
class Dataset:
    inputs: np.ndarray  # [num_examples, seq_len] int32
    labels: np.ndarray  # [num_examples, seq_len] int32, -100 where there is no target
    spec: TaskSpec
    metadata: dict[str, Any]


def arrays_sha256(inputs: np.ndarray, labels: np.ndarray) -> str:
    """sha256 over the little-endian int32 bytes of inputs then labels (row-major)."""
    digest = hashlib.sha256()
    for array in (inputs, labels):
        digest.update(np.ascontiguousarray(array, dtype=np.dtype(TOKEN_DTYPE).newbyteorder("<")).tobytes())
    return digest.hexdigest()


def dataset_metadata(inputs: np.ndarray, labels: np.ndarray, spec: TaskSpec, split: str, seed: int) -> dict[str, Any]:
    return {
        "format": "mqar-dataset",
        "spec": spec.to_dict(),
        "split": split,
        "seed": int(seed),
        "num_examples": int(inputs.shape[0]),
        "generator_version": GENERATOR_VERSION,
        "mqar_version": mqar.__version__,
        "sha256": arrays_sha256(inputs, labels),
    }


def file_format(path: Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise UserError(f"unknown file extension {suffix or '(none)'!r} for {path}; use .parquet or .npz")
    return suffix


def prepare_output_path(path: Path) -> str:
    """The format of a dataset file to be written at `path`, after the checks that need no data, with its folder
    created where missing (as `--task` creates its output folder): callers run it before spending time generating."""
    suffix = file_format(path)
    if path.is_dir():  # os.replace onto a folder fails only after the whole file is written
        raise UserError(f"cannot write {path}: it is a folder; give a file name, e.g. {path / ('mqar' + suffix)}")
    # A file where a folder should be, no permission, a read-only disk: found now, not after generating.
    check_writable_folder(path.parent, what=str(path), flag="path")
    return suffix


def save(
    path: str | os.PathLike,
    inputs: np.ndarray,
    labels: np.ndarray,
    spec: TaskSpec,
    split: str,
    seed: int,
    metadata: Optional[dict[str, Any]] = None,
) -> dict[str, Any]:
    """Write a dataset file (format by extension) atomically; returns the metadata written."""
    path = Path(path)
    suffix = prepare_output_path(path)
    # The parquet reader reshapes by the spec's seq_len: other shapes would load as different (yet hash-valid) rows.
    expected = ("N", spec.seq_len)
    for name, array in (("inputs", inputs), ("labels", labels)):
        if np.ndim(array) != 2 or np.shape(array)[1] != spec.seq_len or np.shape(array)[0] != np.shape(inputs)[0]:
            raise UserError(f"{name} has shape {np.shape(array)}, expected {expected} with N the same for both")
    _check_tokens(inputs, labels, spec)
    # The metadata say which stream of which seed made the arrays (mqar.data.generate.split_stream)
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UserError(f"seed must be a non-negative integer, got {seed!r}")
    metadata = metadata or dataset_metadata(inputs, labels, spec, split, int(seed))
    directory = path.parent
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=directory)
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror}; pick a writable path") from None
    os.close(handle)
    try:
        # mkstemp creates the file 0600, and os.replace keeps that: give it the mode a plain open() would.
        os.chmod(temporary, 0o666 & ~_umask())
        if suffix == ".parquet":
            _write_parquet(temporary, inputs, labels, metadata)
        else:
            _write_npz(temporary, inputs, labels, metadata)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return metadata


def _check_tokens(inputs: np.ndarray, labels: np.ndarray, spec: TaskSpec) -> None:
    """Integer tokens of the spec's vocabulary, labels IGNORE_INDEX or a token: float arrays were truncated to int32
    and tokens past the vocabulary written as they were."""
    for name, array in (("inputs", inputs), ("labels", labels)):
        if not np.issubdtype(np.asarray(array).dtype, np.integer):
            raise UserError(f"{name} must be an integer array of tokens, got dtype {np.asarray(array).dtype}")
    if inputs.size and (inputs.min() < 0 or inputs.max() >= spec.vocab_size):
        raise UserError(f"inputs hold tokens outside [0, {spec.vocab_size}), the spec's vocabulary")
    rows = 8192  # the labels' mask in blocks of rows: its temporaries stay small beside arrays of gigabytes
    for start in range(0, len(labels), rows):
        block = labels[start : start + rows]
        if block.max() >= spec.vocab_size or ((block < 0) & (block != IGNORE_INDEX)).any():
            raise UserError(f"labels must be {IGNORE_INDEX} or tokens in [0, {spec.vocab_size}), the spec's vocabulary")


def _umask() -> int:
    """The process's umask (reading it means setting it: set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def load(path: str | os.PathLike, verify: bool = True) -> Dataset:
    """Read a dataset file written by `save`; with `verify`, check the arrays against the stored sha256."""
    path = Path(path)
    suffix = file_format(path)
    if not path.is_file():
        raise UserError(f"no such dataset file: {path}")
    try:
        if suffix == ".parquet":
            inputs, labels, metadata = _read_parquet(path)
        else:
            inputs, labels, metadata = _read_npz(path)
    except UserError:
        raise
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as error:
        # Not a parquet/npz at all, truncated, or metadata that is not JSON (pyarrow's and json's errors are
        # ValueErrors): numpy's own message suggested allow_pickle for a text file.
        raise UserError(f"{path} is not a readable {suffix[1:]} dataset file ({error}); regenerate it") from None
    if verify and arrays_sha256(inputs, labels) != metadata.get("sha256"):
        raise UserError(f"{path} is corrupt: its arrays do not match the sha256 in its metadata; regenerate it")
    return Dataset(inputs, labels, TaskSpec.from_dict(metadata["spec"]), metadata)


def _write_npz(path: str, inputs: np.ndarray, labels: np.ndarray, metadata: dict[str, Any]) -> None:
    # int32 like the parquet lists (and the sha256's bytes): load() then returns one dtype whichever the format
    inputs, labels = (np.ascontiguousarray(array, dtype=TOKEN_DTYPE) for array in (inputs, labels))
    with open(path, "wb") as handle:
        np.savez(handle, inputs=inputs, labels=labels, metadata=np.array(json.dumps(metadata)))


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    with np.load(path, allow_pickle=False) as archive:
        missing = {"inputs", "labels", "metadata"} - set(archive.files)
        if missing:
            raise UserError(f"{path} is not an mqar dataset (missing {', '.join(sorted(missing))})")
        return archive["inputs"], archive["labels"], json.loads(str(archive["metadata"]))


def _write_parquet(path: str, inputs: np.ndarray, labels: np.ndarray, metadata: dict[str, Any]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    num_examples, seq_len = inputs.shape
    offsets = pa.array(np.arange(0, (num_examples + 1) * seq_len, seq_len, dtype=np.int32))

    def lists(array: np.ndarray) -> pa.Array:  # rows of the 2-D array as list<int32> values, without a copy per row
        return pa.ListArray.from_arrays(offsets, pa.array(np.ascontiguousarray(array, dtype=TOKEN_DTYPE).ravel()))

    table = pa.table({"inputs": lists(inputs), "labels": lists(labels)})
    table = table.replace_schema_metadata({METADATA_KEY: json.dumps(metadata)})
    pq.write_table(table, path)


def _read_parquet(path: Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    schema_metadata = table.schema.metadata or {}
    if METADATA_KEY.encode() not in schema_metadata or not {"inputs", "labels"} <= set(table.column_names):
        raise UserError(f"{path} is not an mqar dataset (no mqar metadata or inputs/labels columns)")
    metadata = json.loads(schema_metadata[METADATA_KEY.encode()])
    seq_len = metadata["spec"]["seq_len"]

    def matrix(name: str) -> np.ndarray:
        values = table.column(name).combine_chunks().flatten().to_numpy(zero_copy_only=False)
        return values.astype(TOKEN_DTYPE, copy=False).reshape(-1, seq_len)

    return matrix("inputs"), matrix("labels"), metadata
