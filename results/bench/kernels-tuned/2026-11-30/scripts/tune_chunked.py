"""Issue 4, chunked form on main: feature block BE (16 / 32), pipelining stages (2 / 3) and scan value columns
(32 / 64) together. tune_sym (branch, scan at 32 columns, 2 stages) had BE 16 ahead of 32 by 7-10 % (3.76 vs 4.15 ms
at 2x32768); the merged default is BE 32, stages 3, 64 columns: 3.73 ms. bf16 rebased fwd / fwd+bwd ms (do_bench
median), each checked against the default's outputs (relative RMS). Run from main's root on a GPU."""
import dataclasses
import time

import torch
from triton.testing import do_bench

import mqar.kernels.triton_ops as ops
from mqar.kernels.triton_ops import linear_attention_triton

SHAPES = [(2, 32768, 8, 16, 64), (8, 8192, 8, 16, 64), (32, 4096, 8, 16, 64), (16, 8192, 8, 16, 16)]
VARIANTS = [(None, None, 64)] + [(be, st, bd) for be in (16, 32) for st in (2, 3) for bd in (32, 64)] + [(16, 4, 64)]
t0 = time.time()


def rel_rms(a, b):
    return ((a.float() - b.float()).pow(2).mean().sqrt() / b.float().pow(2).mean().sqrt().clamp_min(1e-30)).item()


for shape in SHAPES:
    B, T, H, F, D = shape
    torch.manual_seed(0)
    q, k, v = [torch.randn(B, T, H, d, device="cuda", dtype=torch.bfloat16, requires_grad=True) for d in (F, F, D)]
    g = torch.randn(B, T, H, D, device="cuda", dtype=torch.bfloat16)
    forward = lambda: linear_attention_triton(q, k, v, kernel="rebased", algorithm="chunked")  # noqa: E731
    both = lambda: (out := forward(), *torch.autograd.grad(out, (q, k, v), g))  # noqa: E731
    expected = None
    for block_e, stages, block_d in VARIANTS:
        ops.CONFIG_OVERRIDE.clear()
        default = ops._config("chunked", None, torch.bfloat16, D, F)
        if block_e is not None:
            ops.CONFIG_OVERRIDE["chunked"] = dataclasses.replace(default, block_e=block_e, num_stages=stages)
        ops.SCAN_BLOCK_D = block_d
        name = "default" if block_e is None else f"BE{block_e} st{stages} bd{block_d}"
        try:
            result = both()
            expected = expected or result
            err = max(rel_rms(a, b) for a, b in zip(result, expected))
            fwd, fb = (do_bench(f, warmup=10, rep=40, return_mode="median") for f in (forward, both))
            print(f"{shape} {name}: fwd {fwd:.3f} fwd+bwd {fb:.3f} ms, rel rms vs default {err:.1e}  "
                  f"{time.time() - t0:.0f}s", flush=True)
        except Exception as error:
            print(f"{shape} {name}: failed: {type(error).__name__}: {str(error)[:120]}", flush=True)
ops.CONFIG_OVERRIDE.clear()
