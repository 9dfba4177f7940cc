"""Session 17 prep (untested on a GPU): per-kernel CUDA time of the parallel rebased forward with FWD_GRAM on / off,
to split the Gram's fixed cost into key_gram_kernel, torch's cumsum and the forward kernel itself.
usage (on the device, PYTHONPATH=repo root): python profile_gram.py [B,T,H,F,D ...] > profile_gram.txt
(call 12 passes small shapes: the GPU time per kernel where the host bounds the wall time)"""
import sys

import torch
from torch.profiler import ProfilerActivity, profile

import mqar.kernels.triton_ops as ops

SHAPES = [(256, 512, 12, 16, 16), (128, 1024, 12, 16, 16), (64, 2048, 12, 16, 16), (48, 3072, 12, 16, 16)]
if sys.argv[1:]:
    SHAPES = [tuple(map(int, arg.split(","))) for arg in sys.argv[1:]]
for B, T, H, F, D in SHAPES:
    q, k, v = (torch.randn(B, T, H, d, device="cuda", dtype=torch.bfloat16) for d in (F, F, D))
    for gram in (False, True):
        ops.FWD_GRAM = gram
        forward = lambda: ops._forward(q, k, v, "rebased", 1e-6, "parallel", None)  # noqa: E731
        for _ in range(5):
            forward()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(20):
                forward()
            torch.cuda.synchronize()
        print(f"== {B}x{T}x{H} F{F} D{D} FWD_GRAM={gram} (20 forwards; µs per forward)")
        for event in sorted(prof.key_averages(), key=lambda e: -e.device_time_total):
            if event.device_time_total > 0:
                print(f"  {event.device_time_total / 20:9.1f}  {event.key[:90]}")
