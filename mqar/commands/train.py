"""`mqar train`: one training run from flags; the last line on stdout is the run's summary as one JSON object."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Optional

import typer

from mqar.commands import fail, sigterm_as_ctrl_c
from mqar.data import TaskSpec
from mqar.errors import UserError
from mqar.runs import Recipe, RunConfig

_DEFAULTS = Recipe()


def train(
    arch: str = typer.Option(..., help="Architecture: attention, conv-attention, based, rebased, rebased-x2, ..."),
    d_model: int = typer.Option(..., help="Model width (linear attention needs ≥ 12: 12 heads)."),
    seq_len: int = typer.Option(..., help="Sequence length of the task (even)."),
    num_kv_pairs: int = typer.Option(..., help="Key-value pairs per example (4·kv ≤ seq_len)."),
    lr: float = typer.Option(..., help="Peak learning rate (cosine to 0 over the epochs)."),
    seed: int = typer.Option(0, help="Model seed: init, dropout and batch order."),
    epochs: int = typer.Option(_DEFAULTS.epochs, help="Maximum epochs (early stop once valid accuracy > 0.99)."),
    num_train_examples: int = typer.Option(_DEFAULTS.num_train_examples, help="Training examples."),
    num_valid_examples: int = typer.Option(
        _DEFAULTS.num_valid_examples, help="Validation examples (pick the best epoch)."
    ),
    num_test_examples: int = typer.Option(
        _DEFAULTS.num_test_examples, help="Test examples (scored at the best epoch)."
    ),
    vocab_size: int = typer.Option(8192, help="Vocabulary size."),
    power_a: float = typer.Option(0.01, help="Query-gap power law p_i ∝ a·i^(a-1); 1 is uniform."),
    data_seed: int = typer.Option(_DEFAULTS.data_seed, help="Seed of the train/valid/test examples."),
    batch_size: int = typer.Option(_DEFAULTS.batch_size, help="Examples per optimiser step (micro-batched on OOM)."),
    early_stop_accuracy: float = typer.Option(
        _DEFAULTS.early_stop_accuracy, help="Stop once valid accuracy exceeds this."
    ),
    device: str = typer.Option("auto", help="auto (CUDA if available), cpu, cuda or cuda:N."),
    precision: str = typer.Option(
        _DEFAULTS.precision,
        help="fp32, or bf16 (autocast, fp32 master weights): faster; learns like fp32 where checked (results/train-equivalence/v2).",
    ),
    kernel_impl: str = typer.Option("auto", help="Linear attention and LayerNorm: auto (Triton on CUDA), triton or torch."),
    cuda_graphs: bool = typer.Option(True, help="On CUDA, replay the training step as a CUDA graph (same result)."),
    compile: bool = typer.Option(
        False, "--compile",
        help="torch.compile the model (8-20 % more tokens/s on an H200; compiles for seconds first).",
    ),
    output: Optional[Path] = typer.Option(None, help="Also write the full result (curve, versions) to this JSON file."),
    progress: bool = typer.Option(True, help="Show a progress bar on stderr."),
    checkpoint: Optional[Path] = typer.Option(
        None, help="Save the run's state here after every epoch; run the same command again to continue it."
    ),
) -> None:
    """Train one model on one MQAR task and print its result (last line: one JSON object)."""
    from mqar.kernels import IMPLS
    from mqar.train import TrainingDiverged, train as train_run

    if kernel_impl not in IMPLS:
        raise UserError(f"unknown --kernel-impl {kernel_impl!r}; use one of {', '.join(IMPLS)}")
    if kernel_impl == "triton" and os.environ.get("TRITON_INTERPRET", "0") != "1":
        from mqar.provenance import resolve_device

        if resolve_device(device) == "cpu":  # Triton has no CPU driver; only its interpreter runs there
            raise UserError("--kernel-impl triton needs a CUDA GPU (or TRITON_INTERPRET=1, Triton's slow CPU "
                            "interpreter); use --kernel-impl auto or torch on the CPU")
    if not 0 < lr < math.inf:  # before RunConfig, whose own message names no flag
        raise UserError(f"--lr must be positive and finite, got {lr}")
    config = RunConfig(
        task=TaskSpec(seq_len=seq_len, num_kv_pairs=num_kv_pairs, vocab_size=vocab_size, power_a=power_a),
        arch=arch,
        d_model=d_model,
        lr=lr,
        seed=seed,
        recipe=Recipe(
            epochs=epochs,
            num_train_examples=num_train_examples,
            num_valid_examples=num_valid_examples,
            num_test_examples=num_test_examples,
            batch_size=batch_size,
            early_stop_accuracy=early_stop_accuracy,
            precision=precision,
            data_seed=data_seed,
        ),
    )
    if checkpoint is not None:
        from mqar.checkpoint import check_checkpoint_path

        check_checkpoint_path(checkpoint)
    if output is not None:
        _check_output_path(output)  # now, not after the training: an unwritable path would lose the run
    # SIGTERM (timeout, a SLURM time limit, kill PID) as Ctrl-C: it killed the run without a word on what is kept.
    with sigterm_as_ctrl_c() as interrupts:
        try:
            result = train_run(config, device=device, progress=progress, kernel_impl=kernel_impl,
                               cuda_graphs=cuda_graphs, compile_model=compile, checkpoint=checkpoint)
        except TrainingDiverged as error:
            fail(str(error))
        except KeyboardInterrupt:  # one line on what is kept, as `mqar sweep` says how to resume; the shell's code
            if checkpoint is not None:
                kept = f"the last finished epoch is kept in {checkpoint}: run the same command to continue from it"
            else:
                kept = "nothing is kept; with --checkpoint FILE a run continues from its last finished epoch"
            print(f"interrupted: {kept}", file=sys.stderr)
            raise typer.Exit(code=128 + interrupts.signum) from None
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    typer.echo(json.dumps(result.summary()))


def _check_output_path(output: Path) -> None:
    """Fail in one line when --output cannot be written (its folder is created here, as the write would)."""
    existed = output.exists()
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        with open(output, "a"):
            pass
    except OSError as error:
        raise UserError(f"cannot write --output {output} ({error.strerror}); choose a writable file path") from None
    if not existed:
        output.unlink()
