"""Issue 4, bf16 target at 256×512 (1.61 ms vs 1.2): the one-kernel parallel backward spends ~0.42 ms on dq atomics,
one [BM, F] atomic add per (key block, query block) tile. Key blocks of BN > BM rows make fewer, larger atomic adds
(each covers BN key rows) while the query step stays small. Times fwd and fwd+bwd per backward (BM, BN, warps)
(_Config.bwd_block, bwd_block_n, bwd_warps; the forward keeps its default tiles), and checks each config's outputs
against the default config's (relative RMS). Run from main's root on a GPU; prints one line per measurement."""
import dataclasses
import time

import torch
from triton.testing import do_bench

import mqar.kernels.triton_ops as ops
from mqar.kernels.triton_ops import linear_attention_triton

SHAPES = [(256, 512, 12, 16, 16), (512, 256, 12, 16, 5), (64, 2048, 12, 16, 16), (8, 8192, 8, 16, 64)]
CONFIGS = [None, (32, 32, 2), (32, 64, 2), (32, 64, 4), (32, 128, 4), (16, 32, 2), (16, 64, 2), (16, 128, 4),
           (64, 64, 4), (64, 128, 4), (64, 128, 8)]
t0 = time.time()


def run(q, k, v, g):
    out = linear_attention_triton(q, k, v, kernel="rebased", algorithm="parallel")
    return (out, *torch.autograd.grad(out, (q, k, v), g))


def rel_rms(a, b):
    return ((a.float() - b.float()).pow(2).mean().sqrt() / b.float().pow(2).mean().sqrt().clamp_min(1e-30)).item()


for shape in SHAPES:
    B, T, H, F, D = shape
    torch.manual_seed(0)
    q, k, v = [torch.randn(B, T, H, d, device="cuda", dtype=torch.bfloat16, requires_grad=True) for d in (F, F, D)]
    g = torch.randn(B, T, H, D, device="cuda", dtype=torch.bfloat16)
    ops.CONFIG_OVERRIDE.pop("parallel", None)
    expected = run(q, k, v, g)
    for config in CONFIGS:
        if config is None:
            ops.CONFIG_OVERRIDE.pop("parallel", None)
            name = "default"
        else:
            bm, bn, warps = config
            ops.CONFIG_OVERRIDE.pop("parallel", None)
            default = ops._config("parallel", None, torch.bfloat16, D, F, T)
            ops.CONFIG_OVERRIDE["parallel"] = dataclasses.replace(default, bwd_block=bm, bwd_block_n=bn, bwd_warps=warps)
            name = f"bwd BM{bm} BN{bn} w{warps}"
        try:
            err = max(rel_rms(a, b) for a, b in zip(run(q, k, v, g), expected))
            forward = lambda: linear_attention_triton(q, k, v, kernel="rebased", algorithm="parallel")  # noqa: E731
            both = lambda: torch.autograd.grad(forward(), (q, k, v), g)  # noqa: E731
            fwd, fb = (do_bench(f, warmup=10, rep=40, return_mode="median") for f in (forward, both))
            print(f"{shape} {name}: fwd {fwd:.3f} fwd+bwd {fb:.3f} ms, rel rms vs default {err:.1e}  {time.time() - t0:.0f}s",
                  flush=True)
        except Exception as error:  # a config that does not compile or fit is a result too
            print(f"{shape} {name}: failed: {type(error).__name__}: {str(error)[:120]}", flush=True)
