"""LayerNorm benchmark: mqar's Triton LayerNorm beside torch's, forward and forward+backward, on one GPU.

Shapes are the models' (rows = batch × seq_len): d_model 128 at batch 512 × seq_len 512, ReBased's 192-wide q/k
transform and d_model 16 at 512 × 256. Weight and bias are fp32 (the models' master weights). Three precisions:
- fp32: x fp32, output fp32 (the fp32 training path).
- bf16: x bf16 in, bf16 out, as ReBased's q/k transform sees a bf16 projection under bf16 autocast.
- autocast: x fp32 in, bf16 out, as a pre-norm block sees the fp32 residual stream under bf16 autocast.
For bf16 and autocast, torch is what the models ran before this kernel: F.layer_norm under autocast (an fp32 op:
x cast up, fp32 out) and the cast to bf16 that autocast puts before the next matmul; ours is one kernel with
out_dtype=bf16.
Median milliseconds of `triton.testing.do_bench`; the backward gives dx, dweight and dbias. forward+backward is
timed twice: called from Python (do_bench, host launch time included) and replayed as one CUDA graph (device time
alone, as in the CUDA-graph training step). The two part where the host is the bottleneck: one call of ours costs
~0.6 ms of host time on the H200's machine (an autograd.Function, two Triton launches, the partial sums), torch's
~0.06, so at small shapes and at any shape of 16 columns the first timing is the host's. Writes layer-norm.json
(every number, with device and versions) and layer-norm.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from mqar.bench import measure_each
from mqar.errors import UserError

SHAPES = [(512 * 512, 128), (512 * 512, 192), (512 * 256, 16)]  # (rows, columns)
QUICK_SHAPES = [(4096, 128), (1000, 200)]
PRECISIONS = ("fp32", "bf16", "autocast")
# precision -> (x dtype, output dtype)
_DTYPES = {"fp32": (torch.float32, torch.float32), "bf16": (torch.bfloat16, torch.bfloat16),
           "autocast": (torch.float32, torch.bfloat16)}
Method = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _torch(precision: str) -> Method:
    if precision == "fp32":
        return lambda x, w, b: F.layer_norm(x, x.shape[-1:], w, b)

    def autocast(x, w, b):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return F.layer_norm(x, x.shape[-1:], w, b).to(torch.bfloat16)  # the cast autocast adds before a matmul

    return autocast


def _ours(precision: str) -> Method:
    from mqar.kernels.layer_norm import layer_norm

    out_dtype = _DTYPES[precision][1]
    return lambda x, w, b: layer_norm(x, w, b, impl="triton", out_dtype=out_dtype)


def _bench(fn: Method, inputs: list[torch.Tensor], warmup_ms: int, rep_ms: int) -> dict:
    from triton.testing import do_bench

    grad = torch.randn_like(fn(*inputs))

    def step():
        torch.autograd.grad(fn(*inputs), inputs, grad)

    forward = do_bench(lambda: fn(*inputs), warmup=warmup_ms, rep=rep_ms, return_mode="median")
    both = do_bench(step, warmup=warmup_ms, rep=rep_ms, return_mode="median")
    graph = _captured(step)
    both_on_device = do_bench(graph.replay, warmup=warmup_ms, rep=rep_ms, return_mode="median")
    return {"fwd_ms": float(forward), "fwdbwd_ms": float(both), "fwdbwd_graph_ms": float(both_on_device)}


def _captured(step: Callable[[], object]) -> "torch.cuda.CUDAGraph":
    """`step` captured as a CUDA graph, after warm-up calls on a side stream (as capture requires)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph


def bench_shape(rows: int, columns: int, precision: str, warmup_ms: int, rep_ms: int) -> dict:
    """torch and ours at one shape and precision: {method: {fwd_ms, fwdbwd_ms}}, same inputs."""
    torch.manual_seed(0)
    x_dtype = _DTYPES[precision][0]
    x = torch.randn(rows, columns, device="cuda").to(x_dtype).requires_grad_()
    weight = torch.randn(columns, device="cuda", requires_grad=True)  # fp32, as the models' parameters
    bias = torch.randn(columns, device="cuda", requires_grad=True)
    results = {name: _bench(make(precision), [x, weight, bias], warmup_ms, rep_ms)
               for name, make in (("torch", _torch), ("ours", _ours))}
    return {"rows": rows, "columns": columns, "precision": precision, "results": results}


def markdown(payload: dict) -> str:
    env = payload["environment"]
    lines = [
        "# LayerNorm benchmark: mqar's Triton LayerNorm vs torch",
        "",
        f"Device: {env['device']}; torch {env['torch']}, triton {env['triton']}; {env['date_utc']} UTC.",
        f"Command: `{env['command']}`. Median of `triton.testing.do_bench`, milliseconds; backward: dx, dweight, "
        "dbias. bf16: bf16 x in, bf16 out; autocast: fp32 x in, bf16 out (torch for both: F.layer_norm under "
        "autocast, then the cast to bf16 the next matmul would make). fwd+bwd is timed called from Python (host "
        "launch time included: ours costs more host time per call than torch's) and replayed as a CUDA graph "
        "(device time alone, as the CUDA-graph training step runs it).",
        "",
        "| rows × columns | precision | torch fwd | ours fwd | torch fwd+bwd | ours fwd+bwd | torch / ours | "
        "torch fwd+bwd, graph | ours fwd+bwd, graph | torch / ours, graph |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in payload["rows"]:
        torch_ms, ours_ms = row["results"]["torch"], row["results"]["ours"]
        lines.append(
            f"| {row['rows']} × {row['columns']} | {row['precision']} | {torch_ms['fwd_ms']:.3f} | "
            f"{ours_ms['fwd_ms']:.3f} | {torch_ms['fwdbwd_ms']:.3f} | {ours_ms['fwdbwd_ms']:.3f} | "
            f"{torch_ms['fwdbwd_ms'] / ours_ms['fwdbwd_ms']:.2f} | {torch_ms['fwdbwd_graph_ms']:.3f} | "
            f"{ours_ms['fwdbwd_graph_ms']:.3f} | {torch_ms['fwdbwd_graph_ms'] / ours_ms['fwdbwd_graph_ms']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def run(out_dir: Path, quick: bool = False, warmup_ms: int = 25, rep_ms: int = 100) -> dict:
    """Every shape × precision; writes layer-norm.json and .md into out_dir after each; returns the payload."""
    if not torch.cuda.is_available():
        raise UserError("mqar bench layer-norm needs a CUDA GPU (the Triton kernel and torch's run there)")
    from mqar.bench.kernels import environment

    cases = [(rows, columns, precision) for rows, columns in (QUICK_SHAPES if quick else SHAPES)
             for precision in PRECISIONS]
    return measure_each(cases, lambda case: bench_shape(*case, warmup_ms, rep_ms),
                        lambda row: f"{row['rows']} × {row['columns']} {row['precision']}", out_dir, "layer-norm",
                        markdown, environment)
