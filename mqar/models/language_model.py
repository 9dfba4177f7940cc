"""The language model around the mixers: embeddings, pre-norm blocks, final norm, tied head.

Follows the ReBased Figure-1 recipe (shared REFERENCE.md): learned absolute positions (unless built with
`position_embedding=False`, as Zoology's Figure-2 models other than attention are), embedding dropout 0.1,
blocks `x + mixer(norm1(x))` then `x + identity(norm2(x))` (Zoology's block with its state mixer, the MLP, set to
identity: the second norm stays, which is where 2 × 2·d_model of the paper's parameter counts come from),
a final LayerNorm, an LM head tied to the token embedding, init N(0, 0.02). The LayerNorms are
`mqar.models.norm.LayerNorm` (nn.LayerNorm's parameters; mqar's Triton kernel on CUDA when kernel_impl allows).
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional, Sequence

import torch
from torch import nn

from mqar.kernels.cross_entropy import cross_entropy_sum
from mqar.models.embedding import TokenEmbedding
from mqar.models.norm import LayerNorm

IGNORE_INDEX = -100


class LabelledLoss(NamedTuple):
    """Cross-entropy summed over labelled positions, the number right, and how many there were."""

    loss_sum: torch.Tensor  # fp32 scalar, differentiable
    num_correct: torch.Tensor  # int scalar
    num_labelled: torch.Tensor  # int scalar


class Block(nn.Module):
    """Pre-norm residual block whose state mixer (the MLP slot) is the identity.

    norm1 may hand a mixer bf16 directly under autocast only if the mixer says it feeds its input to matmuls alone
    (`input_only_feeds_matmuls`); norm2's output is added to the residual, so it keeps the residual's dtype
    (mqar.models.norm says why)."""

    def __init__(self, d_model: int, mixer: nn.Module, kernel_impl: str = "auto") -> None:
        super().__init__()
        matmul_input = getattr(mixer, "input_only_feeds_matmuls", False)
        self.norm1 = LayerNorm(d_model, impl=kernel_impl, autocast_output=matmul_input)
        self.mixer = mixer
        self.norm2 = LayerNorm(d_model, impl=kernel_impl)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.mixer(self.norm1(x))
        return x + self.norm2(x)


class LanguageModel(nn.Module):
    """Token ids [batch, seq] -> final hidden states [batch, seq, d_model]; `loss_and_accuracy` adds the head."""

    def __init__(
        self,
        mixers: Sequence[nn.Module],
        d_model: int,
        max_seq_len: int,
        vocab_size: int,
        embed_dropout: float = 0.1,
        init_std: float = 0.02,
        kernel_impl: str = "auto",
        position_embedding: bool = True,
    ) -> None:
        super().__init__()
        self.max_seq_len = max_seq_len
        self.token_embedding = TokenEmbedding(vocab_size, d_model)  # nn.Embedding; compiled: filler 0's backward apart
        # None: no module at all, as Zoology's max_position_embeddings=0 (no parameters, nothing drawn at init)
        self.position_embedding = nn.Embedding(max_seq_len, d_model) if position_embedding else None
        self.embed_dropout = nn.Dropout(embed_dropout)
        # A mixer may bring its own residual block (`residual_block`, a class taking (d_model, mixer)), e.g. Mamba's.
        self.blocks = nn.ModuleList(
            mixer.residual_block(d_model, mixer) if hasattr(mixer, "residual_block")
            else Block(d_model, mixer, kernel_impl)
            for mixer in mixers
        )
        # kernel_impl "auto" | "triton" | "torch", as the mixers'; its output feeds only the head's matmul
        self.final_norm = LayerNorm(d_model, impl=kernel_impl, autocast_output=True)
        self._init_weights(init_std)

    def _init_weights(self, std: float) -> None:
        # Linear and embedding weights N(0, std), biases 0; LayerNorm and the short convolution keep torch's
        # defaults (the reference init touches only Linear and Embedding). Mixer out-projections marked
        # `rescaled_out_proj` get std / sqrt(2·n_layers).
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=std)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
        for block in self.blocks:
            if getattr(block.mixer, "rescaled_out_proj", False):
                nn.init.normal_(block.mixer.out_proj.weight, std=std / math.sqrt(2 * len(self.blocks)))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.dim() != 2:  # one sequence of ids ([seq]) was an IndexError on shape[1]
            raise ValueError(f"inputs must be token ids [batch, seq], got shape {tuple(inputs.shape)} "
                             "(one sequence: inputs[None])")
        seq_len = inputs.shape[1]
        if seq_len > self.max_seq_len:
            raise ValueError(f"sequence of {seq_len} tokens is longer than the model's {self.max_seq_len} positions")
        x = self.token_embedding(inputs)
        if self.position_embedding is not None:
            x = x + self.position_embedding(torch.arange(seq_len, device=inputs.device))
        x = self.embed_dropout(x)
        for block in self.blocks:
            x = block(x)
        return self.final_norm(x)  # [batch, seq, d_model]

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The tied LM head: hidden [..., d_model] -> logits [..., vocab]."""
        return hidden @ self.token_embedding.weight.t()

    def loss_and_accuracy(
        self, inputs: torch.Tensor, labels: torch.Tensor, label_positions: Optional[torch.Tensor] = None
    ) -> LabelledLoss:
        """Cross-entropy and accuracy at labelled positions (labels != -100) only.

        The head runs only where there is a label: the same loss as full-vocabulary logits at every position with
        ignore_index, at a fraction of the cost (MQAR labels 1 position in 4 to 1 in 16).

        label_positions: [batch, labels_per_example], the labelled positions of each example in increasing order,
        when every example has the same number of labels (as in MQAR). Then the labelled states are gathered
        with fixed shapes: no host-device sync, so the step can be captured in a CUDA graph. Without it they are
        selected by a boolean mask (any label layout; the mask's count costs a sync). Same order, same loss.
        """
        hidden = self(inputs)  # [batch, seq, d_model]
        if label_positions is None:
            labelled = labels != IGNORE_INDEX
            hidden = hidden[labelled]  # [num_labelled, d_model]
            targets = labels[labelled]
        else:
            index = label_positions.unsqueeze(-1).expand(-1, -1, hidden.shape[-1])
            hidden = hidden.gather(1, index).flatten(0, 1)  # [batch · labels_per_example, d_model]
            targets = labels.gather(1, label_positions).flatten()
        # [num_labelled, vocab]; the softmax runs in fp32 under autocast too (one Triton pass on CUDA)
        loss_sum, num_correct = cross_entropy_sum(self.logits(hidden), targets)
        num_labelled = torch.full((), targets.numel(), device=targets.device, dtype=torch.long)
        return LabelledLoss(loss_sum, num_correct, num_labelled)
