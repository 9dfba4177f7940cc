"""Issue 4: fwd / fwd+bwd ms of mqar's kernels under one setting of triton_ops' switches, as JSON lines.
(Session 17's copy of s16-2026-11-30/scripts/time_variants.py: FORM "gram" adds 256×512 D16 and 512×256 D5, and
128×1024 D5; FORM "small": FWD_GRAM's domain at small batch·heads, T = 2048 and 3072.)

usage: python time_variants.py LABEL FORM [NAME=VALUE ...] [bwd=BMxBNxWARPS] [fwd=BMxBNxWARPS] [stages=N]
                                                       [chunked=CxBExWARPS] [scan_warps=W] [chunked_bwd_warps=W]
                                                       [bwd_stages=N] [bwd_maxnreg=N]
  FORM: "parallel" (the parallel form at the short-T shapes, plus two long ones) or "chunked";
  NAME=VALUE sets triton_ops.NAME (ints for HEAD_MAJOR_GRID / CHUNKED_BWD_TWO_MMA / ROWS32 / FWD_TMA /
  CAST_DQ_IN_KERNEL / PREP_ROWS / FWD_GRAM, strings otherwise),
  where the imported tree has it; bwd= / fwd= override the parallel backward's / forward's tiles, stages= the parallel
  form's pipelining depth, chunked= the chunked form's chunk, feature block and warps, scan_warps= / chunked_bwd_warps=
  the chunked form's prefix-state scan's / backward kernel's warps (session 13); bwd_stages= / bwd_maxnreg= the
  parallel backward kernel's own pipelining depth / register cap (_Config fields of branch bwd-offline-s14; a tree
  without them prints skipped_setting).
Every case is checked against the plain-torch quadratic reference in fp32 (tf32 off) on batch 0, head 0: the
relative RMS of o, dq, dk, dv there. Run from the repository root of the tree to time (PYTHONPATH chooses it).
"""
import dataclasses
import json
import sys
import time

import torch
from triton.testing import do_bench

import mqar.kernels.triton_ops as ops
from mqar.kernels.reference import linear_attention_quadratic

PARALLEL = [  # (kernel, dtype, B, T, H, F, D)
    ("rebased", "bf16", 256, 512, 12, 16, 16), ("rebased", "bf16", 64, 2048, 12, 16, 16),
    ("rebased", "fp32", 256, 512, 12, 16, 16), ("rebased", "bf16", 512, 256, 12, 16, 5),
    ("rebased", "bf16", 64, 2048, 12, 16, 42), ("based", "bf16", 256, 512, 12, 16, 16),
    ("rebased", "bf16", 32, 4096, 8, 16, 64), ("rebased", "bf16", 8, 8192, 8, 16, 64),
]
CHUNKED = [
    ("rebased", "bf16", 8, 8192, 8, 16, 64), ("rebased", "bf16", 2, 32768, 8, 16, 64),
    ("rebased", "bf16", 16, 8192, 8, 16, 16), ("rebased", "bf16", 32, 4096, 8, 16, 64),
    ("based", "bf16", 8, 8192, 8, 16, 64), ("rebased", "bf16", 64, 2048, 12, 16, 16),
]
GRAM = [  # FWD_GRAM's edges: T = 1024 and 3072 at D16, fp16 at the target shape
    ("rebased", "bf16", 128, 1024, 12, 16, 16), ("rebased", "bf16", 48, 3072, 12, 16, 16),
    ("rebased", "fp16", 64, 2048, 12, 16, 16), ("rebased", "bf16", 64, 2048, 12, 16, 16),
    ("rebased", "bf16", 256, 512, 12, 16, 16), ("rebased", "bf16", 512, 256, 12, 16, 5),
    ("rebased", "bf16", 128, 1024, 12, 16, 5),
]
SMALL = [  # FWD_GRAM's rule at small B·H: few programs, two more launches
    ("rebased", "bf16", 1, 2048, 8, 16, 16), ("rebased", "bf16", 2, 2048, 12, 16, 16),
    ("rebased", "bf16", 4, 2048, 12, 16, 16), ("rebased", "bf16", 8, 2048, 12, 16, 16),
    ("rebased", "bf16", 16, 2048, 12, 16, 16), ("rebased", "bf16", 32, 2048, 12, 16, 16),
    ("rebased", "bf16", 1, 3072, 8, 16, 16), ("rebased", "bf16", 4, 3072, 12, 16, 16),
    ("rebased", "bf16", 16, 3072, 12, 16, 16), ("rebased", "bf16", 8, 2048, 12, 16, 5),
]
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def rel_rms(actual, expected):
    return ((actual.float() - expected.float()).norm() / expected.float().norm().clamp_min(1e-30)).item()


def main(label, form, *settings):
    torch.backends.cuda.matmul.allow_tf32 = False
    applied = {}
    for setting in settings:
        name, value = setting.split("=", 1)
        if name == "bwd":
            bm, bn, warps = map(int, value.split("x"))
            applied["bwd"] = (bm, bn, warps)
            continue
        if name == "chunked":
            applied["chunked"] = tuple(map(int, value.split("x")))
            continue
        if name == "fwd":
            applied["fwd"] = tuple(map(int, value.split("x")))
            continue
        if name == "scan_warps" and "scan_warps" not in {f.name for f in dataclasses.fields(ops._Config)}:
            # the field existed for calls 4-5 only (main then runs every chunked kernel at num_warps)
            print(json.dumps({"label": label, "skipped_setting": name}), flush=True)
            continue
        if name in ("scan_warps", "chunked_bwd_warps"):  # chunked config fields
            applied[name] = int(value)
            continue
        if name == "stages":
            applied["stages"] = int(value)
            continue
        if name in ("bwd_stages", "bwd_maxnreg"):  # parallel backward only; fields of _Config from bwd-offline-s14
            if name not in {f.name for f in dataclasses.fields(ops._Config)}:
                print(json.dumps({"label": label, "skipped_setting": name}), flush=True)
                continue
            applied[name] = int(value)
            continue
        if not hasattr(ops, name):
            print(json.dumps({"label": label, "skipped_setting": name}), flush=True)
            continue
        integers = ("HEAD_MAJOR_GRID", "CHUNKED_BWD_TWO_MMA", "ROWS32", "FWD_TMA", "CAST_DQ_IN_KERNEL", "PREP_ROWS", "FWD_GRAM")
        setattr(ops, name, int(value) if name in integers else value)
        applied[name] = value
    for kernel, dtype_name, B, T, H, F, D in {"parallel": PARALLEL, "gram": GRAM, "small": SMALL}.get(form, CHUNKED):
        dtype = DTYPES[dtype_name]
        ops.CONFIG_OVERRIDE.clear()
        config = ops._config("parallel", None, dtype, D, F)
        if "bwd" in applied:
            bm, bn, warps = applied["bwd"]
            config = dataclasses.replace(config, bwd_block=bm, bwd_block_n=bn, bwd_warps=warps)
        if "fwd" in applied:
            bm, bn, warps = applied["fwd"]
            config = dataclasses.replace(config, block_m=bm, block_n=bn, num_warps=warps)
        if "stages" in applied:
            config = dataclasses.replace(config, num_stages=applied["stages"])
        for name in ("bwd_stages", "bwd_maxnreg"):
            if name in applied:
                config = dataclasses.replace(config, **{name: applied[name]})
        if applied.keys() & {"bwd", "fwd", "stages", "bwd_stages", "bwd_maxnreg"}:
            ops.CONFIG_OVERRIDE["parallel"] = config
        if "chunked" in applied:
            chunk, block_e, warps = applied["chunked"]
            default = ops._config("chunked", chunk, dtype, D, F)
            ops.CONFIG_OVERRIDE["chunked"] = dataclasses.replace(default, block_e=block_e, num_warps=warps)
        for name, field in (("scan_warps", "scan_warps"), ("chunked_bwd_warps", "bwd_warps")):
            if name in applied and form == "chunked":
                base = ops.CONFIG_OVERRIDE.get("chunked") or ops._config("chunked", None, dtype, D, F)
                ops.CONFIG_OVERRIDE["chunked"] = dataclasses.replace(base, **{field: applied[name]})
        torch.manual_seed(0)
        q, k, v = (torch.randn(B, T, H, d, device="cuda", dtype=dtype, requires_grad=True) for d in (F, F, D))
        g = torch.randn(B, T, H, D, device="cuda", dtype=dtype)
        algorithm = "chunked" if form == "chunked" else "parallel"
        forward = lambda: ops.linear_attention_triton(q, k, v, kernel=kernel, algorithm=algorithm)  # noqa: E731
        both = lambda: (out := forward(), *torch.autograd.grad(out, (q, k, v), g))  # noqa: E731
        row = {"label": label, "settings": applied, "kernel": kernel, "dtype": dtype_name, "shape": [B, T, H, F, D],
               "form": algorithm}
        try:
            result = both()
            leaves = [t[:1, :, :1].detach().float().requires_grad_() for t in (q, k, v)]
            ref = linear_attention_quadratic(*leaves, kernel, 1e-6)
            ref_grads = torch.autograd.grad(ref, leaves, g[:1, :, :1].float())
            row["rel_rms"] = {name: rel_rms(got[:1, :, :1], want)
                              for name, got, want in zip(("o", "dq", "dk", "dv"), result, (ref, *ref_grads))}
            del ref, ref_grads, leaves, result
            row["fwd_ms"] = do_bench(forward, warmup=10, rep=40, return_mode="median")
            row["fwd_bwd_ms"] = do_bench(both, warmup=10, rep=40, return_mode="median")
        except Exception as error:  # one failing case must not lose the others
            row["error"] = f"{type(error).__name__}: {str(error)[:200]}"
        row["t"] = round(time.time() - T0, 1)
        print(json.dumps(row), flush=True)


T0 = time.time()
if __name__ == "__main__":
    main(*sys.argv[1:])
