"""A floor under any single-core generator at issue 2's two shapes: the time to write the two int32 output arrays
into fresh memory, and to draw the random bits such a dataset needs at least (a key, a value and a query gap per
pair, 32 bits each), with no sampling work on top. Beside it, the loop baseline (mqar/bench/loop_generator.py) at the
same shape, whose time / 50 is the budget of issue 2's "50x the loop".
Usage: taskset -c 0 python results/bench/data_floor.py  (best of 3 for the floor; the loop once, on a fifth of the
examples at L=512, scaled: its cost is the same per example)."""
import numpy as np

from mqar.bench.data import seconds_of
from mqar.bench.loop_generator import generate_loop
from mqar.data.spec import TaskSpec

SHAPES = ((512, 128, 100_000, 5), (2048, 512, 20_000, 1))  # seq_len, kv pairs, examples, loop on examples / this

rng = np.random.default_rng(0)
for seq_len, kv, examples, loop_fraction in SHAPES:
    source = np.ones((examples, seq_len), np.int32)
    writes = seconds_of(lambda: (np.empty_like(source).__setitem__(slice(None), source),
                                np.empty_like(source).__setitem__(slice(None), source)), 3)
    draws = 3 * examples * kv
    raw_bits = seconds_of(lambda: rng.bit_generator.random_raw(draws // 2), 3)  # two 32-bit draws per 64-bit word
    spec = TaskSpec(seq_len=seq_len, num_kv_pairs=kv)
    loop = seconds_of(lambda: generate_loop(spec, examples // loop_fraction, seed=0), 1) * loop_fraction
    floor, budget = writes + raw_bits, loop / 50
    print(f"L={seq_len}, kv={kv}, {examples:,} examples: writes {writes:.3f} s + {draws:,} raw 32-bit draws "
          f"{raw_bits:.3f} s = floor {floor:.3f} s; loop {loop:.2f} s, so 50x allows {budget:.3f} s "
          f"= {budget / floor:.2f}x the floor")
