"""A floor under any single-core generator at issue 2's second shape (L=2048, kv=512, 20k examples): the time to
write the two int32 output arrays into fresh memory, and to draw the random bits such a dataset needs at least.
It also times the loop baseline (mqar/bench/loop_generator.py, one run) at that shape: 50x that is the budget.
Usage: taskset -c 0 python results/bench/data_floor.py  (best of 3 per line)."""
import time

import numpy as np

from mqar.bench.loop_generator import generate_loop
from mqar.data.spec import TaskSpec

EXAMPLES, SEQ_LEN, KV = 20_000, 2048, 512
DRAWS = 3 * EXAMPLES * KV  # a key, a value and a query gap per pair, at the least


def best_of_3(work) -> float:
    times = []
    for _ in range(3):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


source = np.ones((EXAMPLES, SEQ_LEN), np.int32)
rng = np.random.default_rng(0)
writes = best_of_3(lambda: (np.empty_like(source).__setitem__(slice(None), source),
                            np.empty_like(source).__setitem__(slice(None), source)))
raw_bits = best_of_3(lambda: rng.bit_generator.random_raw(DRAWS // 2))  # 32 bits per draw, two per 64-bit word
print(f"write inputs + labels ({EXAMPLES:,} x {SEQ_LEN} int32, fresh memory): {writes:.3f} s")
print(f"{DRAWS:,} draws as raw 32-bit halves of PCG64 words: {raw_bits:.3f} s")
print(f"sum: {writes + raw_bits:.3f} s")
start = time.perf_counter()
generate_loop(TaskSpec(seq_len=SEQ_LEN, num_kv_pairs=KV), EXAMPLES, seed=0)
loop = time.perf_counter() - start
print(f"loop baseline: {loop:.2f} s, so 50x the loop allows {loop / 50:.3f} s; the floor above is "
      f"{(writes + raw_bits) / (loop / 50):.1f}x that")
