"""Host timeline of one eager linear-attention fwd+bwd at a tiny shape: perf_counter stamps around each piece."""
import time, statistics, torch
from mqar.kernels import linear_attention
from mqar.kernels import triton_ops as ops

stamps = []
def mark(name): stamps.append((name, time.perf_counter()))

class Timed:
    def __init__(self, kernel, name): self.kernel, self.name = kernel, name
    def __getitem__(self, grid):
        launch = self.kernel[grid]
        def run(*a, **kw):
            mark(f"{self.name} launch start"); r = launch(*a, **kw); mark(f"{self.name} launch end"); return r
        return run
for name in ("bwd_prep_kernel", "parallel_bwd_kernel", "parallel_fwd_kernel"):
    setattr(ops, name, Timed(getattr(ops, name), name))
orig_backward = ops._backward
def timed_backward(*a, **kw):
    mark("_backward start"); r = orig_backward(*a, **kw); mark("_backward end"); return r
ops._backward = timed_backward
orig_zeros = torch.zeros
B, T, H, F, D = 1, 64, 2, 16, 16
for dtype in (torch.bfloat16, torch.float32):
    mk = lambda d: torch.randn(B, T, H, d, device="cuda", dtype=dtype, requires_grad=True)
    q, k, v = mk(F), mk(F), mk(D); go = torch.randn(B, T, H, D, device="cuda", dtype=dtype)
    rows = {}
    for it in range(60):
        stamps.clear(); torch.cuda.synchronize()
        mark("start"); out = linear_attention(q, k, v, kernel="rebased"); mark("forward returned")
        g = torch.autograd.grad(out, [q, k, v], go); mark("grad returned")
        torch.cuda.synchronize(); mark("synchronized")
        if it >= 10:
            t0 = stamps[0][1]
            for i, (name, t) in enumerate(stamps):
                rows.setdefault((i, name), []).append((t - t0) * 1e3)
    print(f"\n{dtype}: median ms since start")
    for (i, name), ts in rows.items():
        print(f"  {statistics.median(ts):7.3f}  {name}")
