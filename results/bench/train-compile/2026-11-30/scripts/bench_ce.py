"""Issue 7: the cross-entropy of the LM head before (gradient written in the forward, scaled by torch in the backward)
and after (log-sum-exp kept, gradient written in the backward with the scale folded in). bf16 logits 65,536 x 8,192
(batch 512 x 128 queries), loss scaled by 1/rows as the trainer does; fwd and fwd+bwd ms. Run on a GPU."""
import sys

import torch
from triton.testing import do_bench

sys.path.insert(0, sys.argv[1])  # the folder holding old_cross_entropy.py
import old_cross_entropy  # noqa: E402

from mqar.kernels.triton_cross_entropy import cross_entropy_triton  # noqa: E402

torch.manual_seed(0)
rows, vocab = 65536, 8192
logits = (4 * torch.randn(rows, vocab, device="cuda")).bfloat16().requires_grad_()
targets = torch.randint(vocab, (rows,), device="cuda")
grads = {}
for name, fn in (("old", old_cross_entropy.cross_entropy_triton), ("new", cross_entropy_triton)):
    fwd = lambda: fn(logits, targets)  # noqa: E731
    both = lambda: torch.autograd.grad(fn(logits, targets)[0] / rows, logits)  # noqa: E731
    grads[name] = both()[0].float()
    loss = fwd()[0].item()
    print(f"{name}: loss {loss:.6f} fwd {do_bench(fwd, rep=100):.3f} ms fwd+bwd {do_bench(both, rep=100):.3f} ms", flush=True)
print(f"gradient rel diff new vs old {((grads['new'] - grads['old']).norm() / grads['old'].norm()).item():.2e}")
