"""Issue 4: the chunked form's prefix-state scan (chunk_scan_kernel) alone, by warps / pipelining stages / value
columns per program, forward (k, v) and backward (q, do) direction. One JSON line per case: µs (do_bench median)
and the largest relative difference of the states from the default launch's.

usage: python scan_variants.py [WARPSxSTAGES ...] [--backward-only]
  (run from the root of the tree to measure; PYTHONPATH chooses it). Without variants: the grid below.
"""
import dataclasses
import json
import sys

import torch
from triton.testing import do_bench

import mqar.kernels.triton_ops as ops

SHAPES = [(8, 8192, 8, 16, 64), (2, 32768, 8, 16, 64), (16, 8192, 8, 16, 16)]  # B, T, H, F, D
VARIANTS = [(w, s, 64) for w in (1, 2, 4, 8) for s in (1, 2, 3, 4)] + [(2, 3, 32), (4, 3, 32)]  # bd: at most D

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
if ARGS:
    VARIANTS = [(*map(int, a.split("x")), 64) for a in ARGS]
DIRECTIONS = (True,) if "--backward-only" in sys.argv else (False, True)

for B, T, H, F, D in SHAPES:
    torch.manual_seed(0)
    x = torch.randn(B, T, H, F, device="cuda", dtype=torch.bfloat16)
    y = torch.randn(B, T, H, D, device="cuda", dtype=torch.bfloat16)
    z = torch.rand(B, H, T, device="cuda") + 1.0
    delta = torch.randn(B, H, T, device="cuda")
    base = ops._config("chunked", None, torch.bfloat16, D, F, T)
    block_d = ops._pad(D)
    for backward in DIRECTIONS:
        run = lambda cfg: ops._prefix_states(x, y, z, delta, "rebased", cfg, block_d, "tf32", backward)  # noqa
        ops.SCAN_BLOCK_D = 64
        want = run(base)[0]
        for warps, stages, bd in VARIANTS:
            if bd > block_d and bd != 64:
                continue
            ops.SCAN_BLOCK_D = bd
            cfg = dataclasses.replace(base, num_warps=warps, num_stages=stages)  # the scan takes num_warps
            row = {"shape": [B, T, H, F, D], "backward": backward, "warps": warps, "stages": stages, "block_d": min(bd, block_d)}
            try:
                got = run(cfg)[0]
                row["max_rel_diff"] = ((got - want).abs().max() / want.abs().max()).item()
                row["us"] = round(1000 * do_bench(lambda: run(cfg), warmup=5, rep=30, return_mode="median"), 1)
            except Exception as error:  # one failing launch must not lose the others
                row["error"] = f"{type(error).__name__}: {str(error)[:160]}"
            print(json.dumps(row), flush=True)
        ops.SCAN_BLOCK_D = 64
