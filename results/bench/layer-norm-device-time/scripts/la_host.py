"""Host time of linear attention fwd / fwd+bwd at a tiny shape (device time negligible), and where it goes."""
import cProfile, pstats, time, torch
from triton.testing import do_bench
from mqar.kernels import linear_attention
B, T, H, F, D = 1, 64, 2, 16, 16
for dtype in (torch.bfloat16, torch.float32):
    mk = lambda d: torch.randn(B, T, H, d, device="cuda", dtype=dtype, requires_grad=True)
    q, k, v = mk(F), mk(F), mk(D); go = torch.randn(B, T, H, D, device="cuda", dtype=dtype)
    fwd = lambda: linear_attention(q, k, v, kernel="rebased")
    step = lambda: torch.autograd.grad(fwd(), [q, k, v], go)
    with torch.no_grad():
        nograd = do_bench(fwd, warmup=25, rep=200, return_mode="median")
    print(f"{dtype} {B}x{T}x{H}x{F}x{D}: do_bench fwd (no grad) {nograd:.3f} ms, fwd {do_bench(fwd, warmup=25, rep=200, return_mode='median'):.3f} ms, "
          f"fwd+bwd {do_bench(step, warmup=25, rep=200, return_mode='median'):.3f} ms")
pr = cProfile.Profile(); pr.enable()
for _ in range(300): step()
torch.cuda.synchronize(); pr.disable()
st = pstats.Stats(pr); st.sort_stats("tottime").print_stats(25); st.sort_stats("cumtime").print_stats(30)
