"""Issue 4, the 256x512 target (1.36 vs 1.2 ms): the parallel form's pipelining stages and forward tiles, around the
merged backward tiles (BM 32, BN 64, 2 warps). bf16 rebased fwd / fwd+bwd ms, checked against the default's outputs.
Run from main's root on a GPU."""
import dataclasses
import time

import torch
from triton.testing import do_bench

import mqar.kernels.triton_ops as ops
from mqar.kernels.triton_ops import linear_attention_triton

SHAPES = [(256, 512, 12, 16, 16), (512, 256, 12, 16, 5), (64, 2048, 12, 16, 16)]
# (forward BM, forward BN, warps, stages); None: the default
VARIANTS = [None, (64, 64, 4, 2), (64, 64, 4, 4), (128, 64, 4, 3), (128, 64, 8, 3), (64, 32, 4, 3), (32, 32, 2, 3),
            (128, 32, 4, 3)]
t0 = time.time()


def rel_rms(a, b):
    return ((a.float() - b.float()).pow(2).mean().sqrt() / b.float().pow(2).mean().sqrt().clamp_min(1e-30)).item()


for shape in SHAPES:
    B, T, H, F, D = shape
    torch.manual_seed(0)
    q, k, v = [torch.randn(B, T, H, d, device="cuda", dtype=torch.bfloat16, requires_grad=True) for d in (F, F, D)]
    g = torch.randn(B, T, H, D, device="cuda", dtype=torch.bfloat16)
    forward = lambda: linear_attention_triton(q, k, v, kernel="rebased", algorithm="parallel")  # noqa: E731
    both = lambda: (out := forward(), *torch.autograd.grad(out, (q, k, v), g))  # noqa: E731
    expected = None
    for variant in VARIANTS:
        ops.CONFIG_OVERRIDE.clear()
        default = ops._config("parallel", None, torch.bfloat16, D, F)
        if variant is not None:
            bm, bn, warps, stages = variant
            ops.CONFIG_OVERRIDE["parallel"] = dataclasses.replace(default, block_m=bm, block_n=bn, num_warps=warps,
                                                                  num_stages=stages)
        name = "default" if variant is None else "fwd BM{} BN{} w{} st{}".format(*variant)
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
