"""The baseline mixers (Mamba, RWKV-4, Hyena, H3, BaseConv): fast paths against their sequential references in fp64,
finite gradients, the registered archs end to end, and one tiny MQAR run that learns."""

from __future__ import annotations

import math
import re

import pytest
import torch

import mqar.models.baselines as baselines
from mqar.data import TaskSpec, make_splits
from mqar.errors import UserError
from mqar.models import ARCHS, build_model, count_params
from mqar.models.baselines.base_conv import LongConvMixer
from mqar.models.baselines.h3 import DiagonalSSM, H3Mixer, ShiftSSM
from mqar.models.baselines.hyena import HyenaMixer
from mqar.models.baselines.mamba import MambaBlock, MambaMixer, selective_scan
from mqar.models.baselines.rwkv import RWKVTimeMixer, wkv
from mqar.models.baselines.scan import (
    direct_causal_conv,
    fft_causal_conv,
    linear_recurrence,
    parallel_scan,
    sequential_scan,
)
from mqar.runs import Recipe, RunConfig
from mqar.train import train

BASELINE_ARCHS = ("mamba", "rwkv", "rwkv-zoology", "hyena", "h3", "base-conv")
RAGGED_LENGTHS = (1, 2, 7, 16, 33)  # powers of two and not, shorter and longer than the scan's first strides


@pytest.fixture(autouse=True, scope="module")
def _one_intra_op_thread():
    """These tensors are tiny: one thread is as fast on an idle machine and far faster on a busy one (2 threads
    spin against each other and against other processes there)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _affine(earlier, later):
    return earlier[0] * later[0], later[0] * earlier[1] + later[1]


@pytest.mark.parametrize("seq_len", RAGGED_LENGTHS)
def test_parallel_scan_equals_left_fold(seq_len):
    generator = torch.Generator().manual_seed(seq_len)
    decay = torch.rand(3, seq_len, 5, generator=generator, dtype=torch.float64)
    drive = torch.randn(3, seq_len, 5, generator=generator, dtype=torch.float64)
    fast = parallel_scan((decay, drive), _affine)
    reference = sequential_scan((decay, drive), _affine)
    for got, expected in zip(fast, reference):
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    # and the fold is what it says: h_t = a_t h_{t-1} + b_t from h_{-1} = 0
    state = torch.zeros(3, 5, dtype=torch.float64)
    for t in range(seq_len):
        state = decay[:, t] * state + drive[:, t]
    torch.testing.assert_close(fast[1][:, -1], state, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seq_len, kernel_len", [(1, 1), (7, 3), (16, 16), (33, 40), (20, 5)])
def test_fft_causal_conv_equals_direct_convolution(seq_len, kernel_len):
    generator = torch.Generator().manual_seed(seq_len * 100 + kernel_len)
    u = torch.randn(2, 3, 4, seq_len, generator=generator, dtype=torch.float64)
    kernel = torch.randn(4, kernel_len, generator=generator, dtype=torch.float64)
    torch.testing.assert_close(fft_causal_conv(u, kernel), direct_causal_conv(u, kernel), rtol=1e-10, atol=1e-10)
    # causality: changing the future leaves the past alone
    changed = u.clone()
    changed[..., seq_len // 2 :] += 1.0
    cut = seq_len // 2
    torch.testing.assert_close(fft_causal_conv(changed, kernel)[..., :cut], fft_causal_conv(u, kernel)[..., :cut])


def _mixers(d_model: int, max_seq_len: int):
    """(name, mixer, attribute, fast impl, reference impl) for every baseline mixer."""
    return [
        ("mamba", MambaMixer(d_model), "impl", "parallel", "sequential"),
        ("rwkv-layer0", RWKVTimeMixer(d_model, layer_index=0), "impl", "parallel", "sequential"),
        ("rwkv-layer1", RWKVTimeMixer(d_model, layer_index=1), "impl", "parallel", "sequential"),
        ("hyena", HyenaMixer(d_model, max_seq_len), "impl", "fft", "direct"),
        ("h3", H3Mixer(d_model, state_size=max_seq_len), "impl", "fft", "recurrent"),
        ("h3-short-state", H3Mixer(d_model, state_size=8), "impl", "fft", "recurrent"),
        ("long-conv", LongConvMixer(d_model, max_seq_len), "impl", "fft", "direct"),
    ]


@pytest.mark.parametrize("seq_len", RAGGED_LENGTHS)
def test_fast_paths_equal_sequential_references_fp64(seq_len):
    torch.manual_seed(seq_len)
    for name, mixer, attribute, fast, reference in _mixers(d_model=12, max_seq_len=40):
        mixer = mixer.double()
        # inputs of scale 3 push RWKV's exponents (k) well away from 0: the max-tracking must hold
        x = (3 * torch.randn(2, seq_len, 12, dtype=torch.float64)).requires_grad_()
        outputs, input_grads, param_grads = [], [], []
        for impl in (fast, reference):
            setattr(mixer, attribute, impl)
            mixer.zero_grad()
            y = mixer(x)
            (grad_x,) = torch.autograd.grad((y * torch.cos(y)).sum(), x, retain_graph=True)
            (y * torch.cos(y)).sum().backward()
            outputs.append(y.detach())
            input_grads.append(grad_x)
            # a parameter the graph never reached (e.g. Mamba's A at seq_len 1 in the scan) has gradient 0
            param_grads.append(
                {n: p.grad.clone() if p.grad is not None else torch.zeros_like(p) for n, p in mixer.named_parameters()}
            )
        assert outputs[0].shape == (2, seq_len, 12), name
        torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-9, atol=1e-10, msg=f"{name} output")
        torch.testing.assert_close(input_grads[0], input_grads[1], rtol=1e-8, atol=1e-9, msg=f"{name} input grad")
        assert param_grads[0].keys() == param_grads[1].keys(), name
        for parameter in param_grads[0]:
            torch.testing.assert_close(
                param_grads[0][parameter], param_grads[1][parameter], rtol=1e-8, atol=1e-9,
                msg=f"{name} grad of {parameter}",
            )


def test_mixers_are_causal():
    torch.manual_seed(0)
    for name, mixer, *_ in _mixers(d_model=8, max_seq_len=24):
        x = torch.randn(1, 24, 8)
        changed = x.clone()
        changed[:, 12:] = torch.randn(1, 12, 8)
        with torch.no_grad():
            torch.testing.assert_close(mixer(changed)[:, :12], mixer(x)[:, :12], msg=name)


def test_wkv_is_rwkv4_formula_and_stable_at_extremes():
    """The closed form of RWKV-4's WKV on a short sequence; and no overflow with huge k and fast decay."""
    generator = torch.Generator().manual_seed(1)
    time_decay = torch.randn(4, generator=generator, dtype=torch.float64)
    time_first = torch.randn(4, generator=generator, dtype=torch.float64)
    k = torch.randn(2, 6, 4, generator=generator, dtype=torch.float64)
    v = torch.randn(2, 6, 4, generator=generator, dtype=torch.float64)
    w = -torch.exp(time_decay)
    expected = []
    for t in range(6):
        weights = [torch.exp((t - 1 - i) * w + k[:, i]) for i in range(t)] + [torch.exp(time_first + k[:, t])]
        values = [v[:, i] for i in range(t + 1)]
        numerator = sum(weight * value for weight, value in zip(weights, values))
        expected.append(numerator / sum(weights))
    expected = torch.stack(expected, dim=1)
    for impl in ("parallel", "sequential"):
        torch.testing.assert_close(wkv(time_decay, time_first, k, v, impl=impl), expected, rtol=1e-12, atol=1e-12)
    # fp32, k of ±300 (e^300 overflows fp32) and decays of e^3 per step: finite, and within the range of v
    k_large = 300 * torch.randn(2, 50, 4, generator=generator)
    v32 = torch.randn(2, 50, 4, generator=generator)
    decay = torch.tensor([-5.0, 0.0, 3.0, 3.0])
    for impl in ("parallel", "sequential"):
        out = wkv(decay, torch.zeros(4), k_large, v32, impl=impl)
        assert torch.isfinite(out).all(), impl
        assert (out.abs() <= v32.abs().amax(dim=1, keepdim=True) + 1e-4).all(), impl  # a convex combination of v


def test_selective_scan_matches_its_definition_and_keeps_fp32_under_half_inputs():
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(2, 5, 3, generator=generator, dtype=torch.float64)
    delta = torch.rand(2, 5, 3, generator=generator, dtype=torch.float64)
    A = -torch.rand(3, 4, generator=generator, dtype=torch.float64)
    B = torch.randn(2, 5, 4, generator=generator, dtype=torch.float64)
    C = torch.randn(2, 5, 4, generator=generator, dtype=torch.float64)
    D = torch.randn(3, generator=generator, dtype=torch.float64)
    h = torch.zeros(2, 3, 4, dtype=torch.float64)
    expected = []
    for t in range(5):
        h = torch.exp(delta[:, t, :, None] * A) * h + delta[:, t, :, None] * B[:, t, None, :] * x[:, t, :, None]
        expected.append((h * C[:, t, None, :]).sum(-1) + D * x[:, t])
    expected = torch.stack(expected, dim=1)
    for impl in ("parallel", "sequential"):
        torch.testing.assert_close(selective_scan(x, delta, A, B, C, D, impl=impl), expected, rtol=1e-12, atol=1e-12)
    half = selective_scan(*(t.bfloat16() for t in (x, delta)), A.float(), B.bfloat16(), C.bfloat16(), D.float())
    assert half.dtype == torch.bfloat16


def test_ssm_kernels_are_their_recurrences_impulse_response():
    torch.manual_seed(3)
    impulse = torch.zeros(1, 6, 20, dtype=torch.float64)
    impulse[..., 0] = 1.0
    shift = ShiftSSM(6, state_size=8).double()
    with torch.no_grad():
        shift.B.normal_()  # not just e_1: the kernel is the correlation of B and C
        torch.testing.assert_close(shift.recurrence(impulse)[0], shift.kernel(20))
        assert (shift.kernel(20)[:, 8:] == 0).all()  # a state of 8 remembers 8 steps
    diagonal = DiagonalSSM(6, state_size=8).double()
    with torch.no_grad():
        torch.testing.assert_close(diagonal.recurrence(impulse)[0], diagonal.kernel(20))


@pytest.mark.parametrize("arch", BASELINE_ARCHS)
def test_arch_builds_runs_and_has_finite_gradients(arch):
    torch.manual_seed(0)
    assert arch in ARCHS
    model = build_model(arch, d_model=16, seq_len=32, vocab_size=64)
    inputs = torch.randint(0, 64, (3, 32))
    labels = torch.full((3, 32), -100)
    labels[:, 20::3] = inputs[:, 20::3]
    result = model.loss_and_accuracy(inputs, labels)
    assert torch.isfinite(result.loss_sum)
    result.loss_sum.backward()
    grads = {name: parameter.grad for name, parameter in model.named_parameters()}
    missing = [name for name, grad in grads.items() if grad is None]
    assert not missing, f"{arch}: parameters without gradient {missing}"
    assert all(torch.isfinite(grad).all() for grad in grads.values())
    # every mixer parameter receives signal (a dead parameter would have an all-zero gradient)
    mixer_grads = [grad for name, grad in grads.items() if ".mixer." in name]
    assert mixer_grads and all(grad.abs().sum() > 0 for grad in mixer_grads), arch
    assert model(inputs[:, :7]).shape == (3, 7, 16)  # shorter sequences than seq_len run too
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the recipe's bf16 precision: scans and FFTs stay in fp32
        assert torch.isfinite(model.loss_and_accuracy(inputs, labels).loss_sum)


def test_h3_needs_an_even_width():
    with pytest.raises(UserError, match="even d_model"):
        build_model("h3", 15, 16, 64)


def test_layer_patterns_blocks_and_init_follow_the_papers():
    mamba = build_model("mamba", 32, 16, 64)
    assert all(isinstance(block, MambaBlock) for block in mamba.blocks)
    assert all(not hasattr(block, "norm2") for block in mamba.blocks)
    # the LM's init reaches inside the Mamba mixer, as ReBased's does: dt bias zeroed, out_proj rescaled
    mixer = mamba.blocks[0].mixer
    assert (mixer.dt_proj.bias == 0).all()
    assert mixer.out_proj.weight.std() < 0.015  # 0.02 / sqrt(2·2) = 0.01
    torch.testing.assert_close(-mixer.A_log.exp(), -torch.arange(1.0, 17.0).expand(64, 16))  # S4D-real A
    rwkv = build_model("rwkv", 32, 16, 64)
    decay_0, decay_1 = (block.mixer.time_decay for block in rwkv.blocks)
    assert decay_0[0] == decay_1[0] == -5 and decay_0[-1] == decay_1[-1] == 3
    assert not torch.equal(decay_0, decay_1)  # the decay curve depends on the layer index
    assert len(build_model("hyena", 16, 16, 64).blocks) == 4
    assert [type(block.mixer).__name__ for block in build_model("base-conv", 16, 16, 64).blocks] == [
        "ShortConvMixer", "LongConvMixer", "ShortConvMixer", "LongConvMixer"
    ]
    h3 = build_model("h3", 16, 24, 64)
    assert h3.blocks[0].mixer.shift_ssm.B.shape == (16, 24)  # d_state = seq_len, as in Zoology's Figure 2
    assert h3.blocks[0].mixer.diagonal_ssm.log_dt.shape == (8,)  # head_dim 2 -> d_model / 2 heads


def _rwkv4_init_curves(d_model: int, layer_idx: int, n_layer: int) -> dict[str, list[float]]:
    """RWKV-4's fancy init as zoology.mixers.rwkv.RWKVTimeMixer writes it, channel by channel in plain Python."""
    ratio_0_to_1 = layer_idx / (n_layer - 1)
    ratio_1_to_almost0 = 1.0 - layer_idx / n_layer
    fraction = [i / d_model for i in range(d_model)]
    return {
        "time_decay": [-5 + 8 * (h / (d_model - 1)) ** (0.7 + 1.3 * ratio_0_to_1) for h in range(d_model)],
        "time_first": [math.log(0.3) + 0.5 * ((i + 1) % 3 - 1) for i in range(d_model)],
        "time_mix_k": [x**ratio_1_to_almost0 for x in fraction],
        "time_mix_v": [x**ratio_1_to_almost0 + 0.3 * ratio_0_to_1 for x in fraction],
        "time_mix_r": [x ** (0.5 * ratio_1_to_almost0) for x in fraction],
    }


@pytest.mark.parametrize("arch, n_layer, num_layers", [("rwkv-zoology", 12, 4), ("rwkv", 2, 2)])
def test_rwkv_archs_init_curves_are_rwkv4s_for_their_n_layer(arch, n_layer, num_layers):
    """rwkv-zoology: Zoology Figure 2's 4 RWKVTimeMixer layers, layer_idx 0..3, with the class default n_layer=12
    (HazyResearch/zoology zoology/experiments/paper/zoology_figure2.py @194a712); rwkv: ReBased's 2 with n_layer=2."""
    d_model = 20
    model = build_model(arch, d_model, seq_len=16, vocab_size=64)
    assert len(model.blocks) == num_layers
    for layer_idx, block in enumerate(model.blocks):
        for name, expected in _rwkv4_init_curves(d_model, layer_idx, n_layer).items():
            got = getattr(block.mixer, name).detach().double().flatten()
            torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), rtol=1e-6, atol=1e-6,
                                       msg=f"{arch} layer {layer_idx} {name}")


def test_parameter_table_in_docstring_matches_count_params():
    rows = re.findall(r"^\| ([a-z0-9-]+)(?: \(for scale\))? \| ([\d,]+) \| ([\d,]+) \|", baselines.__doc__, re.MULTILINE)
    table = {arch: (int(d64.replace(",", "")), int(d128.replace(",", ""))) for arch, d64, d128 in rows}
    assert set(BASELINE_ARCHS) <= set(table)
    for arch, (d64, d128) in table.items():
        assert count_params(build_model(arch, 64, 256, 8192)) == d64, arch
        assert count_params(build_model(arch, 128, 256, 8192)) == d128, arch


def test_tiny_mqar_run_learns():
    """base-conv on 2 kv pairs in 16 tokens, 16 possible values (chance 1/16): well above chance in a few epochs."""
    task = TaskSpec(seq_len=16, num_kv_pairs=2, vocab_size=32)
    recipe = Recipe(epochs=6, num_train_examples=2000, num_valid_examples=300, num_test_examples=300, batch_size=64)
    # lr 1e-2: without position embeddings (Zoology's base-conv) lr 3e-3 leaves the plateau only after ~8 epochs
    config = RunConfig(task=task, arch="base-conv", d_model=32, lr=1e-2, seed=0, recipe=recipe)
    data = make_splits(task, 0, 2000, 300, 300)
    result = train(config, device="cpu", data=data)
    assert result.curve[0].valid_accuracy < 0.25
    assert result.best_valid_accuracy > 0.35, [record.valid_accuracy for record in result.curve]
    assert result.curve[-1].train_loss < result.curve[0].train_loss


@pytest.mark.parametrize("seq_len", RAGGED_LENGTHS)
def test_linear_recurrence_backward_equals_autograd_of_the_fold(seq_len):
    generator = torch.Generator().manual_seed(7 + seq_len)
    decay = torch.rand(2, seq_len, 3, 4, generator=generator, dtype=torch.float64).requires_grad_()
    drive = torch.randn(2, seq_len, 3, 4, generator=generator, dtype=torch.float64).requires_grad_()
    weights = torch.randn(2, seq_len, 3, 4, generator=generator, dtype=torch.float64)
    fast = linear_recurrence(decay, drive)
    state, reference = torch.zeros_like(drive[:, 0]), []
    for t in range(seq_len):  # the fold from h_{-1} = 0, so that decay_0 is in the graph too (with gradient 0)
        state = decay[:, t] * state + drive[:, t]
        reference.append(state)
    reference = torch.stack(reference, dim=1)
    torch.testing.assert_close(fast, reference, rtol=1e-12, atol=1e-12)
    fast_grads = torch.autograd.grad((fast * weights).sum(), (decay, drive))
    reference_grads = torch.autograd.grad((reference * weights).sum(), (decay, drive))
    for got, expected in zip(fast_grads, reference_grads):
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(linear_recurrence, (decay[:1, :, :1, :2], drive[:1, :, :1, :2]))
