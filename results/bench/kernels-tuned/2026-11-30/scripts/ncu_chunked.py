"""The kernel launches for ncu: rebased bf16 fwd+bwd, chunked form, at issue 4's 8x8192x8 (F 16, D 64), two
iterations (the second is the one to read). Usage: ncu ... python3 ncu_chunked.py"""
import torch

from mqar.kernels.triton_ops import linear_attention_triton

q, k = [torch.randn(8, 8192, 8, 16, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(2)]
v = torch.randn(8, 8192, 8, 64, device="cuda", dtype=torch.bfloat16, requires_grad=True)
g = torch.randn(8, 8192, 8, 64, device="cuda", dtype=torch.bfloat16)
for _ in range(2):
    torch.autograd.grad(linear_attention_triton(q, k, v, kernel="rebased", algorithm="chunked"), (q, k, v), g)
torch.cuda.synchronize()
