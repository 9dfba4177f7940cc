"""Session 18: would splitting v's columns into power-of-two parts (D = 42 as 32 + 10, each padded alone: 32 + 16
= 48 columns instead of 64) beat one call padded to 64? Exact: o = N/Z is column-wise and the gradients of q, k
sum over the parts (dA = g·v - δ is linear in the columns). fwd and fwd+bwd ms, do_bench median, bf16."""
import json, os, sys
import torch, triton
from mqar.kernels.triton_ops import linear_attention_triton

OUT = os.environ.get("OUT", "/tmp")

def split_call(parts):
    def run(q, k, v, kernel):
        outs, start = [], 0
        for width in parts:
            outs.append(linear_attention_triton(q, k, v[..., start:start + width], kernel))
            start += width
        return torch.cat(outs, dim=-1)
    return run

def plain(q, k, v, kernel):
    return linear_attention_triton(q, k, v, kernel)

def bench(fn, q, k, v, kernel, rep=60):
    fwd = triton.testing.do_bench(lambda: fn(q, k, v, kernel), warmup=20, rep=rep)
    do = torch.randn(*v.shape, device="cuda", dtype=v.dtype)
    def step():
        q.grad = k.grad = v.grad = None
        fn(q, k, v, kernel).backward(do)
    both = triton.testing.do_bench(step, warmup=20, rep=rep)
    return fwd, both

SHAPES = [(64, 2048, 12, 16, 16), (64, 2048, 12, 16, 32), (64, 2048, 12, 16, 42), (64, 2048, 12, 16, 48),
          (64, 2048, 12, 16, 64), (512, 256, 12, 16, 42), (512, 256, 12, 16, 21), (128, 1024, 12, 16, 42),
          (8, 8192, 8, 16, 42), (8, 8192, 8, 16, 48)]
SPLITS = {42: [(32, 10), (16, 16, 10)], 48: [(32, 16)], 21: [(16, 5)], 64: [(32, 32)]}
rows = []
for kernel in ("rebased", "based"):
    for (b, t, h, f, d) in SHAPES:
        torch.manual_seed(0)
        q, k = (torch.randn(b, t, h, f, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(2))
        v = torch.randn(b, t, h, d, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        variants = {"plain": plain, **{"split" + "+".join(map(str, p)): split_call(p) for p in SPLITS.get(d, [])}}
        ref = None
        for name, fn in variants.items():
            with torch.no_grad():
                o = fn(q, k, v, kernel).float()
            if ref is None:
                ref = o
            diff = ((o - ref).norm() / ref.norm()).item()
            fwd, both = bench(fn, q, k, v, kernel)
            row = dict(kernel=kernel, shape=[b, t, h, f, d], variant=name, fwd_ms=round(fwd, 4), fwdbwd_ms=round(both, 4), rel_diff=diff)
            rows.append(row)
            print(json.dumps(row), flush=True)
        del q, k, v
        torch.cuda.empty_cache()
with open(f"{OUT}/dsplit.jsonl", "w") as fh:
    fh.write("".join(json.dumps(r) + "\n" for r in rows))
