"""mqar's Triton linear-attention kernels against the fp64 plain-torch reference, under the Triton interpreter.

On a machine without CUDA, tests/conftest.py sets TRITON_INTERPRET=1 before this module imports the kernels, so
these run on CPU tensors in fp32 (the interpreter's half-precision dot is wrong; GPU dtypes are tested in
test_kernels_gpu.py). Shapes stay tiny: the interpreter runs each program instance in numpy.
"""

from __future__ import annotations

import zlib

import pytest
import torch

import triton
import triton.language as tl

from mqar.errors import UserError
from mqar.kernels.reference import linear_attention_naive, linear_attention_quadratic
from mqar.kernels.triton_chunked import _tf32_split
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

@pytest.fixture(autouse=True)
def _values_at_their_own_width(monkeypatch):
    """These tests are of the kernels at the widths they give, masked value columns and strided v included, so the
    entry point's zero padding of v (triton_ops.PAD_VALUES) is off unless a test turns it on."""
    from mqar.kernels import triton_ops

    monkeypatch.setattr(triton_ops, "PAD_VALUES", False)


# (algorithm, triton_ops.CHUNKED_BWD): the two algorithms, the chunked form with each backward layout
ALGORITHMS_AND_BWD = [("parallel", None), ("chunked", "sum"), ("chunked", "split")]
ALGORITHM_IDS = ["parallel", "chunked-sum", "chunked-split"]


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


def _fp32_leaf(t):
    """t in fp32 on DEVICE with t's own strides, as a leaf: `.to(torch.float32)` would hand a sliced (non-dense)
    view over as a contiguous copy, and the kernels would never see the strides a test gives them."""
    leaf = torch.empty_strided(t.shape, t.stride(), dtype=torch.float32, device=DEVICE).copy_(t)
    assert leaf.stride() == t.stride()
    return leaf.requires_grad_()


def _triton_grads(q, k, v, grad, kernel, algorithm, **kwargs):
    leaves = [_fp32_leaf(t) for t in (q, k, v)]
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


# (triton_ops.CHUNKED_BWD, two-MMA products in the state loops): each chunked backward layout whatever the value
# width would pick (the test above takes the default's), with tf32x3 (fp32 inputs' path) and with the two-MMA
# products (half inputs' path)
CHUNKED_VARIANTS = [("sum", False), ("split", False), ("sum", True), ("split", True)]
CHUNKED_VARIANT_IDS = ["sum", "split", "sum-2mma", "split-2mma"]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}T{}H{}F{}D{}".format(*s))
@pytest.mark.parametrize("kernel", ["based", "rebased"])
@pytest.mark.parametrize(("variant", "two_mma"), CHUNKED_VARIANTS, ids=CHUNKED_VARIANT_IDS)
def test_chunked_backward_variants_match_fp64_reference(monkeypatch, shape, kernel, variant, two_mma):
    # triton_ops.CHUNKED_BWD: the state loops summed from zero in one launch ("sum"), or started from the diagonal
    # tile's gradients in two launches over the same chunks, dq then dk and dv ("split"). The forward is
    # untouched; the launches are the ones the variant names.
    # two_mma: g Sᵀ and v Rᵀ as two tf32 MMAs on the input-exact do and v (the kernel's TWO_MMA, which the code
    # turns on for half inputs only). These fp32 inputs are rounded to bf16 values first, so v and do are exact
    # in tf32 as they would be for bf16 inputs, and TWO_MMA is forced on for them.
    from mqar.kernels import triton_ops

    monkeypatch.setattr(triton_ops, "CHUNKED_BWD", variant)
    if two_mma:
        monkeypatch.setattr(triton_ops, "_two_mma", lambda dtype: True)
    launches = _record_launches(monkeypatch, "parallel_bwd_kernel")
    key = (shape, kernel, variant) + ((True,) if two_mma else ())  # the variants' own seeds as before
    q, k, v, grad = _inputs(shape, seed=zlib.crc32(repr(key).encode()))
    if two_mma:
        q, k, v, grad = (t.to(torch.bfloat16).double() for t in (q, k, v, grad))
    ref_out, ref_grads = _reference_grads(q, k, v, grad, kernel)
    out, grads = _triton_grads(q, k, v, grad, kernel, "chunked", chunk_size=16)
    _assert_outputs_close(out, grads, ref_out, ref_grads)
    grid = triton_ops._grid(True, shape[0] * shape[2], -(-shape[1] // 16))  # the interpreter's config: head-major
    expected = {"sum": [("all", False)], "split": [("dq", True), ("dkdv", True)]}[variant]
    assert _backward_layouts(launches) == [(grid, *launch, two_mma) for launch in expected]


def test_two_mma_products_are_for_half_inputs_only(monkeypatch):
    # fp32 inputs' v and do are not exact in tf32: with the switch on they keep tf32x3 (TWO_MMA False); bf16 and
    # fp16 take the two MMAs, and only when the switch is on.
    from mqar.kernels import triton_ops

    assert triton_ops.CHUNKED_BWD_TWO_MMA is True  # measured faster on the GPU: the default
    for switch in (False, True):
        monkeypatch.setattr(triton_ops, "CHUNKED_BWD_TWO_MMA", switch)
        assert triton_ops._two_mma(torch.float32) is False
        assert triton_ops._two_mma(torch.bfloat16) is switch
        assert triton_ops._two_mma(torch.float16) is switch
    launches = _record_launches(monkeypatch, "parallel_bwd_kernel")
    q, k, v, grad = _inputs((1, 40, 1, 16, 8), seed=5)
    _triton_grads(q, k, v, grad, "rebased", "chunked", chunk_size=16)
    # D = 8: the split layout (values up to 32 wide), tf32x3 for these fp32 inputs
    grid = triton_ops._grid(True, 1, 3)
    assert _backward_layouts(launches) == [(grid, "dq", True, False), (grid, "dkdv", True, False)]


@triton.jit
def _tf32_split_kernel(X, HI, LO, N: tl.constexpr):
    offs = tl.arange(0, N)
    hi, lo = _tf32_split(tl.load(X + offs))
    tl.store(HI + offs, hi)
    tl.store(LO + offs, lo)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # inf − inf, NaN
def test_tf32_split_rounds_like_cvt_rna_and_is_exact():
    # _tf32_split's hi is x rounded to 10 mantissa bits, to nearest with ties away from zero (PTX cvt.rna.tf32.f32,
    # what Triton's tf32x3 splits with), and hi + lo = x exactly: ties both ways, carries into the exponent,
    # subnormals, signed zeros, infinities and NaN, and random values over a wide range. (0x7F7FF000 rounds up to
    # inf, as rounding to nearest to 10 bits must; that the GPU's cvt.rna does the same is not checked: a state
    # entry near 3.4e38 is out of any range these kernels meet.)
    import numpy as np

    special = np.array([0x3F801000, 0xBF801000, 0x3F803000, 0x3F800FFF, 0x3F801001, 0x3FFFF000, 0x7F7FF000,
                        0x00001000, 0x00000FFF, 0x00401000, 0x80000000, 0x00000000, 0x7F800000, 0xFF800000,
                        0x7FC00000, 0x7F800001], dtype=np.uint32)
    generator = np.random.default_rng(0)
    rand = (generator.standard_normal(1024 - special.size) * np.exp2(generator.integers(-60, 60, 1024 - special.size)))
    x = torch.from_numpy(np.concatenate([special.view(np.float32), rand.astype(np.float32)]))
    hi, lo = torch.empty_like(x), torch.empty_like(x)
    _tf32_split_kernel[(1,)](x, hi, lo, N=x.numel())

    bits = x.numpy().view(np.uint32)
    magnitude = bits & 0x7FFFFFFF
    expected = ((magnitude + 0x1000) & 0x7FFFE000) | (bits & 0x80000000)  # round half away from zero
    finite = np.isfinite(x.numpy())
    assert (hi.numpy().view(np.uint32)[finite] == expected[finite]).all()
    assert (hi.numpy().view(np.uint32) & 0x1FFF)[finite].max() == 0
    exact = torch.from_numpy(finite) & torch.isfinite(hi)  # 0x7F7FF000 rounds past tf32's largest value, to inf
    assert (hi.double() + lo.double() == x.double())[exact].all() and exact.sum() == exact.numel() - 5
    assert hi[12].item() == float("inf") and hi[13].item() == float("-inf")
    assert torch.isnan(hi[14]) and torch.isnan(hi[15])  # a NaN with a low payload too (no carry into an inf)
    assert hi.numpy().view(np.uint32)[0] == 0x3F802000 and hi.numpy().view(np.uint32)[1] == 0xBF802000  # ties
    assert hi.numpy().view(np.uint32)[5] == 0x40000000  # carry into the exponent


def _record_launches(monkeypatch, *names: str) -> list:
    """Make each named triton_ops kernel append (its name, the grid, the launch's keyword arguments) to the returned
    list whenever triton_ops launches it (kernel[grid](*args, **kwargs)), then launch it as before."""
    from mqar.kernels import triton_ops

    launches = []

    class RecordingKernel:
        def __init__(self, name):
            self.name, self.kernel = name, getattr(triton_ops, name)

        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                launches.append((self.name, grid, kwargs))
                return self.kernel[grid](*args, **kwargs)

            return launch

    for name in names:
        monkeypatch.setattr(triton_ops, name, RecordingKernel(name))
    return launches


def _backward_layouts(launches) -> list:
    """(grid, INTER_GRADS, INTER_ACC, TWO_MMA) of each recorded backward launch."""
    return [(grid, kw["INTER_GRADS"], kw["INTER_ACC"], kw["TWO_MMA"]) for _, grid, kw in launches]


def test_naive_reference_agrees_with_quadratic_reference():
    # Guards the reference the kernels are held to: two independent formulations of the definition.
    q, k, v, _ = _inputs((1, 9, 2, 8, 4), seed=3)
    for kernel in ("based", "rebased"):
        torch.testing.assert_close(linear_attention_naive(q, k, v, kernel), linear_attention_quadratic(q, k, v, kernel))


@pytest.mark.parametrize(("algorithm", "chunked_bwd"), ALGORITHMS_AND_BWD, ids=ALGORITHM_IDS)
def test_non_contiguous_inputs(monkeypatch, algorithm, chunked_bwd):
    # q, k, v as strided views of [B, H, T, dim] tensors and a sliced feature axis, and a strided output gradient
    # (bwd_prep_kernel reads it through its strides): no copy, same result.
    from mqar.kernels import triton_ops

    monkeypatch.setattr(triton_ops, "CHUNKED_BWD", chunked_bwd)
    generator = torch.Generator().manual_seed(7)
    base = torch.randn(2, 2, 21, 24, generator=generator, dtype=torch.float64)
    q = base[..., :16].transpose(1, 2)  # [B, T, H, 16], strided
    k = base[..., 8:].transpose(1, 2)
    v = torch.randn(2, 2, 21, 10, generator=generator, dtype=torch.float64).transpose(1, 2)[..., ::2]  # D = 5
    grad = torch.randn(2, 2, 21, 5, generator=generator, dtype=torch.float64).transpose(1, 2)
    assert not q.is_contiguous() and not v.is_contiguous() and not grad.is_contiguous()
    ref_out, ref_grads = _reference_grads(q, k, v, grad, "rebased")
    out, grads = _triton_grads(q, k, v, grad, "rebased", algorithm, chunk_size=16)
    _assert_outputs_close(out, grads, ref_out, ref_grads)


@pytest.mark.parametrize("rows32", [True, False], ids=["rows32", "rows64"])
@pytest.mark.parametrize(("algorithm", "chunked_bwd"), ALGORITHMS_AND_BWD, ids=ALGORITHM_IDS)
def test_row_offsets_in_int32_or_int64(monkeypatch, algorithm, chunked_bwd, rows32):
    # The parallel kernels' row offsets within a head: int32 where triton_ops._rows32 finds that they fit (always, at
    # test sizes), int64 when forced (ROWS32 False, the path for a head whose rows pass 2³¹): same results, on
    # strided inputs (row strides ≠ H·dim).
    from types import SimpleNamespace

    from mqar.kernels import triton_ops

    monkeypatch.setattr(triton_ops, "CHUNKED_BWD", chunked_bwd)
    monkeypatch.setattr(triton_ops, "ROWS32", rows32)
    launches = _record_launches(monkeypatch, "parallel_fwd_kernel", "parallel_bwd_kernel")
    generator = torch.Generator().manual_seed(11)
    base = torch.randn(2, 2, 37, 40, generator=generator, dtype=torch.float64)
    q, k, v = base[..., :16].transpose(1, 2), base[..., 16:32].transpose(1, 2), base[..., 32:].transpose(1, 2)
    grad = torch.randn(2, 37, 2, 8, generator=generator, dtype=torch.float64)
    for kernel in ("based", "rebased"):
        ref_out, ref_grads = _reference_grads(q, k, v, grad, kernel)
        out, grads = _triton_grads(q, k, v, grad, kernel, algorithm, chunk_size=16)
        _assert_outputs_close(out, grads, ref_out, ref_grads)
    assert launches and all(kw["ROWS32"] is rows32 for _, _, kw in launches)
    # a row stride whose last padded row passes 2³¹ within one head keeps int64 offsets
    strides = (0, 2**24, 16, 1)
    fits = SimpleNamespace(shape=(1, 100, 1, 16), stride=lambda dim=None: strides if dim is None else strides[dim])
    too_far = SimpleNamespace(shape=(1, 200, 1, 16), stride=fits.stride)
    assert triton_ops._rows32(100, 16, fits) is rows32
    assert triton_ops._rows32(100, 256, fits) is False  # rows up to 255 addressed: 255 · 2²⁴ > 2³¹
    assert triton_ops._rows32(200, 16, fits, too_far) is False


@pytest.mark.parametrize(
    "layout", ["contiguous", "strided", "unaligned-stride", "unaligned-base"],
)
def test_forward_and_backward_on_views(layout):
    # q, k, v as views of one storage, the same results as contiguous inputs. Strided: slices of [B, H, T, 40]
    # storage seen as [B, T, H, ·]; unaligned-stride: rows of 25 floats (100 B); unaligned-base: views starting 4 B
    # into 16-byte aligned storage. Both algorithms, both kernels.
    generator = torch.Generator().manual_seed(13)
    # v: D = 5 (padded to 16) in the strided layout
    value_dim = 5 if layout == "strided" else 8
    width = {"contiguous": 24, "strided": 40, "unaligned-stride": 25, "unaligned-base": 44}[layout]
    start = 1 if layout == "unaligned-base" else 0
    base = torch.randn(2, 37, 2, width, generator=generator, dtype=torch.float64)
    if layout != "contiguous":
        base = base.transpose(1, 2).contiguous().transpose(1, 2)  # [B, T, H, ·] over [B, H, T, ·] storage
    grad = torch.randn(2, 37, 2, value_dim, generator=generator, dtype=torch.float64)

    def views(x):  # q, k [.., 8] (padded to 16), v: disjoint slices of x, strided unless contiguous
        qkv = [x[..., start:start + 8], x[..., start + 8:start + 16], x[..., start + 16:start + 16 + value_dim]]
        return [t.contiguous() for t in qkv] if layout == "contiguous" else qkv

    for algorithm in ("parallel", "chunked"):
        for kernel in ("based", "rebased"):
            ref_out, ref_grads = _reference_grads(*views(base), grad, kernel)
            # the kernels get fp32 views of one fp32 storage (a .to(fp32) of a strided view would copy it dense)
            leaf = base.float().requires_grad_() if layout != "contiguous" else None
            q, k, v = views(leaf) if leaf is not None else [t.float().requires_grad_() for t in views(base)]
            assert layout == "contiguous" or not q.is_contiguous()
            out = linear_attention_triton(q, k, v, kernel=kernel, eps=1e-6, algorithm=algorithm, chunk_size=16)
            out.backward(grad.float())
            grads = views(leaf.grad) if leaf is not None else [t.grad for t in (q, k, v)]
            _assert_outputs_close(out.detach().double(), [g.double() for g in grads], ref_out, ref_grads)


@pytest.mark.parametrize("rows32", [True, False], ids=["rows32", "rows64"])
@pytest.mark.parametrize(("algorithm", "chunked_bwd"), ALGORITHMS_AND_BWD, ids=ALGORITHM_IDS)
def test_forward_clamped_or_masked_rows(monkeypatch, algorithm, chunked_bwd, rows32):
    # The forward: where F and D fill their tiles (PAD_FD False) the key loop clamps rows past T to
    # row T − 1 unmasked (the causal mask zeroes them), else it masks rows and columns. T = 37: ragged key blocks
    # (16 in the chunked form, 32 in the interpreter's parallel one); B, H > 1; int32 and int64 row offsets.
    from mqar.kernels import triton_ops

    monkeypatch.setattr(triton_ops, "CHUNKED_BWD", chunked_bwd)
    monkeypatch.setattr(triton_ops, "ROWS32", rows32)
    launches = _record_launches(monkeypatch, "parallel_fwd_kernel")
    for shape, padded in [((2, 37, 2, 16, 16), False), ((2, 37, 2, 16, 8), True)]:
        q, k, v, grad = _inputs(shape, seed=17)
        for kernel in ("based", "rebased"):
            ref_out, ref_grads = _reference_grads(q, k, v, grad, kernel)
            out, grads = _triton_grads(q, k, v, grad, kernel, algorithm, chunk_size=16)
            _assert_outputs_close(out, grads, ref_out, ref_grads)
        assert [kw["PAD_FD"] for _, _, kw in launches[-2:]] == [padded] * 2


@pytest.mark.parametrize(
    "blocks",
    [(16, 16, None, None, True), (16, 32, None, None, True), (32, 16, None, None, True), (32, 32, 16, None, True),
     (32, 32, 16, 32, True), (32, 32, 16, 64, True), (16, 32, 16, 32, False)],
    ids=["16x16", "BM16BN32", "BM32BN16", "bwd16", "bwd16x32", "bwd16x64", "bwd16x32-block-major"],
)
def test_parallel_backward_over_many_blocks(monkeypatch, blocks):
    # The backward's dq sums over key-block programs through fp32 atomics: T = 100 gives 4 to 7 blocks each way, a
    # ragged last block, and (BM ≠ BN) diagonals that cut through tiles; bwd16: its own backward tile size, and
    # bwd16x32 its own key-block size too (query steps of 16 rows, key blocks of 32; bwd16x64: four steps per key
    # block, as the GPU's 32 × 128 backward tiles); block-major: the grid order
    # fp32 inputs take on the GPU (_Config.head_major False), forward and backward.
    from mqar.kernels import triton_ops

    block_m, block_n, bwd_block, bwd_block_n, head_major = blocks
    config = triton_ops._Config(block_m, block_n, 128, 4, 1, bwd_block=bwd_block, bwd_block_n=bwd_block_n,
                                head_major=head_major)
    monkeypatch.setitem(triton_ops.CONFIG_OVERRIDE, "parallel", config)
    launches = _record_launches(monkeypatch, "parallel_bwd_kernel")
    for kernel in ("based", "rebased"):
        q, k, v, grad = _inputs((2, 100, 2, 16, 8), seed=zlib.crc32(repr((blocks, kernel)).encode()))
        ref_out, ref_grads = _reference_grads(q, k, v, grad, kernel)
        out, grads = _triton_grads(q, k, v, grad, kernel, "parallel")
        _assert_outputs_close(out, grads, ref_out, ref_grads)
    key_rows_per_program = bwd_block_n or bwd_block or block_n
    # the backward's launch grids: batch·heads × key blocks
    key_blocks = -(-100 // key_rows_per_program)
    assert [grid for _, grid, _ in launches] == [triton_ops._grid(head_major, 4, key_blocks)] * 2


def test_parallel_backward_adds_tile_gradients_early_or_late_alike(monkeypatch):
    # _bwd_tile's ACC_IN_TILE (set by _backward from 4 warps on) only moves where each tile's dv, dk are added to
    # the sums: the same gradients both ways, over several query steps per key block (16-row steps, 64-row key
    # blocks: causal and off-diagonal loops), ragged T and padded D (masks) and an even shape (EVEN).
    from mqar.kernels import triton_ops

    launches = _record_launches(monkeypatch, "parallel_bwd_kernel")
    for shape in ((2, 100, 2, 16, 8), (1, 128, 2, 16, 16)):
        for kernel in ("based", "rebased"):
            q, k, v, grad = _inputs(shape, seed=zlib.crc32(repr((shape, kernel, "acc")).encode()))
            ref_out, ref_grads = _reference_grads(q, k, v, grad, kernel)
            results = []
            for warps in (2, 4):
                config = triton_ops._Config(32, 32, 128, 4, 1, bwd_block=16, bwd_block_n=64, bwd_warps=warps)
                monkeypatch.setitem(triton_ops.CONFIG_OVERRIDE, "parallel", config)
                out, grads = _triton_grads(q, k, v, grad, kernel, "parallel")
                _assert_outputs_close(out, grads, ref_out, ref_grads)
                results.append(grads)
            for early, late in zip(*results):
                torch.testing.assert_close(early, late, rtol=1e-6, atol=1e-7)
    assert {(kw["num_warps"], kw["ACC_IN_TILE"]) for _, _, kw in launches} == {(2, False), (4, True)}


@pytest.mark.parametrize("gram", [True, False], ids=["gram", "per-block"])
@pytest.mark.parametrize("blocks", [(16, 16), (16, 32), (32, 16)], ids=lambda b: "BM{}BN{}".format(*b))
def test_forward_row_sums_from_the_key_gram_or_per_block(monkeypatch, gram, blocks):
    # triton_ops.FWD_GRAM forced on or off: rebased's key blocks wholly before the query block give their row sums
    # through the prefix Σ k kᵀ once per row, causal blocks per tile; or every block per tile (always for based).
    # T = 70: 2 to 5 earlier key blocks, BM ≠ BN (so (pid_m·BM // BN) picks the Gram slot), a ragged last block;
    # F = 16 unpadded and F = 8 padded to 16 (the Gram's padded rows and columns are 0).
    from mqar.kernels import triton_ops

    monkeypatch.setattr(triton_ops, "FWD_GRAM", gram)
    monkeypatch.setitem(triton_ops.CONFIG_OVERRIDE, "parallel", triton_ops._Config(*blocks, 128, 4, 1))
    launches = _record_launches(monkeypatch, "parallel_fwd_kernel")
    for shape in ((2, 70, 1, 16, 16), (1, 70, 2, 8, 4)):
        for kernel in ("based", "rebased"):
            q, k, v, grad = _inputs(shape, seed=zlib.crc32(repr((shape, kernel, "gram")).encode()))
            ref_out, ref_grads = _reference_grads(q, k, v, grad, kernel)
            out, grads = _triton_grads(q, k, v, grad, kernel, "parallel")
            _assert_outputs_close(out, grads, ref_out, ref_grads)
    assert [kw["GRAM"] for _, _, kw in launches] == [False, gram] * 2


@pytest.mark.parametrize("shape", [(2, 300, 3, 8), (1, 100, 1, 32), (1, 40, 2, 64)], ids=lambda s: f"T{s[1]}F{s[3]}")
def test_key_gram_prefix_sums_over_the_key_blocks(shape):
    # _key_grams: each key block's own Σ k kᵀ (key_gram_kernel), then the running sum over the blocks: slot c must be
    # Σ k kᵀ over blocks 0..c. T = 300 in blocks of 16 is 19 blocks, the last one ragged; F = 8 is padded to 16
    # (zero rows and columns), F = 32 and 64 fill wider slots; k is a strided view (its last dim sliced out of a
    # wider tensor). The forward tests reach at most 5 blocks.
    from mqar.kernels import triton_ops

    batch, seq, heads, feature_dim = shape
    generator = torch.Generator().manual_seed(seq)
    wide = torch.randn(batch, seq, heads, feature_dim + 3, generator=generator, dtype=torch.float64)
    keys = wide[..., :feature_dim]
    block_f, block_n = triton_ops._pad(feature_dim), 16
    grams = triton_ops._key_grams(keys.to(DEVICE, torch.float32), block_n, block_f).double().cpu()
    blocks = triton.cdiv(seq, block_n)
    padded = torch.nn.functional.pad(keys, (0, block_f - feature_dim, 0, 0, 0, blocks * block_n - seq))
    padded = padded.permute(0, 2, 1, 3).reshape(batch * heads, blocks, block_n, block_f)
    expected = torch.einsum("gbnf,gbne->gbfe", padded, padded).cumsum(dim=1)
    assert grams.shape == expected.shape
    torch.testing.assert_close(grams, expected, rtol=1e-5, atol=1e-4)


def test_forward_takes_the_key_gram_by_the_measured_rule(monkeypatch):
    # FWD_GRAM None (the default): the Gram for the GPU's bf16 rebased forward at T ≥ 2048 with F and values ≤ 16
    # wide and at least FWD_GRAM_MIN_ROWS rows (B·H·T), nowhere else; never for based, for the chunked form or with a
    # single query block, whatever FWD_GRAM says.
    from mqar.kernels import triton_ops

    def rule(kernel, dtype, value_dim, seq, feature_dim=16, batch_heads=768):
        return triton_ops._fwd_gram(kernel, dtype, feature_dim, value_dim, seq, 64, batch_heads)

    assert rule("rebased", torch.bfloat16, 16, 2048) and rule("rebased", torch.bfloat16, 10, 3000)
    assert rule("rebased", torch.bfloat16, 16, 2048, batch_heads=16 * 12)  # 393,216 rows
    assert not rule("rebased", torch.bfloat16, 16, 2048, batch_heads=8 * 12)  # 196,608: the build's fixed cost wins
    assert not rule("rebased", torch.bfloat16, 16, 3072, batch_heads=8)
    assert rule("rebased", torch.bfloat16, 16, 2048, feature_dim=8)
    assert not rule("rebased", torch.bfloat16, 16, 2048, feature_dim=32)
    assert not rule("rebased", torch.bfloat16, 16, 1024) and not rule("rebased", torch.bfloat16, 42, 2048)
    assert not rule("rebased", torch.float16, 16, 2048) and not rule("rebased", torch.float32, 16, 2048)
    assert not rule("based", torch.bfloat16, 16, 2048)
    monkeypatch.setattr(triton_ops, "FWD_GRAM", True)
    assert rule("rebased", torch.float32, 42, 512) and not rule("based", torch.float32, 16, 512)
    assert not rule("rebased", torch.float32, 16, 64)
    monkeypatch.setattr(triton_ops, "FWD_GRAM", False)
    assert not rule("rebased", torch.bfloat16, 16, 2048)
    launches = _record_launches(monkeypatch, "parallel_fwd_kernel")
    monkeypatch.setattr(triton_ops, "FWD_GRAM", True)
    q, k, v, grad = _inputs((1, 40, 1, 16, 8), seed=9)
    _triton_grads(q, k, v, grad, "rebased", "chunked", chunk_size=16)
    assert [kw["GRAM"] for _, _, kw in launches] == [False]


def test_key_gram_in_bf16_halves_matches_the_per_block_row_sums(monkeypatch, bf16_dot_in_interpreter):
    # bf16 inputs take G = Σ k kᵀ (an fp32 sum) into qᵀGq as hi + lo bf16 halves: the denominators agree with the
    # per-block sums (themselves two bf16 MMAs per tile) to ~2⁻¹⁶, far inside bf16's own 2⁻⁹.
    from mqar.kernels import triton_ops

    monkeypatch.setitem(triton_ops.CONFIG_OVERRIDE, "parallel", triton_ops._Config(16, 16, 128, 4, 1))
    q, k, v, _ = (t.to(torch.bfloat16) for t in _inputs((2, 70, 2, 16, 8), seed=31))
    denominators = []
    for gram in (True, False):
        monkeypatch.setattr(triton_ops, "FWD_GRAM", gram)
        denominators.append(triton_ops._forward(q, k, v, "rebased", 1e-6, "parallel", None)[2])
    with_gram, per_block = denominators
    assert ((with_gram - per_block).abs() / per_block).max().item() <= 1e-4


def test_gram_row_sums_stay_nonnegative_for_queries_orthogonal_to_the_keys(monkeypatch):
    # Rebased, q orthogonal to every earlier key (two complementary halves of one random rotation): Σ_j (q·k_j)²
    # is ~0, and qᵀ (Σ k kᵀ) q in fp32 rounds to either side of 0. Clamped, the denominator stays ≥ eps as the
    # per-block sums of squares keep it; it must never fall below (a negative Z flips o and g = do/Z).
    from mqar.kernels import triton_ops

    monkeypatch.setattr(triton_ops, "FWD_GRAM", True)
    monkeypatch.setitem(triton_ops.CONFIG_OVERRIDE, "parallel", triton_ops._Config(16, 16, 128, 4, 1))
    generator = torch.Generator().manual_seed(3)
    rotation, _ = torch.linalg.qr(torch.randn(16, 16, generator=generator, dtype=torch.float64))
    seq = 64
    keys = torch.randn(1, seq, 4, 8, generator=generator, dtype=torch.float64) @ rotation[:8]
    queries = torch.randn(1, seq, 4, 8, generator=generator, dtype=torch.float64) @ rotation[8:]
    queries[:, :16] = keys[:, :16]  # the first query block's own (causal) keys: Z there is a sum of squares
    v = torch.randn(1, seq, 4, 8, generator=generator, dtype=torch.float64)
    eps = 1e-6
    args = [t.float().to(DEVICE) for t in (queries, keys, v)]
    _, _, denominator, _ = triton_ops._forward(*args, "rebased", eps, "parallel", None)
    assert denominator.min().item() >= eps * (1 - 1e-6)


@pytest.mark.parametrize("algorithm", ["parallel", "chunked"])
def test_backward_launch_takes_its_own_stages_and_register_cap(monkeypatch, algorithm):
    # _Config.bwd_stages / bwd_maxnreg (tuning hooks) reach the backward kernel's launch as num_stages / maxnreg,
    # and without them the launch is as before: the forward's stages, no maxnreg. (The interpreter ignores both.)
    from mqar.kernels import triton_ops

    launches = _record_launches(monkeypatch, "parallel_bwd_kernel")
    monkeypatch.setattr(triton_ops, "CHUNKED_BWD", "sum")
    q, k, v, grad = _inputs((1, 48, 2, 16, 8), seed=21)
    ref_out, ref_grads = _reference_grads(q, k, v, grad, "rebased")
    for extra, expected in (({}, (1, None)), ({"bwd_stages": 2, "bwd_maxnreg": 128}, (2, 128))):
        config = triton_ops._Config(16, 16, 128, 4, 1, **extra)
        monkeypatch.setitem(triton_ops.CONFIG_OVERRIDE, algorithm, config)
        launches.clear()
        out, grads = _triton_grads(q, k, v, grad, "rebased", algorithm, chunk_size=16)
        _assert_outputs_close(out, grads, ref_out, ref_grads)
        assert [(kw["num_stages"], kw.get("maxnreg")) for _, _, kw in launches] == [expected]


@pytest.mark.parametrize(("algorithm", "chunked_bwd"), ALGORITHMS_AND_BWD, ids=ALGORITHM_IDS)
@pytest.mark.parametrize("shape", [(2, 64, 2, 16, 16), (2, 64, 2, 16, 8), (1, 40, 1, 16, 16)],
                         ids=["even", "D8-padded", "T40-ragged"])
def test_backward_drops_its_masks_only_where_no_block_passes_the_edges(monkeypatch, algorithm, chunked_bwd, shape):
    # parallel_bwd_kernel's EVEN (T a multiple of both tiles, F and D their padded widths) folds every mask away:
    # same gradients as the masked path, and only for such shapes (the interpreter's tiles: the chunk size, 16)
    from mqar.kernels import triton_ops

    monkeypatch.setattr(triton_ops, "CHUNKED_BWD", chunked_bwd)
    launches = _record_launches(monkeypatch, "parallel_bwd_kernel")
    for kernel in ("based", "rebased"):
        q, k, v, grad = _inputs(shape, seed=zlib.crc32(repr((shape, kernel, algorithm)).encode()))
        ref_out, ref_grads = _reference_grads(q, k, v, grad, kernel)
        out, grads = _triton_grads(q, k, v, grad, kernel, algorithm, chunk_size=16)
        _assert_outputs_close(out, grads, ref_out, ref_grads)
    even = shape[4] == 16 and shape[1] % 16 == 0
    assert launches and all(kw["EVEN"] is even for _, _, kw in launches)


@pytest.mark.parametrize("pad", [None, False], ids=["padded", "unpadded"])
@pytest.mark.parametrize("value_dim", [5, 21])
@pytest.mark.parametrize(("algorithm", "chunked_bwd"), ALGORITHMS_AND_BWD, ids=ALGORITHM_IDS)
def test_values_padded_to_a_multiple_of_16_change_nothing(monkeypatch, pad, value_dim, algorithm, chunked_bwd):
    # triton_ops.PAD_VALUES: v padded with zero columns to the next multiple of 16 (the rule) or run at its own width
    # (off): the same o and gradients either way, o contiguous at the caller's width.
    from mqar.kernels import triton_ops

    monkeypatch.setattr(triton_ops, "PAD_VALUES", pad)
    monkeypatch.setattr(triton_ops, "CHUNKED_BWD", chunked_bwd)
    launches = _record_launches(monkeypatch, "parallel_fwd_kernel", "parallel_bwd_kernel")
    q, k, v, grad = _inputs((2, 37, 2, 16, value_dim), seed=value_dim)
    for kernel in ("based", "rebased"):
        ref_out, ref_grads = _reference_grads(q, k, v, grad, kernel)
        out, grads = _triton_grads(q, k, v, grad, kernel, algorithm, chunk_size=16)
        assert out.shape == v.shape and grads[2].shape == v.shape
        _assert_outputs_close(out, grads, ref_out, ref_grads)
    leaves = [_fp32_leaf(t) for t in (q, k, v)]
    assert linear_attention_triton(*leaves, kernel="rebased", algorithm=algorithm, chunk_size=16).is_contiguous()
    # the forward masks value columns (PAD_FD) only where the kernels get v at a width short of their tile
    assert {kw["PAD_FD"] for name, _, kw in launches if name == "parallel_fwd_kernel"} == {pad is False}


def test_values_are_padded_by_the_measured_rule(monkeypatch):
    # to the next multiple of 16: fp32 always, bf16 from 512 tokens, fp16 never; True forces it, False stops it
    from mqar.kernels import triton_ops

    monkeypatch.setattr(triton_ops, "PAD_VALUES", None)
    def widths(seq, dtype):
        return [triton_ops._padded_value_dim(d, seq, dtype) for d in (4, 5, 16, 21, 42, 48, 100)]

    assert widths(256, torch.float32) == [16, 16, 16, 32, 48, 48, 112]
    assert widths(512, torch.bfloat16) == widths(256, torch.float32)
    assert widths(511, torch.bfloat16) == widths(4096, torch.float16) == [4, 5, 16, 21, 42, 48, 100]
    monkeypatch.setattr(triton_ops, "PAD_VALUES", True)
    assert widths(256, torch.float16) == widths(256, torch.float32)
    monkeypatch.setattr(triton_ops, "PAD_VALUES", False)
    assert widths(4096, torch.float32) == [4, 5, 16, 21, 42, 48, 100]


def test_gpu_configs_follow_the_measured_rules(monkeypatch):
    # The GPU's tile choices (the interpreter has its own): half inputs take head-major grids and key blocks of 128
    # in the parallel backward where values are ≤ 16 wide and T ≥ 512, 64 elsewhere; fp32 stays block-major. The
    # chunked backward splits dq from dk, dv for values up to 32 wide.
    from mqar.kernels import triton_ops

    monkeypatch.setattr(triton_ops, "INTERPRETER", False)
    config = lambda dtype, value_dim, seq: triton_ops._config("parallel", None, dtype, value_dim, 16, seq)  # noqa: E731
    assert config(torch.bfloat16, 16, 512).bwd_block_n == 128 and config(torch.float16, 10, 2048).bwd_block_n == 128
    assert config(torch.bfloat16, 16, 256).bwd_block_n == 64 and config(torch.bfloat16, 42, 2048).bwd_block_n == 64
    assert config(torch.bfloat16, 16, 512).head_major and not config(torch.float32, 16, 512).head_major
    assert [triton_ops._chunked_bwd_layout(d) for d in (5, 32, 33, 64)] == ["split", "split", "sum", "sum"]


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
def test_state_scan_builds_the_same_prefix_states_as_chunk_states_and_cumsum(monkeypatch, backward):
    # D = 40: two blocks of SCAN_BLOCK_D = 32 value columns, the second ragged; T = 45 with chunks of 16: a partial
    # last chunk; based: the singles and the constant features too.
    from mqar.kernels import triton_ops

    q, k, v, grad = _inputs((2, 45, 2, 16, 40), seed=13)
    x, y = [t.to(DEVICE, torch.float32) for t in ((q, grad) if backward else (k, v))]
    reciprocal = delta = None
    if backward:
        reciprocal = torch.rand(2, 2, 45, device=DEVICE) + 0.5  # 1/Z [B, H, T]
        delta = torch.randn(2, 2, 45, device=DEVICE)
    config = triton_ops._config("chunked", 16, torch.float32, 40, 16)
    monkeypatch.setattr(triton_ops, "SCAN_BLOCK_D", 32)
    results = {}
    for scan in (True, False):
        monkeypatch.setattr(triton_ops, "STATE_SCAN", scan)
        results[scan] = triton_ops._prefix_states(x, y, reciprocal, delta, "based", config, 64, "ieee",
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


def test_auto_algorithm_and_the_output_in_the_inputs_dtype():
    assert choose_algorithm(512, 256, 12, 16, 8, torch.bfloat16) == "parallel"
    assert choose_algorithm(2, 32768, 8, 16, 64, torch.bfloat16) == "chunked"
    # the measured crossover (choose_algorithm's table): parallel up to 3k, chunked from 4k, and later for larger F
    assert choose_algorithm(64, 2048, 12, 16, 16, torch.bfloat16) == "parallel"
    assert choose_algorithm(32, 3072, 8, 16, 64, torch.bfloat16) == "parallel"
    assert choose_algorithm(16, 4096, 12, 16, 16, torch.bfloat16) == "chunked"
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


@pytest.mark.parametrize("entry", ["linear_attention", "linear_attention_triton", "layer_norm", "cross_entropy_sum"])
def test_triton_on_cpu_tensors_outside_the_interpreter_is_one_user_error(monkeypatch, entry):
    # impl='triton' on CPU tensors without TRITON_INTERPRET=1 was Triton's own RuntimeError, "0 active drivers ([]).
    # There should only be one." on a machine without a GPU ("cpu tensor?" on one with a GPU).
    from mqar.kernels import linear_attention, triton_compat
    from mqar.kernels.cross_entropy import cross_entropy_sum
    from mqar.kernels.layer_norm import layer_norm

    monkeypatch.setattr(triton_compat, "INTERPRETER", False, raising=False)  # as in a process without it
    x = torch.randn(1, 4, 1, 16)
    calls = {
        "linear_attention": (lambda: linear_attention(x, x, x, impl="triton"), "q"),
        "linear_attention_triton": (lambda: linear_attention_triton(x, x, x), "q"),
        "layer_norm": (lambda: layer_norm(x, None, None, impl="triton"), "x"),
        "cross_entropy_sum": (lambda: cross_entropy_sum(x[0, :, 0], torch.zeros(4, dtype=torch.long), "triton"),
                              "logits"),
    }
    call, name = calls[entry]
    with pytest.raises(UserError, match=rf"impl='triton' needs CUDA tensors, got {name} on cpu .* use impl='torch'"):
        call()


@pytest.mark.parametrize("algorithm", ["parallel", "chunked"])
def test_double_backward_is_refused_not_silently_missing_the_kernels_terms(algorithm):
    # The kernels' gradients are computed outside autograd. once_differentiable raised only where a later backward
    # reached its error node: autograd.grad(..., q) of the second step never ran it and returned the q³ term's
    # second derivative alone, and out.sum()'s constant gradient gave a dq with no graph at all. A backward with
    # create_graph=True is refused outright now, naming impl="torch"; first-order gradients are as before.
    q, k, v, grad = _inputs((1, 5, 1, 16, 4), seed=3)
    ref_out, ref_grads = _reference_grads(q, k, v, grad, "rebased")
    q, k, v = (t.to(DEVICE, torch.float32).requires_grad_() for t in (q, k, v))
    for loss in (lambda out: out.sum() + q.pow(3).sum(), lambda out: out.square().sum()):
        out = linear_attention_triton(q, k, v, kernel="rebased", algorithm=algorithm)
        with pytest.raises(UserError, match="no second derivative .*; use impl='torch' for higher-order") as error:
            torch.autograd.grad(loss(out), q, create_graph=True)
        assert "\n" not in str(error.value)
    out = linear_attention_triton(q, k, v, kernel="rebased", algorithm=algorithm)
    out.backward(grad.to(DEVICE, torch.float32))
    _assert_outputs_close(out.detach().double().cpu(), [t.grad.double().cpu() for t in (q, k, v)], ref_out, ref_grads)


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
@pytest.mark.parametrize(
    ("algorithm", "chunked_bwd", "two_mma"),
    [(*a, False) for a in ALGORITHMS_AND_BWD] + [(*a, True) for a in ALGORITHMS_AND_BWD if a[0] == "chunked"],
    ids=ALGORITHM_IDS + [f"{name}-2mma" for name in ALGORITHM_IDS if name.startswith("chunked")],
)
def test_bf16_path_keeps_gradients_accurate(monkeypatch, bf16_dot_in_interpreter, shape, algorithm, chunked_bwd,
                                            two_mma):
    # dA = g·v − δ cancels: rounding g to bf16 before it let dq and dk drift far past the outputs' own rounding,
    # so the backward forms it from exact do·v products (and the forward splits A into hi + lo bf16 halves).
    # Here every error must stay at the level of rounding the outputs to bf16, and at T = 1 (dq, dk ≈ 0 by
    # construction) far below dv's size. two_mma: triton_ops.CHUNKED_BWD_TWO_MMA on, which these bf16 inputs
    # take as they would on the GPU (the kernel's TWO_MMA: (do Sᵀ)/Z and v Rᵀ as two MMAs each).
    from mqar.kernels import triton_ops
    from mqar.kernels.triton_ops import LinearAttentionFunction

    monkeypatch.setattr(triton_ops, "CHUNKED_BWD", chunked_bwd)
    monkeypatch.setattr(triton_ops, "CHUNKED_BWD_TWO_MMA", two_mma)
    launches = _record_launches(monkeypatch, "parallel_bwd_kernel")
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
    assert {kw["TWO_MMA"] for _, _, kw in launches} == {two_mma and algorithm == "chunked"}


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
