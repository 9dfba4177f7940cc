"""The baseline for `mqar bench data`: the same MQAR spec generated the straightforward way, one example at a
time with numpy's `choice` (as the Zoology/ReBased code does per row). Same distribution as mqar.data.generate,
different bytes; kept only to measure the vectorised generator against."""

from __future__ import annotations

import numpy as np

from mqar.data.spec import IGNORE_INDEX, TaskSpec


def generate_loop(spec: TaskSpec, num_examples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = spec.num_kv_pairs
    key_choices = np.arange(*spec.key_range)
    value_choices = np.arange(*spec.value_range)
    gap_p = spec.query_gap_weights()
    gap_p /= gap_p.sum()
    inputs = np.zeros((num_examples, spec.seq_len), dtype=np.int32)
    labels = np.full((num_examples, spec.seq_len), IGNORE_INDEX, dtype=np.int32)
    for row in range(num_examples):
        keys = rng.choice(key_choices, size=n, replace=False)
        values = rng.choice(value_choices, size=n, replace=False)
        context = np.empty(2 * n, dtype=np.int32)
        context[0::2], context[1::2] = keys, values
        if spec.haystack_depth is None:
            gaps = rng.choice(spec.num_query_slots, size=n, replace=False, p=gap_p)
        else:
            gaps = rng.permutation(n)
        query_positions = spec.query_start + 2 * gaps
        inputs[row, spec.context_start : spec.context_start + spec.context_len] = np.tile(context, spec.num_passes)
        inputs[row, query_positions] = keys
        labels[row, query_positions] = values
        if spec.random_non_queries:
            filler_mask = inputs[row] == 0
            inputs[row, filler_mask] = rng.integers(0, spec.vocab_size, size=int(filler_mask.sum()))
    return inputs, labels
