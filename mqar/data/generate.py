"""The MQAR generator: TaskSpec + seed -> (inputs, labels), vectorised, in fixed-size chunks.

Every random draw comes from numpy Generators derived from one seed: chunk c of split s uses the stream
SeedSequence(seed, spawn_key=(s, c)). Examples are produced in chunks of CHUNK_SIZE, so a larger request shares
every whole chunk with a smaller one (the first 8192 of 100k examples are the 8192 examples), peak memory stays a
small multiple of the output, and a progress callback can report per chunk.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from mqar.data.spec import IGNORE_INDEX, TaskSpec
from mqar.errors import UserError

SPLITS = ("train", "valid", "test")
CHUNK_SIZE = 8192
TOKEN_DTYPE = np.int32  # 8192-token vocabularies and -100 fit; half the memory and file size of int64


def split_stream(seed: int, split: str, chunk: int) -> np.random.Generator:
    """The Generator for one chunk of one split: disjoint streams of one master seed."""
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UserError(f"seed must be a non-negative integer, got {seed!r}")
    sequence = np.random.SeedSequence(int(seed), spawn_key=(SPLITS.index(split), chunk))
    return np.random.default_rng(sequence)


def generate(
    spec: TaskSpec,
    num_examples: int,
    seed: int,
    split: str = "train",
    progress: Optional[Callable[[int], None]] = None,
) -> tuple[np.ndarray, np.ndarray]:
    """MQAR examples for `spec`: `(inputs, labels)`, int32 arrays [num_examples, seq_len].

    `labels[t]` is the value paired with key `inputs[t]` at query positions and IGNORE_INDEX (-100) elsewhere,
    i.e. the next-token shift is already applied. `progress(n)` is called with the examples done after each chunk.
    """
    if not isinstance(num_examples, (int, np.integer)) or num_examples < 1:
        raise UserError(f"number of examples must be a positive integer, got {num_examples!r}")
    inputs = np.zeros((num_examples, spec.seq_len), dtype=TOKEN_DTYPE)
    labels = np.full((num_examples, spec.seq_len), IGNORE_INDEX, dtype=TOKEN_DTYPE)
    for chunk, start in enumerate(range(0, num_examples, CHUNK_SIZE)):
        stop = min(start + CHUNK_SIZE, num_examples)
        _fill_chunk(spec, split_stream(seed, split, chunk), inputs[start:stop], labels[start:stop])
        if progress is not None:
            progress(stop)
    return inputs, labels


def _fill_chunk(spec: TaskSpec, rng: np.random.Generator, inputs: np.ndarray, labels: np.ndarray) -> None:
    """Write one chunk of examples into the (zero / IGNORE_INDEX initialised) views `inputs` and `labels`."""
    num_examples, num_pairs = inputs.shape[0], spec.num_kv_pairs
    keys = distinct_per_row(rng, num_examples, num_pairs, *spec.key_range)  # [N, n]
    values = distinct_per_row(rng, num_examples, num_pairs, *spec.value_range)  # [N, n]

    if spec.haystack_depth is None:
        # Zoology: key i is queried at slot gap_i, the i-th draw of a weighted sampling without replacement.
        gaps = weighted_sample_without_replacement(rng, num_examples, spec.query_gap_weights(), num_pairs)  # [N, n]
    else:
        # Haystack: filler, the kv block at the chosen depth of the filler, filler, then all queries at the end,
        # each key once, in a random order, at even offsets.
        gaps = np.argsort(rng.random((num_examples, num_pairs)), axis=1)  # a random permutation per row
    query_positions = spec.query_start + 2 * gaps
    for context_pass in range(spec.num_passes):  # k1 v1 k2 v2 ... kn vn, num_passes times
        pass_start = spec.context_start + 2 * num_pairs * context_pass
        inputs[:, pass_start : pass_start + 2 * num_pairs : 2] = keys
        inputs[:, pass_start + 1 : pass_start + 2 * num_pairs : 2] = values

    # Scatter through flat indices into the (row-contiguous) chunk: cheaper than 2-d fancy indexing.
    flat_positions = query_positions + (spec.seq_len * np.arange(num_examples))[:, None]  # [N, n]
    np.put(inputs.reshape(-1), flat_positions, keys)
    np.put(labels.reshape(-1), flat_positions, values)  # the target right after seeing the key (next-token shift)

    if spec.random_non_queries:
        # Zoology replaces filler by tokens from the whole vocabulary; here from this chunk's seeded stream.
        filler_mask = inputs == 0
        inputs[filler_mask] = rng.integers(0, spec.vocab_size, size=int(filler_mask.sum()), dtype=TOKEN_DTYPE)


def distinct_per_row(rng: np.random.Generator, num_rows: int, size: int, low: int, high: int) -> np.ndarray:
    """[num_rows, size] integers from [low, high), distinct within each row: per row a uniformly random
    ordered tuple, i.e. a sampling without replacement.

    Sampling without replacement is i.i.d. uniform draws with repeats skipped, so each row takes the first
    `size` distinct values of a slightly longer i.i.d. sequence: no [num_rows, high - low] table. The rare rows
    whose sequence holds too few distinct values are drawn again.
    """
    range_size = high - low
    if size > range_size:
        raise UserError(f"cannot draw {size} distinct tokens from a range of {range_size}; use a larger vocabulary")
    if range_size <= 4 * size:
        # Dense: the first `size` entries of a random permutation of the (small) range.
        return (np.argsort(rng.random((num_rows, range_size)), axis=1)[:, :size] + low).astype(TOKEN_DTYPE)
    # Enough spare draws that a row runs short only rarely (expected repeats ≈ size² / (2·range_size)).
    length = size + 16 + (2 * size * size) // range_size
    position_bits = length.bit_length()
    value_bits = (range_size - 1).bit_length()
    # Keys pack a flag, a draw's position in its row and its value into one integer, as narrow as fits:
    # narrow row sorts and few passes over the arrays are what make this fast.
    dtype = np.int32 if 1 + position_bits + value_bits <= 31 else np.int64
    position_mask, value_mask = (1 << position_bits) - 1, (1 << value_bits) - 1
    result = np.empty((num_rows, size), dtype=TOKEN_DTYPE)
    pending = np.arange(num_rows)
    while pending.size:
        # In-place operations throughout: fresh temporaries of this size cost more in page faults than in arithmetic.
        keys = rng.integers(0, range_size, size=(pending.size, length), dtype=dtype)  # value offsets from `low`
        # Sorted by (value, position): equal values in draw order, so an entry equal to its left neighbour repeats.
        keys <<= position_bits
        keys |= np.arange(length, dtype=dtype)
        keys.sort(axis=1)
        values = keys >> position_bits
        repeat = np.zeros(keys.shape, dtype=bool)
        np.equal(values[:, 1:], values[:, :-1], out=repeat[:, 1:])
        # Sorted by (repeat, position): the first occurrences come first, in draw order; keep `size` of them.
        keys &= position_mask
        keys <<= value_bits
        keys |= values
        np.bitwise_or(keys, dtype(1 << (position_bits + value_bits)), out=keys, where=repeat)
        keys.sort(axis=1)
        complete = repeat.sum(axis=1) <= length - size  # the row holds enough distinct values
        if complete.all():
            result[pending] = (keys[:, :size] & value_mask) + low
            break
        result[pending[complete]] = (keys[complete, :size] & value_mask) + low
        pending = pending[~complete]
    return result


def weighted_sample_without_replacement(
    rng: np.random.Generator, num_rows: int, weights: np.ndarray, size: int
) -> np.ndarray:
    """[num_rows, size] indices into `weights`, per row the successive draws of a sampling without replacement
    with probabilities ∝ weights (what numpy's `choice(replace=False, p=...)` does, one row at a time).

    Efraimidis & Spirakis: with E ~ Exp(1) per item, the items sorted by E / w come out in the order successive
    weighted draws would pick them, so one vectorised partial sort replaces the per-row loop.
    """
    scores = rng.standard_exponential((num_rows, weights.size), dtype=np.float32) / weights.astype(np.float32)
    if size < weights.size:
        candidates = np.argpartition(scores, size - 1, axis=1)[:, :size]
        candidate_scores = np.take_along_axis(scores, candidates, axis=1)
        return np.take_along_axis(candidates, np.argsort(candidate_scores, axis=1), axis=1)
    return np.argsort(scores, axis=1)
