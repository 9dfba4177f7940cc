"""A rough cost estimate for `mqar sweep --dry-run`: tokens to process ÷ tokens per second.

Tokens of one run = epochs × (train + valid examples) × seq_len: an upper bound, since early stopping usually ends
runs sooner. Speed: the median training tokens/s of runs already in the store on the same device class with the same
arch, width and seq_len (else same device class and arch, else the whole class); without any, a built-in rate per
device class measured once (see CPU_TOKENS_PER_S). It is an estimate and says so.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Optional, Sequence

from mqar.runs import RunConfig

# Built-in rates, tokens/s of training per device slot. CPU: mqar.train of the quick preset's models (d_model 24-64,
# seq_len 32, batch 32, one thread per run, two runs at once) on a 2-core x86 CPU with torch 2.13: 60-90 k tokens/s
# idle, 7-22 k with other jobs competing; larger models are slower, which the built-in rate ignores.
CPU_TOKENS_PER_S = 40_000.0
# CUDA, per slot (a run sharing its GPU with others): mqar.train on an H200 with 4 runs per GPU, fp32, d_model 16-24,
# seq_len 256: median 4.4 M tokens/s per run (results/bench/sweep-scaling/2026-11-30-fast-runs/local-1gpu.db). One
# run alone at d_model 128, seq_len 512 ran at 6.9 M (fp32) and 13 M (bf16) (results/bench/train-*.md).
CUDA_TOKENS_PER_S = 4_000_000.0


@dataclass(frozen=True)
class Estimate:
    num_runs: int
    tokens: float
    seconds: float  # on one device slot; divide by slots for the wall time
    slots: int
    source: str  # where the speeds came from

    @property
    def wall_seconds(self) -> float:
        return self.seconds / max(1, self.slots)


def run_tokens(config: RunConfig) -> float:
    recipe = config.recipe
    return float(recipe.epochs) * (recipe.num_train_examples + recipe.num_valid_examples) * config.task.seq_len


def device_class(device: Optional[str]) -> str:
    return "cuda" if device and device.startswith("cuda") else "cpu"


def estimate(configs: Sequence[RunConfig], device: str, slots: int, measured: Sequence[dict] = ()) -> Estimate:
    """`measured`: rows with arch, d_model, seq_len, device, tokens_per_s from the store (done runs)."""
    kind = device_class(device)
    same_class = [row for row in measured if device_class(row["device"]) == kind and row["tokens_per_s"]]
    default = CUDA_TOKENS_PER_S if kind == "cuda" else CPU_TOKENS_PER_S
    used_measured = 0
    seconds = 0.0
    for config in configs:
        exact = [r["tokens_per_s"] for r in same_class
                 if (r["arch"], r["d_model"], r["seq_len"]) == (config.arch, config.d_model, config.task.seq_len)]
        by_arch = [r["tokens_per_s"] for r in same_class if r["arch"] == config.arch]
        candidates = exact or by_arch or [r["tokens_per_s"] for r in same_class]
        rate = statistics.median(candidates) if candidates else default
        used_measured += bool(candidates)
        seconds += run_tokens(config) / rate
    if used_measured == len(configs) and configs:
        source = f"speeds measured by earlier {kind} runs in the store"
    elif used_measured:
        source = f"speeds of earlier {kind} runs in the store where known, else a built-in {default:,.0f} tokens/s"
    else:
        source = f"a built-in {kind} speed of {default:,.0f} tokens/s"
    return Estimate(num_runs=len(configs), tokens=sum(map(run_tokens, configs)), seconds=seconds, slots=slots,
                    source=source)
