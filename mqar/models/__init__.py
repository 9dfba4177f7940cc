"""Models: mixers, the language model around them, and the arch registry (name -> layer pattern).

    model = build_model("rebased", d_model=64, seq_len=256)
    hidden = model(inputs)                                    # [batch, seq] -> [batch, seq, d_model]
    loss_sum, num_correct, num_labelled = model.loss_and_accuracy(inputs, labels)
"""

from __future__ import annotations

from torch import nn

from mqar.config import is_integer
from mqar.errors import UserError
from mqar.models.language_model import LabelledLoss, LanguageModel
from mqar.models.registry import (
    ARCH_PATTERNS,
    MIXERS,
    POSITION_EMBEDDINGS,
    MixerContext,
    MixerSpec,
    check_arch,
    register_arch,
)

# The registered arch names (a live mapping name -> layer pattern: iterate it for the names).
ARCHS = ARCH_PATTERNS

__all__ = [
    "ARCHS",
    "MIXERS",
    "LabelledLoss",
    "LanguageModel",
    "MixerContext",
    "MixerSpec",
    "build_model",
    "count_params",
    "register_arch",
]


def build_model(
    arch: str, d_model: int, seq_len: int, vocab_size: int = 8192, *, kernel_impl: str = "auto"
) -> LanguageModel:
    """The language model of `arch` at width `d_model` for sequences of up to `seq_len` tokens, with `seq_len`
    learned positions where the arch has them (`POSITION_EMBEDDINGS`).

    Initialisation draws from torch's global RNG: seed it (or fork it) around this call for a reproducible model.
    `kernel_impl` picks the linear attention and LayerNorm implementations ("auto": Triton on CUDA tensors, torch
    otherwise; "triton" or "torch" everywhere).
    """
    pattern = check_arch(arch, d_model)
    if not is_integer(seq_len) or seq_len < 1:
        raise UserError(f"seq_len must be a positive integer, got {seq_len!r}")
    if not is_integer(vocab_size) or vocab_size < 2:
        raise UserError(f"vocab_size must be an integer ≥ 2, got {vocab_size!r}")
    mixers = [
        MIXERS[name].build(MixerContext(d_model, seq_len, layer_index, kernel_impl))
        for layer_index, name in enumerate(pattern)
    ]
    return LanguageModel(mixers, d_model=d_model, max_seq_len=seq_len, vocab_size=vocab_size, kernel_impl=kernel_impl,
                         position_embedding=POSITION_EMBEDDINGS[arch])


def count_params(model: nn.Module) -> int:
    """Trainable parameters, each counted once (the tied head shares the token embedding)."""
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)


import mqar.models.baselines  # noqa: E402,F401  (registers the archs mamba, rwkv, rwkv-zoology, hyena, h3, base-conv)
