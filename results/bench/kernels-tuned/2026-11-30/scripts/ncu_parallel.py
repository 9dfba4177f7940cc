"""The kernel launches for ncu to profile: rebased bf16 fwd+bwd at issue 4's 256x512x12 and 64x2048x12 (F 16, D 16),
parallel form, after a warm-up (compilation). Usage: ncu ... python3 ncu_parallel.py"""
import torch

from mqar.kernels.triton_ops import linear_attention_triton

for B, T in [(256, 512), (64, 2048)]:
    q, k, v = [torch.randn(B, T, 12, 16, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3)]
    g = torch.randn(B, T, 12, 16, device="cuda", dtype=torch.bfloat16)
    for _ in range(2):
        torch.autograd.grad(linear_attention_triton(q, k, v, kernel="rebased", algorithm="parallel"), (q, k, v), g)
    torch.cuda.synchronize()
