"""Session 17, call 10: a small fwd+bwd's host time with autograd's device threads on and off, and how long
_backward itself takes on each thread (wrapped with perf_counter), to split the ~390 µs that the threads add.
usage (PYTHONPATH = repository root and this folder): python host_parts3.py"""
import sys
import threading
import time

import torch

import mqar.kernels.triton_ops as ops
from mqar.kernels import linear_attention
from host_parts import DEVICE, DTYPE, Identity, per_call_us

inner = ops._backward
spent = {"n": 0, "s": 0.0, "threads": set()}


def timed_backward(*args, **kwargs):
    start = time.perf_counter()
    result = inner(*args, **kwargs)
    spent["s"] += time.perf_counter() - start
    spent["n"] += 1
    spent["threads"].add(threading.current_thread().name)
    return result


ops._backward = timed_backward
B, T, H = 1, 64, 1
q, k, v = (torch.randn(B, T, H, 16, device=DEVICE, dtype=DTYPE, requires_grad=True) for _ in range(3))
g = torch.randn(B, T, H, 16, device=DEVICE, dtype=DTYPE)
call = lambda: linear_attention(q, k, v, kernel="rebased", impl="triton", algorithm="parallel")  # noqa: E731
print("switch interval", sys.getswitchinterval())
for threads in (True, False, True, False):
    torch.autograd.set_multithreading_enabled(threads)
    spent.update(n=0, s=0.0, threads=set())
    total = per_call_us(lambda: torch.autograd.grad(call(), (q, k, v), g))
    ident = per_call_us(lambda: torch.autograd.grad(Identity.apply(q, k, v), (q, k, v), g))
    print(f"multithreading {threads!s:5}: fwd+bwd {total:6.1f} µs, _backward {1e6 * spent['s'] / spent['n']:6.1f} µs "
          f"on {sorted(spent['threads'])}, identity fwd+bwd {ident:6.1f} µs", flush=True)
sys.setswitchinterval(1e-5)
torch.autograd.set_multithreading_enabled(True)
spent.update(n=0, s=0.0, threads=set())
total = per_call_us(lambda: torch.autograd.grad(call(), (q, k, v), g))
print(f"switch interval 1e-5, multithreading on: fwd+bwd {total:6.1f} µs, _backward {1e6 * spent['s'] / spent['n']:6.1f}")
