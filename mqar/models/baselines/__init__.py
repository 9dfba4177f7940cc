"""The papers' other baselines as mixers, in plain torch (CPU or GPU; no mamba_ssm / causal_conv1d / CUDA builds).

Importing this package registers six archs (`mqar.models` imports it, so they are always there):

| arch | layers (mixer per layer) | positions | as in |
|---|---|---|---|
| mamba | mamba, mamba — each in Mamba's block x + mixer(RMSNorm(x)) | learned | ReBased Figure 1 (`mamba`, MambaBlock) |
| rwkv | rwkv, rwkv (RWKV-4 time mixing, n_layer 2) | learned | ReBased Figure 1 (`rwkv`) |
| rwkv-zoology | rwkv-zoology × 4 (RWKV-4 time mixing, n_layer 12, layer_idx 0..3) | none | Zoology Figure 2 (`rwkv`) |
| hyena | hyena × 4 | none | Zoology Figure 2 (`hyena`, n_layers 4) |
| h3 | h3 × 4 (d_state = seq_len, head_dim 2) | none | Zoology Figure 2 (`h3`) |
| base-conv | short-conv, long-conv, short-conv, long-conv | none | Zoology Figure 2 (`base_conv`, kernels [3, -1, 3, -1]) |

The Zoology rows follow HazyResearch/zoology zoology/experiments/paper/zoology_figure2.py @194a712: `n_layers=4` for
every mixer but attention, `max_position_embeddings=0` for them (no position embedding module at all), and RWKV as
`RWKVTimeMixer(l_max, d_model, layer_idx)` with the class default n_layer=12 for its init curves. `rwkv` stays
ReBased's 2-layer version with learned positions; `rwkv-zoology` is Zoology's. Neither grid puts a short-conv layer in
front of these baselines (ReBased does so only for based/rebased/conv-attention), so none is added here. Everything
else is the LM's: embedding dropout 0.1, pre-norm blocks with an identity MLP slot, final LayerNorm, tied head,
N(0, 0.02) init. Where the papers' models still differ from that, we did not follow them (the LM is shared by all
archs): Zoology's Figure 2 also has Mamba, 4 layers deep without positions, which we do not register (`mamba` is
ReBased's 2-layer one with learned positions; no mqar preset runs Mamba on Zoology's grid); ReBased's Mamba path
applies no embedding dropout.

Parameters (`count_params(build_model(arch, d_model, seq_len=256, vocab_size=8192))`; the tied embedding
8192 × d_model is included, and positions 256 × d_model where the arch has them):

| arch | d=64 | d=128 | d=256 | d=512 |
|---|---|---|---|---|
| mamba | 606,208 | 1,314,816 | 3,039,232 | 7,716,864 |
| rwkv | 574,720 | 1,214,976 | 2,692,096 | 6,432,768 |
| rwkv-zoology | 592,256 | 1,315,584 | 3,155,456 | 8,408,064 |
| hyena | 649,344 | 1,392,128 | 3,270,912 | 8,601,344 |
| h3 | 821,888 | 1,774,848 | 4,073,984 | 10,245,120 |
| base-conv | 545,888 | 1,123,296 | 2,376,416 | 5,275,872 |
| rebased (for scale) | 578,752 | 1,180,288 | 2,460,160 | 5,308,672 |

ReBased's Table 6: the numbers we have (issue 3) are Based's 577,984 / 1,179,520 / 2,459,392 / 5,307,904 and
ReBased's 768 more — the rebased row above matches them exactly. Table 6's entries for Mamba and RWKV (if it has any)
were not available to us, so none are quoted. By construction our mamba and rwkv hold the same modules as the
ReBased code's (Mamba: RMSNorm + mixer per block; RWKV: two LayerNorms + time mixer per block; learned positions;
final LayerNorm), so their counts should equal what that code prints — not checked against the paper.

Training throughput on a GPU (one epoch, tokens/s in the last line's `tokens_per_s`):

    for a in mamba rwkv rwkv-zoology hyena h3 base-conv; do mqar train --arch $a --d-model 128 --seq-len 512
    --num-kv-pairs 128 --lr 1e-3 --epochs 1 --num-train-examples 20000 --device cuda --no-progress | tail -1; done
    (one line)

Fast paths and their references (tests/test_baselines.py checks each pair in fp64 on ragged lengths):
mamba: parallel scan vs sequential recurrence; rwkv, rwkv-zoology: log-space parallel scan vs RWKV-4's stable
recurrence; hyena, base-conv: FFT long convolution vs direct convolution; h3: SSM kernels + FFT vs the two SSM
recurrences.
"""

from __future__ import annotations

from mqar.models.baselines.base_conv import LongConvMixer
from mqar.models.baselines.h3 import H3Mixer
from mqar.models.baselines.hyena import HyenaMixer
from mqar.models.baselines.mamba import MambaBlock, MambaMixer
from mqar.models.baselines.rwkv import RWKVTimeMixer
from mqar.models.registry import MixerSpec, register_arch

RWKV_NUM_LAYERS = 2  # the ReBased grid builds its RWKV time mixers with n_layer=2 (it sets the init curves)
ZOOLOGY_NUM_LAYERS = 4  # Zoology's Figure 2: 4 layers for every non-attention model
ZOOLOGY_RWKV_INIT_LAYERS = 12  # zoology.mixers.rwkv.RWKVTimeMixer's default n_layer, which Figure 2 never overrides

BASELINE_MIXERS: dict[str, MixerSpec] = {
    "mamba": MixerSpec(lambda c: MambaMixer(c.d_model, d_state=16), 1, "Mamba selective SSM (d_state 16), Mamba block"),
    "rwkv": MixerSpec(
        lambda c: RWKVTimeMixer(c.d_model, layer_index=c.layer_index, num_layers=RWKV_NUM_LAYERS), 2,
        "RWKV-4 time mixing",
    ),
    "rwkv-zoology": MixerSpec(
        lambda c: RWKVTimeMixer(c.d_model, layer_index=c.layer_index, num_layers=ZOOLOGY_RWKV_INIT_LAYERS), 2,
        f"RWKV-4 time mixing, init curves of n_layer {ZOOLOGY_RWKV_INIT_LAYERS}",
    ),
    "hyena": MixerSpec(lambda c: HyenaMixer(c.d_model, c.seq_len), 1, "Hyena (order 2, implicit filter width 64)"),
    "h3": MixerSpec(lambda c: H3Mixer(c.d_model, state_size=c.seq_len, head_dim=2), 2, "H3 (shift + diagonal SSM)"),
    "long-conv": MixerSpec(lambda c: LongConvMixer(c.d_model, c.seq_len), 1, "BaseConv with an implicit long conv"),
}


def register_baselines() -> None:
    """Register the baseline mixers and archs (idempotent)."""
    mixers = dict(BASELINE_MIXERS)
    register_arch("mamba", ("mamba", "mamba"), mixers)
    register_arch("rwkv", ("rwkv",) * RWKV_NUM_LAYERS)
    # Zoology's Figure 2 gives learned positions to attention only (max_position_embeddings=0 for the others)
    register_arch("rwkv-zoology", ("rwkv-zoology",) * ZOOLOGY_NUM_LAYERS, position_embedding=False)
    register_arch("hyena", ("hyena",) * ZOOLOGY_NUM_LAYERS, position_embedding=False)
    register_arch("h3", ("h3",) * ZOOLOGY_NUM_LAYERS, position_embedding=False)
    register_arch("base-conv", ("short-conv", "long-conv") * (ZOOLOGY_NUM_LAYERS // 2), position_embedding=False)


register_baselines()

__all__ = ["H3Mixer", "HyenaMixer", "LongConvMixer", "MambaBlock", "MambaMixer", "RWKVTimeMixer", "register_baselines"]
