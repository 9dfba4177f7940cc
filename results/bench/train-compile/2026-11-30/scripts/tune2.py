"""Issue 7, GPU time only (CUDA-graph replays, so no Python or autograd overhead is timed):
(1) the LayerNorm backward (torch.zeros of the partials + kernel + partial sums) over the tile (TILE_ELEMENTS),
    programs per SM and warps, at the compiled rebased step's shapes (262,144 rows);
(2) the cross-entropy forward kernel (one program per row of 65,536 x 8,192 bf16 logits) over BLOCK and warps.
Each variant checked against the default's result. Run on a GPU."""
import itertools

import torch
import triton
from triton.testing import do_bench

import mqar.kernels.triton_layer_norm as ln
import mqar.kernels.triton_cross_entropy as ce


def graphed(fn):
    fn()
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return lambda: graph.replay()


ROWS = 512 * 512


class Ctx:  # stands in for autograd's ctx: the kernels' launches alone are captured and timed
    def save_for_backward(self, *tensors):
        self.saved_tensors = tensors


for name, columns, x_dtype, out_dtype in [("norm 128 fp32->bf16", 128, torch.float32, torch.bfloat16),
                                          ("qk 192 bf16->bf16", 192, torch.bfloat16, torch.bfloat16)]:
    torch.manual_seed(0)
    x = torch.randn(ROWS, columns, device="cuda", dtype=x_dtype, requires_grad=True)
    weight = torch.randn(columns, device="cuda", requires_grad=True)
    bias = torch.randn(columns, device="cuda", requires_grad=True)
    dy = torch.randn(ROWS, columns, device="cuda", dtype=out_dtype)
    bytes_moved = x.numel() * (2 * x.element_size() + dy.element_size())
    print(f"{name}: backward memory time at 4.0 TB/s {bytes_moved / 4.0e12 * 1e3:.3f} ms", flush=True)
    expected = None
    for tile, per_sm, warps in [(4096, 8, 4)] + list(itertools.product((2048, 4096, 8192, 16384), (8, 16, 32), (4, 8))):
        ln.TILE_ELEMENTS, ln.BACKWARD_PROGRAMS_PER_SM = tile, per_sm
        ln._tile = (lambda w: lambda c: (max(1, ln.TILE_ELEMENTS // triton.next_power_of_2(c)),
                                         triton.next_power_of_2(c), w))(warps)
        ctx = Ctx()
        ln._LayerNormFunction.forward(ctx, x.detach(), weight.detach(), bias.detach(), 1e-5, out_dtype)
        ctx.x_shape, ctx.x_dtype = x.shape, x.dtype
        out = []
        backward = lambda: out.append(ln._LayerNormFunction.backward(ctx, dy)[:3])  # noqa: E731
        try:
            replay = graphed(backward)
            replay()
            grads = tuple(g.clone() for g in out[-1])
            expected = expected or grads
            err = max(((g.float() - e.float()).norm() / e.float().norm()).item() for g, e in zip(grads, expected))
            fwd = do_bench(graphed(lambda: ln._LayerNormFunction.forward(Ctx(), x.detach(), weight.detach(), bias.detach(), 1e-5, out_dtype)), rep=50)
            bwd = do_bench(replay, rep=50)
            print(f"{name} tile {tile} per_sm {per_sm} warps {warps}: fwd {fwd:.3f} bwd {bwd:.3f} ms, "
                  f"rel diff vs first {err:.1e}", flush=True)
        except Exception as error:
            print(f"{name} tile {tile} per_sm {per_sm} warps {warps}: failed {type(error).__name__}: {str(error)[:100]}")

torch.manual_seed(0)
rows, vocab = 65536, 8192
logits = (4 * torch.randn(rows, vocab, device="cuda")).bfloat16()
targets = torch.randint(vocab, (rows,), device="cuda")
print(f"cross-entropy forward: memory time at 4.0 TB/s {logits.numel() * 2 / 4.0e12 * 1e3:.3f} ms", flush=True)
expected = None
for block, warps in itertools.product((1024, 2048, 4096, 8192), (4, 8, 16)):
    lse, losses = torch.empty(rows, device="cuda"), torch.empty(rows, device="cuda")
    correct = torch.empty(rows, device="cuda", dtype=torch.int32)
    launch = lambda: ce._cross_entropy_forward_kernel[(rows,)](  # noqa: E731
        logits, targets, lse, losses, correct, logits.stride(0), vocab, BLOCK=block, num_warps=warps)
    try:
        launch()
        result = (lse.clone(), correct.clone())
        expected = expected or result
        err = ((result[0] - expected[0]).abs().max().item(), int((result[1] != expected[1]).sum()))
        print(f"CE fwd BLOCK {block} warps {warps}: {do_bench(launch, rep=50):.3f} ms, "
              f"max lse diff {err[0]:.1e}, correct differs {err[1]}", flush=True)
    except Exception as error:
        print(f"CE fwd BLOCK {block} warps {warps}: failed {type(error).__name__}: {str(error)[:100]}")
