"""Models: exact parameter counts of the paper, the ablations differ where named, causality, the labelled-only loss."""

import pytest
import torch
import torch.nn.functional as F

from mqar.errors import UserError
from mqar.models import ARCHS, LanguageModel, build_model, count_params
from mqar.models.mixers import LinearAttention, ShortConvMixer

PAPER_ARCHS = (
    "attention", "conv-attention", "based", "rebased", "rebased-x2", "rebased-norm", "rebased-gamma", "rebased-affine"
)


@pytest.mark.parametrize(
    "d_model, based_params",
    [(64, 577_984), (128, 1_179_520), (256, 2_459_392), (512, 5_307_904)],  # ReBased paper, Table 6
)
def test_parameter_counts_match_the_paper_exactly(d_model, based_params):
    assert count_params(build_model("based", d_model, seq_len=256, vocab_size=8192)) == based_params
    assert count_params(build_model("rebased", d_model, seq_len=256, vocab_size=8192)) == based_params + 768


def test_the_paper_archs_are_registered():
    assert set(PAPER_ARCHS) <= set(ARCHS)


# Zoology's Figure-2 models other than attention: max_position_embeddings=0 (HazyResearch/zoology
# zoology/experiments/paper/zoology_figure2.py @194a712); every other arch keeps its learned positions.
ARCHS_WITHOUT_POSITIONS = {"hyena", "h3", "base-conv", "rwkv-zoology"}


@pytest.mark.parametrize("arch", list(ARCHS))
def test_position_embeddings_exactly_where_the_arch_has_them(arch):
    model = build_model(arch, 24, seq_len=16, vocab_size=32)
    has_positions = arch not in ARCHS_WITHOUT_POSITIONS
    assert (model.position_embedding is not None) == has_positions
    assert ("position_embedding.weight" in model.state_dict()) == has_positions


def test_language_model_without_positions_drops_only_the_position_table():
    """Same mixers, switch off: seq_len × d_model fewer parameters, no position key, and the model still runs."""
    def language_model(position_embedding):
        torch.manual_seed(0)
        return LanguageModel([ShortConvMixer(8, kernel_size=3)], d_model=8, max_seq_len=12, vocab_size=16,
                             position_embedding=position_embedding)

    with_positions, without = language_model(True), language_model(False)
    assert count_params(with_positions) - count_params(without) == 12 * 8
    assert set(with_positions.state_dict()) - set(without.state_dict()) == {"position_embedding.weight"}
    assert without(torch.randint(0, 16, (2, 12))).shape == (2, 12, 8)
    with pytest.raises(ValueError, match="longer than the model's 12 positions"):  # the length limit stays
        without(torch.randint(0, 16, (1, 13)))


def _fingerprint(tensors) -> float:
    """One number that moves if any value, or the order of the values, changes."""
    flat = torch.cat([tensor.detach().double().flatten() for tensor in tensors])
    return float((flat * torch.sin(torch.arange(1, flat.numel() + 1, dtype=torch.float64))).sum())


@pytest.mark.parametrize(
    "arch, num_tensors, num_values, state_print, hidden_print, rng_after",
    # Recorded before the position-embedding switch existed (main at 9722d10): same parameters, same init draws in
    # the same order (the global RNG ends in the same state), same forward.
    [
        ("rebased", 24, 13224, -2.7026502750379287, -13.178944407480927, [0.15612256526947021, 0.7171445488929749]),
        ("attention", 20, 6192, -0.1042753939399958, -12.432223661928624, [0.18335366249084473, 0.6488811373710632]),
    ],
    ids=["rebased", "attention"],
)
def test_archs_with_positions_build_the_model_they_built_before_the_switch(
    arch, num_tensors, num_values, state_print, hidden_print, rng_after
):
    inputs = torch.randint(0, 32, (2, 16), generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    model = build_model(arch, 24, seq_len=16, vocab_size=32, kernel_impl="torch").eval()
    assert torch.rand(2).tolist() == rng_after
    state = model.state_dict()
    assert (len(state), sum(tensor.numel() for tensor in state.values())) == (num_tensors, num_values)
    assert _fingerprint(state.values()) == pytest.approx(state_print, rel=1e-12)
    with torch.no_grad():
        assert _fingerprint([model(inputs)]) == pytest.approx(hidden_print, rel=1e-6)


def qk_parameter_names(arch):
    mixer = build_model(arch, 24, seq_len=8, vocab_size=16).blocks[1].mixer
    assert isinstance(mixer, LinearAttention)
    return sorted(name for name, _ in mixer.named_parameters() if "transform" in name)


def test_ablations_have_gamma_and_beta_only_where_named():
    assert qk_parameter_names("based") == []
    assert qk_parameter_names("rebased-x2") == []
    assert qk_parameter_names("rebased-norm") == []  # LayerNorm without affine
    assert qk_parameter_names("rebased-gamma") == ["k_transform.gamma", "q_transform.gamma"]
    assert qk_parameter_names("rebased-affine") == [
        "k_transform.beta", "k_transform.gamma", "q_transform.beta", "q_transform.gamma"
    ]
    assert qk_parameter_names("rebased") == [
        "k_transform.bias", "k_transform.weight", "q_transform.bias", "q_transform.weight"
    ]
    assert build_model("based", 24, 8, 16).blocks[1].mixer.kernel == "based"
    for arch in ("rebased", "rebased-x2", "rebased-norm", "rebased-gamma", "rebased-affine"):
        assert build_model(arch, 24, 8, 16).blocks[1].mixer.kernel == "rebased"


def test_ablations_compute_different_functions():
    """Same init (same seed, same parameter shapes up to the q/k transforms), different outputs once γ, β move."""
    inputs = torch.randint(0, 32, (2, 12), generator=torch.Generator().manual_seed(0))
    outputs = {}
    for arch in ("rebased", "rebased-x2", "rebased-norm", "rebased-gamma", "rebased-affine"):
        torch.manual_seed(0)
        model = build_model(arch, 24, seq_len=12, vocab_size=32).eval()
        for name, parameter in model.named_parameters():
            if "transform" in name:  # move γ, β off their identity init so that every variant is distinct
                with torch.no_grad():
                    parameter.add_(0.5 * torch.randn_like(parameter))
        outputs[arch] = model(inputs)
    names = list(outputs)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            assert not torch.allclose(outputs[first], outputs[second], atol=1e-5), (first, second)


@pytest.mark.parametrize("arch", PAPER_ARCHS)
def test_models_are_causal_and_shaped(arch):
    torch.manual_seed(0)
    model = build_model(arch, 24, seq_len=10, vocab_size=20).eval()
    inputs = torch.randint(0, 20, (3, 10), generator=torch.Generator().manual_seed(1))
    hidden = model(inputs)
    assert hidden.shape == (3, 10, 24)
    changed = inputs.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % 20  # change the future of position 5
    torch.testing.assert_close(model(changed)[:, :6], hidden[:, :6])
    assert not torch.allclose(model(changed)[:, 6:], hidden[:, 6:])


def test_loss_at_labelled_positions_equals_full_cross_entropy_with_ignore_index():
    torch.manual_seed(0)
    model = build_model("rebased", 24, seq_len=8, vocab_size=16).eval()
    inputs = torch.randint(0, 16, (4, 8), generator=torch.Generator().manual_seed(2))
    labels = torch.full((4, 8), -100)
    labels[:, [3, 5]] = torch.randint(0, 16, (4, 2), generator=torch.Generator().manual_seed(3))
    result = model.loss_and_accuracy(inputs, labels)
    logits = model.logits(model(inputs))  # [batch, seq, vocab]
    expected = F.cross_entropy(logits.reshape(-1, 16), labels.reshape(-1), ignore_index=-100, reduction="sum")
    torch.testing.assert_close(result.loss_sum, expected)
    assert int(result.num_labelled) == 8
    assert int(result.num_correct) == int((logits.argmax(-1) == labels).sum())


def test_head_is_tied_and_init_follows_the_recipe():
    torch.manual_seed(0)
    model = build_model("conv-attention", 256, seq_len=256, vocab_size=8192)
    assert model.token_embedding.weight.std().item() == pytest.approx(0.02, rel=0.05)
    attention = model.blocks[1].mixer
    assert attention.out_proj.weight.std().item() == pytest.approx(0.02 / 2, rel=0.05)  # 1/sqrt(2·2 layers)
    assert attention.qkv_proj.weight.std().item() == pytest.approx(0.02, rel=0.05)
    # Gradient of the tied head reaches the embedding.
    labels = torch.full((1, 4), -100)
    labels[0, 3] = 5
    model.loss_and_accuracy(torch.tensor([[1, 2, 3, 4]]), labels).loss_sum.backward()
    assert model.token_embedding.weight.grad[5].abs().sum() > 0


@pytest.mark.parametrize("arch", ["based", "rebased"])
def test_gradients_are_finite_under_bf16_autocast(arch):
    torch.manual_seed(0)
    model = build_model(arch, 24, seq_len=16, vocab_size=32)
    inputs = torch.randint(0, 32, (2, 16), generator=torch.Generator().manual_seed(0))
    labels = torch.where(torch.arange(16) % 4 == 3, inputs, torch.full_like(inputs, -100))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        result = model.loss_and_accuracy(inputs, labels)
    result.loss_sum.backward()
    assert torch.isfinite(result.loss_sum)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_model_inputs_must_be_a_batch_of_sequences():
    model = build_model("based", 24, seq_len=16, vocab_size=32)
    with pytest.raises(ValueError, match=r"inputs must be token ids \[batch, seq\], got shape \(8,\)"):
        model(torch.randint(0, 32, (8,)))
    assert model(torch.randint(0, 32, (1, 8))).shape == (1, 8, 24)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"arch": "transformer", "d_model": 64}, "unknown arch 'transformer'; choose one of attention, conv-attention"),
        ({"arch": "rebased", "d_model": 8}, "d_model 8 is too small for arch 'rebased'.*linear attention has 12 heads"),
        # rwkv's and h3's minimum is theirs, not linear attention's (the message named 12 linear-attention heads)
        ({"arch": "rwkv", "d_model": 1}, r"needs d_model ≥ 2 \(its 'rwkv' mixer: RWKV-4 time mixing\)$"),
        ({"arch": "h3", "d_model": 1}, r"needs d_model ≥ 2 \(its 'h3' mixer: H3"),
        ({"arch": "attention", "d_model": 0}, "d_model must be a positive integer"),
        ({"arch": "rebased", "d_model": "x"}, "d_model must be an integer, got 'x'"),  # was 'too small'
        ({"arch": "attention", "d_model": 2**63}, "use d_model < 2\\*\\*31"),  # overflowed the store's column
    ],
)
def test_bad_arch_or_width_is_a_user_error(kwargs, message):
    with pytest.raises(UserError, match=message):
        build_model(seq_len=16, **kwargs)


@pytest.mark.parametrize("arch", ["based", "rebased"])
def test_triton_kernels_give_the_same_model(arch):
    """Integration: the same weights through the Triton kernels (interpreter on CPU) and the torch reference."""
    torch.manual_seed(0)
    reference = build_model(arch, 24, seq_len=16, vocab_size=32, kernel_impl="torch").eval()
    fast = build_model(arch, 24, seq_len=16, vocab_size=32, kernel_impl="triton").eval()
    fast.load_state_dict(reference.state_dict())
    inputs = torch.randint(0, 32, (2, 16), generator=torch.Generator().manual_seed(0)).to(
        "cuda" if torch.cuda.is_available() else "cpu"
    )
    reference, fast = reference.to(inputs.device), fast.to(inputs.device)
    torch.testing.assert_close(fast(inputs), reference(inputs), rtol=1e-4, atol=1e-4)
