"""Issue 4: where the fwd+bwd time goes, per CUDA kernel (torch.profiler), at the shapes whose targets are missed.

usage: python kernel_breakdown.py  -> one JSON line per (shape, kernel name): mean µs per fwd+bwd step.
Run from the root of the tree to measure (PYTHONPATH chooses it).
"""
import json

import torch
from torch.profiler import ProfilerActivity, profile

import mqar.kernels.triton_ops as ops

SHAPES = [  # (algorithm, B, T, H, F, D)
    ("chunked", 8, 8192, 8, 16, 64), ("chunked", 2, 32768, 8, 16, 64),
    ("parallel", 64, 2048, 12, 16, 16), ("parallel", 256, 512, 12, 16, 16),
]
STEPS = 20

for algorithm, B, T, H, F, D in SHAPES:
    torch.manual_seed(0)
    q, k, v = (torch.randn(B, T, H, d, device="cuda", dtype=torch.bfloat16, requires_grad=True) for d in (F, F, D))
    g = torch.randn(B, T, H, D, device="cuda", dtype=torch.bfloat16)

    def step():
        out = ops.linear_attention_triton(q, k, v, kernel="rebased", algorithm=algorithm)
        torch.autograd.grad(out, (q, k, v), g)

    for _ in range(5):
        step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(STEPS):
            step()
        torch.cuda.synchronize()
    total = 0.0
    for event in sorted(prof.key_averages(), key=lambda e: -e.device_time_total):
        if event.device_time_total <= 0:
            continue
        us = event.device_time_total / STEPS
        total += us
        print(json.dumps({"algorithm": algorithm, "shape": [B, T, H, F, D], "kernel": event.key[:90],
                          "calls_per_step": event.count / STEPS, "us_per_step": round(us, 1)}), flush=True)
    print(json.dumps({"algorithm": algorithm, "shape": [B, T, H, F, D], "kernel": "TOTAL",
                      "us_per_step": round(total, 1)}), flush=True)
