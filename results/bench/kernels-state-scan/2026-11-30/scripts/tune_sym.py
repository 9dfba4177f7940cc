"""Chunk-size / feature-block tuning of the chunked kernels on the symmetric-features tree, and the parallel-vs-
chunked crossover (run from that tree's root on a GPU; prints one line per measurement)."""
import time

import torch
from triton.testing import do_bench

import mqar.kernels.triton_ops as ops
from mqar.kernels.triton_ops import _Config, linear_attention_triton


def bench(shape, algorithm, kernel="rebased", dtype=torch.bfloat16):
    B, T, H, F, D = shape
    q, k, v = [torch.randn(B, T, H, d, device="cuda", dtype=dtype, requires_grad=True) for d in (F, F, D)]
    g = torch.randn(B, T, H, D, device="cuda", dtype=dtype)
    forward = lambda: linear_attention_triton(q, k, v, kernel=kernel, algorithm=algorithm)  # noqa: E731
    both = lambda: torch.autograd.grad(forward(), (q, k, v), g)  # noqa: E731
    return tuple(round(do_bench(f, warmup=10, rep=40, return_mode="median"), 3) for f in (forward, both))


t0 = time.time()
def show(*parts):
    print(*parts, f"{time.time() - t0:.0f}s", flush=True)


for shape in [(2, 32768, 8, 16, 64), (8, 8192, 8, 16, 64)]:
    for config in [(64, 64, 16, 4, 2), (64, 64, 32, 4, 2), (64, 64, 64, 4, 2), (128, 128, 32, 8, 2), (128, 128, 64, 8, 2)]:
        ops.CONFIG_OVERRIDE["chunked"] = _Config(*config)
        try:
            result = bench(shape, "chunked")
        except Exception as error:  # a config that does not fit shared memory: say so and go on
            result = (str(error)[:120],)
        show("chunked", shape, config, "fwd, fwd+bwd ms:", result)
ops.CONFIG_OVERRIDE.clear()
for shape in [(64, 2048, 12, 16, 16), (32, 4096, 8, 16, 64), (16, 8192, 8, 16, 16), (256, 512, 12, 16, 16)]:
    for algorithm in ("parallel", "chunked"):
        try:
            result = bench(shape, algorithm)
        except Exception as error:
            result = (str(error)[:120],)
        show("crossover", shape, algorithm, "fwd, fwd+bwd ms:", result)
