"""Issue 4, chunked form: the backward kernel (parallel_bwd with INTER, 255 registers at 4 warps in ncu, 1.41 of
~3.1 ms at 8x8192) and the forward's kernels at 4 or 8 warps, BE 16 / 32, 2 or 3 stages. bf16 rebased fwd /
fwd+bwd ms (do_bench median), each checked against the default's outputs (relative RMS). Run from the root, GPU."""
import dataclasses
import time

import torch
from triton.testing import do_bench

import mqar.kernels.triton_ops as ops
from mqar.kernels.triton_ops import linear_attention_triton

SHAPES = [(2, 32768, 8, 16, 64), (8, 8192, 8, 16, 64), (16, 8192, 8, 16, 16)]
VARIANTS = [None] + [(be, fw, bw, st) for be in (16, 32) for fw in (4, 8) for bw in (4, 8) for st in (2, 3)]
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
    for variant in VARIANTS:
        ops.CONFIG_OVERRIDE.clear()
        default = ops._config("chunked", None, torch.bfloat16, D, F)
        name = f"default (BE{default.block_e} w{default.num_warps} st{default.num_stages})"
        if variant is not None:
            be, fw, bw, st = variant
            ops.CONFIG_OVERRIDE["chunked"] = dataclasses.replace(default, block_e=be, num_warps=fw, bwd_warps=bw,
                                                                 num_stages=st)
            name = f"BE{be} fwd w{fw} bwd w{bw} st{st}"
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
