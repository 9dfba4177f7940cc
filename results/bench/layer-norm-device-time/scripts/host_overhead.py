"""Host cost of a Python autograd.Function's backward on CUDA, beside the Triton LayerNorm's and linear attention's,
and device time (CUDA-graph replay) vs do_bench for the kernel bench's shapes."""
import time, torch
from triton.testing import do_bench

class Identity(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x): return x.view_as(x)
    @staticmethod
    def backward(ctx, g): return g

class IdentityOnce(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x): return x.view_as(x)
    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g): return g

def host_ms(f, n=300):
    for _ in range(30): f()
    torch.cuda.synchronize(); t = time.perf_counter()
    for _ in range(n): f()
    h = (time.perf_counter() - t) / n * 1e3; torch.cuda.synchronize(); return h

x = torch.randn(4096, 128, device="cuda", requires_grad=True); g = torch.randn_like(x)
print(f"threads: {torch.get_num_threads()}, switch interval {__import__('sys').getswitchinterval()}")
print(f"mul fwd+bwd (no Python backward): host {host_ms(lambda: torch.autograd.grad(x * 2, [x], g)):.3f} ms")
print(f"Identity Function fwd+bwd: host {host_ms(lambda: torch.autograd.grad(Identity.apply(x) * 1, [x], g)):.3f} ms")
print(f"IdentityOnce Function fwd+bwd: host {host_ms(lambda: torch.autograd.grad(IdentityOnce.apply(x) * 1, [x], g)):.3f} ms")
xc = torch.randn(4096, 128, requires_grad=True); gc = torch.randn_like(xc)
print(f"CPU Identity Function fwd+bwd: host {host_ms(lambda: torch.autograd.grad(Identity.apply(xc) * 1, [xc], gc)):.3f} ms")

from mqar.kernels import linear_attention
for B, T, H, F, D in ((256, 512, 12, 16, 16), (64, 2048, 12, 16, 16), (512, 256, 12, 16, 5), (8, 8192, 8, 16, 64)):
    mk = lambda d: torch.randn(B, T, H, d, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    q, k, v = mk(F), mk(F), mk(D); go = torch.randn(B, T, H, D, device="cuda", dtype=torch.bfloat16)
    step = lambda: torch.autograd.grad(linear_attention(q, k, v, kernel="rebased"), [q, k, v], go)
    bench = do_bench(step, warmup=25, rep=200, return_mode="median")
    h = host_ms(step, 50)
    s = torch.cuda.Stream(); s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3): step()
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph): step()
    replay = do_bench(graph.replay, warmup=25, rep=200, return_mode="median")
    print(f"linear attention rebased bf16 {B}x{T}x{H}x{F}x{D}: do_bench {bench:.3f} ms, CUDA-graph replay {replay:.3f} ms, host per call {h:.3f} ms")
