"""Sequence primitives shared by the baseline mixers: a parallel prefix scan and causal long convolutions.

Each fast primitive sits next to the plain reference it is tested against (tests/test_baselines.py):

- `parallel_scan(elements, combine)`: Hillis–Steele inclusive scan along dim 1, log2(seq) steps of elementwise
  work, for any associative combine; RWKV-4's log-space WKV state uses it. Reference: `sequential_scan`, a left
  fold one position at a time.
- `linear_recurrence(decay, drive)`: the scan of h_t = decay_t·h_{t-1} + drive_t (Mamba's selective SSM), with a
  hand-written backward (a reverse scan) that keeps two tensors instead of every step's intermediates.
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


def _affine_scan_no_grad(decay: torch.Tensor, drive: torch.Tensor) -> torch.Tensor:
    """h_t = decay_t · h_{t-1} + drive_t along dim 1 from h_{-1} = 0, by Hillis–Steele, without autograd bookkeeping."""
    decay, state = decay.clone(), drive.clone()
    seq_len = decay.shape[1]
    offset = 1
    while offset < seq_len:
        # right-hand sides are computed into temporaries before the (overlapping) writes
        state[:, offset:] += decay[:, offset:] * state[:, :-offset]
        decay[:, offset:] = decay[:, offset:] * decay[:, :-offset]
        offset *= 2
    return state


class _LinearRecurrence(torch.autograd.Function):
    """h = linear_recurrence(decay, drive) with a hand-written backward, itself one reverse scan.

    With g_t = ∂L/∂h_t in total (from h_t's own use and through h_{t+1}): g_t = grad_t + decay_{t+1}·g_{t+1},
    ∂L/∂drive_t = g_t and ∂L/∂decay_t = g_t·h_{t-1}. Saves only decay and h (autograd through the generic scan
    would keep every step's intermediates: ~2·log2(seq) tensors of the state's size).
    """

    @staticmethod
    def forward(ctx, decay: torch.Tensor, drive: torch.Tensor) -> torch.Tensor:
        states = _affine_scan_no_grad(decay, drive)
        ctx.save_for_backward(decay, states)
        return states

    @staticmethod
    def backward(ctx, grad_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        decay, states = ctx.saved_tensors
        next_decay = torch.cat([decay[:, 1:], torch.zeros_like(decay[:, :1])], dim=1)  # decay_{t+1}; 0 past the end
        grad_total = _affine_scan_no_grad(next_decay.flip(1), grad_states.flip(1)).flip(1)
        previous_states = torch.cat([torch.zeros_like(states[:, :1]), states[:, :-1]], dim=1)  # h_{t-1}
        return grad_total * previous_states, grad_total


def linear_recurrence(decay: torch.Tensor, drive: torch.Tensor) -> torch.Tensor:
    """All states of h_t = decay_t ⊙ h_{t-1} + drive_t (h_{-1} = 0): decay, drive [batch, seq, ...] -> [batch, seq, ...].

    The same result as `parallel_scan` with the affine combine, with a cheaper, hand-written backward.
    """
    return _LinearRecurrence.apply(decay, drive)


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
