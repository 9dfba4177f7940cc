"""Where does the Triton LayerNorm's fwd+bwd time go? Device-only time (CUDA graph replay) vs do_bench (host included),
and the profiler's per-kernel CUDA times, at the quick shape and a model shape."""
import sys, torch
from triton.testing import do_bench
from mqar.kernels.layer_norm import layer_norm
import torch.nn.functional as F

def make(kind):
    if kind == "ours":
        return lambda x, w, b: layer_norm(x, w, b, impl="triton", out_dtype=torch.float32)
    return lambda x, w, b: F.layer_norm(x, x.shape[-1:], w, b)

for rows, cols in ((4096, 128), (262144, 128), (131072, 16)):
    x = torch.randn(rows, cols, device="cuda", requires_grad=True)
    w = torch.randn(cols, device="cuda", requires_grad=True); b = torch.randn(cols, device="cuda", requires_grad=True)
    for kind in ("torch", "ours"):
        fn = make(kind); grad = torch.randn_like(fn(x, w, b))
        step = lambda: torch.autograd.grad(fn(x, w, b), [x, w, b], grad)
        t_bench = do_bench(step, warmup=25, rep=100, return_mode="median")
        s = torch.cuda.Stream(); s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3): step()
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            outs = step()
        t_graph = do_bench(g.replay, warmup=25, rep=100, return_mode="median")
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]) as prof:
            for _ in range(10): step()
            torch.cuda.synchronize()
        print(f"\n== {rows}x{cols} fp32 {kind}: do_bench fwd+bwd {t_bench:.3f} ms, CUDA-graph replay {t_graph:.3f} ms")
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=8, max_name_column_width=60))
