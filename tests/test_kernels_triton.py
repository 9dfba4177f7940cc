"""mqar's Triton linear-attention kernels against the fp64 plain-torch reference, under the Triton interpreter.

On a machine without CUDA, tests/conftest.py sets TRITON_INTERPRET=1 before this module imports the kernels, so
these run on CPU tensors in fp32 (the interpreter's half-precision dot is wrong; GPU dtypes are tested in
test_kernels_gpu.py). Shapes stay tiny: the interpreter runs each program instance in numpy.
"""

from __future__ import annotations

import zlib

import pytest
import torch

from mqar.kernels.reference import linear_attention_naive, linear_attention_quadratic
from mqar.kernels.triton_ops import choose_algorithm, linear_attention_triton

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TOLERANCE = 1e-4  # max abs error vs fp64, fp32 inputs

# (batch, seq, heads, F, D): ragged T (not a block multiple), T = 1, H = 1, D ≠ F, B > 1, F in {8 (padded to 16),
# 16, 32, 64}.
SHAPES = [
    (2, 37, 2, 16, 8),
    (1, 1, 1, 16, 16),
    (1, 70, 1, 8, 4),
    (3, 16, 2, 16, 24),
    (1, 20, 1, 32, 8),
    (1, 18, 1, 64, 16),
    (1, 33, 1, 9, 8),  # odd F: the chunked kernels' pair numbering has no half-distance row then
]

# (algorithm, triton_ops.CHUNKED_BWD): main's two algorithms and the chunked backward's other layouts
ALGORITHMS_AND_BWD = [("parallel", "sum"), ("chunked", "sum"), ("chunked", "fused"), ("chunked", "split")]
ALGORITHM_IDS = ["parallel", "chunked", "chunked-fused", "chunked-split"]


def _inputs(shape, seed: int):
    batch, seq, heads, feature_dim, value_dim = shape
    generator = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, seq, heads, feature_dim, generator=generator, dtype=torch.float64)
    k = torch.randn(batch, seq, heads, feature_dim, generator=generator, dtype=torch.float64)
    v = torch.randn(batch, seq, heads, value_dim, generator=generator, dtype=torch.float64)
    grad = torch.randn(batch, seq, heads, value_dim, generator=generator, dtype=torch.float64)
    return q, k, v, grad


def _reference_grads(q, k, v, grad, kernel):
    leaves = [t.clone().requires_grad_() for t in (q, k, v)]
    out = linear_attention_quadratic(*leaves, kernel, 1e-6)
    out.backward(grad)
    return out.detach(), [t.grad for t in leaves]


def _triton_grads(q, k, v, grad, kernel, algorithm, **kwargs):
    leaves = [t.to(DEVICE, torch.float32).requires_grad_() for t in (q, k, v)]
    out = linear_attention_triton(*leaves, kernel=kernel, eps=1e-6, algorithm=algorithm, **kwargs)
    out.backward(grad.to(DEVICE, torch.float32))
    return out.detach().double().cpu(), [t.grad.double().cpu() for t in leaves]


def _assert_close(name, actual, expected):
    # Max abs error, in units of the largest reference entry once that passes 1: ReBased rows whose denominator
    # Σ s² is tiny have large, ill-conditioned gradients that fp32 can only match to relative precision.
    error = (actual - expected).abs().max().item()
    scale = max(1.0, expected.abs().max().item())
    assert error <= TOLERANCE * scale, f"{name}: max abs error {error:.3g} > {TOLERANCE} x {scale:.3g}"


def _assert_outputs_close(out, grads, ref_out, ref_grads):
    """o, dq, dk, dv against the reference's, each by _assert_close."""
    _assert_close("o", out, ref_out)
    for name, actual, expected in zip(("dq", "dk", "dv"), grads, ref_grads):
        _assert_close(name, actual, expected)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}T{}H{}F{}D{}".format(*s))
@pytest.mark.parametrize("kernel", ["based", "rebased"])
@pytest.mark.parametrize("algorithm", ["parallel", "chunked"])
def test_forward_and_gradients_match_fp64_reference(shape, kernel, algorithm):
    q, k, v, grad = _inputs(shape, seed=zlib.crc32(repr((shape, kernel, algorithm)).encode()))
    ref_out, ref_grads = _reference_grads(q, k, v, grad, kernel)
    # chunk_size 16: a T of 37 or 70 crosses several chunks, so the inter-chunk state is exercised.
    out, grads = _triton_grads(q, k, v, grad, kernel, algorithm, chunk_size=16)
    _assert_outputs_close(out, grads, ref_out, ref_grads)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}T{}H{}F{}D{}".format(*s))
@pytest.mark.parametrize("kernel", ["based", "rebased"])
@pytest.mark.parametrize("variant", ["fused", "split"])
def test_chunked_backward_variants_match_fp64_reference(monkeypatch, shape, kernel, variant):
    # triton_ops.CHUNKED_BWD: the state loops started from the diagonal tile's gradients in one launch ("fused"),
    # or in two launches over the same chunks, dq then dk and dv ("split"). Main's "sum" is the chunked case of
    # the test above. The forward is untouched; the launches are the ones the variant names.
    from mqar.kernels import triton_ops

    monkeypatch.setattr(triton_ops, "CHUNKED_BWD", variant)
    launches = _record_backward_launches(monkeypatch)
    q, k, v, grad = _inputs(shape, seed=zlib.crc32(repr((shape, kernel, variant)).encode()))
    ref_out, ref_grads = _reference_grads(q, k, v, grad, kernel)
    out, grads = _triton_grads(q, k, v, grad, kernel, "chunked", chunk_size=16)
    _assert_outputs_close(out, grads, ref_out, ref_grads)
    grid = (shape[0] * shape[2], -(-shape[1] // 16))
    expected = {"fused": [("all", True)], "split": [("dq", True), ("dkdv", True)]}[variant]
    assert launches == [(grid, *launch) for launch in expected]


def _record_backward_launches(monkeypatch) -> list:
    """Make triton_ops' backward launches append (grid, INTER_GRADS, INTER_ACC) to the returned list."""
    from mqar.kernels import triton_ops

    launches = []
    real_kernel = triton_ops.parallel_bwd_kernel

    class RecordingKernel:
        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                launches.append((grid, kwargs["INTER_GRADS"], kwargs["INTER_ACC"]))
                return real_kernel[grid](*args, **kwargs)

            return launch

    monkeypatch.setattr(triton_ops, "parallel_bwd_kernel", RecordingKernel())
    return launches


def test_naive_reference_agrees_with_quadratic_reference():
    # Guards the reference the kernels are held to: two independent formulations of the definition.
    q, k, v, _ = _inputs((1, 9, 2, 8, 4), seed=3)
    for kernel in ("based", "rebased"):
        torch.testing.assert_close(linear_attention_naive(q, k, v, kernel), linear_attention_quadratic(q, k, v, kernel))


@pytest.mark.parametrize(("algorithm", "chunked_bwd"), ALGORITHMS_AND_BWD, ids=ALGORITHM_IDS)
def test_non_contiguous_inputs(monkeypatch, algorithm, chunked_bwd):
    # q, k, v as strided views of [B, H, T, dim] tensors and a sliced feature axis: no copy, same result.
    from mqar.kernels import triton_ops

    monkeypatch.setattr(triton_ops, "CHUNKED_BWD", chunked_bwd)
    generator = torch.Generator().manual_seed(7)
    base = torch.randn(2, 2, 21, 24, generator=generator, dtype=torch.float64)
    q = base[..., :16].transpose(1, 2)  # [B, T, H, 16], strided
    k = base[..., 8:].transpose(1, 2)
    v = torch.randn(2, 2, 21, 10, generator=generator, dtype=torch.float64).transpose(1, 2)[..., ::2]  # D = 5
    grad = torch.randn(2, 21, 2, 5, generator=generator, dtype=torch.float64)
    assert not q.is_contiguous() and not v.is_contiguous()
    ref_out, ref_grads = _reference_grads(q, k, v, grad, "rebased")
    out, grads = _triton_grads(q, k, v, grad, "rebased", algorithm, chunk_size=16)
    _assert_outputs_close(out, grads, ref_out, ref_grads)


@pytest.mark.parametrize(
    "blocks",
    [(16, 16, None, None), (16, 32, None, None), (32, 16, None, None), (32, 32, 16, None), (32, 32, 16, 32)],
    ids=["16x16", "BM16BN32", "BM32BN16", "bwd16", "bwd16x32"],
)
def test_parallel_backward_over_many_blocks(monkeypatch, blocks):
    # The backward's dq sums over key-block programs through fp32 atomics: T = 100 gives 4 to 7 blocks each way, a
    # ragged last block, and (BM ≠ BN) diagonals that cut through tiles; bwd16: its own backward tile size, and
    # bwd16x32 its own key-block size too (query steps of 16 rows, key blocks of 32).
    from mqar.kernels import triton_ops

    block_m, block_n, bwd_block, bwd_block_n = blocks
    config = triton_ops._Config(block_m, block_n, 128, 4, 1, bwd_block=bwd_block, bwd_block_n=bwd_block_n)
    monkeypatch.setitem(triton_ops.CONFIG_OVERRIDE, "parallel", config)
    grids = []  # the backward's launch grids: (batch·heads, key blocks)
    real_kernel = triton_ops.parallel_bwd_kernel

    class RecordingKernel:
        def __getitem__(self, grid):
            grids.append(grid)
            return real_kernel[grid]

    monkeypatch.setattr(triton_ops, "parallel_bwd_kernel", RecordingKernel())
    for kernel in ("based", "rebased"):
        q, k, v, grad = _inputs((2, 100, 2, 16, 8), seed=zlib.crc32(repr((blocks, kernel)).encode()))
        ref_out, ref_grads = _reference_grads(q, k, v, grad, kernel)
        out, grads = _triton_grads(q, k, v, grad, kernel, "parallel")
        _assert_outputs_close(out, grads, ref_out, ref_grads)
    key_rows_per_program = bwd_block_n or bwd_block or block_n
    assert grids == [(4, -(-100 // key_rows_per_program))] * 2


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
def test_state_scan_builds_the_same_prefix_states_as_chunk_states_and_cumsum(monkeypatch, backward):
    # D = 40: two blocks of SCAN_BLOCK_D = 32 value columns, the second ragged; T = 45 with chunks of 16: a partial
    # last chunk; based: the singles and the constant features too.
    from mqar.kernels import triton_ops

    q, k, v, grad = _inputs((2, 45, 2, 16, 40), seed=13)
    x, y = [t.to(DEVICE, torch.float32) for t in ((q, grad) if backward else (k, v))]
    denominator = delta = None
    if backward:
        denominator = torch.rand(2, 2, 45, device=DEVICE) + 0.5  # [B, H, T]
        delta = torch.randn(2, 2, 45, device=DEVICE)
    config = triton_ops._config("chunked", 16, torch.float32, 40, 16)
    monkeypatch.setattr(triton_ops, "SCAN_BLOCK_D", 32)
    results = {}
    for scan in (True, False):
        monkeypatch.setattr(triton_ops, "STATE_SCAN", scan)
        results[scan] = triton_ops._prefix_states(x, y, denominator, delta, "based", config, 64, "ieee",
                                                  backward=backward)
    (scan_state, scan_vec, blocks), (sum_state, sum_vec, blocks_again) = results[True], results[False]
    assert blocks == blocks_again
    torch.testing.assert_close(scan_state, sum_state, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(scan_vec, sum_vec, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scan", [True, False], ids=["scan", "cumsum"])
def test_chunked_gradients_with_either_way_of_building_the_states(monkeypatch, scan):
    from mqar.kernels import triton_ops

    monkeypatch.setattr(triton_ops, "STATE_SCAN", scan)
    q, k, v, grad = _inputs((1, 50, 2, 16, 40), seed=14)
    ref_out, ref_grads = _reference_grads(q, k, v, grad, "based")
    out, grads = _triton_grads(q, k, v, grad, "based", "chunked", chunk_size=16)
    _assert_outputs_close(out, grads, ref_out, ref_grads)


@pytest.mark.parametrize("keep", [True, False], ids=["kept", "recomputed"])
def test_chunked_backward_reuses_the_forward_prefix_states_when_kept(monkeypatch, keep):
    # Kept, the backward builds only its own (query-side) states: one state pass instead of two; either way the
    # gradients match the reference.
    from mqar.kernels import triton_ops

    monkeypatch.setattr(triton_ops, "KEEP_CHUNK_STATES", keep)
    passes = []
    real_prefix_states = triton_ops._prefix_states
    monkeypatch.setattr(triton_ops, "_prefix_states",
                        lambda *args, backward: passes.append(backward) or real_prefix_states(*args, backward=backward))
    q, k, v, grad = _inputs((2, 45, 2, 16, 8), seed=12)
    ref_out, ref_grads = _reference_grads(q, k, v, grad, "rebased")
    out, grads = _triton_grads(q, k, v, grad, "rebased", "chunked", chunk_size=16)
    assert passes == ([False, True] if keep else [False, False, True])
    _assert_outputs_close(out, grads, ref_out, ref_grads)


def test_chunked_and_parallel_agree_at_default_chunk_size():
    # The default chunk (32 in the interpreter) with a T that leaves a partial last chunk.
    q, k, v, _ = _inputs((1, 45, 1, 16, 16), seed=11)
    args = [t.to(DEVICE, torch.float32) for t in (q, k, v)]
    parallel = linear_attention_triton(*args, kernel="based", algorithm="parallel")
    chunked = linear_attention_triton(*args, kernel="based", algorithm="chunked")
    _assert_close("o", chunked.double().cpu(), parallel.double().cpu())


def test_auto_algorithm_and_dtype_follow_q():
    assert choose_algorithm(512, 256, 12, 16, 8, torch.bfloat16) == "parallel"
    assert choose_algorithm(2, 32768, 8, 16, 64, torch.bfloat16) == "chunked"
    # the measured crossover (choose_algorithm's table): parallel at 2k, chunked at 8k, and later for larger F
    assert choose_algorithm(64, 2048, 12, 16, 16, torch.bfloat16) == "parallel"
    assert choose_algorithm(8, 8192, 8, 16, 64, torch.bfloat16) == "chunked"
    assert choose_algorithm(8, 8192, 8, 32, 64, torch.bfloat16) == "parallel"
    assert choose_algorithm(1, 1, 1, 16, 16, torch.float32) == "parallel"
    q, k, v, _ = _inputs((1, 5, 1, 16, 4), seed=5)
    out = linear_attention_triton(q, k, v, kernel="based")  # fp64 in: computed in fp32, returned as fp64
    assert out.dtype == torch.float64 and out.shape == (1, 5, 1, 4)
    _assert_close("o", out, linear_attention_quadratic(q, k, v, "based"))


def test_dispatch_through_public_function():
    from mqar.kernels import linear_attention

    q, k, v, _ = _inputs((1, 17, 2, 16, 8), seed=9)
    args = [t.to(DEVICE, torch.float32) for t in (q, k, v)]
    out = linear_attention(*args, kernel="rebased", impl="triton", algorithm="chunked")
    _assert_close("o", out.double().cpu(), linear_attention_quadratic(q, k, v, "rebased"))


@pytest.mark.parametrize("bad", [{"kernel": "cosine"}, {"algorithm": "fast"}, {"chunk_size": 24}])
def test_rejects_bad_arguments(bad):
    q, k, v, _ = _inputs((1, 4, 1, 16, 4), seed=1)
    with pytest.raises(ValueError):
        linear_attention_triton(q.float(), k.float(), v.float(), **bad)


@pytest.fixture
def bf16_dot_in_interpreter(monkeypatch):
    """Make the interpreter's tl.dot read bf16 operands as numbers (it multiplies their raw uint16 storage).

    Only the dot is emulated: casts and stores stay the interpreter's own, which round bf16 by truncation, so
    errors here are ~2x what the GPU's round-to-nearest gives. GPU runs remain the real check of this path.
    """
    import numpy as np
    import triton.language as tl
    from triton.runtime import interpreter

    from mqar.kernels import triton_ops

    if not triton_ops.INTERPRETER:
        pytest.skip("emulates bf16 only under the Triton interpreter")
    original = interpreter.InterpreterBuilder.create_dot

    def as_fp32(handle):
        if handle.dtype.scalar != tl.bfloat16:
            return handle
        data = interpreter._convert_float(handle.data, tl.bfloat16, tl.float32, None).view(np.float32)
        return interpreter.TensorHandle(data, tl.float32)

    def create_dot(self, a, b, d, input_precision, max_num_imprecise_acc):
        return original(self, as_fp32(a), as_fp32(b), d, input_precision, max_num_imprecise_acc)

    monkeypatch.setattr(interpreter.InterpreterBuilder, "create_dot", create_dot)


@pytest.mark.parametrize("shape", [(2, 50, 1, 8, 4), (4, 1, 2, 16, 16)], ids=["B2T50F8D4", "T1"])
@pytest.mark.parametrize(("algorithm", "chunked_bwd"), ALGORITHMS_AND_BWD, ids=ALGORITHM_IDS)
def test_bf16_path_keeps_gradients_accurate(monkeypatch, bf16_dot_in_interpreter, shape, algorithm, chunked_bwd):
    # dA = g·v − δ cancels: rounding g to bf16 before it let dq and dk drift far past the outputs' own rounding,
    # so the backward forms it from exact do·v products (and the forward splits A into hi + lo bf16 halves).
    # Here every error must stay at the level of rounding the outputs to bf16, and at T = 1 (dq, dk ≈ 0 by
    # construction) far below dv's size.
    from mqar.kernels import triton_ops
    from mqar.kernels.triton_ops import LinearAttentionFunction

    monkeypatch.setattr(triton_ops, "CHUNKED_BWD", chunked_bwd)
    q, k, v, grad = (t.to(torch.bfloat16) for t in _inputs(shape, seed=21))
    leaves = [t.clone().requires_grad_() for t in (q, k, v)]
    out = LinearAttentionFunction.apply(*leaves, "rebased", 1e-6, algorithm, 16)
    out.backward(grad)
    ref_out, ref_grads = _reference_grads(q.double(), k.double(), v.double(), grad.double(), "rebased")

    def rel_rms(actual, expected, scale=None):
        return ((actual.double() - expected).norm() / (expected if scale is None else scale).norm()).item()

    assert rel_rms(out, ref_out) <= 1e-2
    for name, leaf, expected in zip(("dq", "dk", "dv"), leaves, ref_grads):
        if shape[1] == 1 and name != "dv":
            assert rel_rms(leaf.grad, expected, ref_grads[2]) <= 1e-3, name
        else:
            assert rel_rms(leaf.grad, expected) <= 1e-2, name


def test_chunked_form_rejects_a_config_whose_key_block_is_not_the_chunk(monkeypatch):
    # The chunked kernels take BM == BN == chunk for granted (each backward program owns its chunk's dq rows and
    # reads the state slot of chunk pid_n); a CONFIG_OVERRIDE with BN ≠ BM gave wrong gradients without a word.
    from mqar.kernels import triton_ops

    monkeypatch.setitem(triton_ops.CONFIG_OVERRIDE, "chunked", triton_ops._Config(16, 32, 128, 4, 1))
    q, k, v, _ = _inputs((1, 40, 1, 16, 8), seed=31)
    with pytest.raises(ValueError, match="block_n"):
        linear_attention_triton(q.float(), k.float(), v.float(), kernel="rebased", algorithm="chunked")


def test_chunked_backward_rejects_kept_states_built_under_another_config(monkeypatch):
    # The kept forward states' layout ([B·H, chunks + 1, E_PAD, D]) follows the forward's config; the backward
    # addressed them with its own chunk and feature block, so a CONFIG_OVERRIDE changed in between read the wrong
    # rows (past the buffer's end on a GPU) instead of failing.
    from mqar.kernels import triton_ops

    monkeypatch.setattr(triton_ops, "KEEP_CHUNK_STATES", True)
    monkeypatch.setitem(triton_ops.CONFIG_OVERRIDE, "chunked", triton_ops._Config(16, 16, 128, 4, 1))
    q, k, v, grad = _inputs((1, 40, 1, 16, 8), seed=32)
    leaves = [t.float().requires_grad_() for t in (q, k, v)]
    out = linear_attention_triton(*leaves, kernel="rebased", algorithm="chunked")
    monkeypatch.setitem(triton_ops.CONFIG_OVERRIDE, "chunked", triton_ops._Config(16, 16, 16, 4, 1))
    with pytest.raises(RuntimeError, match="forward"):
        out.backward(grad.float())
