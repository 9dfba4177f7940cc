"""Architectures as data: an arch name is a pattern of mixer names, one per layer; a mixer name is a factory.

To add an architecture (e.g. mamba, rwkv, hyena, h3, base-conv): register its mixer in MIXERS (a function of
`MixerContext` returning an nn.Module [batch, seq, d_model] -> same), then its layer pattern in ARCHS
(`register_arch`, which also says whether the arch's LM has learned position embeddings).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

from torch import nn

from mqar.config import is_integer
from mqar.errors import UserError
from mqar.models.mixers import LinearAttention, ShortConvMixer, SoftmaxAttention

LINEAR_ATTENTION_HEADS = 12  # the reference shapes: 12 heads, q/k feature dim 16, v dim d_model // 12
LINEAR_ATTENTION_FEATURE_DIM = 16


@dataclass(frozen=True)
class MixerContext:
    """What a mixer factory may depend on."""

    d_model: int
    seq_len: int
    layer_index: int
    kernel_impl: str = "auto"  # linear attention and LayerNorm: "auto" | "triton" | "torch"


@dataclass(frozen=True)
class MixerSpec:
    build: Callable[[MixerContext], nn.Module]
    min_d_model: int = 1  # smaller widths cannot hold the mixer's heads
    description: str = ""


def _linear_attention(kernel: str, qk_transform: str) -> Callable[[MixerContext], nn.Module]:
    def build(context: MixerContext) -> nn.Module:
        return LinearAttention(
            context.d_model,
            kernel=kernel,
            qk_transform=qk_transform,
            num_heads=LINEAR_ATTENTION_HEADS,
            feature_dim=LINEAR_ATTENTION_FEATURE_DIM,
            impl=context.kernel_impl,
        )

    return build


def _linear_attention_spec(kernel: str, qk_transform: str, description: str) -> MixerSpec:
    return MixerSpec(_linear_attention(kernel, qk_transform), LINEAR_ATTENTION_HEADS, description)


MIXERS: dict[str, MixerSpec] = {
    "short-conv": MixerSpec(lambda c: ShortConvMixer(c.d_model, kernel_size=3), 1, "gated short causal conv"),
    "attention": MixerSpec(lambda c: SoftmaxAttention(c.d_model, num_heads=1, dropout=0.1), 1, "softmax attention"),
    "based": _linear_attention_spec("based", "identity", "Based: 1 + s + s²/2"),
    "rebased": _linear_attention_spec("rebased", "layernorm", "ReBased: (γ·norm(x) + β)²"),
    "rebased-x2": _linear_attention_spec("rebased", "identity", "ablation: x²"),
    "rebased-norm": _linear_attention_spec("rebased", "norm", "ablation: norm(x)²"),
    "rebased-gamma": _linear_attention_spec("rebased", "gamma", "ablation: (γ·x)²"),
    "rebased-affine": _linear_attention_spec("rebased", "affine", "ablation: (γ·x + β)²"),
}

# Parameter counts equal the ReBased paper's (Table 6: Based 577,984 / 1,179,520 / 2,459,392 / 5,307,904 at d_model
# 64 / 128 / 256 / 512, seq_len 256, vocab 8192; ReBased 768 more) exactly with these choices, all as in the public
# ReBased code: q/k/v/out projections of linear attention without bias; the short conv's gate Linear and depthwise
# Conv1d with bias; two LayerNorms per block (the second one in front of the identity MLP slot); ReBased's γ, β on
# the whole heads × 16 projection of q and of k (4 × 192 = 768). tests/test_models.py checks it.

# arch name -> mixer of each layer. Two layers each, as in the ReBased figures: a short convolution, then the mixer.
ARCH_PATTERNS: dict[str, tuple[str, ...]] = {
    "attention": ("attention", "attention"),
    "conv-attention": ("short-conv", "attention"),
    "based": ("short-conv", "based"),
    "rebased": ("short-conv", "rebased"),
    "rebased-x2": ("short-conv", "rebased-x2"),
    "rebased-norm": ("short-conv", "rebased-norm"),
    "rebased-gamma": ("short-conv", "rebased-gamma"),
    "rebased-affine": ("short-conv", "rebased-affine"),
}

# arch name -> whether its LM adds learned absolute position embeddings. All the ReBased archs do; Zoology's
# Figure-2 models other than attention have none (`max_position_embeddings=0`, HazyResearch/zoology
# zoology/experiments/paper/zoology_figure2.py @194a712), so their archs register with False.
POSITION_EMBEDDINGS: dict[str, bool] = dict.fromkeys(ARCH_PATTERNS, True)


def register_arch(
    name: str, pattern: tuple[str, ...], mixers: Mapping[str, MixerSpec] = {}, *, position_embedding: bool = True
) -> None:
    """Add an architecture (and any new mixers it uses) to the registry; `position_embedding=False` builds its LM
    without learned position embeddings."""
    MIXERS.update(mixers)
    unknown = [mixer for mixer in pattern if mixer not in MIXERS]
    if unknown:
        raise ValueError(f"arch {name!r} uses unregistered mixer(s) {unknown}")
    ARCH_PATTERNS[name] = tuple(pattern)
    POSITION_EMBEDDINGS[name] = position_embedding


def arch_names() -> tuple[str, ...]:
    return tuple(ARCH_PATTERNS)


def check_arch(arch: str, d_model: int) -> tuple[str, ...]:
    """The layer pattern of `arch`, or a UserError naming the valid choices / the smallest usable d_model."""
    if arch not in ARCH_PATTERNS:
        raise UserError(f"unknown arch {arch!r}; choose one of {', '.join(ARCH_PATTERNS)}")
    pattern = ARCH_PATTERNS[arch]
    min_d_model = max(MIXERS[mixer].min_d_model for mixer in pattern)
    if not is_integer(d_model):
        raise UserError(f"d_model must be an integer, got {d_model!r}")
    if d_model >= 2**31:  # no model that large fits a device, and the results store keeps 64-bit integers
        raise UserError(f"d_model {d_model} is too large; use d_model < 2**31")
    if d_model < min_d_model:
        # the mixer that sets the minimum: only linear attention's is its 12 heads (rwkv's and h3's is 2)
        binding = next(mixer for mixer in pattern if MIXERS[mixer].min_d_model == min_d_model)
        why = (
            f"linear attention has {LINEAR_ATTENTION_HEADS} heads of value dim d_model // {LINEAR_ATTENTION_HEADS}"
            if MIXERS[binding].build.__qualname__.startswith(_linear_attention.__qualname__)
            else f"its {binding!r} mixer: {MIXERS[binding].description}"
        )
        raise UserError(
            f"d_model {d_model!r} is too small for arch {arch!r}: it needs d_model ≥ {min_d_model} ({why})"
            if min_d_model > 1
            else f"d_model must be a positive integer, got {d_model!r}"
        )
    return pattern
