"""Where a chunked fwd+bwd spends its GPU time on this tree (issue 4: 2×32768 target 3.5 ms, 8×8192 target 2.0):
per-kernel CUDA time over 5 iterations, bf16 rebased, for each shape. Run from a tree's root on a GPU:
python3 prof_kernels.py OUT.txt"""
import sys

import torch
from torch.profiler import ProfilerActivity, profile

from mqar.kernels.triton_ops import linear_attention_triton

SHAPES = [(2, 32768, 8, 16, 64), (8, 8192, 8, 16, 64)]
with open(sys.argv[1], "w") as out:
    for shape in SHAPES:
        B, T, H, F, D = shape
        q, k, v = [torch.randn(B, T, H, d, device="cuda", dtype=torch.bfloat16, requires_grad=True) for d in (F, F, D)]
        g = torch.randn(B, T, H, D, device="cuda", dtype=torch.bfloat16)
        step = lambda: torch.autograd.grad(linear_attention_triton(q, k, v, kernel="rebased", algorithm="chunked"),  # noqa: E731
                                           (q, k, v), g)
        for _ in range(3):
            step()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(5):
                step()
            torch.cuda.synchronize()
        out.write(f"chunked {shape} bf16, 5 iterations\n")
        out.write(prof.key_averages().table(sort_by="self_device_time_total", row_limit=15, max_name_column_width=60))
        out.write("\n")
        out.flush()
