"""The Triton LayerNorm (forward, dx, dweight, dbias) against torch's in fp64, under the Triton interpreter on CPU
(tests/conftest.py sets TRITON_INTERPRET=1 without CUDA), its dispatcher, and the models' LayerNorm module.

GPU dtypes, CUDA-graph capture and a training step with the kernel are in test_layer_norm_gpu.py.
"""

import pytest
import torch
import torch.nn.functional as F

from mqar.errors import UserError
from mqar.kernels.layer_norm import MAX_COLUMNS, layer_norm
from mqar.models import build_model
from mqar.models.mixers import LinearAttention, SoftmaxAttention
from mqar.models.norm import LayerNorm

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TOLERANCE = 1e-4  # max abs error vs fp64, fp32 inputs


def _inputs(rows, columns, seed=0):
    generator = torch.Generator().manual_seed(seed)
    # an offset and a scale, so that centring matters; weight and bias away from their 1, 0 init
    x = 3 * torch.randn(rows, columns, generator=generator, dtype=torch.float64) + 1.5
    weight = 1 + torch.randn(columns, generator=generator, dtype=torch.float64)
    bias = torch.randn(columns, generator=generator, dtype=torch.float64)
    grad = torch.randn(rows, columns, generator=generator, dtype=torch.float64)
    return x, weight, bias, grad


def _results(fn, x, weight, bias, grad):
    """fn's output and the gradients of <output, grad> with respect to x, weight, bias, all in fp64 on the CPU."""
    leaves = [None if t is None else t.detach().requires_grad_() for t in (x, weight, bias)]  # strides kept
    out = fn(*leaves)
    out.backward(grad.to(out.device, out.dtype))
    return [out.detach().double().cpu()] + [None if t is None else t.grad.double().cpu() for t in leaves]


def _reference(x, weight, bias, grad, eps=1e-5):
    return _results(lambda x, w, b: F.layer_norm(x, x.shape[-1:], w, b, eps), x, weight, bias, grad)


def _assert_close(actual, expected):
    for name, a, e in zip(("y", "dx", "dweight", "dbias"), actual, expected):
        assert (a is None) == (e is None), name
        if a is not None:
            error = (a - e).abs().max().item()
            assert error <= TOLERANCE, f"{name}: max abs error {error:.2e}"


def _triton(x, weight, bias):
    return layer_norm(x, weight, bias, 1e-5, impl="triton")


def _fp32(*tensors):
    return [None if t is None else t.to(DEVICE, torch.float32) for t in tensors]


@pytest.mark.parametrize("rows", [1, 7, 300])
@pytest.mark.parametrize("columns", [16, 48, 192, 200, 1024])
def test_triton_layer_norm_matches_torch_in_fp64(rows, columns):
    x, weight, bias, grad = _inputs(rows, columns, seed=rows * columns)
    actual = _results(_triton, *_fp32(x, weight, bias), grad)
    _assert_close(actual, _reference(x, weight, bias, grad))


@pytest.mark.parametrize("affine", ["none", "weight only"])
def test_triton_layer_norm_without_weight_or_bias(affine):
    """ReBased's 'norm' ablation has neither (nn.LayerNorm(elementwise_affine=False)); bias=False has no bias."""
    x, weight, bias, grad = _inputs(37, 192)
    weight = None if affine == "none" else weight
    actual = _results(_triton, *_fp32(x, weight, None), grad)
    _assert_close(actual, _reference(x, weight, None, grad))


@pytest.mark.parametrize("layout", ["every other column", "rows of a wider tensor", "transposed", "column-major"])
def test_non_contiguous_inputs_and_gradients(layout):
    """The kernel reads a row-strided view in place and copies anything else; dx has x's shape either way."""
    generator = torch.Generator().manual_seed(1)
    base = (3 * torch.randn(60, 192, generator=generator) + 1.5).to(DEVICE)
    grad_base = torch.randn(60, 192, generator=generator).to(DEVICE)
    _, weight, bias, _ = _fp32(*_inputs(1, 96))
    if layout == "every other column":
        x, grad = base[:, ::2], grad_base[:, :96].contiguous()
    elif layout == "rows of a wider tensor":  # rows 192 apart, unit column stride
        x, grad = base[:, :96], grad_base[:, 96:]
    elif layout == "transposed":  # [seq, batch, columns] seen as [batch, seq, columns]
        seq_first = lambda t: t[:, :96].contiguous().view(6, 10, 96).transpose(0, 1)  # noqa: E731
        x, grad = seq_first(base), seq_first(grad_base)
    else:
        x, grad = base[:, :96].t().contiguous().t(), grad_base[:, :96].t().contiguous().t()
    assert not x.is_contiguous() and x.dtype == grad.dtype == torch.float32
    actual = _results(_triton, x, weight, bias, grad)
    assert actual[1].shape == x.shape
    _assert_close(actual, _reference(*(t.double().cpu() for t in (x, weight, bias, grad))))


def test_zero_rows_and_leading_dimensions():
    x, weight, bias, grad = _inputs(24, 48)
    actual = _results(_triton, *_fp32(x.view(2, 3, 4, 48), weight, bias), grad.view(2, 3, 4, 48))
    assert actual[0].shape == (2, 3, 4, 48)
    _assert_close(actual, _reference(x.view(2, 3, 4, 48), weight, bias, grad.view(2, 3, 4, 48)))
    empty = _results(_triton, *_fp32(x[:0], weight, bias), grad[:0])
    assert empty[0].shape == (0, 48) and (empty[2] == 0).all() and (empty[3] == 0).all()
    # rows of zero columns: empty as torch's (reshape(-1, 0) raised 'ambiguous' before, on CUDA under impl auto too)
    no_columns = _results(_triton, *_fp32(x[:, :0].reshape(2, 12, 0), None, None), grad[:, :0].reshape(2, 12, 0))
    assert no_columns[0].shape == no_columns[1].shape == (2, 12, 0)


def test_double_backward_is_refused_not_silently_missing_the_kernels_terms():
    # The kernel's dx has no graph. once_differentiable raised only where a later backward reached its error node:
    # autograd.grad(..., x) of the second step never ran it and returned x.sum()'s gradient alone (all ones; torch's
    # F.layer_norm gives the true second derivative), and a loss linear in y gave a dweight with no graph at all. A
    # backward with create_graph=True is refused outright now, naming impl="torch".
    x, weight, bias, grad = _fp32(*_inputs(7, 48))
    x, weight = x.requires_grad_(), weight.requires_grad_()
    for loss, wrt in ((lambda y: y.pow(3).sum() + x.sum(), x), (lambda y: (y * grad).sum(), weight)):
        with pytest.raises(UserError, match="no second derivative .*; use impl='torch' for higher-order") as error:
            torch.autograd.grad(loss(_triton(x, weight, bias)), wrt, create_graph=True)
        assert "\n" not in str(error.value)
    _assert_close(_results(_triton, x, weight, bias, grad), _reference(*_inputs(7, 48)))


def test_backward_is_deterministic():
    x, weight, bias, grad = _fp32(*_inputs(300, 48))
    first, second = (_results(_triton, x, weight, bias, grad) for _ in range(2))
    assert all(torch.equal(a, b) for a, b in zip(first, second))


def test_out_dtype_and_half_inputs_compute_in_fp32():
    """bf16 out from fp32 x (the autocast case), fp32 out from bf16 x: both from the same fp32 arithmetic."""
    x, weight, bias, _ = _fp32(*_inputs(7, 48))
    reference = F.layer_norm(x, (48,), weight, bias)
    for impl in ("torch", "triton"):
        out = layer_norm(x, weight, bias, impl=impl, out_dtype=torch.bfloat16)
        assert out.dtype == torch.bfloat16
        # within one bf16 step of the fp32 result (the interpreter's cast does not round to nearest; the GPU's does)
        torch.testing.assert_close(out.float(), reference, rtol=2**-7, atol=1e-6)
        x_half = x.bfloat16()
        out = layer_norm(x_half, weight, bias, impl=impl, out_dtype=torch.float32)
        torch.testing.assert_close(out, F.layer_norm(x_half.float(), (48,), weight, bias), rtol=1e-6, atol=1e-5)
        assert layer_norm(x_half, weight, bias, impl=impl).dtype == torch.bfloat16


def test_auto_is_torch_on_cpu_and_torch_is_f_layer_norm():
    x, weight, bias, _ = _inputs(7, 48)
    x, weight, bias = (t.float() for t in (x, weight, bias))
    expected = F.layer_norm(x, (48,), weight, bias, 1e-5)
    assert torch.equal(layer_norm(x, weight, bias, impl="torch"), expected)
    if not torch.cuda.is_available():
        assert torch.equal(layer_norm(x, weight, bias), expected)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"impl": "cuda"}, "unknown impl 'cuda'; choose one of auto, triton, torch"),
        ({"weight": torch.ones(47)}, r"weight must have shape \(48,\)"),
        ({"bias": torch.ones(2, 48)}, r"bias must have shape \(48,\)"),
        ({"out_dtype": torch.float64}, "out_dtype must be float32, bfloat16 or float16"),
        ({"x": torch.zeros(3, 48, dtype=torch.float64)}, "x must be float32"),
        ({"x": torch.zeros(())}, "at least one dimension"),
        ({"x": torch.zeros(1, MAX_COLUMNS + 1), "weight": None, "bias": None, "impl": "triton"}, "rows up to 8192"),
        # a CPU weight for a CUDA x was Triton's own error (the meta device stands in for a second device here)
        ({"weight": torch.ones(48, device="meta"), "impl": "triton"}, "weight must be on x's device cpu, got meta"),
        ({"bias": torch.ones(48, device="meta"), "impl": "triton"}, "bias must be on x's device cpu, got meta"),
        ({"weight": torch.ones(48, device="meta"), "impl": "torch"}, "weight must be on x's device cpu, got meta"),
    ],
)
def test_dispatcher_errors_are_one_line_user_errors(kwargs, message):
    arguments = {"x": torch.zeros(3, 48), "weight": torch.ones(48), "bias": torch.zeros(48), **kwargs}
    with pytest.raises(UserError, match=message) as error:
        layer_norm(**arguments)
    assert "\n" not in str(error.value)


def test_layer_norm_module_is_nn_layer_norm_with_an_impl():
    module = LayerNorm(48, impl="triton")
    assert isinstance(module, torch.nn.LayerNorm) and sorted(module.state_dict()) == ["bias", "weight"]
    assert torch.equal(module.weight, torch.ones(48)) and torch.equal(module.bias, torch.zeros(48))
    assert list(LayerNorm(48, elementwise_affine=False).state_dict()) == []
    with pytest.raises(UserError, match="unknown LayerNorm impl 'fast'"):
        LayerNorm(48, impl="fast")
    x = torch.randn(2, 5, 48).to(DEVICE)
    module = module.to(DEVICE)
    torch.testing.assert_close(module(x), F.layer_norm(x, (48,), module.weight, module.bias), rtol=1e-5, atol=1e-5)


def test_module_returns_the_autocast_dtype_only_when_built_for_matmul_inputs():
    x = torch.randn(2, 5, 48).to(DEVICE)
    device_type = torch.device(DEVICE).type
    with torch.autocast(device_type, dtype=torch.bfloat16):
        assert LayerNorm(48, impl="triton", autocast_output=True).to(DEVICE)(x).dtype == torch.bfloat16
        assert LayerNorm(48, impl="triton").to(DEVICE)(x).dtype == torch.float32  # x's dtype, as torch's
        assert LayerNorm(48, impl="torch", autocast_output=True).to(DEVICE)(x).dtype == torch.float32  # torch's rule
    assert LayerNorm(48, impl="triton", autocast_output=True).to(DEVICE)(x).dtype == torch.float32
    assert LayerNorm(48, impl="triton").to(DEVICE)(x.bfloat16()).dtype == torch.bfloat16


@pytest.mark.parametrize("arch", ["rebased", "based", "attention"])
def test_only_norms_that_feed_matmuls_alone_return_the_autocast_dtype(arch):
    """A norm whose output is added to something (a block's second norm, the first norm of the short convolution,
    which adds its input back) keeps the residual's dtype under autocast; the final norm and the first norm of an
    (linear) attention block feed only matmuls and may return bf16 (mqar.models.norm)."""
    model = build_model(arch, 24, seq_len=16, vocab_size=32)
    assert model.final_norm.autocast_output
    kinds = set()
    for block in model.blocks:
        assert not block.norm2.autocast_output
        is_attention = isinstance(block.mixer, (LinearAttention, SoftmaxAttention))
        assert block.norm1.autocast_output == is_attention
        kinds.add(is_attention)
    if arch != "attention":
        assert kinds == {True, False}  # a short-convolution block and a linear-attention block


def _with_torch_layer_norms(model):
    """The same model with every LayerNorm swapped for a plain nn.LayerNorm holding the same parameters."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, LayerNorm):
                plain = torch.nn.LayerNorm(child.normalized_shape, child.eps, child.elementwise_affine)
                plain.load_state_dict(child.state_dict())
                setattr(parent, name, plain)
    return model


@pytest.mark.parametrize("arch", ["rebased", "rebased-norm", "attention"])
@pytest.mark.parametrize("autocast", [False, True])
def test_cpu_models_are_bitwise_unchanged_by_the_module(arch, autocast):
    """On CPU (impl auto) the models' LayerNorm is nn.LayerNorm's forward: same output and gradients, bit for bit,
    under CPU autocast too; and the same state_dict keys as before."""
    torch.manual_seed(0)
    ours = build_model(arch, 24, seq_len=16, vocab_size=32).eval()
    plain = _with_torch_layer_norms(build_model(arch, 24, seq_len=16, vocab_size=32).eval())
    plain.load_state_dict(ours.state_dict())
    assert list(plain.state_dict()) == list(ours.state_dict())
    assert sum(isinstance(m, LayerNorm) for m in ours.modules()) >= 5
    assert not any(isinstance(m, LayerNorm) for m in plain.modules())
    inputs = torch.randint(0, 32, (2, 16), generator=torch.Generator().manual_seed(0))
    labels = torch.where(torch.arange(16) % 4 == 3, inputs, torch.full_like(inputs, -100))
    results = []
    for model in (ours, plain):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            hidden = model(inputs)
            loss = model.loss_and_accuracy(inputs, labels).loss_sum
        loss.backward()
        results.append((hidden, loss, [p.grad for p in model.parameters()]))
    (hidden, loss, grads), (plain_hidden, plain_loss, plain_grads) = results
    assert torch.equal(hidden, plain_hidden) and torch.equal(loss, plain_loss)
    assert all(torch.equal(a, b) for a, b in zip(grads, plain_grads))


def test_kernel_impl_reaches_every_layer_norm():
    for impl in ("auto", "triton", "torch"):
        model = build_model("rebased", 24, seq_len=16, vocab_size=32, kernel_impl=impl)
        norms = [m for m in model.modules() if isinstance(m, LayerNorm)]
        # 2 blocks × 2 + final + ReBased's q and k transforms
        assert len(norms) == 7 and {m.impl for m in norms} == {impl}


@pytest.mark.skipif(torch.cuda.is_available(), reason="the error is for machines without CUDA")
def test_bench_layer_norm_without_cuda_is_a_one_line_error(tmp_path):
    from typer.testing import CliRunner

    from mqar.cli import app

    result = CliRunner().invoke(app, ["bench", "layer-norm", "--quick", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "needs a CUDA GPU" in result.output
