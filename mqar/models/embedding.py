"""The token embedding: nn.Embedding (same parameters, init and state_dict keys) whose CUDA backward sums the rows
of one frequent token densely.

Why: MQAR's filler token 0 is a quarter of all tokens at L = 512, kv = 128 (128 of 512 per example). torch's CUDA
embedding backward sorts the tokens and sums each token's gradient rows as one segment, in partial sums that a
second pass adds up per segment; the filler's segment, 65,536 rows at batch 512, makes that pass long. Here the
frequent token is left out of torch's backward (its `padding_idx` argument) and its row is one masked sum over
the gradient instead. Same gradient up to the order of fp32 additions. CPU tensors take nn.Embedding's own path.
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
    """nn.Embedding whose backward, on CUDA, sums `frequent_token`'s rows apart (see the module doc); None: never."""

    def __init__(self, num_embeddings: int, embedding_dim: int, frequent_token: Optional[int] = 0) -> None:
        super().__init__(num_embeddings, embedding_dim)
        if frequent_token is not None and not 0 <= frequent_token < num_embeddings:
            raise ValueError(f"frequent_token {frequent_token} is not a token of a {num_embeddings}-token vocabulary")
        self.frequent_token = frequent_token

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.frequent_token is None or not tokens.is_cuda:
            return super().forward(tokens)
        return frequent_token_embedding(tokens, self.weight, self.frequent_token)


def frequent_token_embedding(tokens: torch.Tensor, weight: torch.Tensor, frequent_token: int) -> torch.Tensor:
    """F.embedding(tokens, weight) with the frequent token's gradient row summed apart (any device)."""
    return _FrequentTokenEmbedding.apply(tokens, weight, frequent_token)
