"""Session 17, call 8: where the host time of one small linear_attention call goes (rebased, bf16, parallel form).
Each line: µs per call, 2000 calls back to back, synchronised only at the end; at 1×64×1 the GPU work is ~2-7 µs a
call, so this is the host's time. Parts are timed alone by calling them with the arguments main's own path makes.
usage (PYTHONPATH = repository root): python host_parts.py"""
import os
import time

import torch
import torch.nn.functional as F

import mqar.kernels.triton_ops as ops
from mqar.kernels import linear_attention
from mqar.kernels.triton_compat import on_device_of


N = int(os.environ.get("HOST_PARTS_N", "2000"))
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # cpu: a dry run under TRITON_INTERPRET=1
SYNC = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)


def per_call_us(fn, n=None):
    n = n or N
    for _ in range(20):
        fn()
    SYNC()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    SYNC()
    return 1e6 * (time.perf_counter() - start) / n


class Identity(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v):
        return v.clone()

    @staticmethod
    def backward(ctx, g):
        return g, g, g


def captured_launches(fn, names):
    """The (kernel, grid, args, kwargs) main's path makes for fn(), for the kernels named."""
    launches, saved = [], {}
    for name in names:
        kernel = getattr(ops, name)
        saved[name] = kernel

        class Recorder:
            def __init__(self, kernel):
                self.kernel = kernel

            def __getitem__(self, grid, kernel=kernel):
                def launch(*args, **kwargs):
                    launches.append((kernel, grid, args, kwargs))
                    return kernel[grid](*args, **kwargs)
                return launch
        setattr(ops, name, Recorder(kernel))
    try:
        fn()
    finally:
        for name, kernel in saved.items():
            setattr(ops, name, kernel)
    return launches


DTYPE = torch.bfloat16 if torch.cuda.is_available() else torch.float32

if __name__ == "__main__":
    B, T, H = 1, 64, 1
    q, k, v = (torch.randn(B, T, H, 16, device=DEVICE, dtype=DTYPE, requires_grad=True) for _ in range(3))
    g = torch.randn(B, T, H, 16, device=DEVICE, dtype=DTYPE)
    qs, ks, vs = (t.detach().transpose(1, 2).contiguous().requires_grad_() for t in (q, k, v))
    qd, kd, vd = (t.detach() for t in (q, k, v))
    rows = {}
    with torch.no_grad():
        rows["sdpa fwd"] = per_call_us(lambda: F.scaled_dot_product_attention(qs, ks, vs, is_causal=True))
        rows["linear_attention fwd (no grad)"] = per_call_us(lambda: linear_attention(qd, kd, vd, kernel="rebased", impl="triton", algorithm="parallel"))
        rows["linear_attention_triton fwd (no grad)"] = per_call_us(lambda: ops.linear_attention_triton(qd, kd, vd, kernel="rebased", algorithm="parallel"))
        rows["_forward"] = per_call_us(lambda: ops._forward(qd, kd, vd, "rebased", 1e-6, "parallel", None))
        fwd = captured_launches(lambda: ops._forward(qd, kd, vd, "rebased", 1e-6, "parallel", None), ["parallel_fwd_kernel"])
        kernel, grid, args, kwargs = fwd[0]
        rows["parallel_fwd_kernel launch alone"] = per_call_us(lambda: kernel[grid](*args, **kwargs))
        rows["torch.empty"] = per_call_us(lambda: torch.empty(B, T, H, 16, dtype=torch.bfloat16, device=DEVICE))
        rows["torch.zeros"] = per_call_us(lambda: torch.zeros(B, T, H, 16, dtype=torch.float32, device=DEVICE))
        cm = lambda: (c := on_device_of(qd), c.__enter__(), c.__exit__(None, None, None))  # noqa: E731
        rows["on_device_of with"] = per_call_us(cm)
        rows["_config"] = per_call_us(lambda: ops._config("parallel", None, torch.bfloat16, 16, 16, T))
        rows["_rows32 (4 tensors)"] = per_call_us(lambda: ops._rows32(T, 64, qd, kd, vd, qd))
        rows["check_inputs"] = per_call_us(lambda: ops.check_inputs(qd, kd, vd, "rebased", "parallel"))
        rows["choose_algorithm"] = per_call_us(lambda: ops.choose_algorithm(B, T, H, 16, 16, torch.bfloat16))
    rows["sdpa fwd+bwd"] = per_call_us(lambda: torch.autograd.grad(F.scaled_dot_product_attention(qs, ks, vs, is_causal=True), (qs, ks, vs), g.transpose(1, 2)))
    rows["identity Function fwd+bwd (autograd floor)"] = per_call_us(lambda: torch.autograd.grad(Identity.apply(q, k, v), (q, k, v), g))
    rows["linear_attention fwd+bwd"] = per_call_us(lambda: torch.autograd.grad(linear_attention(q, k, v, kernel="rebased", impl="triton", algorithm="parallel"), (q, k, v), g))
    out, out32, den, _ = ops._forward(qd, kd, vd, "rebased", 1e-6, "parallel", None)
    rows["_backward"] = per_call_us(lambda: ops._backward(qd, kd, vd, out32, den, g, "rebased", "parallel", None))
    bwd = captured_launches(lambda: ops._backward(qd, kd, vd, out32, den, g, "rebased", "parallel", None),
                            ["bwd_prep_kernel", "parallel_bwd_kernel"])
    for kernel, grid, args, kwargs in bwd:
        rows[f"{kernel.fn.__name__ if hasattr(kernel, 'fn') else kernel.__name__} launch alone"] = per_call_us(lambda: kernel[grid](*args, **kwargs))
    rows["dq fp32 -> bf16 cast"] = per_call_us(lambda: out32.to(torch.bfloat16))
    for name, us in rows.items():
        print(f"{us:8.1f}  {name}", flush=True)
