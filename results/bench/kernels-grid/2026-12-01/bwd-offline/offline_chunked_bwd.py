"""Static SASS of the chunked form's backward launches of parallel_bwd_kernel (INTER), offline for sm_90.

offline_parallel_sass.py handles the parallel form only (its trip-count model is that form's loops). This one
records the chunked backward through triton_ops' own code (kernels-tuned/2026-11-30/scripts/offline_bwd_regs.py's
record_backward: default layout for the value width, its INTER_GRADS / INTER_ACC launches), compiles each
parallel_bwd_kernel launch for sm_90 and prints registers, spills, shared memory, the whole kernel's static
instruction count by class, and each innermost loop's body (the state loops over feature blocks). The diagonal tile
(_bwd_tile) runs once per program, outside the loops: it shows in "outside loops". No dyn/score.

    PYTHONPATH=$PWD python results/bench/kernels-grid/2026-12-01/bwd-offline/offline_chunked_bwd.py \
        [--shape 8,8192,8,16,64 64,2048,12,16,16] [--kernel rebased based]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_SPEC = importlib.util.spec_from_file_location(
    "offline_parallel_sass", os.path.join(_HERE, "..", "..", "2026-11-30", "scripts", "offline_parallel_sass.py"))
ops = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = ops  # its dataclasses look their module up
_SPEC.loader.exec_module(ops)
obr = ops.obr


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--shape", nargs="+", default=["8,8192,8,16,64"])
    p.add_argument("--kernel", nargs="+", default=["rebased"])
    a = p.parse_args()
    print("| kernel | B,T,H,F,D | launch (INTER_GRADS, INTER_ACC) | warps, stages | regs | spill st/ld B | smem B | "
          "total | outside loops | loop bodies | " + " | ".join(ops.CLASS_NAMES) + " |")
    print("|" + "---|" * (11 + len(ops.CLASS_NAMES)))
    for kernel in a.kernel:
        for shape_text in a.shape:
            shape = tuple(int(x) for x in shape_text.split(","))
            for fn, grid, args, kwargs in obr.record_backward(shape, kernel):
                if fn.__name__ != "parallel_bwd_kernel":
                    continue
                compiled = obr.compile_launch(fn, args, kwargs)
                res = obr.resource_usage(compiled)
                code = ops.parse_sass(obr.sass(compiled))
                loops = [lp for lp in ops.innermost(ops.find_loops(code)) if lp[0] != lp[1]]
                in_loop = {i.addr for s, e in loops for i in code if s <= i.addr <= e}
                outside = [i for i in code if i.addr not in in_loop]
                bodies = ", ".join(str(sum(1 for i in code if s <= i.addr <= e)) for s, e in loops)
                h = ops.histogram(code)
                print(f"| {kernel} | {shape_text} | ({kwargs['INTER_GRADS']}, {kwargs['INTER_ACC']}) | "
                      f"{kwargs['num_warps']}, {kwargs['num_stages']} | {res['regs']} | {res['spill_st']}/"
                      f"{res['spill_ld']} | {res['smem']} | {len(code)} | {len(outside)} | {bodies} | "
                      + " | ".join(str(h[c]) for c in ops.CLASS_NAMES) + " |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
