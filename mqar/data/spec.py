"""TaskSpec: one MQAR task, frozen and validated.

The layout is Zoology's (see shared REFERENCE.md) so that results compare with the literature:

    k1 v1 k2 v2 ... kn vn  [repeated num_passes times]  | query region: key i at even slot gap_i, zeros elsewhere

With `haystack_depth` set, the key-value block sits at that depth inside filler and the queries (each key once, in
a random order, at even offsets) fill the end of the sequence instead.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import numpy as np

from mqar.config import check_keys, is_integer, is_number, plain_scalars, stable_id
from mqar.data import portable_math
from mqar.errors import UserError

# Bump when the bytes produced for a (spec, seed) change: cached datasets and files are keyed by it.
GENERATOR_VERSION = 6

IGNORE_INDEX = -100  # label at positions that carry no target (PyTorch's cross-entropy default)


@dataclass(frozen=True)
class TaskSpec:
    seq_len: int
    num_kv_pairs: int
    vocab_size: int = 8192
    power_a: float = 0.01
    random_non_queries: bool = False
    num_passes: int = 1
    haystack_depth: Optional[float] = None

    def __post_init__(self) -> None:
        # numpy scalars are stored as Python ones, so the spec's JSON and id are the same either way
        plain_scalars(self)
        for name in ("seq_len", "num_kv_pairs", "vocab_size", "num_passes"):
            value = getattr(self, name)
            if not is_integer(value):
                raise UserError(f"{name} must be an integer, got {value!r}")
        if self.seq_len < 4 or self.seq_len % 2:
            raise UserError(f"seq_len must be even and at least 4, got {self.seq_len}; use an even length")
        if self.num_kv_pairs < 1:
            raise UserError(f"num_kv_pairs must be at least 1, got {self.num_kv_pairs}")
        if self.num_passes < 1:
            raise UserError(f"num_passes must be at least 1, got {self.num_passes}")
        needed = self.context_len + 2 * self.num_kv_pairs
        if needed > self.seq_len:
            raise UserError(
                f"{self.num_kv_pairs} kv pairs × {self.num_passes} pass(es) need seq_len ≥ {needed} "
                f"(2·kv·passes of context + 2·kv of queries), got {self.seq_len}; "
                f"use --num-kv-pairs ≤ {self.seq_len // (2 * self.num_passes + 2)} or a longer --seq-len"
            )
        if self.vocab_size < 2 * self.num_kv_pairs + 2:
            raise UserError(
                f"vocab_size {self.vocab_size} is too small for {self.num_kv_pairs} distinct keys and values; "
                f"use --vocab-size ≥ {2 * self.num_kv_pairs + 2}"
            )
        # Tokens are stored as int32 (mqar.data.generate.TOKEN_DTYPE): values up to V - 1 must fit, or they wrap.
        if self.vocab_size > 2**31:
            raise UserError(f"vocab_size {self.vocab_size} does not fit int32 tokens; use --vocab-size ≤ {2**31}")
        if not (is_number(self.power_a) and math.isfinite(self.power_a) and self.power_a > 0):
            raise UserError(f"power_a must be a positive number (0.01 favours early query slots; 1 is uniform), got {self.power_a!r}")
        # A TOML string such as "false" is truthy: it would silently switch random filler on.
        if not isinstance(self.random_non_queries, bool):
            raise UserError(f"random_non_queries must be true or false, got {self.random_non_queries!r}")
        if self.haystack_depth is not None and not (is_number(self.haystack_depth) and 0.0 <= self.haystack_depth <= 1.0):
            raise UserError(f"haystack_depth must be a number in [0, 1] (or unset), got {self.haystack_depth!r}")
        # Floats as floats: power_a = 1 and 1.0 (or a TOML's haystack_depth = 1) are one task with one id.
        object.__setattr__(self, "power_a", float(self.power_a))
        if self.haystack_depth is not None:
            object.__setattr__(self, "haystack_depth", float(self.haystack_depth))
        if self.haystack_depth is None:
            self._check_query_gap_weights()

    def _check_query_gap_weights(self) -> None:
        """The generator ranks the query slots by scores E / w in float32 (E = -log u in [6e-8, 17],
        mqar.data.generate.draw_order_scores): weights a·i^(a-1) past float32's range, for a far from 1 at a long
        query region, gave infinite, zero or subnormal scores and with them wrong query gaps (exit 0, a warning)."""
        with np.errstate(all="ignore"):
            weights = _query_gap_weights(float(self.power_a), self.num_query_slots)
            float32 = np.finfo(np.float32)
            fits = np.isfinite(weights).all() and weights.min() > 17 / float32.max and weights.max() < 6e-8 / float32.tiny
        if not fits:
            raise UserError(
                f"power_a {self.power_a!r} takes the query-gap weights a·i^(a-1) over {self.num_query_slots} slots "
                f"out of float32's range; use a power_a closer to 1 (Zoology's is 0.01, 1 is uniform)"
            )

    # Layout ----------------------------------------------------------------------------------------------
    @property
    def context_len(self) -> int:
        """Tokens of the key-value block, all passes included."""
        return 2 * self.num_kv_pairs * self.num_passes

    @property
    def num_query_slots(self) -> int:
        """Even slots of the query region after the context (Zoology's `space`)."""
        return (self.seq_len - self.context_len) // 2

    @property
    def context_start(self) -> int:
        """Where the key-value block starts: 0, or with a haystack the (even) offset at that depth of the filler."""
        if self.haystack_depth is None:
            return 0
        filler = self.seq_len - self.context_len - 2 * self.num_kv_pairs
        return 2 * int(round(self.haystack_depth * filler / 2))

    @property
    def query_start(self) -> int:
        """Where the query region starts: right after the context, or with a haystack the last 2·kv tokens."""
        if self.haystack_depth is None:
            return self.context_len
        return self.seq_len - 2 * self.num_kv_pairs

    def query_gap_weights(self) -> np.ndarray:
        """Unnormalised probabilities a·i^(a-1) of the query slots i = 1..num_query_slots (Zoology's power law),
        as a·exp((a-1)·log(i)) from IEEE basic operations (mqar.data.portable_math): np.power's last bits depend on
        the CPU's SIMD features, and these weights decide the generator's bytes."""
        return _query_gap_weights(float(self.power_a), self.num_query_slots).copy()

    @property
    def key_range(self) -> tuple[int, int]:
        """Keys are drawn from [1, V/2); 0 is filler."""
        return 1, self.vocab_size // 2

    @property
    def value_range(self) -> tuple[int, int]:
        """Values are drawn from [V/2, V)."""
        return self.vocab_size // 2, self.vocab_size

    # Serialisation ---------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TaskSpec":
        check_keys(cls, data, "task spec")
        return cls(**data)

    @property
    def id(self) -> str:
        """Stable content hash of the spec (not of the generator version: see GENERATOR_VERSION)."""
        return stable_id(self.to_dict())

    @property
    def name(self) -> str:
        """A short human label, e.g. `L512-kv128`."""
        label = f"L{self.seq_len}-kv{self.num_kv_pairs}"
        if self.num_passes > 1:
            label += f"-x{self.num_passes}"
        if self.haystack_depth is not None:
            label += f"-depth{self.haystack_depth:g}"
        return label

    def generate(self, num_examples: int, seed: int):
        """`(inputs, labels)`, int32 arrays of shape [num_examples, seq_len]; see mqar.data.generate."""
        from mqar.data.generate import generate

        return generate(self, num_examples, seed)


@functools.lru_cache(maxsize=64)
def _query_gap_weights(power_a: float, num_slots: int) -> np.ndarray:
    slots = np.arange(1, num_slots + 1, dtype=np.float64)
    weights = power_a * portable_math.exp((power_a - 1) * portable_math.log(slots))
    weights.flags.writeable = False
    return weights
