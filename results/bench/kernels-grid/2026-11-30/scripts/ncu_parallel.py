"""The launches for ncu: rebased bf16 parallel fwd+bwd at B x T x 12 heads, F = D = 16, twice (the first compiles;
profile the second with --launch-skip 2 --launch-count 2). Usage: ncu ... python3 ncu_parallel.py B T"""
import sys

import torch

from mqar.kernels.triton_ops import linear_attention_triton

B, T = map(int, sys.argv[1:3])
q, k, v = (torch.randn(B, T, 12, 16, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
g = torch.randn(B, T, 12, 16, device="cuda", dtype=torch.bfloat16)
for _ in range(2):
    torch.autograd.grad(linear_attention_triton(q, k, v, kernel="rebased", algorithm="parallel"), (q, k, v), g)
torch.cuda.synchronize()
