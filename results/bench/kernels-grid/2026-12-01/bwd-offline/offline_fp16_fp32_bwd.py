"""Registers, spills and loop bodies of the parallel backward for fp16 and fp32 inputs at 64x2048x12 F=D=16 (offline
sm_90; offline_parallel_sass.py's analyse() assumes two innermost loops, which the fp32 kernel's SASS does not show).
Run from the repository root: PYTHONPATH=$PWD python results/bench/kernels-grid/2026-12-01/bwd-offline/offline_fp16_fp32_bwd.py
Loops: [causal, off-diag] body sizes (static instructions)."""
import sys, importlib.util, torch
spec=importlib.util.spec_from_file_location("ops", "results/bench/kernels-grid/2026-11-30/scripts/offline_parallel_sass.py")
ops=importlib.util.module_from_spec(spec); sys.modules["ops"]=ops; spec.loader.exec_module(ops)
for dtype in (torch.float16, torch.float32):
    for kernel in ("rebased","based"):
        for fn,grid,args,kw in ops.record((64,2048,12,16,16),kernel,dtype=dtype):
            if fn.__name__=="parallel_bwd_kernel":
                c=ops.obr.compile_launch(fn,args,kw); res=ops.obr.resource_usage(c); code=ops.parse_sass(ops.obr.sass(c))
                loops=[l for l in ops.innermost(ops.find_loops(code)) if l[0]!=l[1]]
                print(dtype, kernel, "BM/BN/w", kw["BM"], kw["BN"], kw["num_warps"], "regs", res["regs"], "spill", res["spill_st"], res["spill_ld"], "total", len(code), "loops", [sum(1 for i in code if s<=i.addr<=e) for s,e in loops], flush=True)
