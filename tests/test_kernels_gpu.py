"""mqar's Triton linear-attention kernels on a CUDA GPU: half precision, large shapes, 64-bit offsets.

Run with `pytest -m gpu tests/test_kernels_gpu.py` on a machine with CUDA (skipped elsewhere). The reference is
the plain-torch quadratic form in fp64 on the GPU from the same (rounded) inputs; errors are relative RMS
‖out − ref‖ / ‖ref‖: ≤ 5e-3 for bf16 / fp16, ≤ 1e-4 for fp32 (tf32 off in the reference).
"""

from __future__ import annotations

import pytest
import torch

from mqar.kernels.reference import linear_attention_quadratic

pytestmark = pytest.mark.gpu

TOLERANCE = {torch.bfloat16: 5e-3, torch.float16: 5e-3, torch.float32: 1e-4}


@pytest.fixture(autouse=True)
def _no_tf32():
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


@pytest.fixture(autouse=True)
def _values_at_their_own_width(monkeypatch):
    """The kernels at the widths each test gives, masked value columns included (the GPU is where a masking error
    reads out of bounds): the entry point's zero padding of v (triton_ops.PAD_VALUES) is off unless a test turns it
    on."""
    from mqar.kernels import triton_ops

    monkeypatch.setattr(triton_ops, "PAD_VALUES", False)


def _rel_rms(actual: torch.Tensor, expected: torch.Tensor, scale: torch.Tensor | None = None) -> float:
    """‖actual − expected‖ / ‖expected‖ (or / ‖scale‖ where the expected value is ~0 by construction)."""
    assert torch.isfinite(actual).all(), "non-finite values"
    expected = expected.double()
    reference = expected if scale is None else scale.double()
    return ((actual.double() - expected).norm() / reference.norm()).item()


def _check(shape, kernel, algorithm, dtype, seed=0):
    from mqar.kernels.triton_ops import linear_attention_triton

    batch, seq, heads, feature_dim, value_dim = shape
    generator = torch.Generator(device="cuda").manual_seed(seed)
    make = lambda d: torch.randn(batch, seq, heads, d, device="cuda", generator=generator).to(dtype)  # noqa: E731
    q, k, v = make(feature_dim), make(feature_dim), make(value_dim)
    grad = make(value_dim)

    leaves = [t.clone().requires_grad_() for t in (q, k, v)]
    out = linear_attention_triton(*leaves, kernel=kernel, eps=1e-6, algorithm=algorithm)
    assert out.dtype == dtype and out.shape == (batch, seq, heads, value_dim)
    out.backward(grad)

    ref_leaves = [t.double().requires_grad_() for t in (q, k, v)]
    ref = linear_attention_quadratic(*ref_leaves, kernel, 1e-6)
    ref.backward(grad.double())
    tolerance = TOLERANCE[dtype]
    errors = {"o": _rel_rms(out, ref)}
    for name, leaf, ref_leaf in zip(("dq", "dk", "dv"), leaves, ref_leaves):
        # At T = 1, o = v·A/(A + eps): dq and dk are eps-sized, so their error is measured against dv's size.
        scale = ref_leaves[2].grad if seq == 1 and name != "dv" else None
        errors[name] = _rel_rms(leaf.grad, ref_leaf.grad, scale)
    bad = {name: f"{error:.2e}" for name, error in errors.items() if not error <= tolerance}
    assert not bad, f"relative RMS over {tolerance}: {bad}"


SHAPES = [
    (2, 1000, 4, 16, 64),  # ragged T, several blocks and chunks
    (3, 333, 2, 8, 4),  # F = 8 and D = 4 (padded tiles)
    (1, 257, 3, 64, 128),  # the largest F and D
    (4, 1, 2, 16, 16),  # T = 1
    (1, 2100, 1, 32, 24),  # H = 1, F = 32, long enough for many chunks
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}T{}H{}F{}D{}".format(*s))
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32], ids=str)
@pytest.mark.parametrize("kernel", ["based", "rebased"])
@pytest.mark.parametrize("algorithm", ["parallel", "chunked"])
def test_matches_reference(shape, dtype, kernel, algorithm):
    _check(shape, kernel, algorithm, dtype)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}T{}H{}F{}D{}".format(*s))
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32], ids=str)
@pytest.mark.parametrize("kernel", ["based", "rebased"])
@pytest.mark.parametrize(("variant", "two_mma"), [("sum", False), ("split", False), ("sum", True), ("split", True)],
                         ids=["sum", "split", "sum-2mma", "split-2mma"])
def test_chunked_backward_variants_match_reference(monkeypatch, shape, dtype, kernel, variant, two_mma):
    # Each of triton_ops.CHUNKED_BWD's layouts whatever the value width would pick (test_matches_reference takes
    # the default's), with CHUNKED_BWD_TWO_MMA off (tf32x3) and on (two tf32 MMAs for g Sᵀ and v Rᵀ; taken by bf16 /
    # fp16 only: fp32 runs here check that it stays off for them)
    from mqar.kernels import triton_ops

    monkeypatch.setattr(triton_ops, "CHUNKED_BWD", variant)
    monkeypatch.setattr(triton_ops, "CHUNKED_BWD_TWO_MMA", two_mma)
    _check(shape, kernel, "chunked", dtype)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}T{}H{}F{}D{}".format(*s))
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("kernel", ["based", "rebased"])
@pytest.mark.parametrize("variant", ["sum", "split"])
def test_two_mma_state_products_match_tf32x3(monkeypatch, shape, dtype, kernel, variant):
    # CHUNKED_BWD_TWO_MMA against the same layout's tf32x3: dk and dv bit-identical (v Rᵀ: the same two MMAs as
    # tf32x3's non-zero ones, same order, expected for finite values), dq to fp32 rounding ((do Sᵀ)/Z against
    # tf32x3 on g = do/Z), the forward untouched.
    from mqar.kernels import triton_ops
    from mqar.kernels.triton_ops import linear_attention_triton

    monkeypatch.setattr(triton_ops, "CHUNKED_BWD", variant)
    batch, seq, heads, feature_dim, value_dim = shape
    generator = torch.Generator(device="cuda").manual_seed(1)
    make = lambda d: torch.randn(batch, seq, heads, d, device="cuda", generator=generator).to(dtype)  # noqa: E731
    q, k, v, grad = make(feature_dim), make(feature_dim), make(value_dim), make(value_dim)
    results = {}
    for two_mma in (False, True):
        monkeypatch.setattr(triton_ops, "CHUNKED_BWD_TWO_MMA", two_mma)
        leaves = [t.clone().requires_grad_() for t in (q, k, v)]
        out = linear_attention_triton(*leaves, kernel=kernel, eps=1e-6, algorithm="chunked")
        out.backward(grad)
        results[two_mma] = [out] + [t.grad for t in leaves]
    (out0, dq0, dk0, dv0), (out1, dq1, dk1, dv1) = results[False], results[True]
    assert torch.equal(out0, out1)
    assert torch.equal(dk0, dk1) and torch.equal(dv0, dv1)
    # dq is stored in the input dtype: fp32-level differences show only where they flip its last-bit rounding
    assert _rel_rms(dq1, dq0) <= 1e-3


@pytest.mark.parametrize("algorithm", ["parallel", "chunked"])
@pytest.mark.parametrize("pad", [True, False], ids=["padded", "unpadded"])
def test_mqar_training_shape(monkeypatch, algorithm, pad):
    from mqar.kernels import triton_ops

    monkeypatch.setattr(triton_ops, "PAD_VALUES", pad)
    _check((64, 256, 12, 16, 5), "rebased", algorithm, torch.bfloat16)


@pytest.mark.parametrize("shape", [(2, 1000, 4, 16, 42), (3, 333, 2, 8, 4), (1, 2100, 1, 32, 24)],
                         ids=lambda s: "B{}T{}H{}F{}D{}".format(*s))
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32], ids=str)
@pytest.mark.parametrize("kernel", ["based", "rebased"])
@pytest.mark.parametrize("algorithm", ["parallel", "chunked"])
def test_padded_values_match_reference(monkeypatch, shape, dtype, kernel, algorithm):
    # v padded with zero columns to a multiple of 16 and o cut back (triton_ops.PAD_VALUES forced on: its rule pads
    # fp32, and bf16 from 512 tokens)
    from mqar.kernels import triton_ops

    monkeypatch.setattr(triton_ops, "PAD_VALUES", True)
    _check(shape, kernel, algorithm, dtype)


@pytest.mark.parametrize("algorithm,feature_dim", [("parallel", 16), ("chunked", 8)])
def test_offsets_past_two_to_the_31(algorithm, feature_dim):
    # v, o, dv hold 110000·160·1·128 ≈ 2.25e9 elements > 2³¹: element offsets of the last batches need int64.
    # Batches are independent, so the first and last two are checked against the reference on their own.
    # (The chunked form's per-chunk states take (chunks + 1)·F(F+1)/2·D floats per batch·head: F = 8 keeps them ~14 GB.)
    from mqar.kernels.triton_ops import linear_attention_triton

    batch, seq, heads, value_dim = 110_000, 160, 1, 128
    assert batch * seq * heads * value_dim > 2**31
    torch.manual_seed(0)
    dtype = torch.bfloat16
    q = torch.randn(batch, seq, heads, feature_dim, device="cuda", dtype=dtype, requires_grad=True)
    k = torch.randn(batch, seq, heads, feature_dim, device="cuda", dtype=dtype, requires_grad=True)
    v = torch.randn(batch, seq, heads, value_dim, device="cuda", dtype=dtype, requires_grad=True)
    out = linear_attention_triton(q, k, v, kernel="rebased", algorithm=algorithm)
    grad = torch.ones_like(out)
    out.backward(grad)
    for part in (slice(0, 2), slice(batch - 2, batch)):
        ref_leaves = [t[part].detach().double().requires_grad_() for t in (q, k, v)]
        ref = linear_attention_quadratic(*ref_leaves, "rebased", 1e-6)
        ref.backward(grad[part].double())
        assert _rel_rms(out[part], ref) <= 5e-3
        for leaf, ref_leaf in zip((q, k, v), ref_leaves):
            assert _rel_rms(leaf.grad[part], ref_leaf.grad) <= 5e-3


def test_non_contiguous_half_inputs():
    from mqar.kernels.triton_ops import linear_attention_triton

    torch.manual_seed(1)
    base = torch.randn(2, 3, 700, 48, device="cuda", dtype=torch.bfloat16)
    q, k, v = base[..., :16].transpose(1, 2), base[..., 16:32].transpose(1, 2), base[..., 32:].transpose(1, 2)
    for algorithm in ("parallel", "chunked"):
        out = linear_attention_triton(q, k, v, kernel="based", algorithm=algorithm)
        ref = linear_attention_quadratic(q.double(), k.double(), v.double(), "based", 1e-6)
        assert _rel_rms(out, ref) <= 5e-3
