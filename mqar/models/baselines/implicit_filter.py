"""Hyena's implicit long filter: a small MLP with sine activations maps positional features of t to one filter tap
per channel, then an exponential window makes far taps decay (Poli et al. 2023, as configured in Zoology).

Used by Hyena (width `order` 64; the positional features are trainable, as Zoology registers them) and by
BaseConv's long layers (Zoology's ImplicitLongConvolution: width 16, positional features frozen).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class Sine(nn.Module):
    """sin(freq ⊙ x) with a learnable frequency per feature."""

    def __init__(self, dim: int, frequency: float = 1.0) -> None:
        super().__init__()
        self.freq = nn.Parameter(frequency * torch.ones(1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.freq * x)


def positional_features(seq_len: int, emb_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(z [seq_len, emb_dim], t [seq_len, 1]): z = [t, cos(f·ω), -sin(f·ω) for each band f], t = linspace(0, 1).

    ω = 2π·position / seq_len; (emb_dim - 1) // 2 bands with frequencies linspace(1e-4, bands - 1).
    """
    if emb_dim < 3 or emb_dim % 2 == 0:
        raise ValueError(f"emb_dim must be odd and ≥ 3 (time, cosine, sine), got {emb_dim}")
    t = torch.linspace(0, 1, seq_len)[:, None]  # [seq, 1]
    bands = (emb_dim - 1) // 2
    omega = 2 * math.pi * torch.arange(seq_len, dtype=torch.float32)[:, None] / seq_len  # [seq, 1]
    frequencies = torch.linspace(1e-4, bands - 1, bands)[None, :]  # [1, bands]
    angle = frequencies * omega  # [seq, bands]
    return torch.cat([t, torch.cos(angle), -torch.sin(angle)], dim=-1), t


class ImplicitFilter(nn.Module):
    """Filter taps h [channels, seq] for a causal long convolution, from an MLP of positional features.

    MLP: Linear(emb_dim, order), sine, then `num_inner_layers` × (Linear(order, order), sine), then
    Linear(order, channels, no bias); one sine module (one frequency vector) shared by all activations. The taps are
    multiplied by exp(-t·|δ_c|), δ spread linearly over channels so that the window falls to `target` between
    30% (fast channels) and 150% (slow channels) of the maximum length.
    """

    def __init__(
        self,
        channels: int,
        max_seq_len: int,
        order: int,
        emb_dim: int = 3,
        num_inner_layers: int = 2,
        frequency: float = 1.0,
        trainable_positions: bool = False,
        fast_decay_pct: float = 0.3,
        slow_decay_pct: float = 1.5,
        target: float = 1e-2,
    ) -> None:
        super().__init__()
        z, t = positional_features(max_seq_len, emb_dim)
        if trainable_positions:
            self.z = nn.Parameter(z)
        else:
            self.register_buffer("z", z, persistent=False)
        self.register_buffer("t", t, persistent=False)
        activation = Sine(order, frequency)
        layers: list[nn.Module] = [nn.Linear(emb_dim, order), activation]
        for _ in range(num_inner_layers):
            layers += [nn.Linear(order, order), activation]
        layers.append(nn.Linear(order, channels, bias=False))
        self.mlp = nn.Sequential(*layers)
        max_decay, min_decay = math.log(target) / fast_decay_pct, math.log(target) / slow_decay_pct
        self.register_buffer("deltas", torch.linspace(min_decay, max_decay, channels)[None, :], persistent=False)

    def forward(self, seq_len: int) -> torch.Tensor:
        """The first `seq_len` taps of each channel: [channels, seq_len]."""
        if seq_len > self.z.shape[0]:
            raise ValueError(f"sequence of {seq_len} is longer than the filter's {self.z.shape[0]} taps")
        taps = self.mlp(self.z[:seq_len])  # [seq, channels]
        taps = taps * torch.exp(-self.t[:seq_len] * self.deltas.abs())
        return taps.transpose(0, 1)
