"""The MQAR generator: TaskSpec + seed -> (inputs, labels), vectorised, in fixed-size chunks.

Every random draw comes from numpy Generators derived from one seed: chunk c of split s uses the stream
SeedSequence(seed, spawn_key=(s, c)). Examples are produced in chunks of CHUNK_SIZE, so a larger request shares
every whole chunk with a smaller one (the first 8192 of 100k examples are the 8192 examples), peak memory stays a
small multiple of the output, and a progress callback can report per chunk.

How one chunk is drawn (the joint law is Zoology's; only the order of the work differs):
- the queried keys and their values are drawn in query-slot order: two uniformly random tuples of distinct tokens;
- every query slot gets an Efraimidis–Spirakis score E / w (E ~ Exp(1), w the slot's power-law weight); the
  num_kv_pairs smallest scores mark the slots drawn, and their order is the order of successive weighted draws
  without replacement, i.e. the order of the pairs in the context;
- one row sort of the scores, each carrying its slot's key and value, therefore writes the context directly:
  no scatter of keys into query positions and no gather of keys into context order.
Since the key tuple is uniform and independent of the gaps, listing it in slot order rather than in draw order
gives the same joint law of (context, gaps) as drawing keys first and gaps second.
"""

from __future__ import annotations

import functools
from typing import Callable, Optional

import numpy as np

from mqar.data import portable_math
from mqar.data.spec import IGNORE_INDEX, TaskSpec
from mqar.errors import UserError

SPLITS = ("train", "valid", "test")
CHUNK_SIZE = 8192
BLOCK_ROWS = 512  # rows per block of the work after the draws: its arrays fit in a core's cache
SCORE_BLOCK_ENTRIES = 1 << 16  # scores per block of draw_order_scores' log: its work buffers fit in a core's cache
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
    try:
        inputs = np.zeros((num_examples, spec.seq_len), dtype=TOKEN_DTYPE)
        labels = np.empty((num_examples, spec.seq_len), dtype=TOKEN_DTYPE)  # filled block by block, in cache
    except MemoryError:  # a -n too large for this machine: numpy's error is a traceback that names no option
        gib = 2 * num_examples * spec.seq_len * np.dtype(TOKEN_DTYPE).itemsize / 2**30
        raise UserError(
            f"{num_examples} examples of seq_len {spec.seq_len} need {gib:.1f} GiB, more than this machine can give; "
            f"generate fewer examples (-n) per file"
        ) from None
    for chunk, start in enumerate(range(0, num_examples, CHUNK_SIZE)):
        stop = min(start + CHUNK_SIZE, num_examples)
        _fill_chunk(spec, split_stream(seed, split, chunk), inputs[start:stop], labels[start:stop])
        if progress is not None:
            progress(stop)
    return inputs, labels


def _fill_chunk(spec: TaskSpec, rng: np.random.Generator, inputs: np.ndarray, labels: np.ndarray) -> None:
    """Write one chunk of examples into the views `inputs` (zero initialised) and `labels` (any content)."""
    num_examples, num_pairs = inputs.shape[0], spec.num_kv_pairs
    key_low, key_high = spec.key_range
    value_low, value_high = spec.value_range
    # Offsets from key_low / value_low (unsigned, as narrow as fits: add the offsets in TOKEN_DTYPE), listed in
    # the order of the query slots they are queried at.
    keys = distinct_per_row(rng, num_examples, num_pairs, key_high - key_low)  # [N, n]
    values = distinct_per_row(rng, num_examples, num_pairs, value_high - value_low)  # [N, n]

    if spec.haystack_depth is None:
        # Zoology: key i is queried at slot gap_i, the i-th draw of a weighted sampling without replacement.
        slot_weights = spec.query_gap_weights()
    else:
        # Haystack: all queries at the end, each key once, at even offsets, in a uniformly random order.
        slot_weights = np.ones(num_pairs)
    scores = draw_order_scores(rng, num_examples, slot_weights)  # [N, slots] int32, smaller = drawn earlier

    num_slots = slot_weights.size
    if num_pairs < num_slots:
        drawn = smallest_per_row(scores, num_pairs)  # [N, slots] bool, num_pairs True per row
        scores = scores[drawn].reshape(num_examples, num_pairs)  # [N, n], in slot order like keys and values
    # The rest in blocks of rows whose working arrays stay in the CPU's cache.
    for start in range(0, num_examples, BLOCK_ROWS):
        rows = slice(start, start + BLOCK_ROWS)
        labels[rows] = IGNORE_INDEX
        # Query region: the slots drawn hold the keys (and labels the values) in slot order.
        query_keys = inputs[rows, spec.query_start : spec.query_start + 2 * num_slots : 2]  # [B, slots] views
        query_labels = labels[rows, spec.query_start : spec.query_start + 2 * num_slots : 2]
        if num_pairs == num_slots:  # every slot is queried (e.g. kv = L/4 without passes; the haystack)
            np.add(keys[rows], key_low, out=query_keys, dtype=TOKEN_DTYPE, casting="unsafe")
            np.add(values[rows], value_low, out=query_labels, dtype=TOKEN_DTYPE, casting="unsafe")
        else:
            query_keys[drawn[rows]] = keys[rows].reshape(-1).astype(TOKEN_DTYPE) + key_low  # each row in slot order
            query_labels[drawn[rows]] = values[rows].reshape(-1).astype(TOKEN_DTYPE) + value_low
        # Context: the pairs in draw order, i.e. sorted by score.
        context_keys, context_values = sort_pairs_by_score(
            scores[rows], keys[rows], values[rows], key_high - key_low, value_high - value_low
        )  # [B, n] offsets each
        for context_pass in range(spec.num_passes):  # k1 v1 k2 v2 ... kn vn, num_passes times
            pass_start = spec.context_start + 2 * num_pairs * context_pass
            context_keys_out = inputs[rows, pass_start : pass_start + 2 * num_pairs : 2]
            context_values_out = inputs[rows, pass_start + 1 : pass_start + 2 * num_pairs : 2]
            np.add(context_keys, key_low, out=context_keys_out, dtype=TOKEN_DTYPE, casting="unsafe")
            np.add(context_values, value_low, out=context_values_out, dtype=TOKEN_DTYPE, casting="unsafe")

    if spec.random_non_queries:
        # Zoology replaces filler by tokens from the whole vocabulary; here from this chunk's seeded stream.
        filler_mask = inputs == 0
        inputs[filler_mask] = rng.integers(0, spec.vocab_size, size=int(filler_mask.sum()), dtype=TOKEN_DTYPE)


def random_bits(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Uniform random unsigned integers ('<u2' or '<u4') of `shape`: the raw 64-bit outputs of `rng`'s bit
    generator cut into fields, low field first, the same on any byte order. Several times cheaper than
    `rng.integers` (no bounding, no per-value call)."""
    count = int(np.prod(shape))
    per_word = 8 // np.dtype(dtype).itemsize
    raw = rng.bit_generator.random_raw(-(-count // per_word))
    fields = raw.astype("<u8", copy=False).view(dtype)[:count]
    return fields.astype(np.dtype(dtype).newbyteorder("="), copy=False).reshape(shape)  # native: no copy on x86


def distinct_per_row(rng: np.random.Generator, num_rows: int, size: int, range_size: int) -> np.ndarray:
    """[num_rows, size] integers from [0, range_size), distinct within each row: per row a uniformly random
    ordered tuple, i.e. a sampling without replacement.

    Drawn with replacement, then every entry that repeats an earlier entry of its row (or lies outside the range,
    when the draws are cut from random bits) is drawn again until the row is distinct. Every decision depends only
    on which draws are equal (never on their values), so relabelling the range leaves the law unchanged: all
    distinct tuples are equally likely. At kv 128 from 4095 keys a row holds ~2 repeats.
    """
    if size > range_size:
        raise UserError(f"cannot draw {size} distinct tokens from a range of {range_size}; use a larger vocabulary")
    value_bits = max(1, (range_size - 1).bit_length())
    dtype = np.uint16 if value_bits <= 16 else np.uint32
    if range_size <= 4 * size:
        # Dense: the first `size` entries of a random permutation of the (small) range, i.e. the range sorted by
        # random 64-bit keys whose low bits are replaced by the position. The keys are distinct, so the order is
        # the same for every sort algorithm (an argsort of random floats ordered equal floats by the CPU's SIMD
        # sort), and sorting values is faster than an argsort.
        position_bits = max(1, (range_size - 1).bit_length())
        sort_keys = rng.bit_generator.random_raw(num_rows * range_size).reshape(num_rows, range_size)
        sort_keys &= ~np.uint64((1 << position_bits) - 1)
        sort_keys |= np.arange(range_size, dtype=np.uint64)
        sort_keys.sort(axis=1)
        return (sort_keys[:, :size] & np.uint64((1 << position_bits) - 1)).astype(dtype)
    if range_size > (7 << value_bits) // 8:
        # Cut from random bits (several times cheaper than bounded draws); the few out of range are redrawn.
        draws = random_bits(rng, (num_rows, size), "<u2" if dtype == np.uint16 else "<u4")
        draws &= dtype((1 << value_bits) - 1)
    else:
        draws = rng.integers(0, range_size, size=(num_rows, size), dtype=dtype)
    position_bits = max(1, (size - 1).bit_length())
    # Blocks of rows small enough that (row in block, value, position) packs into 32 bits, and that the packed
    # arrays of a block stay in a core's cache (2048 rows x 128 entries x 4 bytes = 1 MiB).
    block_rows = min(2048, 1 << max(0, 32 - value_bits - position_bits))
    for block_start in range(0, num_rows, block_rows):
        _redraw_repeats(rng, draws[block_start : block_start + block_rows], range_size, value_bits, position_bits)
    return draws


def _redraw_repeats(
    rng: np.random.Generator, draws: np.ndarray, range_size: int, value_bits: int, position_bits: int
) -> None:
    """Make each row of `draws` distinct and below range_size in place: every entry equal to an earlier entry of
    its row, or out of range, is drawn again until the fresh draw equals no entry of its row and no other fresh
    draw of its row."""
    num_rows, size = draws.shape
    dtype = np.uint32 if (num_rows - 1).bit_length() + value_bits + position_bits <= 32 else np.uint64
    # (row, value, position) packed into one integer per entry: sorted per row, the whole array is sorted by
    # (row, value), equal values of a row sit together in position order, and `>> position_bits` gives the
    # sorted (row, value) pairs of all rows as one searchable array.
    packed = np.left_shift(draws, position_bits, dtype=dtype)
    packed |= _row_and_position(num_rows, size, value_bits + position_bits, dtype)
    packed.sort(axis=1)
    occupied = (packed >> dtype(position_bits)).reshape(-1)  # (row, value) of every entry, sorted
    value_mask = dtype((1 << value_bits) - 1)
    repeats = packed.reshape(-1)[np.flatnonzero(occupied[1:] == occupied[:-1]) + 1]  # all but the first of equals
    if range_size < 1 << value_bits:  # out of range values (cut from random bits) sit at the end of their row
        tail_rows = np.flatnonzero((occupied[size - 1 :: size] & value_mask) >= range_size)
        if tail_rows.size:
            tails = packed[tail_rows]
            tails = tails[((tails >> dtype(position_bits)) & value_mask) >= range_size]
            repeats = repeats[((repeats >> dtype(position_bits)) & value_mask) < range_size]
            repeats = np.concatenate([repeats, tails])
    # Pending entries as row << position_bits | position; each round draws one fresh value per pending entry.
    pending = ((repeats >> dtype(value_bits + position_bits)) << dtype(position_bits)) | (
        repeats & dtype((1 << position_bits) - 1)
    )
    position_mask = dtype((1 << position_bits) - 1)
    taken = np.empty(0, dtype=dtype)  # (row, value) of the fresh draws kept so far, sorted
    while pending.size:
        fresh = rng.integers(0, range_size, size=pending.size, dtype=dtype)
        # (row, value wanted, position) packed and sorted: sorted queries search faster, and equal fresh draws of
        # a row sit together. The packed entries are distinct, so their order (which decides who draws what in the
        # next round) is the same for every sort algorithm: numpy's SIMD sorts order equal keys differently on
        # different CPUs, so an argsort of (row, value) alone gave different bytes on AVX2 and AVX-512 machines.
        fresh <<= dtype(position_bits)
        wanted = (pending >> dtype(position_bits)) << dtype(value_bits + position_bits)
        wanted |= fresh
        wanted |= pending & position_mask
        wanted.sort()
        pending = (wanted >> dtype(value_bits + position_bits)) << dtype(position_bits)
        pending |= wanted & position_mask
        wanted >>= dtype(position_bits)
        clash = occupied[_last_at_or_below(occupied, size, (wanted >> dtype(value_bits)).astype(np.intp), wanted)]
        clash = clash == wanted
        clash |= _is_in_sorted(taken, wanted)
        same = wanted[1:] == wanted[:-1]
        clash[1:] |= same
        clash[:-1] |= same
        keep = ~clash
        kept = pending[keep]
        rows = (kept >> dtype(position_bits)).astype(np.intp)
        positions = (kept & position_mask).astype(np.intp)
        draws[rows, positions] = wanted[keep] & dtype((1 << value_bits) - 1)
        taken = np.sort(np.concatenate([taken, wanted[keep]]), kind="stable")  # two sorted runs: a merge
        pending = pending[clash]


def _last_at_or_below(sorted_rows: np.ndarray, size: int, rows: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Flat index of the last entry of row `rows[i]` of `sorted_rows` (flat, rows of `size` entries, each sorted)
    at or below `bounds[i]`, or of the row's first entry when none is. A branchless binary search within the rows,
    run for all queries at once: ~7 gathers per query at size 128, whose cache misses overlap, instead of
    np.searchsorted's ~18 dependent probes over the whole array (~1.7x faster here)."""
    found = rows * size
    length = size
    while length > 1:
        half = length // 2
        found += (sorted_rows[found + half] <= bounds) * half
        length -= half
    return found


@functools.lru_cache(maxsize=8)
def _row_and_position(num_rows: int, size: int, row_shift: int, dtype: type) -> np.ndarray:
    """[num_rows, size] row << row_shift | position (read-only; the same for every chunk of one task)."""
    table = (np.arange(num_rows, dtype=dtype) << dtype(row_shift))[:, None] | np.arange(size, dtype=dtype)
    table.flags.writeable = False
    return table


def _is_in_sorted(sorted_values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Which `queries` occur in the sorted array (np.isin without its hashing, which is slow here)."""
    if sorted_values.size == 0:
        return np.zeros(queries.shape, dtype=bool)
    found = np.searchsorted(sorted_values, queries)
    return sorted_values[np.minimum(found, sorted_values.size - 1)] == queries


def draw_order_scores(rng: np.random.Generator, num_rows: int, weights: np.ndarray) -> np.ndarray:
    """[num_rows, slots] Efraimidis–Spirakis scores E / w (E ~ Exp(1) per slot) as int32 bit patterns of positive
    float32s, so integer order is score order: sorted ascending, the slots come out in the order successive
    weighted draws without replacement (what numpy's `choice(replace=False, p=...)` does) would pick them.

    E = -log(u) comes from mqar.data.portable_math, not np.log: numpy's SIMD and scalar logs differ in the last bit,
    which flipped the order of nearly equal scores, and so the bytes, between CPUs with different SIMD features."""
    bits = random_bits(rng, (num_rows, weights.size), "<u4")
    minus_inverse_weights = np.divide(-1.0, weights).astype(np.float32)
    # In blocks of rows whose work buffers stay in a core's cache (~64k entries per buffer).
    block_rows = max(1, SCORE_BLOCK_ENTRIES // weights.size)
    work = [np.empty((min(block_rows, num_rows), weights.size), dtype) for dtype in (np.int32, np.float32, np.float32)]
    for start in range(0, num_rows, block_rows):
        block = bits[start : start + block_rows]
        # 23 random mantissa bits -> a float in [1, 2) -> u in (0, 1) (u = (2k+1)/2**24, exact) -> E = -log(u) > 0.
        block >>= np.uint32(9)
        block |= np.uint32(0x3F800000)
        uniform = block.view(np.float32)
        uniform -= np.float32(1 - 2**-24)
        portable_math.log_in_place(uniform, *(buffer[: block.shape[0]] for buffer in work))  # log(u) < 0
        uniform *= minus_inverse_weights
    return bits.view(np.int32)


def smallest_per_row(scores: np.ndarray, count: int) -> np.ndarray:
    """[rows, slots] bool marking each row's `count` smallest scores (ties, which need two equal float32 scores,
    go to the lower slot)."""
    threshold = np.partition(scores, count - 1, axis=1)[:, count - 1 : count]
    chosen = scores <= threshold
    tied = np.flatnonzero(chosen.sum(axis=1) != count)
    if tied.size:
        unique_scores = (scores[tied].astype(np.int64) << 32) | np.arange(scores.shape[1])
        threshold = np.partition(unique_scores, count - 1, axis=1)[:, count - 1 : count]
        chosen[tied] = unique_scores <= threshold
    return chosen


def sort_pairs_by_score(
    scores: np.ndarray, keys: np.ndarray, values: np.ndarray, key_range: int, value_range: int
) -> tuple[np.ndarray, np.ndarray]:
    """`keys` and `values` ([N, n] offsets below key_range / value_range, in slot order) reordered per row by
    ascending score: one int64 row sort of score << 32 | key << value_bits | value when key and value fit in
    32 bits, else a sort of positions and two gathers. Equal scores (two equal float32s) keep the pairs in key
    order."""
    key_bits = max(1, (key_range - 1).bit_length())
    value_bits = max(1, (value_range - 1).bit_length())
    if key_bits + value_bits <= 32:
        payload = np.left_shift(keys, value_bits, dtype=np.uint32)
        payload |= values
        packed = np.left_shift(scores, 32, dtype=np.int64)  # scores are non-negative int32
        packed |= payload
        packed.sort(axis=1)
        payload = packed.astype(np.uint32)  # the low 32 bits
        return payload >> np.uint32(value_bits), payload & np.uint32((1 << value_bits) - 1)
    position_bits = max(1, (keys.shape[1] - 1).bit_length())
    packed = np.left_shift(scores, position_bits, dtype=np.int64)
    packed |= np.arange(keys.shape[1])
    packed.sort(axis=1)
    order = packed & ((1 << position_bits) - 1)
    return np.take_along_axis(keys, order, axis=1), np.take_along_axis(values, order, axis=1)
