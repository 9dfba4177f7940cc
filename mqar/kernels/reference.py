"""Plain-torch linear attention: the specification the Triton kernels are tested against.

Causal linear attention with a polynomial similarity of s = q·k / √F (F = q/k feature dim):

    o_i = Σ_{j≤i} A_ij v_j / (Σ_{j≤i} A_ij + eps)
    A_ij = 1 + s + s²/2   (kernel "based": the 2nd-order Taylor expansion of exp(s))
    A_ij = s²             (kernel "rebased": (q·k)² / F)

Three implementations, all on the layout [batch, seq, heads, dim], all causal:
- `linear_attention_naive`: a loop over query positions straight from the definition; slow, obviously right,
  exact in fp64. The ground truth for tests.
- `linear_attention_quadratic`: the whole T × T similarity matrix at once (the "parallel" form).
- `linear_attention_chunked`: the linear-time form. The similarity is a dot product of expanded features,
  A_ij = φ(q_i)·φ(k_j), so past chunks collapse into a state Σ φ(k_j) v_jᵀ and a normaliser Σ φ(k_j);
  within a chunk the quadratic form is used.

Inputs in half precision are upcast to fp32 inside (the normaliser is a sum over up to T positive terms);
fp64 inputs stay fp64. The output has the dtype of `v`.
"""

from __future__ import annotations

import math

import torch

KERNELS = ("based", "rebased")


def compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """fp32 unless an input is fp64: half-precision sums of many positive terms lose too much."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def similarity(scores: torch.Tensor, kernel: str) -> torch.Tensor:
    """A = f(s) for raw dot products q·k; s = q·k / √F is formed by the caller."""
    if kernel == "based":
        return 1 + scores + 0.5 * scores * scores
    if kernel == "rebased":
        return scores * scores
    raise ValueError(f"unknown kernel {kernel!r}; expected one of {KERNELS}")


def feature_map(x: torch.Tensor, kernel: str) -> torch.Tensor:
    """φ with φ(q)·φ(k) = f(q·k/√F). x: [..., F] -> [..., F'] (F' = 1 + F + F² for based, F² for rebased).

    based:   φ(x) = [1, x / F^¼, (x⊗x) / (√2 · √F)]  -> 1 + s + s²/2
    rebased: φ(x) = (x⊗x) / √F                       -> s²
    """
    feature_dim = x.shape[-1]
    outer = (x.unsqueeze(-1) * x.unsqueeze(-2)).flatten(-2)  # [..., F*F]
    if kernel == "rebased":
        return outer / math.sqrt(feature_dim)
    if kernel == "based":
        ones = torch.ones_like(x[..., :1])
        linear = x / feature_dim**0.25
        quadratic = outer / math.sqrt(2 * feature_dim)
        return torch.cat([ones, linear, quadratic], dim=-1)
    raise ValueError(f"unknown kernel {kernel!r}; expected one of {KERNELS}")


def exclusive_cumsum(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Sum of all entries strictly before each index along `dim` (shift, then cumsum: no cancellation)."""
    shifted = torch.cat([torch.zeros_like(x.narrow(dim, 0, 1)), x.narrow(dim, 0, x.shape[dim] - 1)], dim=dim)
    return shifted.cumsum(dim=dim)


def linear_attention_naive(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kernel: str = "based", eps: float = 1e-6
) -> torch.Tensor:
    """The definition, one query position at a time. O(T²) work in T small steps: for tests only."""
    dtype = compute_dtype(q, k, v)
    q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    scale = 1 / math.sqrt(q.shape[-1])
    outputs = []
    for i in range(q.shape[1]):
        # [batch, j<=i, heads]: similarity of query i with every key up to i
        scores = torch.einsum("bhf,bjhf->bjh", q[:, i], k[:, : i + 1]) * scale
        weights = similarity(scores, kernel)
        numerator = torch.einsum("bjh,bjhd->bhd", weights, v[:, : i + 1])
        denominator = weights.sum(dim=1).unsqueeze(-1)  # [batch, heads, 1]
        outputs.append(numerator / (denominator + eps))
    return torch.stack(outputs, dim=1)  # [batch, seq, heads, D]


def linear_attention_quadratic(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kernel: str = "based", eps: float = 1e-6
) -> torch.Tensor:
    """The parallel form: the full causal T × T similarity matrix. Memory O(B·H·T²)."""
    out_dtype = v.dtype
    dtype = compute_dtype(q, k, v)
    seq_len = q.shape[1]
    scale = 1 / math.sqrt(q.shape[-1])
    # [batch, heads, seq, dim]: heads in front so that the T × T products are plain batched matmuls.
    q = (q.to(dtype) * scale).transpose(1, 2)
    k, v = k.to(dtype).transpose(1, 2), v.to(dtype).transpose(1, 2)
    scores = q @ k.transpose(-1, -2)  # [batch, heads, T, T], already divided by √F
    if kernel == "based":
        weights = torch.addcmul(scores + 1, scores, scores, value=0.5)  # 1 + s + s²/2 in two passes
    else:
        weights = similarity(scores, kernel)
    # Causal: key j ≤ query i. Multiplying by a 0/1 mask is ~2x faster on CPU than tril or masked_fill (fwd+bwd).
    weights = weights * torch.ones(seq_len, seq_len, dtype=dtype, device=q.device).tril()
    out = (weights @ v) / (weights.sum(dim=-1, keepdim=True) + eps)  # [batch, heads, seq, D]
    return out.transpose(1, 2).to(out_dtype)


def linear_attention_chunked(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    kernel: str = "based",
    eps: float = 1e-6,
    chunk_size: int = 64,
) -> torch.Tensor:
    """The linear-time form: quadratic within chunks of `chunk_size`, a recurrent state across chunks.

    Memory O(B·H·T·F') for the expanded features (F' = 273 for based, 256 for rebased at F = 16).
    """
    out_dtype = v.dtype
    dtype = compute_dtype(q, k, v)
    q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    batch, seq_len, heads, feature_dim = q.shape
    value_dim = v.shape[-1]
    scale = 1 / math.sqrt(feature_dim)

    # Pad the sequence to whole chunks. Padding sits after every real position, so causality keeps it out of
    # every real output; the padded outputs are cut off at the end.
    num_chunks = -(-seq_len // chunk_size)
    pad = num_chunks * chunk_size - seq_len
    if pad:
        q, k, v = (torch.nn.functional.pad(t, (0, 0, 0, 0, 0, pad)) for t in (q, k, v))

    def chunks(t: torch.Tensor) -> torch.Tensor:
        # [batch, seq, heads, dim] -> [batch, heads, chunks, chunk, dim]
        return t.reshape(batch, num_chunks, chunk_size, heads, t.shape[-1]).permute(0, 3, 1, 2, 4)

    qc, kc, vc = chunks(q), chunks(k), chunks(v)

    # Within a chunk: the causal quadratic form.
    scores = torch.einsum("bhnif,bhnjf->bhnij", qc, kc) * scale  # [batch, heads, chunks, C, C]
    causal = torch.ones(chunk_size, chunk_size, dtype=torch.bool, device=q.device).tril()
    weights = similarity(scores, kernel).masked_fill(~causal, 0)
    numerator = torch.einsum("bhnij,bhnjd->bhnid", weights, vc)
    denominator = weights.sum(dim=-1)  # [batch, heads, chunks, C]

    # Across chunks: each chunk reads the state of all chunks before it (an exclusive prefix sum).
    phi_q, phi_k = feature_map(qc, kernel), feature_map(kc, kernel)  # [batch, heads, chunks, C, F']
    chunk_state = torch.einsum("bhnjf,bhnjd->bhnfd", phi_k, vc)  # [batch, heads, chunks, F', D]
    chunk_norm = phi_k.sum(dim=3)  # [batch, heads, chunks, F']
    state = exclusive_cumsum(chunk_state, dim=2)
    norm = exclusive_cumsum(chunk_norm, dim=2)
    numerator = numerator + torch.einsum("bhnif,bhnfd->bhnid", phi_q, state)
    denominator = denominator + torch.einsum("bhnif,bhnf->bhni", phi_q, norm)

    out = numerator / (denominator.unsqueeze(-1) + eps)  # [batch, heads, chunks, C, D]
    out = out.permute(0, 2, 3, 1, 4).reshape(batch, num_chunks * chunk_size, heads, value_dim)
    return out[:, :seq_len].to(out_dtype)
