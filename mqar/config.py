"""Helpers shared by the frozen config objects (TaskSpec, Recipe, RunConfig, SweepSpec).

Each config is a frozen dataclass that validates itself, serialises to a plain dict and back, and hashes into a
stable id. Unknown keys are an error, never silently dropped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tomllib
from pathlib import Path
from typing import Any, Mapping, TypeVar

from mqar.errors import UserError

T = TypeVar("T")


def is_integer(value: Any) -> bool:
    """An int, and not a bool (an int subclass: True is no count)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or a float, and not a bool (nor a string from a TOML file)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def plain_scalars(config: Any) -> None:
    """Replace the numpy scalars (from an array, a DataFrame) among the fields of the frozen dataclass `config` by
    their Python values: the checks take Python types, and the JSON behind the ids needs them."""
    import numpy as np

    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if isinstance(value, np.generic):
            object.__setattr__(config, field.name, value.item())


def check_keys(cls: type, data: Mapping[str, Any], where: str) -> None:
    """Raise a UserError unless `data` is a mapping whose keys are fields of dataclass `cls`, the fields without a
    default among them (else a missing one was a KeyError or TypeError, and a list of pairs 'unknown keys')."""
    if not isinstance(data, Mapping):
        raise UserError(f"{where} must be a mapping of field names to values, got {data!r}")
    fields = dataclasses.fields(cls)
    known = {field.name for field in fields}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserError(
            f"unknown key(s) {', '.join(map(repr, unknown))} in {where}; "
            f"allowed: {', '.join(sorted(known))}"
        )
    no_default = dataclasses.MISSING
    missing = [field.name for field in fields
               if field.default is no_default and field.default_factory is no_default and field.name not in data]
    if missing:
        raise UserError(f"{where} lacks {', '.join(missing)}")


def stable_id(data: Mapping[str, Any], length: int = 16) -> str:
    """A content hash of a JSON-serialisable mapping: same content, same id, on any machine."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:length]


def find_toml(name_or_path: str | os.PathLike, folder: Path, kind: str) -> Path:
    """A bare name (`rebased`) resolves to `<folder>/<name>.toml`; anything else is a path. A missing file is a
    UserError that lists the names in `folder`."""
    path = Path(name_or_path)
    if path.suffix != ".toml" and not path.exists():
        path = folder / f"{name_or_path}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.toml")))
        raise UserError(f"no {kind} {str(name_or_path)!r}; give a .toml path or one of: {known}")
    return path


def read_toml(path: Path) -> dict[str, Any]:
    """The TOML file as a dict; a syntax error is one UserError naming the file."""
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{path} is not valid TOML: {error}") from None
