"""The plain-torch linear attention implementations agree with each other and with the definition."""

import math

import pytest
import torch

from mqar.errors import UserError
from mqar.kernels import (
    linear_attention,
    linear_attention_chunked,
    linear_attention_naive,
    linear_attention_quadratic,
)
from mqar.kernels.reference import feature_map


def random_qkv(batch, seq_len, heads, feature_dim, value_dim, dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, seq_len, heads, feature_dim, generator=generator, dtype=dtype)
    k = torch.randn(batch, seq_len, heads, feature_dim, generator=generator, dtype=dtype)
    v = torch.randn(batch, seq_len, heads, value_dim, generator=generator, dtype=dtype)
    return q, k, v


@pytest.mark.parametrize("kernel", ["based", "rebased"])
@pytest.mark.parametrize(
    "batch, seq_len, heads, feature_dim, value_dim, chunk_size",
    [
        (2, 37, 3, 16, 5, 8),  # ragged: 37 is not a multiple of the chunk
        (1, 1, 1, 4, 4, 64),  # a single token
        (3, 64, 2, 8, 12, 16),  # D != F, whole chunks
        (2, 20, 2, 16, 7, 64),  # one partial chunk only
    ],
)
def test_quadratic_chunked_and_naive_agree_in_fp64(kernel, batch, seq_len, heads, feature_dim, value_dim, chunk_size):
    q, k, v = random_qkv(batch, seq_len, heads, feature_dim, value_dim)
    expected = linear_attention_naive(q, k, v, kernel)
    quadratic = linear_attention_quadratic(q, k, v, kernel)
    chunked = linear_attention_chunked(q, k, v, kernel, chunk_size=chunk_size)
    assert expected.shape == (batch, seq_len, heads, value_dim)
    torch.testing.assert_close(quadratic, expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(chunked, expected, rtol=1e-10, atol=1e-10)


def test_naive_matches_a_hand_computed_case():
    """Two tokens, one head, F = 4: the second output is the similarity-weighted mean of v_0, v_1."""
    q = torch.tensor([[[[1.0, 0, 0, 0]], [[0, 2.0, 0, 0]]]], dtype=torch.float64)
    k = torch.tensor([[[[2.0, 0, 0, 0]], [[0, 1.0, 0, 0]]]], dtype=torch.float64)
    v = torch.tensor([[[[1.0]], [[3.0]]]], dtype=torch.float64)
    # s_11 = q1·k0/√4 = 0, s_11' = q1·k1/2 = 1. based: A = 1 and 2.5; rebased: A = 0 and 1.
    based = linear_attention_naive(q, k, v, "based", eps=0.0)
    rebased = linear_attention_naive(q, k, v, "rebased", eps=0.0)
    assert based[0, 0, 0, 0].item() == pytest.approx(1.0)
    assert based[0, 1, 0, 0].item() == pytest.approx((1 * 1 + 2.5 * 3) / 3.5)
    assert rebased[0, 1, 0, 0].item() == pytest.approx(3.0)


@pytest.mark.parametrize("kernel", ["based", "rebased"])
def test_feature_map_reproduces_the_similarity(kernel):
    q, k, _ = random_qkv(1, 5, 1, 16, 1)
    s = (q * k).sum(-1) / math.sqrt(16)
    expected = 1 + s + s**2 / 2 if kernel == "based" else s**2
    torch.testing.assert_close((feature_map(q, kernel) * feature_map(k, kernel)).sum(-1), expected)


@pytest.mark.parametrize("kernel", ["based", "rebased"])
@pytest.mark.parametrize("algorithm", ["parallel", "chunked"])
def test_dispatch_and_gradients_are_finite(kernel, algorithm):
    q, k, v = random_qkv(2, 70, 2, 16, 6, dtype=torch.float32)
    for tensor in (q, k, v):
        tensor.requires_grad_(True)
    out = linear_attention(q, k, v, kernel=kernel, impl="torch", algorithm=algorithm)
    out.square().sum().backward()
    for tensor in (q, k, v):
        assert tensor.grad is not None and torch.isfinite(tensor.grad).all()
    reference = linear_attention_naive(q.detach().double(), k.detach().double(), v.detach().double(), kernel)
    torch.testing.assert_close(out.detach().double(), reference, rtol=1e-4, atol=1e-4)


def test_half_precision_inputs_are_upcast_and_the_output_keeps_the_dtype():
    q, k, v = random_qkv(1, 300, 2, 16, 8, dtype=torch.bfloat16)
    out = linear_attention(q, k, v, kernel="based", impl="torch")
    assert out.dtype == torch.bfloat16
    reference = linear_attention_naive(q.double(), k.double(), v.double(), "based")
    torch.testing.assert_close(out.double(), reference, rtol=2e-2, atol=2e-2)


def test_auto_uses_torch_on_cpu():
    q, k, v = random_qkv(1, 9, 1, 4, 3)
    torch.testing.assert_close(linear_attention(q, k, v, kernel="rebased"), linear_attention_naive(q, k, v, "rebased"))


@pytest.mark.parametrize(
    "shapes, kwargs, message",
    [
        (((1, 4, 2, 8), (1, 4, 2, 8), (1, 4, 2, 3)), {"kernel": "softmax"}, "unknown linear attention kernel"),
        (((1, 4, 2, 8), (1, 4, 2, 4), (1, 4, 2, 3)), {}, "same shape"),
        (((1, 4, 2, 8), (1, 4, 2, 8), (1, 5, 2, 3)), {}, "batch, seq and heads"),
        (((4, 2, 8), (4, 2, 8), (4, 2, 3)), {}, "4-d"),
        (((1, 4, 2, 8), (1, 4, 2, 8), (1, 4, 2, 3)), {"impl": "cuda"}, "unknown impl"),
        (((1, 4, 2, 8), (1, 4, 2, 8), (1, 4, 2, 3)), {"algorithm": "fast"}, "unknown algorithm"),
        (((1, 4, 2, 0), (1, 4, 2, 0), (1, 4, 2, 3)), {}, "feature dim ≥ 1"),  # was a ZeroDivisionError
        (((1, 4, 2, 0), (1, 4, 2, 0), (1, 4, 2, 3)), {"impl": "triton"}, "feature dim ≥ 1"),
    ],
)
def test_bad_inputs_are_user_errors(shapes, kwargs, message):
    q, k, v = (torch.zeros(shape) for shape in shapes)
    with pytest.raises(UserError, match=message):
        linear_attention(q, k, v, **kwargs)


@pytest.mark.parametrize("impl", ["auto", "torch", "triton"])
def test_inputs_on_different_devices_are_a_user_error(impl):
    # (a CUDA q with a CPU v gave Triton's "Pointer argument cannot be accessed from Triton (cpu tensor?)"); the meta
    # device stands in for a second device here
    q, k, v = torch.zeros(1, 4, 2, 8), torch.zeros(1, 4, 2, 8), torch.zeros(1, 4, 2, 3, device="meta")
    with pytest.raises(UserError, match="q, k, v must be on one device, got cpu, cpu, meta"):
        linear_attention(q, k, v, impl=impl)


@pytest.mark.parametrize(("feature_dim", "value_dim"), [(16, 129), (16, 200), (65, 8)])
def test_heads_wider_than_the_triton_kernels_take_are_refused_there_and_torch_under_auto(
    monkeypatch, feature_dim, value_dim
):
    # fp32 v 200 wide on an H200 was Triton's OutOfResources traceback (shared memory); mqar.kernels'
    # TRITON_MAX_FEATURE_DIM and TRITON_MAX_VALUE_DIM are the widths the GPU suite checks
    from torch._subclasses.fake_tensor import FakeTensorMode

    from mqar.kernels import triton_ops

    q, k, v = random_qkv(1, 3, 2, feature_dim, value_dim, dtype=torch.float32)
    message = (f"the Triton kernels take q, k up to 64 and v up to 128 wide per head, got {feature_dim} and "
               f"{value_dim}; use impl='torch' .* or split the heads")
    for call in (lambda: linear_attention(q, k, v, impl="triton"), lambda: triton_ops.linear_attention_triton(q, k, v)):
        with pytest.raises(UserError, match=message) as error:
            call()
        assert "\n" not in str(error.value)
    # impl="auto" on CUDA tensors (fake ones: only shapes are computed) takes the torch path for them, the Triton
    # path for heads it takes (the widest: 64 and 128)
    taken = []
    monkeypatch.setattr(triton_ops, "linear_attention_triton_unchecked",
                        lambda q, k, v, *args: taken.append(v.shape[-1]) or v)
    with FakeTensorMode():
        for dims in ((feature_dim, value_dim), (64, 128)):
            cuda_qkv = (torch.empty(1, 3, 2, dim, device="cuda") for dim in (dims[0], dims[0], dims[1]))
            assert linear_attention(*cuda_qkv, impl="auto").shape == (1, 3, 2, dims[1])
    assert taken == [128]


def test_the_widest_heads_the_triton_kernels_take_run_there():
    q, k, v = random_qkv(1, 3, 2, 64, 128, dtype=torch.float32)
    torch.testing.assert_close(linear_attention(q, k, v, impl="triton"), linear_attention_naive(q, k, v),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("impl", ["torch", "triton"])
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool, torch.complex64])
def test_non_floating_inputs_are_user_errors(impl, dtype):
    # they were computed in fp32 (complex: imaginary parts dropped) and the output cast back: truncated garbage
    q, k, v = (torch.ones(1, 4, 2, 8), torch.ones(1, 4, 2, 8), torch.ones(1, 4, 2, 3, dtype=dtype))
    with pytest.raises(UserError, match=f"real floating-point tensors, got v {dtype}"):
        linear_attention(q, k, v, impl=impl)
    with pytest.raises(UserError, match="real floating-point"):
        linear_attention(q.to(dtype), k.to(dtype), v.to(dtype), impl=impl)


@pytest.mark.parametrize("impl", ["auto", "torch", "triton"])
@pytest.mark.parametrize("dtypes", [(torch.float32, torch.float32, torch.float64), (torch.bfloat16, torch.float32,
                                                                                   torch.float32)])
def test_inputs_of_different_dtypes_are_a_user_error(impl, dtypes):
    # the output's dtype was v's on the torch path and q's on the Triton path; the models cast q, k to v's dtype
    q, k, v = (torch.ones(1, 4, 2, 8, dtype=dtypes[0]), torch.ones(1, 4, 2, 8, dtype=dtypes[1]),
               torch.ones(1, 4, 2, 3, dtype=dtypes[2]))
    names = ", ".join(str(dtype) for dtype in dtypes)
    with pytest.raises(UserError, match=f"q, k, v must have one dtype, got {names}; cast them to one dtype") as error:
        linear_attention(q, k, v, impl=impl)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("impl", ["torch", "triton"])
@pytest.mark.parametrize("eps", [-1e-6, float("nan"), float("inf"), "1e-6", torch.tensor(1e-6), True])
def test_bad_eps_is_a_user_error(impl, eps):
    # eps = -1e-6 gave outputs of the wrong sign (rebased, small q·k); NaN gave NaN; the Triton path crashed on a
    # tensor or a string inside the interpreter
    q, k, v = torch.full((1, 3, 1, 8), 0.01), torch.full((1, 3, 1, 8), 0.01), torch.ones(1, 3, 1, 2)
    with pytest.raises(UserError, match="eps must be a finite number ≥ 0"):
        linear_attention(q, k, v, kernel="rebased", eps=eps, impl=impl)


def test_eps_zero_and_numpy_floats_are_accepted():
    import numpy as np

    q, k, v = random_qkv(1, 5, 1, 8, 2, dtype=torch.float32)
    torch.testing.assert_close(linear_attention(q, k, v, eps=0), linear_attention_naive(q, k, v, eps=0.0))
    torch.testing.assert_close(linear_attention(q, k, v, eps=np.float32(1e-6)), linear_attention_naive(q, k, v))


def test_missing_triton_kernels_are_a_user_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "mqar.kernels.triton_ops", None)  # makes the import fail
    q, k, v = random_qkv(1, 4, 1, 4, 2, dtype=torch.float32)
    with pytest.raises(UserError, match="Triton kernels are unavailable"):
        linear_attention(q, k, v, impl="triton")
