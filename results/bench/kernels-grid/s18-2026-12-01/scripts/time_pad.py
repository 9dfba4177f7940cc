"""Session 18, call 2: triton_ops.PAD_VALUES off / on (v padded with zero columns to a multiple of 16) at value
widths that are not a multiple of 16, fwd and fwd+bwd ms (do_bench median), alternating off/on twice; and the
largest difference of the outputs and gradients between the two."""
import json, os, sys
import torch, triton
from mqar.kernels import triton_ops
from mqar.kernels.triton_ops import linear_attention_triton

OUT = os.environ.get("OUT", "/tmp")
DT = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
SHAPES = [  # kernel, dtype, B, T, H, F, D
    ("rebased", "bf16", 512, 256, 12, 16, 5), ("rebased", "bf16", 512, 256, 12, 16, 10),
    ("rebased", "bf16", 512, 256, 12, 16, 21), ("rebased", "bf16", 512, 256, 12, 16, 42),
    ("rebased", "bf16", 256, 512, 12, 16, 42), ("rebased", "bf16", 128, 1024, 12, 16, 21),
    ("rebased", "bf16", 64, 2048, 12, 16, 10), ("rebased", "bf16", 64, 2048, 12, 16, 21),
    ("rebased", "bf16", 64, 2048, 12, 16, 42), ("rebased", "bf16", 64, 2048, 12, 16, 40),
    ("rebased", "bf16", 8, 8192, 8, 16, 42), ("rebased", "bf16", 2, 32768, 8, 16, 42),
    ("rebased", "bf16", 8, 8192, 8, 16, 21),
    ("based", "bf16", 512, 256, 12, 16, 5), ("based", "bf16", 512, 256, 12, 16, 10),
    ("based", "bf16", 512, 256, 12, 16, 42), ("based", "bf16", 64, 2048, 12, 16, 42),
    ("rebased", "fp32", 256, 512, 12, 16, 42), ("rebased", "fp32", 512, 256, 12, 16, 10),
    ("rebased", "fp16", 64, 2048, 12, 16, 42),
]


def timings(q, k, v, do, kernel):
    def fwd():
        return linear_attention_triton(q, k, v, kernel)
    def both():
        q.grad = k.grad = v.grad = None
        linear_attention_triton(q, k, v, kernel).backward(do)
    return triton.testing.do_bench(fwd, warmup=20, rep=60), triton.testing.do_bench(both, warmup=20, rep=60)


rows = []
for kernel, dt, b, t, h, f, d in SHAPES:
    torch.manual_seed(0)
    q, k = (torch.randn(b, t, h, f, device="cuda", dtype=DT[dt], requires_grad=True) for _ in range(2))
    v = torch.randn(b, t, h, d, device="cuda", dtype=DT[dt], requires_grad=True)
    do = torch.randn(b, t, h, d, device="cuda", dtype=DT[dt])
    results, times = {}, {False: [], True: []}
    for pad in (False, True):
        triton_ops.PAD_VALUES = pad
        q.grad = k.grad = v.grad = None
        o = linear_attention_triton(q, k, v, kernel)
        o.backward(do)
        results[pad] = [o.float(), q.grad.float(), k.grad.float(), v.grad.float()]
    diff = {n: ((a - c).norm() / c.norm()).item() for n, a, c in zip(("o", "dq", "dk", "dv"), results[True], results[False])}
    for pad in (False, True, False, True):
        triton_ops.PAD_VALUES = pad
        times[pad].append(timings(q, k, v, do, kernel))
    row = dict(kernel=kernel, dtype=dt, shape=[b, t, h, f, d],
               off_fwd=[round(x[0], 4) for x in times[False]], on_fwd=[round(x[0], 4) for x in times[True]],
               off_fwdbwd=[round(x[1], 4) for x in times[False]], on_fwdbwd=[round(x[1], 4) for x in times[True]],
               rel_diff=diff)
    rows.append(row)
    print(json.dumps(row), flush=True)
    del q, k, v, do, results
    torch.cuda.empty_cache()
triton_ops.PAD_VALUES = None
with open(f"{OUT}/pad.jsonl", "w") as fh:
    fh.write("".join(json.dumps(r) + "\n" for r in rows))
