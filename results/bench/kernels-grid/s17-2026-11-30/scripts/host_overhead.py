"""Session 17, call 7: host time of one linear_attention fwd / fwd+bwd at shapes too small to keep the GPU busy.
Prints wall µs per call (CUDA-synchronised, 200 calls) for ours (parallel, chunked) and SDPA, the GPU-side kernel time
from torch.profiler, and cProfile's top functions for ours.
usage (PYTHONPATH = repository root): python host_overhead.py"""
import cProfile
import pstats
import time

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from mqar.kernels import linear_attention


def wall_us(fn, n=200):
    for _ in range(10):
        fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    torch.cuda.synchronize()
    return 1e6 * (time.perf_counter() - start) / n


def gpu_us(fn, n=50):
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(n):
            fn()
        torch.cuda.synchronize()
    return sum(e.device_time_total for e in prof.key_averages()) / n


for B, T, H in [(1, 64, 1), (1, 2048, 8), (8, 2048, 12)]:
    q, k, v = (torch.randn(B, T, H, 16, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    g = torch.randn(B, T, H, 16, device="cuda", dtype=torch.bfloat16)
    qs, ks, vs = (t.detach().transpose(1, 2).contiguous().requires_grad_() for t in (q, k, v))
    cases = {
        "ours parallel": lambda: linear_attention(q, k, v, kernel="rebased", impl="triton", algorithm="parallel"),
        "ours chunked": lambda: linear_attention(q, k, v, kernel="rebased", impl="triton", algorithm="chunked"),
        "sdpa": lambda: F.scaled_dot_product_attention(qs, ks, vs, is_causal=True),
    }
    for name, forward in cases.items():
        both = lambda forward=forward: torch.autograd.grad(forward(), (qs, ks, vs) if name == "sdpa" else (q, k, v),
                                                           g.transpose(1, 2) if name == "sdpa" else g)
        with torch.no_grad():
            fwd_wall = wall_us(forward)
        print(f"{B}x{T}x{H} {name:14s} fwd wall {fwd_wall:7.1f} µs (GPU {gpu_us(forward):7.1f})   "
              f"fwd+bwd wall {wall_us(both):7.1f} µs (GPU {gpu_us(both):7.1f})", flush=True)
    if (B, T, H) == (1, 64, 1):
        both = lambda: torch.autograd.grad(cases["ours parallel"](), (q, k, v), g)  # noqa: E731
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(200):
            both()
        torch.cuda.synchronize()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
