"""Where the eager host time of linear attention goes: each layer timed on its own, plus cProfile of the Python."""
import cProfile, pstats, io, time, torch
from mqar.kernels import linear_attention
from mqar.kernels import triton_ops as ops

def per_call(fn, n=300):
    for _ in range(20): fn()
    torch.cuda.synchronize(); t = time.perf_counter()
    for _ in range(n): fn()
    torch.cuda.synchronize(); return (time.perf_counter() - t) / n * 1e6

dtype = torch.bfloat16
q, k, v = (torch.randn(2, 64, 2, 16, device="cuda", dtype=dtype, requires_grad=True) for _ in range(3))
g = torch.randn(2, 64, 2, 16, device="cuda", dtype=dtype)
qd, kd, vd = q.detach(), k.detach(), v.detach()
out, out32, den, kept = ops._forward(qd, kd, vd, "rebased", 1e-6, "parallel", None)
rows = []
rows.append(("linear_attention fwd (no grad)", per_call(lambda: linear_attention(qd, kd, vd, "rebased"))))
rows.append(("triton_unchecked fwd (no grad)", per_call(lambda: ops.linear_attention_triton_unchecked(qd, kd, vd, "rebased", 1e-6, "parallel"))))
rows.append(("Function.apply fwd (no grad)", per_call(lambda: ops.LinearAttentionFunction.apply(qd, kd, vd, "rebased", 1e-6, "parallel", None))))
rows.append(("Function.apply fwd (grad)", per_call(lambda: ops.LinearAttentionFunction.apply(q, k, v, "rebased", 1e-6, "parallel", None))))
rows.append(("_forward direct", per_call(lambda: ops._forward(qd, kd, vd, "rebased", 1e-6, "parallel", None))))
rows.append(("_backward direct", per_call(lambda: ops._backward(qd, kd, vd, out32, den, g, "rebased", "parallel", None))))
rows.append(("apply fwd + .backward", per_call(lambda: ops.LinearAttentionFunction.apply(q, k, v, "rebased", 1e-6, "parallel", None).backward(g))))
rows.append(("apply fwd + autograd.grad", per_call(lambda: torch.autograd.grad(ops.LinearAttentionFunction.apply(q, k, v, "rebased", 1e-6, "parallel", None), (q, k, v), g))))
rows.append(("torch.cuda.device ctx", per_call(lambda: torch.cuda.device(q.device).__enter__())))
x = torch.randn(2, 64, 2, 16, device="cuda", requires_grad=True)
rows.append(("torch x*2 fwd+bwd (autograd floor)", per_call(lambda: (x * 2).backward(g.float()))))
for name, us in rows: print(f"{name:40s} {us:8.1f} us")

for label, fn in (("_forward", lambda: ops._forward(qd, kd, vd, "rebased", 1e-6, "parallel", None)),
                  ("_backward", lambda: ops._backward(qd, kd, vd, out32, den, g, "rebased", "parallel", None))):
    pr = cProfile.Profile(); pr.enable()
    for _ in range(200): fn()
    pr.disable(); torch.cuda.synchronize()
    s = io.StringIO(); pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(22); print(label); print(s.getvalue()[:6000])
