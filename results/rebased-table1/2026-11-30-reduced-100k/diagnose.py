"""What keeps the unnormalised kernels (x², (γx)², (γx+β)²) at chance? Prints the numbers quoted in README.md:
- the similarity normaliser Σ_j≤i A_ij at the labelled (query) positions, against the eps (1e-6) added to it, at
  initialisation and in stuck runs' mid-run checkpoints (is it the eps?);
- in the checkpoints, the attention weight A_ij / Σ_j A_ij that a query puts on its pair's value position (where the
  short convolution has mixed the key in), best head, against the weight on another pair's value position (does
  the layer match keys at all?);
- each model's accuracy on 256 validation examples (to check that the checkpoint is read right: it must match the
  store's valid accuracy at that epoch).

Run from the repository root (CPU, ~1 min):
    python results/rebased-table1/2026-11-30-reduced-100k/diagnose.py [CHECKPOINT_DIR]
CHECKPOINT_DIR holds the unfinished runs' <run id>.pt (unpack .scratch/checkpoints/rebased-table1/checkpoints.tar.part-*
there; they are not committed: 26 MB). Without it, only the initialisation half runs.
"""

import json
import sqlite3
import sys
from pathlib import Path

import torch

from mqar.data import TaskSpec, generate
from mqar.models import build_model
from mqar.runs import RunConfig

STORE = Path(__file__).parents[1] / "mqar.db"
STUCK = {"3d8e0b2a3eb4fa29": "(γx)² d48 seed 0", "c294bc7342fd2e16": "(γx)² d48 seed 1",
         "8c3c5b41fca6c2e1": "(γx+β)² d24 seed 0", "788c65a6aa842593": "(γx+β)² d24 seed 1 (leaving the plateau)",
         "01928ee2f1820c4d": "(γx+β)² d16 seed 0"}
QUANTILES = torch.tensor([0.01, 0.1, 0.5])


def similarities(model, inputs: torch.Tensor) -> torch.Tensor:
    """A_ij = s_ij² (j ≤ i, else 0) of the model's linear-attention layer, s = q·k/√16 as in the kernel: [B, H, T, T]."""
    mixer = model.blocks[1].mixer
    captured = {}
    hook = mixer.register_forward_hook(lambda module, args, output: captured.setdefault("x", args[0]))
    with torch.no_grad():
        model(inputs)
        hook.remove()
        hidden = captured["x"]
        batch, seq_len, _ = hidden.shape
        shape = (batch, seq_len, mixer.num_heads, mixer.feature_dim)
        q = mixer.q_transform(mixer.q_proj(hidden)).view(shape)
        k = mixer.k_transform(mixer.k_proj(hidden)).view(shape)
        s = torch.einsum("bihf,bjhf->bhij", q, k) / mixer.feature_dim**0.5
        return (s**2).tril()


def normaliser_at_queries(model, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Σ_j≤i A_ij per (query position, head): [queries, heads]."""
    return similarities(model, inputs).sum(-1).permute(0, 2, 1)[labels != -100]


def weight_on_pairs(model, inputs: torch.Tensor, labels: torch.Tensor, num_pairs: int) -> tuple[float, float]:
    """Median over queries of the best head's attention weight on the queried pair's value position, and on the
    value position of the pair 7 places further on (cyclically): equal when the layer does not match keys."""
    weights = similarities(model, inputs)
    weights = weights / (weights.sum(-1, keepdim=True) + model.blocks[1].mixer.eps)
    on_pair, on_other = [], []
    for example, position in (labels != -100).nonzero().tolist():
        (key_position,) = (inputs[example, : 2 * num_pairs : 2] == inputs[example, position]).nonzero()[0].tolist()
        other_position = (key_position + 7) % num_pairs
        on_pair.append(weights[example, :, position, 2 * key_position + 1].max().item())
        on_other.append(weights[example, :, position, 2 * other_position + 1].max().item())
    return torch.tensor(on_pair).median().item(), torch.tensor(on_other).median().item()


def describe(name: str, model, inputs, labels) -> None:
    z = normaliser_at_queries(model.eval(), inputs, labels)
    with torch.no_grad():
        result = model.loss_and_accuracy(inputs, labels)
    quantiles = ", ".join(f"{value:.1e}" for value in torch.quantile(z.flatten(), QUANTILES).tolist())
    print(f"{name}: accuracy {(result.num_correct / result.num_labelled).item():.4f}; normaliser 1/10/50% quantiles "
          f"{quantiles}; share < 10·eps {(z < 10 * model.blocks[1].mixer.eps).float().mean().item():.4f}")


def main() -> None:
    spec = TaskSpec(seq_len=256, num_kv_pairs=32)
    inputs, labels = (torch.as_tensor(array).long() for array in generate(spec, 256, 0, split="valid"))
    for arch in ["rebased-x2", "rebased-gamma", "rebased-affine", "rebased"]:
        for d_model in [16, 48]:
            torch.manual_seed(0)
            describe(f"init {arch} d{d_model}", build_model(arch, d_model, 256, kernel_impl="torch"), inputs, labels)
    if len(sys.argv) < 2:
        return
    store = sqlite3.connect(STORE)
    for run_id, name in STUCK.items():
        path = Path(sys.argv[1]) / f"{run_id}.pt"
        if not path.exists():
            print(f"{name}: no checkpoint {path}")
            continue
        config = RunConfig.from_dict(json.loads(store.execute("select config from runs where id=?", (run_id,)).fetchone()[0]))
        epoch, accuracy = store.execute(
            "select epoch, valid_accuracy from epochs where run_id=? order by epoch desc limit 1", (run_id,)).fetchone()
        model = build_model(config.arch, config.d_model, config.task.seq_len, kernel_impl="torch")
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=False)["trainer"]["model"])
        run_inputs, run_labels = (torch.as_tensor(a).long()
                                  for a in generate(config.task, 256, config.recipe.data_seed, split="valid"))
        describe(f"{name}, epoch {epoch} (store: valid accuracy {accuracy:.4f})", model, run_inputs, run_labels)
        on_pair, on_other = weight_on_pairs(model, run_inputs[:64], run_labels[:64], config.task.num_kv_pairs)
        print(f"    attention on the queried pair's value {on_pair:.3f}, on another pair's {on_other:.3f} "
              "(best head, median over queries)")


if __name__ == "__main__":
    main()
