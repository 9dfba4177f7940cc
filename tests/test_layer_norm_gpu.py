"""The Triton LayerNorm on a CUDA GPU: half precision, the models' shapes, 64-bit offsets, CUDA-graph capture,
and a training step with the kernel against the same step with torch's LayerNorm.

Run with `pytest -m gpu tests/test_layer_norm_gpu.py` on a machine with CUDA (skipped elsewhere). The reference
is torch's LayerNorm in fp64 on the GPU from the same (rounded) inputs; errors are relative RMS
‖out − ref‖ / ‖ref‖: ≤ 5e-3 for bf16 / fp16, ≤ 1e-5 for fp32.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mqar.data import TaskSpec, make_splits
from mqar.kernels.layer_norm import layer_norm
from mqar.models.norm import LayerNorm
from mqar.runs import Recipe, RunConfig
from mqar.train import DeviceSplit, Trainer

pytestmark = pytest.mark.gpu

TOLERANCE = {torch.bfloat16: 5e-3, torch.float16: 5e-3, torch.float32: 1e-5}
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def _rel_rms(actual: torch.Tensor, expected: torch.Tensor) -> float:
    assert torch.isfinite(actual).all(), "non-finite values"
    expected = expected.double()
    return ((actual.double() - expected).norm() / expected.norm()).item()


def _make(rows, columns, dtype, seed=0):
    generator = torch.Generator(device="cuda").manual_seed(seed)
    make = lambda *shape: torch.randn(*shape, device="cuda", generator=generator)  # noqa: E731
    x = (3 * make(rows, columns) + 1.5).to(dtype)
    weight, bias = 1 + make(columns), make(columns)  # fp32 master weights, as under autocast
    return x, weight, bias, make(rows, columns)


def _check(x, weight, bias, grad, out_dtype):
    leaves = [t.detach().requires_grad_() for t in (x, weight, bias)]
    out = layer_norm(*leaves, 1e-5, impl="triton", out_dtype=out_dtype)
    assert out.dtype == out_dtype and out.shape == x.shape
    grad = grad.to(out_dtype)
    out.backward(grad)
    assert leaves[0].grad.dtype == x.dtype and leaves[1].grad.dtype == weight.dtype
    ref_leaves = [t.detach().double().requires_grad_() for t in (x, weight, bias)]
    ref = F.layer_norm(ref_leaves[0], x.shape[-1:], ref_leaves[1], ref_leaves[2], 1e-5)
    ref.backward(grad.double())
    # the tolerance of the coarser of input and output (an fp32 x with a bf16 output is a bf16 result)
    tolerance = max(TOLERANCE[x.dtype], TOLERANCE[out_dtype])
    errors = {"y": _rel_rms(out, ref)}
    for name, leaf, ref_leaf in zip(("dx", "dweight", "dbias"), leaves, ref_leaves):
        errors[name] = _rel_rms(leaf.grad, ref_leaf.grad)
    bad = {name: f"{error:.2e}" for name, error in errors.items() if not error <= tolerance}
    assert not bad, f"relative RMS over {tolerance}: {bad}"


# The models' shapes (d_model 16..512 over batch × seq rows, ReBased's 192-wide q/k) and ragged ones.
SHAPES = [(512 * 512, 128), (512 * 256, 192), (512 * 256, 16), (4099, 48), (1000, 200), (333, 1024), (7, 8192)]


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("rows, columns", SHAPES)
def test_against_fp64_torch(rows, columns, dtype):
    x, weight, bias, grad = _make(rows, columns, DTYPES[dtype])
    _check(x, weight, bias, grad, DTYPES[dtype])


@pytest.mark.parametrize("x_dtype, out_dtype", [("fp32", "bf16"), ("bf16", "fp32"), ("fp32", "fp16")])
def test_out_dtype_other_than_the_input(x_dtype, out_dtype):
    """fp32 residual in, bf16 out: the autocast case."""
    x, weight, bias, grad = _make(512 * 64, 128, DTYPES[x_dtype])
    _check(x, weight, bias, grad, DTYPES[out_dtype])


def test_64_bit_offsets():
    """More than 2**31 elements: the last rows, past the int32 range, are normalised and differentiated right."""
    columns = 128
    rows = 2**31 // columns + 1000
    x = torch.randn(rows, columns, device="cuda", dtype=torch.bfloat16)
    weight, bias = torch.randn(columns, device="cuda"), torch.randn(columns, device="cuda")
    x.requires_grad_()
    out = layer_norm(x, weight, bias, 1e-5, impl="triton")
    grad = torch.randn_like(out)
    out.backward(grad)
    tail = slice(rows - 2000, rows)  # straddles element 2**31
    ref_x = x[tail].detach().double().requires_grad_()
    ref = F.layer_norm(ref_x, (columns,), weight.double(), bias.double(), 1e-5)
    ref.backward(grad[tail].double())
    assert _rel_rms(out[tail], ref) <= 5e-3 and _rel_rms(x.grad[tail], ref_x.grad) <= 5e-3


def test_backward_is_deterministic_on_the_gpu():
    x, weight, bias, grad = _make(512 * 512, 128, torch.bfloat16)
    results = []
    for _ in range(2):
        leaves = [t.detach().requires_grad_() for t in (x, weight, bias)]
        layer_norm(*leaves, impl="triton").backward(grad.bfloat16())
        results.append([t.grad for t in leaves])
    assert all(torch.equal(a, b) for a, b in zip(*results))


def test_cuda_graph_replay_equals_eager():
    """Forward and backward captured in a CUDA graph, replayed on new data: the eager results, bit for bit."""
    x, weight, bias, grad = _make(512 * 64, 192, torch.bfloat16)
    static = [t.clone().requires_grad_() for t in (x, weight, bias)]
    static_grad = grad.bfloat16()

    def step():
        out = layer_norm(*static, impl="triton")
        return (out, *torch.autograd.grad(out, static, static_grad))

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # compile and warm up outside the capture
        for _ in range(2):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = step()
    new_x, _, _, new_grad = _make(512 * 64, 192, torch.bfloat16, seed=1)
    with torch.no_grad():
        static[0].copy_(new_x)
        static_grad.copy_(new_grad)
    graph.replay()
    torch.cuda.synchronize()
    eager = step()
    assert all(torch.equal(a, b) for a, b in zip(captured, eager))


def _losses(arch, precision, layer_norm_impl, cuda_graphs=False):
    """Losses of a few training steps with the Triton linear attention and LayerNorm `layer_norm_impl`."""
    task = TaskSpec(seq_len=64, num_kv_pairs=8, vocab_size=128)
    recipe = Recipe(epochs=1, num_train_examples=256, num_valid_examples=8, num_test_examples=8, batch_size=64,
                    precision=precision)
    config = RunConfig(task=task, arch=arch, d_model=128, lr=3e-3, seed=0, recipe=recipe)
    data = make_splits(task, 0, 256, 1, 1)
    torch.manual_seed(0)
    trainer = Trainer(config, "cuda", "triton", steps_total=6, cuda_graphs=cuda_graphs)
    norms = [module for module in trainer.model.modules() if isinstance(module, LayerNorm)]
    assert norms
    for module in norms:
        module.impl = layer_norm_impl
    for module in trainer.model.modules():  # dropout off: both runs compute the same function
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if hasattr(module, "dropout") and isinstance(module.dropout, float):
            module.dropout = 0.0
    split = DeviceSplit(data.train, "cuda", "train", task.seq_len, task.vocab_size)
    batches = [torch.randperm(256, generator=torch.Generator().manual_seed(i))[:64].cuda() for i in range(6)]
    return [trainer.train_step(split, batch).item() for batch in batches]


@pytest.mark.parametrize("arch", ["rebased", "attention"])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_steps_with_the_kernel_equal_torchs(arch, precision):
    torch_losses = _losses(arch, precision, "torch")
    triton_losses = _losses(arch, precision, "triton")
    assert triton_losses == pytest.approx(torch_losses, rel=1e-3)


def test_graphed_training_steps_with_the_kernel_equal_eager_ones():
    """The whole training step (Triton LayerNorm inside) captured as a CUDA graph: the eager losses."""
    graphed = _losses("rebased", "bf16", "triton", cuda_graphs=True)
    eager = _losses("rebased", "bf16", "triton", cuda_graphs=False)
    assert graphed == pytest.approx(eager, rel=1e-4)


def test_bench_times_each_method_called_and_graph_replayed(tmp_path):
    # The bench's fwd+bwd called from Python was the host's time for ours (~0.6 ms a call against ~0.02 ms of
    # kernels at 4096 × 128): the CUDA-graph replay beside it is the device's.
    from mqar.bench.layer_norm import markdown, run

    payload = run(tmp_path, quick=True, warmup_ms=2, rep_ms=5)
    for row in payload["rows"]:
        for method in ("torch", "ours"):
            times = row["results"][method]
            assert set(times) == {"fwd_ms", "fwdbwd_ms", "fwdbwd_graph_ms"} and all(t > 0 for t in times.values())
    table = (tmp_path / "layer-norm.md").read_text()
    assert table == markdown(payload) and "ours fwd+bwd, graph" in table
