"""Sequence primitives shared by the baseline mixers: a parallel prefix scan and causal long convolutions.

Each fast primitive sits next to the plain reference it is tested against (tests/test_baselines.py):

- `parallel_scan(elements, combine)`: Hillis–Steele inclusive scan along dim 1, log2(seq) steps of elementwise
  work. Used for Mamba's selective-SSM recurrence and RWKV-4's WKV recurrence, both of which are associative
  "first-order affine" updates. Reference: `sequential_scan`, a left fold one position at a time.
- `fft_causal_conv(u, kernel)`: causal convolution y_t = Σ_{s≤t} kernel[t-s] · u_s over the whole sequence, by FFT
  (O(L log L)). Used for the long convolutions of Hyena, H3 and BaseConv. Reference: `direct_causal_conv`, a
  loop over output positions (O(L²)).

All functions are plain torch, device-agnostic, and differentiable.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

Elements = tuple[torch.Tensor, ...]
Combine = Callable[[Elements, Elements], Elements]


def parallel_scan(elements: Sequence[torch.Tensor], combine: Combine) -> Elements:
    """Inclusive scan along dim 1 with an associative `combine(earlier, later)`, in ceil(log2(seq)) steps.

    `elements` are tensors [batch, seq, ...] (same first two dims). Step k combines every position t ≥ 2^k with
    the running prefix at t - 2^k (Hillis–Steele); positions before 2^k are already complete. Out-of-place (no
    in-place writes), so autograd sees ordinary ops.
    """
    elements = tuple(elements)
    seq_len = elements[0].shape[1]
    offset = 1
    while offset < seq_len:
        earlier = tuple(element[:, :-offset] for element in elements)
        later = tuple(element[:, offset:] for element in elements)
        combined = combine(earlier, later)
        elements = tuple(
            torch.cat([element[:, :offset], new], dim=1) for element, new in zip(elements, combined)
        )
        offset *= 2
    return elements


def sequential_scan(elements: Sequence[torch.Tensor], combine: Combine) -> Elements:
    """The reference for `parallel_scan`: fold position by position, left to right."""
    elements = tuple(elements)
    prefix = tuple(element[:, 0] for element in elements)
    outputs = [prefix]
    for t in range(1, elements[0].shape[1]):
        prefix = combine(prefix, tuple(element[:, t] for element in elements))
        outputs.append(prefix)
    return tuple(torch.stack([output[i] for output in outputs], dim=1) for i in range(len(elements)))


def fft_causal_conv(u: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Causal convolution along the last dim: u [..., channels, seq], kernel [channels, kernel_len] -> [..., channels, seq].

    y[..., c, t] = Σ_{s=0..t} kernel[c, t - s] · u[..., c, s]; kernel taps beyond seq are unused, a shorter kernel
    is zero-padded. Zero-padding both to 2·seq makes the FFT's circular convolution linear (no wrap-around). The
    product is taken in the kernel's dtype, at least fp32: FFTs in half precision lose the long tail.
    """
    seq_len = u.shape[-1]
    kernel = kernel[..., :seq_len]
    compute_dtype = torch.promote_types(kernel.dtype, torch.float32)
    fft_size = 2 * seq_len
    u_f = torch.fft.rfft(u.to(compute_dtype), n=fft_size)
    k_f = torch.fft.rfft(kernel.to(compute_dtype), n=fft_size)
    y = torch.fft.irfft(u_f * k_f, n=fft_size)[..., :seq_len]
    return y.to(u.dtype)


def direct_causal_conv(u: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """The reference for `fft_causal_conv`: y_t = Σ_{s≤t} kernel[t-s] · u_s, one output position at a time."""
    seq_len = u.shape[-1]
    kernel = kernel[..., :seq_len]
    kernel = torch.nn.functional.pad(kernel, (0, seq_len - kernel.shape[-1]))  # [channels, seq]
    outputs = []
    for t in range(seq_len):
        taps = kernel[..., : t + 1].flip(-1)  # [channels, t+1]: kernel[t - s] for s = 0..t
        outputs.append((u[..., : t + 1] * taps).sum(-1))
    return torch.stack(outputs, dim=-1)
