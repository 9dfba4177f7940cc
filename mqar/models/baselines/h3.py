"""H3 (Fu, Dao et al. 2023), as Zoology configures it for its Figure 2: `H3(d_model, l_max=L, d_state=L, head_dim=2)`
(d_state = L "makes it mathematically equivalent to Hyena", says the Zoology config), stacked 4 deep.

    q, k, v = q_proj(x), k_proj(x), v_proj(x)                        # d -> d each, with bias
    k = shift_ssm(k) + k_skip ⊙ k                                     # per channel
    for each head h (H = d / head_dim), with i, j < head_dim:
        kv[i, j] = k[h·head_dim + i] ⊙ v[h·head_dim + j]
        s[i, j]  = diag_ssm_h(kv[i, j]) + D[h] · kv[i, j]
        y[j·H + h] = Σ_i q[h·head_dim + i] ⊙ s[i, j]
    out = output_linear(y)

Two state-space models, each with a recurrence (the reference) and the convolution kernel it is equivalent to (the
fast path: the kernel is materialised once per forward and applied by FFT):

- shift SSM (per channel, state N): state_t = shift_right(state_{t-1}) + B·u_t, y_t = C·state_t. B starts at e₁
  (then the kernel is just C: a learned FIR filter of N taps); B and C are both trained, as in Zoology.
  Kernel: k[j] = Σ_m B[m]·C[m + j].
- diagonal SSM (S4D, per head, complex state N/2, bilinear discretisation, "diag-lin" init A_n = -½ + iπn, B = 1,
  C ~ complex normal, log dt ~ U[log 1e-3, log 1e-1]):
  x_t = Ā·x_{t-1} + B̄·u_t, y_t = 2·Re(C·x_t), with Ā = (1 + dtA/2)/(1 - dtA/2), B̄ = B·dt/(1 - dtA/2).
  Kernel: K[l] = 2·Re(Σ_n C_n B̄_n Ā_n^l).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mqar.errors import UserError
from mqar.models.baselines.hyena import long_conv

H3_IMPLS = ("fft", "recurrent")


class ShiftSSM(nn.Module):
    """A per-channel shift-register SSM: `channels` independent copies with state size `state_size`."""

    def __init__(self, channels: int, state_size: int) -> None:
        super().__init__()
        B = torch.zeros(channels, state_size)
        B[:, 0] = 1.0
        self.B = nn.Parameter(B)
        # Uniform ±1/sqrt(N): torch's Conv1d init for a filter of N taps (what Zoology's kaiming_uniform gives).
        self.C = nn.Parameter(torch.empty(channels, state_size).uniform_(-(state_size**-0.5), state_size**-0.5))

    def kernel(self, seq_len: int) -> torch.Tensor:
        """k [channels, seq_len], k[j] = Σ_m B[m]·C[m+j] (zero beyond the state size)."""
        state_size = self.B.shape[-1]
        fft_size = 2 * state_size
        # Cross-correlation of B and C, by FFT: conj(FFT(B))·FFT(C).
        correlation = torch.fft.irfft(
            torch.fft.rfft(self.B, n=fft_size).conj() * torch.fft.rfft(self.C, n=fft_size), n=fft_size
        )[..., :state_size]
        if seq_len <= state_size:
            return correlation[..., :seq_len]
        return nn.functional.pad(correlation, (0, seq_len - state_size))

    def recurrence(self, u: torch.Tensor) -> torch.Tensor:
        """The reference: u [..., channels, seq] -> y [..., channels, seq], one step at a time."""
        state = torch.zeros(*u.shape[:-1], self.B.shape[-1], dtype=u.dtype, device=u.device)  # [..., channels, N]
        outputs = []
        for t in range(u.shape[-1]):
            state = nn.functional.pad(state[..., :-1], (1, 0)) + self.B * u[..., t : t + 1]
            outputs.append((self.C * state).sum(-1))
        return torch.stack(outputs, dim=-1)


class DiagonalSSM(nn.Module):
    """S4D: `heads` independent complex diagonal SSMs of state size `state_size` (N/2 complex modes each)."""

    def __init__(self, heads: int, state_size: int, dt_min: float = 1e-3, dt_max: float = 1e-1) -> None:
        super().__init__()
        modes = state_size // 2
        self.log_dt = nn.Parameter(torch.rand(heads) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        self.inv_A_real = nn.Parameter(torch.full((heads, modes), math.log(0.5)))  # Re(A) = -exp(·) = -1/2
        self.A_imag = nn.Parameter(math.pi * torch.arange(modes, dtype=torch.float32).repeat(heads, 1))
        self.B = nn.Parameter(torch.view_as_real(torch.ones(heads, modes, dtype=torch.cfloat)).clone())
        self.C = nn.Parameter(torch.view_as_real(torch.randn(heads, modes, dtype=torch.cfloat)).clone())

    def discretised(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(Ā, B̄, C) as complex [heads, modes] (bilinear transform)."""
        dt = torch.exp(self.log_dt)[:, None]  # [heads, 1]
        A = torch.complex(-torch.exp(self.inv_A_real), self.A_imag)
        dtA = A * dt
        A_bar = (1 + dtA / 2) / (1 - dtA / 2)
        B_bar = torch.view_as_complex(self.B) * dt / (1 - dtA / 2)
        return A_bar, B_bar, torch.view_as_complex(self.C)

    def kernel(self, seq_len: int) -> torch.Tensor:
        """K [heads, seq_len], K[l] = 2·Re(Σ_n C_n B̄_n Ā_n^l)."""
        A_bar, B_bar, C = self.discretised()
        positions = torch.arange(seq_len, device=A_bar.device, dtype=self.log_dt.dtype)
        powers = torch.exp(torch.log(A_bar)[..., None] * positions)  # [heads, modes, seq]: Ā^l
        # multiply-and-sum rather than einsum: autocast would try to cast a complex matmul
        return 2 * ((C * B_bar)[..., None] * powers).sum(-2).real

    def recurrence(self, u: torch.Tensor) -> torch.Tensor:
        """The reference: u [..., heads, seq] -> y [..., heads, seq], one step at a time."""
        A_bar, B_bar, C = self.discretised()
        state = torch.zeros(*u.shape[:-1], A_bar.shape[-1], dtype=A_bar.dtype, device=u.device)  # [..., heads, modes]
        outputs = []
        for t in range(u.shape[-1]):
            state = A_bar * state + B_bar * u[..., t : t + 1]
            outputs.append(2 * (C * state).sum(-1).real)
        return torch.stack(outputs, dim=-1)


class H3Mixer(nn.Module):
    rescaled_out_proj = False  # Zoology's init matches "out_proj"/"output_linear.0"; H3's `output_linear` is neither

    def __init__(self, d_model: int, state_size: int, head_dim: int = 2, impl: str = "fft") -> None:
        super().__init__()
        if d_model % head_dim:
            raise UserError(f"d_model {d_model} is not divisible by H3's head_dim {head_dim}; use an even d_model")
        if impl not in H3_IMPLS:
            raise ValueError(f"unknown H3 impl {impl!r}; expected one of {H3_IMPLS}")
        self.head_dim = head_dim
        self.heads = d_model // head_dim
        self.impl = impl
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.shift_ssm = ShiftSSM(d_model, state_size)
        self.shift_skip = nn.Parameter(torch.randn(d_model))
        self.diagonal_ssm = DiagonalSSM(self.heads, state_size)
        self.D = nn.Parameter(torch.randn(self.heads))
        self.output_linear = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq_len, d_model = x.shape
        q, k, v = (proj(x).transpose(1, 2) for proj in (self.q_proj, self.k_proj, self.v_proj))  # [batch, d, seq]
        if self.impl == "fft":
            k_shifted = long_conv(k, self.shift_ssm.kernel(seq_len), "fft")
        else:
            k_shifted = self.shift_ssm.recurrence(k)
        k = k_shifted + self.shift_skip[:, None] * k
        heads, head_dim = self.heads, self.head_dim
        # channel c = h·head_dim + i  ->  [batch, i, 1, h, seq] for k and q, [batch, 1, j, h, seq] for v
        k = k.view(batch, heads, head_dim, seq_len).permute(0, 2, 1, 3).unsqueeze(2)
        v = v.view(batch, heads, head_dim, seq_len).permute(0, 2, 1, 3).unsqueeze(1)
        q = q.view(batch, heads, head_dim, seq_len).permute(0, 2, 1, 3).unsqueeze(2)
        kv = k * v  # [batch, i, j, heads, seq]
        if self.impl == "fft":
            state_out = long_conv(kv, self.diagonal_ssm.kernel(seq_len), "fft")  # the FFT runs in ≥ fp32
        else:
            state_out = self.diagonal_ssm.recurrence(kv).to(kv.dtype)
        state_out = state_out + self.D[:, None] * kv
        y = (q * state_out).sum(1)  # [batch, j, heads, seq]
        y = y.reshape(batch, d_model, seq_len).transpose(1, 2)  # output channel j·heads + h, as in Zoology
        return self.output_linear(y)
