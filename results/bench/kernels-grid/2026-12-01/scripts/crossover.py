"""Issue 4: parallel against chunked fwd+bwd ms near their crossover (choose_algorithm), bf16 rebased F = 16.

usage: python crossover.py   -> one JSON line per (shape, form). Run from the root of the tree to measure.
"""
import json

import torch
from triton.testing import do_bench

import mqar.kernels.triton_ops as ops

SHAPES = [(16, 4096, 12, 16, 16), (32, 3072, 8, 16, 64), (22, 3072, 12, 16, 16), (32, 4096, 8, 16, 64)]

for B, T, H, F, D in SHAPES:
    torch.manual_seed(0)
    q, k, v = (torch.randn(B, T, H, d, device="cuda", dtype=torch.bfloat16, requires_grad=True) for d in (F, F, D))
    g = torch.randn(B, T, H, D, device="cuda", dtype=torch.bfloat16)
    for form in ("parallel", "chunked"):
        def both():
            out = ops.linear_attention_triton(q, k, v, kernel="rebased", algorithm=form)
            return torch.autograd.grad(out, (q, k, v), g)
        ms = do_bench(both, warmup=10, rep=40, return_mode="median")
        print(json.dumps({"shape": [B, T, H, F, D], "form": form, "fwd_bwd_ms": round(ms, 3),
                          "auto": ops.choose_algorithm(B, T, H, F, D, torch.bfloat16)}), flush=True)
