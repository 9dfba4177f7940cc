"""Issue 4, chunked form: the branch's three variants side by side in one tree (branch state-scan), bf16 rebased
fwd / fwd+bwd ms (do_bench median), each checked against the first variant's outputs (relative RMS):
  recompute: the fix alone (cumsum path, forward states recomputed in the backward);
  keep:      + the forward prefix states kept for the backward;
  scan:      + the prefix states built by the sequential chunk scan (SCAN_BLOCK_D value columns per program).
Run from the state-scan tree's root on a GPU; prints one line per measurement."""
import time

import torch
from triton.testing import do_bench

import mqar.kernels.triton_ops as ops
from mqar.kernels.triton_ops import linear_attention_triton

SHAPES = [(2, 32768, 8, 16, 64), (8, 8192, 8, 16, 64), (16, 8192, 8, 16, 16), (32, 4096, 8, 16, 64),
          (64, 2048, 12, 16, 16)]
VARIANTS = [("recompute", False, False, 32), ("keep", True, False, 32), ("scan bd32", True, True, 32),
            ("scan bd16", True, True, 16), ("scan bd64", True, True, 64)]
t0 = time.time()


def rel_rms(a, b):
    return ((a.float() - b.float()).pow(2).mean().sqrt() / b.float().pow(2).mean().sqrt().clamp_min(1e-30)).item()


for shape in SHAPES:
    B, T, H, F, D = shape
    torch.manual_seed(0)
    q, k, v = [torch.randn(B, T, H, d, device="cuda", dtype=torch.bfloat16, requires_grad=True) for d in (F, F, D)]
    g = torch.randn(B, T, H, D, device="cuda", dtype=torch.bfloat16)
    forward = lambda: linear_attention_triton(q, k, v, kernel="rebased", algorithm="chunked")  # noqa: E731
    both = lambda: (forward_out := forward(), *torch.autograd.grad(forward_out, (q, k, v), g))  # noqa: E731
    expected = None
    for name, keep, scan, block_d in VARIANTS:
        ops.KEEP_CHUNK_STATES, ops.STATE_SCAN, ops.SCAN_BLOCK_D = keep, scan, block_d
        try:
            result = both()
            expected = expected or result
            err = max(rel_rms(a, b) for a, b in zip(result, expected))
            fwd, fb = (do_bench(f, warmup=10, rep=40, return_mode="median") for f in (forward, both))
            print(f"{shape} {name}: fwd {fwd:.3f} fwd+bwd {fb:.3f} ms, rel rms vs recompute {err:.1e}, peak "
                  f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB  {time.time() - t0:.0f}s", flush=True)
        except Exception as error:
            print(f"{shape} {name}: failed: {type(error).__name__}: {str(error)[:120]}", flush=True)
        torch.cuda.reset_peak_memory_stats()
