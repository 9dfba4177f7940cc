"""The token embedding: nn.Embedding (same parameters, init and state_dict keys) whose backward, when the model
runs under torch.compile on CUDA, sums the rows of one frequent token apart.

Why: MQAR's filler token 0 is a quarter of all tokens at L = 512, kv = 128 (128 of 512 per example), and torch's
CUDA embedding backward, which sorts the tokens and sums each token's rows as one segment, is 3× slower on such a
batch than on uniform tokens: fwd+bwd of 512 × 512 tokens, d 128, H200, 1.02 vs 0.34 ms. Leaving the frequent
token out of that backward (its `padding_idx` argument) and summing its row as one masked reduction does not pay
in eager mode (1.32 ms: the masked sum costs more than the segment it removes), but under torch.compile, where
inductor compiles this backward, it does: the compiled rebased d128 L512 bf16 step went 23.03 → 24.09 M tokens/s,
based 24.53 → 25.26, attention 33.81 → 35.69 (results/bench/train-compile/2026-11-30/, embedding-*.txt). So the
split is taken only while compiling; otherwise this is nn.Embedding. Same gradient up to the order of fp32 sums.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


class _FrequentTokenEmbedding(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tokens: torch.Tensor, weight: torch.Tensor, frequent_token: int) -> torch.Tensor:
        ctx.save_for_backward(tokens)
        ctx.num_rows, ctx.frequent_token = weight.shape[0], frequent_token
        return F.embedding(tokens, weight)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (tokens,) = ctx.saved_tensors
        grad_rows = grad.reshape(-1, grad.shape[-1])
        flat_tokens = tokens.reshape(-1)
        # every token but the frequent one (padding_idx: its rows are skipped, its gradient row left at zero) ...
        grad_weight = torch.ops.aten.embedding_dense_backward(
            grad_rows, flat_tokens, ctx.num_rows, ctx.frequent_token, False
        )
        # ... and the frequent one's row as a masked sum (fixed shapes: no host sync, CUDA-graph safe)
        is_frequent = (flat_tokens == ctx.frequent_token).unsqueeze(1)
        grad_weight[ctx.frequent_token] = torch.where(is_frequent, grad_rows, 0).sum(0)
        return None, grad_weight, None


class TokenEmbedding(nn.Embedding):
    """nn.Embedding whose backward, compiled on CUDA, sums `frequent_token`'s rows apart (module doc); None: never."""

    def __init__(self, num_embeddings: int, embedding_dim: int, frequent_token: Optional[int] = 0) -> None:
        super().__init__(num_embeddings, embedding_dim)
        if frequent_token is not None and not 0 <= frequent_token < num_embeddings:
            raise ValueError(f"frequent_token {frequent_token} is not a token of a {num_embeddings}-token vocabulary")
        self.frequent_token = frequent_token

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.frequent_token is None or not tokens.is_cuda or not torch.compiler.is_compiling():
            return super().forward(tokens)
        return frequent_token_embedding(tokens, self.weight, self.frequent_token)


def frequent_token_embedding(tokens: torch.Tensor, weight: torch.Tensor, frequent_token: int) -> torch.Tensor:
    """F.embedding(tokens, weight) with the frequent token's gradient row summed apart (any device)."""
    return _FrequentTokenEmbedding.apply(tokens, weight, frequent_token)
