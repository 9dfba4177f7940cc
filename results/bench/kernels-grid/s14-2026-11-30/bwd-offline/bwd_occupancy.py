"""Parallel backward (parallel_bwd_kernel, INTER=False) offline on sm_90: registers, spills, shared memory, the
occupancy they allow on an H100 / H200, loop bodies and dyn/score, for main's launch and candidate launches.

No GPU. The launches are recorded through triton_ops' own `_forward` / `_backward` and compiled with
`triton.compile` for GPUTarget("cuda", 90, 32), as in ../../2026-11-30/scripts/offline_parallel_sass.py, whose
recorder, SASS parser, loop finder, classes and trip-count model (dyn/score) this imports. What this adds:
- launches given as BMxBNxWARPS[sSTAGES][rMAXNREG], e.g. 32x128x2s2r168: the backward's tiles through
  CONFIG_OVERRIDE, num_stages for the backward only (the recorded launch's kwarg, the forward is not compiled),
  and Triton's `maxnreg` backend option (the PTX .maxnreg directive, which ptxas then honours);
- occupancy on an sm_90 SM (65536 registers allocated per warp in units of 256, 228 KB of shared memory with 1 KB
  reserved per program, at most 32 programs and 64 warps): programs per SM as limited by registers, by shared
  memory, and the resulting resident warps.
- the hot loops' per-step counts of a few opcodes the brief asks about (MOV, address arithmetic, converts).

    PYTHONPATH=$PWD python results/bench/kernels-grid/s14-2026-11-30/bwd-offline/bwd_occupancy.py \
        [--shape 64,2048,12,16,16 ...] [--kernel rebased based] [--launch default 32x128x4 ...] [--opcodes]
        [--dump DIR]
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import re
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_SPEC = importlib.util.spec_from_file_location(
    "offline_parallel_sass", os.path.join(_HERE, "..", "..", "2026-11-30", "scripts", "offline_parallel_sass.py"))
ops = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = ops  # its dataclasses look their module up
_SPEC.loader.exec_module(ops)

import torch  # noqa: E402

from mqar.kernels import triton_ops  # noqa: E402

SM_REGS, SM_SMEM, SM_PROGRAMS, SM_WARPS = 65536, 228 * 1024, 32, 64
SMEM_RESERVED = 1024  # per program (sm_80 and later)


def occupancy(regs: int, smem: int, warps: int) -> dict:
    per_warp = -(-regs * 32 // 256) * 256  # registers are allocated per warp in units of 256
    by_regs = (SM_REGS // per_warp) // warps
    by_smem = SM_SMEM // (-(-(smem + SMEM_RESERVED) // 128) * 128)
    programs = min(by_regs, by_smem, SM_PROGRAMS, SM_WARPS // warps)
    return dict(by_regs=by_regs, by_smem=by_smem, programs=programs, warps=programs * warps)


def parse_launch(text: str):
    m = re.fullmatch(r"(\d+)x(\d+)x(\d+)(?:s(\d+))?(?:r(\d+))?", text)
    if not m:
        raise ValueError(f"launch {text!r}: want BMxBNxWARPS[sSTAGES][rMAXNREG]")
    bm, bn, w, s, r = m.groups()
    return int(bm), int(bn), int(w), int(s) if s else None, int(r) if r else None


def backward_launch(shape, kernel, launch: str, dtype=torch.bfloat16):
    """-> (fn, grid, args, kwargs) of the parallel backward kernel for the launch ("default" = main's _config)."""
    cfg, stages, maxnreg = None, None, None
    if launch != "default":
        bm, bn, w, stages, maxnreg = parse_launch(launch)
        base = triton_ops._config("parallel", None, dtype, shape[4], shape[3], shape[1])
        cfg = dataclasses.replace(base, bwd_block=bm, bwd_block_n=bn, bwd_warps=w)
    found = [rec for rec in ops.record(shape, kernel, cfg, dtype) if rec[0].__name__ == "parallel_bwd_kernel"]
    assert len(found) == 1, len(found)
    fn, grid, args, kwargs = found[0]
    kwargs = dict(kwargs)
    if stages is not None:
        kwargs["num_stages"] = stages
    if maxnreg is not None:
        kwargs["maxnreg"] = maxnreg
    return fn, grid, args, kwargs


WATCH = {  # opcode groups counted per hot loop step
    "MOV": r"^(MOV|IMAD\.MOV)",
    "addr": r"^(LEA|IMAD\.WIDE|IADD3|IMAD$|IMAD\.X|VIADD|SHF)",
    "pred": r"^(ISETP|PLOP3|SEL$|FSEL)",
    "cvt": r"^(F2FP|F2F|PRMT)",
    "LDL/STL": r"^(LDL|STL)",
}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--shape", nargs="+", default=["64,2048,12,16,16", "256,512,12,16,16", "512,256,12,16,5"])
    p.add_argument("--kernel", nargs="+", default=["rebased", "based"])
    p.add_argument("--launch", nargs="+", default=["default"])
    p.add_argument("--dump")
    p.add_argument("--opcodes", action="store_true")
    a = p.parse_args()
    print(f"target {ops.obr.TARGET}")
    head = ("| kernel | B,T,H,F,D | launch | BM×BN, warps, stages, maxnreg | EVEN | regs | spill st/ld B | smem B "
            "| programs/SM (by regs, by smem) | warps/SM | causal body | off-diag body (per score) | outside "
            "| off-diag MOV / addr / pred / cvt / LDL+STL | dyn/score |")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for kernel in a.kernel:
        for shape_text in a.shape:
            shape = tuple(int(x) for x in shape_text.split(","))
            for launch in a.launch:
                fn, grid, args, kwargs = backward_launch(shape, kernel, launch)
                r = ops.analyse(fn, grid, args, kwargs, shape, a.dump,
                                f"{kernel}-{shape_text.replace(',', 'x')}-{launch}")
                res = r["res"]
                occ = occupancy(res["regs"], res["smem"], kwargs["num_warps"])
                rows = r["rows"]
                assert len(rows) == 2, len(rows)
                scale = r["per_score_scale"]
                causal, off = (len(row["hot"]) for row in rows)
                watch = []
                for name, pat in WATCH.items():
                    watch.append(sum(1 for i in rows[1]["hot"] if re.match(pat, i.op)))
                print(f"| {kernel} | {shape_text} | {launch} | {kwargs['BM']}×{kwargs['BN']}, {kwargs['num_warps']}, "
                      f"{kwargs['num_stages']}, {kwargs.get('maxnreg')} | {kwargs['EVEN']} | {res['regs']} | "
                      f"{res['spill_st']}/{res['spill_ld']} | {res['smem']} | {occ['programs']} ({occ['by_regs']}, "
                      f"{occ['by_smem']}) | {occ['warps']} | {causal} | {off} ({off * scale:.2f}) | {r['outside']} | "
                      f"{' / '.join(map(str, watch))} | {r['dyn_per_score']:.2f} |", flush=True)
                if a.opcodes:
                    for name, row in zip(("causal", "off-diag"), rows):
                        print(f"    {name}: " + ", ".join(f"{op} {n}" for op, n in
                                                        ops.opcode_counts(row["hot"]).most_common()))


if __name__ == "__main__":
    sys.exit(main())
