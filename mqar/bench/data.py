"""`mqar bench data`: examples/s and peak memory of the vectorised generator beside the per-example loop
baseline, in one process, on one CPU core's worth of numpy (no threads are used by either)."""

from __future__ import annotations

import platform
import time
import tracemalloc
from pathlib import Path
from typing import Callable

import numpy as np

import mqar
from mqar.bench import write_report
from mqar.bench.loop_generator import generate_loop
from mqar.data import TaskSpec, generate

# (seq_len, kv pairs, examples) measured; the loop baseline runs on fewer examples and is scaled per example.
CASES = ((512, 128, 100_000), (2048, 512, 20_000))
LOOP_EXAMPLES = {512: 5_000, 2048: 1_000}
# Quoted anchor (the team's REFERENCE.md notes, kept outside this repository; measured outside this benchmark): the
# ReBased copy of Zoology's generator, 100k train + 1k test examples at L=512, kv=128 in 36.8 s on one core.
REBASED_ANCHOR_EXAMPLES_PER_S = 101_000 / 36.8


def seconds_of(function: Callable[[], object], repeats: int) -> float:
    """Best wall time of `repeats` calls (the least disturbed by the rest of the machine)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def peak_memory_of(function: Callable[[], object]) -> int:
    """Peak traced memory (numpy's buffers included) in bytes of one call; timed separately, since tracing slows
    allocation."""
    tracemalloc.start()
    function()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def run(out_dir: Path, quick: bool = False) -> list[dict]:
    rows = []
    for seq_len, num_kv_pairs, num_examples in CASES:
        if quick:
            num_examples //= 20
        spec = TaskSpec(seq_len=seq_len, num_kv_pairs=num_kv_pairs)
        output_bytes = 2 * num_examples * seq_len * np.dtype(np.int32).itemsize
        seconds = seconds_of(lambda: generate(spec, num_examples, seed=0), repeats=3)
        peak = peak_memory_of(lambda: generate(spec, num_examples, seed=0))
        loop_examples = LOOP_EXAMPLES[seq_len] // (20 if quick else 1)
        loop_seconds = seconds_of(lambda: generate_loop(spec, loop_examples, seed=0), repeats=1)
        loop_peak = peak_memory_of(lambda: generate_loop(spec, loop_examples, seed=0))
        rows.append(
            {
                "seq_len": seq_len,
                "num_kv_pairs": num_kv_pairs,
                "num_examples": num_examples,
                "seconds": seconds,
                "examples_per_s": num_examples / seconds,
                "peak_memory_bytes": peak,
                "output_bytes": output_bytes,
                "peak_over_output": peak / output_bytes,
                "loop_examples": loop_examples,
                "loop_examples_per_s": loop_examples / loop_seconds,
                "loop_peak_memory_bytes": loop_peak,
                "speedup_vs_loop": (num_examples / seconds) / (loop_examples / loop_seconds),
            }
        )
    report = {
        "benchmark": "data",
        "mqar_version": mqar.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "rebased_anchor_examples_per_s": REBASED_ANCHOR_EXAMPLES_PER_S,
        "command": "mqar bench data" + (" --quick" if quick else ""),  # --quick: a smoke test, not a measurement
        "rows": rows,
    }
    write_report(out_dir, "data", report, markdown)
    return rows


def markdown(report: dict) -> str:
    lines = [
        "# mqar bench data",
        "",
        f"mqar {report['mqar_version']}, numpy {report['numpy']}, Python {report['python']}, {report['machine']}; "
        "one process, single-threaded numpy; mqar time is the best of 3, the loop's one run; peak memory from a separate "
        f"tracemalloc pass. Command: `{report.get('command', 'mqar bench data')}`.",
        "",
        "| seq_len, kv | examples | mqar s | mqar examples/s | peak MB (× output) | loop examples/s | speedup vs loop | vs ReBased anchor* |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        lines.append(
            f"| {row['seq_len']}, {row['num_kv_pairs']} | {row['num_examples']:,} | {row['seconds']:.2f} | "
            f"{row['examples_per_s']:,.0f} | {row['peak_memory_bytes'] / 2**20:,.0f} ({row['peak_over_output']:.2f}×) | "
            f"{row['loop_examples_per_s']:,.0f} | {row['speedup_vs_loop']:.0f}× | "
            f"{row['examples_per_s'] / report['rebased_anchor_examples_per_s']:.0f}× |"
        )
    lines += [
        "",
        "*The ReBased anchor (2,745 examples/s at L=512, kv=128: the ReBased code's generator, 100k + 1k examples in "
        "36.8 s on one core) is quoted from the team's reference notes, kept outside this repository, not re-measured "
        "here; the loop baseline (mqar/bench/loop_generator.py) is measured in the same run.",
        "",
    ]
    return "\n".join(lines)
