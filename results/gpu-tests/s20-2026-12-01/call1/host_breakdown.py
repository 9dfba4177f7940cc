"""Host time of one eager linear-attention fwd+bwd, piece by piece (tiny shape: the GPU waits on the host)."""
import time, torch, triton
from mqar.kernels import linear_attention, check_inputs
from mqar.kernels import triton_ops as ops
from mqar.kernels.triton_parallel import parallel_fwd_kernel

def per_call(fn, n=300):
    for _ in range(20): fn()
    torch.cuda.synchronize(); t = time.perf_counter()
    for _ in range(n): fn()
    torch.cuda.synchronize(); return (time.perf_counter() - t) / n * 1e6

for dtype in (torch.bfloat16, torch.float32):
    q, k = (torch.randn(2, 64, 2, 16, device="cuda", dtype=dtype, requires_grad=True) for _ in range(2))
    v = torch.randn(2, 64, 2, 16, device="cuda", dtype=dtype, requires_grad=True)
    g = torch.randn(2, 64, 2, 16, device="cuda", dtype=dtype)
    print(dtype)
    print("  fwd (no grad)        %.1f us" % per_call(lambda: linear_attention(q.detach(), k.detach(), v.detach(), "rebased")))
    print("  fwd (grad)           %.1f us" % per_call(lambda: linear_attention(q, k, v, "rebased")))
    print("  fwd+bwd              %.1f us" % per_call(lambda: linear_attention(q, k, v, "rebased").backward(g)))
    print("  check_inputs         %.1f us" % per_call(lambda: check_inputs(q, k, v, "rebased", "auto", 1e-6)))
    print("  torch sdpa fwd+bwd   %.1f us" % per_call(lambda: torch.nn.functional.scaled_dot_product_attention(q.transpose(1,2), k.transpose(1,2), v.transpose(1,2), is_causal=True).backward(g.transpose(1,2))))
    cfg = ops._config("parallel", None, dtype, 16, 16, 64)
    out = torch.empty_like(v); den = torch.empty(2, 2, 64, device="cuda"); out32 = torch.empty(out.shape, device="cuda")
    def launch():
        parallel_fwd_kernel[ops._grid(cfg.head_major, 4, 1)](
            q, k, v, out, den, out32, den, den,
            *q.stride(), *k.stride(), *v.stride(), *out.stride(),
            64, 2, 16, 16, 0.25, 1e-6, 0, 0.25,
            KERNEL=ops.KERNEL_IDS["rebased"], BM=cfg.block_m, BN=cfg.block_n, BF=16, BD=16,
            INTER=False, BE=cfg.block_e, DOT_DTYPE=ops._DOT_DTYPES[dtype], PRECISION=ops._precision(dtype),
            PRECISE=ops._precise(), SAVE_O32=dtype != torch.float32, HEAD_MAJOR=cfg.head_major, ROWS32=True,
            PAD_FD=False, GRAM=False, num_warps=cfg.num_warps, num_stages=cfg.num_stages)
    print("  bare fwd launch      %.1f us" % per_call(launch))
    print("  torch.empty x3       %.1f us" % per_call(lambda: (torch.empty_like(v), torch.empty(2,2,64,device='cuda'), torch.empty(2,64,2,16,device='cuda'))))
    with torch.autograd.profiler.profile(use_cuda=False) as prof:
        for _ in range(20): linear_attention(q, k, v, "rebased").backward(g)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18))
