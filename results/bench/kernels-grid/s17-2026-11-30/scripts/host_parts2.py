"""Session 17, call 9: why a small linear_attention fwd+bwd costs ~780 µs of host time when its forward (~110) and
_backward (~150) called directly cost ~260. µs per call as host_parts.py (1×64×1, bf16, rebased, parallel form).
usage (PYTHONPATH = repository root): python host_parts2.py"""
import cProfile
import pstats

import torch

import mqar.kernels.triton_ops as ops
from mqar.kernels import linear_attention
from host_parts import DEVICE, DTYPE, Identity, per_call_us

B, T, H = 1, 64, 1
q, k, v = (torch.randn(B, T, H, 16, device=DEVICE, dtype=DTYPE, requires_grad=True) for _ in range(3))
g = torch.randn(B, T, H, 16, device=DEVICE, dtype=DTYPE)
qd, kd, vd = (t.detach() for t in (q, k, v))
call = lambda: linear_attention(q, k, v, kernel="rebased", impl="triton", algorithm="parallel")  # noqa: E731
apply = lambda: ops.LinearAttentionFunction.apply(q, k, v, "rebased", 1e-6, "parallel", None)  # noqa: E731


def direct():
    out, out32, den, _ = ops._forward(qd, kd, vd, "rebased", 1e-6, "parallel", None)
    return ops._backward(qd, kd, vd, out32, den, g, "rebased", "parallel", None)


rows = {
    "fwd in grad mode (graph built, no backward)": per_call_us(call),
    "fwd+bwd, autograd.grad": per_call_us(lambda: torch.autograd.grad(call(), (q, k, v), g)),
    "fwd+bwd, Function.apply + autograd.grad": per_call_us(lambda: torch.autograd.grad(apply(), (q, k, v), g)),
    "fwd+bwd, out.backward(g)": per_call_us(lambda: call().backward(g)),
    "_forward + _backward called directly": per_call_us(direct),
    "identity Function fwd+bwd": per_call_us(lambda: torch.autograd.grad(Identity.apply(q, k, v), (q, k, v), g)),
}
torch.autograd.set_multithreading_enabled(False)
rows["fwd+bwd, autograd.grad, autograd multithreading off"] = per_call_us(lambda: torch.autograd.grad(call(), (q, k, v), g))
rows["identity Function fwd+bwd, multithreading off"] = per_call_us(lambda: torch.autograd.grad(Identity.apply(q, k, v), (q, k, v), g))
for name, us in rows.items():
    print(f"{us:8.1f}  {name}", flush=True)
profiler = cProfile.Profile()
profiler.enable()
for _ in range(500):
    torch.autograd.grad(call(), (q, k, v), g)
torch.cuda.synchronize() if torch.cuda.is_available() else None
profiler.disable()
pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
