"""One training run: RunConfig -> RunResult.

The recipe is the ReBased Figure-1 one (shared REFERENCE.md): AdamW (weight decay 0.1), a per-step cosine schedule
from the run's lr to 0 over `recipe.epochs`, batches of `recipe.batch_size` examples, early stop once validation
accuracy exceeds `recipe.early_stop_accuracy`. The validation split picks the best epoch; the test split is
scored at that epoch.

One known difference from both reference codes: they step torch's CosineAnnealingLR(T_max=epochs) once per epoch,
so the lr is constant within an epoch and epoch e trains at lr·(1 + cos(π e/E))/2 (the last one well above 0); here
it decays every step. Over a run the mean lr is lr/2 here and lr·(1/2 + 1/(2E)) there: 1.6 % more at E = 64 and
3 % at 32. Kept, because every committed run (and the bf16-vs-fp32 equivalence evidence) used the per-step form.

Choices that keep it cheap: the dataset lives on the device as tensors and batches are index slices of a seeded
permutation (no DataLoader); the LM head and the loss run only at labelled positions; a batch that does not fit
in CUDA memory is split into micro-batches with gradient accumulation (the gradient is the same: the loss is
normalised by the whole batch's label count).

Determinism: everything random comes from `config.seed` — model init and dropout from torch's global RNG, forked
and seeded for the run (the caller's RNG state is untouched), the batch order from its own torch.Generator. The
same config on the same device and software gives the same curve on CPU; on CUDA, kernels with atomics may differ
in the last bits. With a `checkpoint` file a stopped run continues after its last epoch with the same curve as
if it had not stopped (mqar.checkpoint).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np
import torch

from mqar.checkpoint import load_checkpoint, remove_checkpoint, save_checkpoint
from mqar.data import IGNORE_INDEX, Splits
from mqar.errors import UserError
from mqar.models import build_model, count_params
from mqar.models.language_model import LabelledLoss, LanguageModel
from mqar.models.registry import check_arch
from mqar.provenance import describe_device, resolve_device, versions
from mqar.runs import EpochRecord, Recipe, RunConfig, RunResult

# How often (in steps) the loss is read back from the device: to catch a NaN early and to feed the progress bar,
# without a host-device sync every step.
CHECK_EVERY_STEPS = 25


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite (usually: the learning rate is too high for this model)."""


def cosine_lr(base_lr: float, step: int, total_steps: int) -> float:
    """Cosine decay from base_lr at step 0 to 0 at step total_steps (no warmup)."""
    return base_lr * 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))


class DeviceSplit:
    """One split resident on the device: inputs and labels as int64 [num_examples, seq_len].

    `label_positions` [num_examples, labels_per_example] holds each example's labelled positions when every example
    has the same number of labels (MQAR: num_kv_pairs), else None; it lets the loss gather with fixed shapes.
    """

    def __init__(
        self, arrays: tuple[np.ndarray, np.ndarray], device: str, name: str, seq_len: int, vocab_size: int
    ) -> None:
        inputs, labels = (np.asarray(array) for array in arrays)
        if inputs.ndim != 2 or inputs.shape != labels.shape or inputs.shape[1] > seq_len or len(inputs) == 0:
            raise UserError(
                f"{name} split must be non-empty inputs and labels of one shape [examples, ≤ {seq_len}], "
                f"got {inputs.shape} and {labels.shape}"
            )
        is_labelled = labels != IGNORE_INDEX
        labelled = labels[is_labelled]
        tokens_ok = inputs.min() >= 0 and inputs.max() < vocab_size
        labels_ok = labelled.size == 0 or (labelled.min() >= 0 and labelled.max() < vocab_size)
        if not (tokens_ok and labels_ok):
            raise UserError(f"{name} split has tokens outside the task's vocabulary [0, {vocab_size})")
        self.inputs = torch.as_tensor(np.asarray(inputs, dtype=np.int64), device=device)
        self.labels = torch.as_tensor(np.asarray(labels, dtype=np.int64), device=device)
        labels_per_example = is_labelled.sum(axis=1)
        self.labelled_per_example = torch.as_tensor(labels_per_example, device=device)  # [num_examples]
        self.label_positions: Optional[torch.Tensor] = None
        if labels_per_example[0] > 0 and (labels_per_example == labels_per_example[0]).all():
            positions = np.nonzero(is_labelled)[1].reshape(len(inputs), labels_per_example[0])  # row-major: sorted
            self.label_positions = torch.as_tensor(positions, device=device)

    def __len__(self) -> int:
        return len(self.inputs)

    def loss_and_accuracy(self, model: LanguageModel, batch: torch.Tensor) -> LabelledLoss:
        """The model's loss and accuracy on the examples `batch` (indices) of this split."""
        positions = None if self.label_positions is None else self.label_positions[batch]
        return model.loss_and_accuracy(self.inputs[batch], self.labels[batch], positions)


class Trainer:
    """The state of one run: model, optimiser, micro-batch size. Built and used inside the run's forked RNG.

    cuda_graphs: on CUDA, capture the whole training step (forward, backward, optimiser) once as a CUDA graph and
    replay it for every full batch: one launch instead of hundreds. On an H200 that saved 2–5% of a step at d_model
    128 and 11% at d_model 16 (results/bench/train-bf16-fused-ce.md; the steps are mostly GPU-bound, see
    results/bench/train-profile.txt), and it keeps the GPU fed when several runs share it. The graph is used only
    where it computes exactly the eager step: full batches, no micro-batching, a split whose examples all have the
    same number of labels (fixed shapes). The first EAGER_STEPS_BEFORE_CAPTURE steps and every other step (e.g. an
    epoch's last, partial batch) run eagerly on the same parameters and optimiser state.

    compile_model: torch.compile the model's forward, which fuses the small ops around mqar's kernels (residual adds,
    gates, casts, the MLP's activation) in the forward and the backward; mqar's Triton ops stay opaque to it
    (`torch.compiler.disable`, see `linear_attention_triton`). On an H200, bf16, d_model 128, L 512, batch 512, with
    the CUDA graph: rebased 20.4 -> 24.5 M tokens/s, based 21.3 -> 25.4 (results/bench/train-compile/). The
    first step pays the compilation (~13 s there; inductor's cache shortens later runs). Same losses up to rounding.
    """

    # torch.compile's backend for compile_model (tests swap in "aot_eager": same graph capture, no C++ build).
    COMPILE_BACKEND = "inductor"

    # Eager steps before the capture: lazy initialisation (cuBLAS handles, Triton compilation, optimiser state)
    # must happen outside the graph; PyTorch's CUDA-graph notes warm up for 3 iterations on a side stream.
    EAGER_STEPS_BEFORE_CAPTURE = 3

    def __init__(
        self, config: RunConfig, device: str, kernel_impl: str, steps_total: int, cuda_graphs: bool = False,
        compile_model: bool = False,
    ) -> None:
        self.config = config
        self.device = device
        self.device_type = torch.device(device).type
        self.model: LanguageModel = build_model(
            config.arch, config.d_model, config.task.seq_len, config.task.vocab_size, kernel_impl=kernel_impl
        ).to(device)
        if compile_model:
            self._check_compiler()
            # Fresh dynamo caches per run: graphs compiled for an earlier run's model guard on that model and never
            # match again, yet count towards dynamo's recompile limit (8), past which it silently runs eagerly; a
            # sweep worker training runs one after another reached it by its fourth run.
            torch._dynamo.reset()
            # An instance attribute: nn.Module.__call__ finds it, and the state dict (checkpoints) stays the plain one.
            self.model.forward = torch.compile(self.model.forward, backend=self.COMPILE_BACKEND)
        self.cuda_graphs = cuda_graphs and self.device_type == "cuda"
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(),
            # a captured optimiser step reads the learning rate from device memory, so it is a tensor there
            lr=torch.tensor(config.lr, device=device) if self.cuda_graphs else config.lr,
            weight_decay=config.recipe.weight_decay,
            fused=self.device_type == "cuda",
            capturable=self.cuda_graphs,
        )
        self.steps_total = steps_total
        self.step = 0  # optimiser steps of the run (drives the schedule; restored on resume)
        self.steps_here = 0  # steps taken by this Trainer object (counts the eager warm-up before a capture)
        self.micro_batch_size = config.recipe.batch_size
        self.autocast_dtype = torch.bfloat16 if config.recipe.precision == "bf16" else None
        self._graph: Optional[torch.cuda.CUDAGraph] = None
        self._graph_split: Optional[DeviceSplit] = None
        self._graph_batch: Optional[torch.Tensor] = None  # the captured step reads its example indices from here
        self._graph_loss_sum: Optional[torch.Tensor] = None  # and writes its loss here
        self._warmup_stream = torch.cuda.Stream(device) if self.cuda_graphs else None

    def _check_compiler(self) -> None:
        """Inductor builds C++ for the CPU: without a compiler the first step would fail deep inside it."""
        if self.device_type != "cpu" or self.COMPILE_BACKEND != "inductor":
            return
        from torch._inductor.cpp_builder import get_cpp_compiler

        try:
            get_cpp_compiler()
        except Exception:  # torch raises its own InvalidCxxCompiler; any failure means the same here
            raise UserError(
                "--compile on the CPU needs a C++ compiler (g++ or clang++ on PATH, or CXX set); install one or "
                "leave out --compile"
            ) from None

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        # No cache of cast weights: a cached cast would be captured into the graph and go stale after the update.
        return torch.autocast(device_type=self.device_type, dtype=self.autocast_dtype, cache_enabled=False)

    def _shrink_micro_batch(self) -> None:
        """After a CUDA out-of-memory error: halve the micro-batch and free what the failed attempt held."""
        if self.micro_batch_size == 1:
            raise torch.cuda.OutOfMemoryError("out of CUDA memory even with micro-batches of a single example")
        self.micro_batch_size //= 2
        self.optimizer.zero_grad(set_to_none=True)
        torch.cuda.empty_cache()

    def _accumulate(self, split: DeviceSplit, batch: torch.Tensor) -> torch.Tensor:
        """Forward and backward over `batch` in micro-batches; returns the summed loss (detached)."""
        num_labelled = split.labelled_per_example[batch].sum().clamp(min=1)
        loss_sum = torch.zeros((), device=self.device)
        for micro_batch in batch.split(self.micro_batch_size):
            with self.autocast():
                result = split.loss_and_accuracy(self.model, micro_batch)
            (result.loss_sum / num_labelled).backward()
            loss_sum += result.loss_sum.detach()
        return loss_sum

    def _set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr

    def train_step(self, split: DeviceSplit, batch: torch.Tensor) -> torch.Tensor:
        """One optimiser step on `batch` (example indices); returns the batch's summed loss, on the device."""
        self.model.train()
        self._set_lr(cosine_lr(self.config.lr, self.step, self.steps_total))
        if self._graph_fits(split, batch):
            loss_sum = self._graphed_step(split, batch)
        elif self.cuda_graphs and self._graph is None:
            # Warm-up steps before the capture run on a side stream, as PyTorch's CUDA-graph notes ask.
            self._warmup_stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(self._warmup_stream):
                loss_sum = self._eager_step(split, batch)
            torch.cuda.current_stream(self.device).wait_stream(self._warmup_stream)
        else:
            loss_sum = self._eager_step(split, batch)
        self.step += 1
        self.steps_here += 1
        return loss_sum

    def _eager_step(self, split: DeviceSplit, batch: torch.Tensor) -> torch.Tensor:
        while True:
            self.optimizer.zero_grad(set_to_none=True)
            try:
                loss_sum = self._accumulate(split, batch)
                break
            except torch.cuda.OutOfMemoryError:
                pass  # handled outside the except block, once the failed attempt's tensors are released
            self._shrink_micro_batch()
        self.optimizer.step()
        return loss_sum

    def _graph_fits(self, split: DeviceSplit, batch: torch.Tensor) -> bool:
        """Whether this step can be (or is) the captured one: same split, a full batch, fixed shapes."""
        if not self.cuda_graphs or self.steps_here < self.EAGER_STEPS_BEFORE_CAPTURE:
            return False
        if self._graph is not None:
            return split is self._graph_split and len(batch) == len(self._graph_batch)
        return (
            split.label_positions is not None
            and len(batch) == self.config.recipe.batch_size
            and self.micro_batch_size == len(batch)
        )

    def _graphed_step(self, split: DeviceSplit, batch: torch.Tensor) -> torch.Tensor:
        if self._graph is None:
            try:
                self._capture(split, len(batch))
            except torch.cuda.OutOfMemoryError:
                # The graph keeps its own memory pool; where that does not fit, train eagerly (with micro-batches).
                self.cuda_graphs, self._graph, self._graph_batch, self._graph_loss_sum = False, None, None, None
                self.optimizer.zero_grad(set_to_none=True)
                torch.cuda.empty_cache()
                return self._eager_step(split, batch)
        self._graph_batch.copy_(batch)
        self._graph.replay()
        return self._graph_loss_sum.clone()  # the next replay overwrites it

    def _capture(self, split: DeviceSplit, batch_size: int) -> None:
        """Record one training step (forward, backward, optimiser step) on `split` as a CUDA graph; run nothing."""
        self._graph_batch = torch.zeros(batch_size, dtype=torch.long, device=self.device)
        # Gradients are created inside the capture (in the graph's memory pool): each replay writes them afresh.
        self.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        # The capture stream belongs to the current device: make that this trainer's (cuda:1 while cuda:0 is current
        # failed with "operation not permitted when stream is capturing").
        with torch.cuda.device(self.device), torch.cuda.graph(graph):
            loss_sum = self._accumulate(split, self._graph_batch)
            self.optimizer.step()
        self._graph, self._graph_split, self._graph_loss_sum = graph, split, loss_sum

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of the trainer (see mqar.checkpoint)."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "step": self.step,
                "micro_batch_size": self.micro_batch_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from `state_dict()`'s output; call before the first step (nothing is captured yet)."""
        self.model.load_state_dict(state["model"])
        # The saved param groups carry how the optimiser ran (fused, capturable, lr as a tensor or a float); keep
        # this trainer's own, so a checkpoint written with CUDA graphs loads without them and the other way round.
        own = [{key: value for key, value in group.items() if key != "params"} for group in self.optimizer.param_groups]
        self.optimizer.load_state_dict(state["optimizer"])
        for group, settings in zip(self.optimizer.param_groups, own):
            lr = float(group["lr"])
            group.update(settings)
            self._set_lr(lr)
            if settings.get("capturable") or settings.get("fused"):
                for param in group["params"]:  # these read Adam's step count from the parameter's device
                    state_of_param = self.optimizer.state.get(param, {})
                    if "step" in state_of_param:
                        state_of_param["step"] = state_of_param["step"].to(param.device, torch.float32)
        self.step = int(state["step"])
        self.micro_batch_size = int(state["micro_batch_size"])

    @torch.no_grad()
    def evaluate(self, split: DeviceSplit) -> tuple[float, float]:
        """(mean loss, accuracy) over the labelled positions of `split`, without dropout."""
        self.model.eval()
        while True:
            try:
                totals = torch.zeros(3, device=self.device, dtype=torch.float64)
                for batch in torch.arange(len(split), device=self.device).split(self.micro_batch_size):
                    with self.autocast():
                        result = split.loss_and_accuracy(self.model, batch)
                    counts = (result.loss_sum, result.num_correct, result.num_labelled)
                    totals += torch.stack([count.double() for count in counts])
                break
            except torch.cuda.OutOfMemoryError:
                pass
            self._shrink_micro_batch()
        loss_sum, num_correct, num_labelled = totals.tolist()
        num_labelled = max(num_labelled, 1.0)
        return loss_sum / num_labelled, num_correct / num_labelled


@dataclasses.dataclass
class _Progress:
    """How far a run has come. With the trainer's state and the random states, what a checkpoint holds."""

    curve: list[EpochRecord] = dataclasses.field(default_factory=list)
    best: Optional[EpochRecord] = None
    test_accuracy: float = float("nan")  # at the best epoch
    train_seconds: float = 0.0  # training steps only (for tokens/s)

    def state(self, trainer: "Trainer", order_generator: torch.Generator, cuda_index: Optional[int]) -> dict[str, Any]:
        """The checkpoint's content (mqar.checkpoint) at the end of an epoch."""
        assert self.best is not None
        return {
            "trainer": trainer.state_dict(),
            "order_generator": order_generator.get_state(),
            "cpu_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(cuda_index) if cuda_index is not None else None,
            "curve": [dataclasses.asdict(record) for record in self.curve],
            "best_epoch": self.best.epoch,
            "test_accuracy": self.test_accuracy,
            "train_seconds": self.train_seconds,
        }

    @classmethod
    def restore(cls, saved: dict[str, Any], trainer: "Trainer", order_generator: torch.Generator,
                cuda_index: Optional[int]) -> "_Progress":
        """Put `state()`'s output back: the trainer and random states in place, the progress returned."""
        trainer.load_state_dict(saved["trainer"])
        order_generator.set_state(saved["order_generator"].cpu())
        torch.set_rng_state(saved["cpu_rng"].cpu())
        if cuda_index is not None and saved.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(saved["cuda_rng"].cpu(), cuda_index)
        curve = [EpochRecord(**record) for record in saved["curve"]]
        return cls(curve=curve, best=curve[saved["best_epoch"] - 1], test_accuracy=saved["test_accuracy"],
                   train_seconds=saved["train_seconds"])


def _ended(curve: list[EpochRecord], recipe: Recipe) -> bool:
    """Whether a run with this curve has trained its last epoch: all of them, or one over the early-stop accuracy."""
    return len(curve) >= recipe.epochs or (bool(curve) and curve[-1].valid_accuracy > recipe.early_stop_accuracy)


def _batches(num_examples: int, batch_size: int, generator: torch.Generator, device: str) -> Iterator[torch.Tensor]:
    """A seeded shuffle of the examples in batches; the last batch may be smaller (every example is seen)."""
    order = torch.randperm(num_examples, generator=generator).to(device)
    yield from order.split(batch_size)


@contextlib.contextmanager
def _progress_bar(enabled: bool, total: int, description: str):
    """A rich progress bar on stderr (stdout stays free for the result), or a no-op."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
    )
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task(description, total=total, status="")

        def update(advance: int = 0, status: Optional[str] = None) -> None:
            progress.update(task, advance=advance, **({"status": status} if status is not None else {}))

        yield update


@contextlib.contextmanager
def _flush_denormals() -> Iterator[None]:
    """Flush denormal floats to zero for the duration of a CPU run, then restore IEEE behaviour.

    Denormals (tiny gradients and Adam moments) make CPU kernels ~100x slower: a ReBased step on a tiny model went
    from 5 ms to 470 ms. Flushing them changes nothing that matters to training. The setting is process-wide CPU
    state, so it is switched back afterwards (other code, e.g. hypothesis or numpy users, relies on denormals).
    """
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def _check_finite(loss: float, epoch: int, config: RunConfig) -> None:
    if not math.isfinite(loss):
        raise TrainingDiverged(
            f"training loss became {loss} in epoch {epoch} (arch {config.arch}, d_model {config.d_model}, "
            f"lr {config.lr:g}, seed {config.seed}); try a lower learning rate"
        )


def train(
    config: RunConfig,
    *,
    device: str = "auto",
    data: Optional[Splits] = None,
    progress: bool = False,
    on_epoch: Optional[Callable[[EpochRecord], None]] = None,
    kernel_impl: str = "auto",
    cuda_graphs: bool = True,
    compile_model: bool = False,
    checkpoint: Optional[str | os.PathLike] = None,
    keep_checkpoint: bool = False,
) -> RunResult:
    """Train one model as `config` says and measure it.

    device: "auto" (CUDA when available), "cpu", "cuda", "cuda:N". data: the splits to use; None generates them
    from `config.task` and `config.recipe.data_seed` (sizes from the recipe). on_epoch: called after each epoch
    (a run resumed from its checkpoint first calls it again for the saved epochs, with their saved records).
    kernel_impl: linear attention and LayerNorm implementation ("auto": Triton on CUDA, torch on CPU).
    cuda_graphs: on CUDA, replay the training step as a CUDA graph (see `Trainer`); ignored on CPU. How a run is
    computed, not what: the run id does not depend on it.
    compile_model: torch.compile the model's forward (see `Trainer`); like cuda_graphs, how, not what.
    checkpoint: a file to save the run's state to after every epoch (the last one too) and, when it holds this
    run's state, to continue from (mqar.checkpoint); it is deleted when the run ends. None: no checkpoints.
    keep_checkpoint: leave it when the run ends, for the caller to delete once the result is safe (the sweep: once
    the store holds it); a call on a finished run's checkpoint trains nothing and returns its result again.
    Raises UserError for a config that cannot run, TrainingDiverged when the loss becomes NaN/inf.
    """
    if not isinstance(config, RunConfig):  # else an AttributeError on the first field read (a dict, a TaskSpec)
        raise UserError(f"train takes a RunConfig (RunConfig.from_dict(d) for a dict), got {config!r}")
    check_arch(config.arch, config.d_model)  # fail before generating data
    device = resolve_device(device)
    if checkpoint is not None:  # a notebook passes a str: the checkpoint functions use Path methods
        checkpoint = Path(checkpoint)
    recipe = config.recipe
    if data is None:
        data = config.make_splits()
    seq_len, vocab_size = config.task.seq_len, config.task.vocab_size
    train_split = DeviceSplit(data.train, device, "train", seq_len, vocab_size)
    valid_split = DeviceSplit(data.valid, device, "valid", seq_len, vocab_size)
    test_split = DeviceSplit(data.test, device, "test", seq_len, vocab_size)
    steps_per_epoch = math.ceil(len(train_split) / recipe.batch_size)
    tokens_per_epoch = train_split.inputs.numel()

    is_cuda = torch.device(device).type == "cuda"
    cuda_index: Optional[int] = None
    if is_cuda:
        cuda_index = torch.device(device).index
        cuda_index = torch.cuda.current_device() if cuda_index is None else cuda_index
    with contextlib.ExitStack() as stack:
        if is_cuda:
            stack.enter_context(torch.cuda.device(cuda_index))
            torch.cuda.reset_peak_memory_stats(cuda_index)
        else:
            stack.enter_context(_flush_denormals())
        stack.enter_context(torch.random.fork_rng(devices=[cuda_index] if is_cuda else []))
        torch.manual_seed(config.seed)
        order_generator = torch.Generator().manual_seed(config.seed)
        trainer = Trainer(config, device, kernel_impl, steps_per_epoch * recipe.epochs, cuda_graphs, compile_model)

        started = time.perf_counter()
        saved = load_checkpoint(checkpoint, config.id, device) if checkpoint is not None else None
        if saved is None:
            run = _Progress()
        else:
            try:
                run = _Progress.restore(saved, trainer, order_generator, cuda_index)
                started -= saved["seconds"]
            except Exception as error:  # this run's, in this format, yet not what this code saves (another version)
                detail = " ".join(str(error).split())[:200]  # torch's state-dict errors span lines
                raise UserError(f"checkpoint {checkpoint} cannot be resumed by this mqar ({type(error).__name__}: "
                                f"{detail}); delete it to start the run afresh") from None
        curve = run.curve
        if on_epoch is not None:
            # The saved epochs again, with their saved records: the checkpoint is written before on_epoch, so a run
            # stopped between the two (or while its epoch was being stored, or before the Ray driver stored it) left
            # an epoch that its progress rows lack, and the resumed run's rows had a hole (epochs 2, 3 without 1).
            for record in curve:
                on_epoch(record)
        description = f"{config.arch} d={config.d_model} lr={config.lr:g}"
        bar = stack.enter_context(_progress_bar(progress, steps_per_epoch * recipe.epochs, description))
        if bar and curve:
            bar(advance=steps_per_epoch * len(curve), status=f"resumed after epoch {len(curve)}")
        # A run resumed from the checkpoint of its last epoch (stopped before its result was stored) trains nothing.
        last_epoch = len(curve) if _ended(curve, recipe) else recipe.epochs
        for epoch in range(len(curve) + 1, last_epoch + 1):
            epoch_started = time.perf_counter()
            loss_total = torch.zeros((), device=device)
            labelled_total = torch.zeros((), device=device, dtype=torch.long)
            for step, batch in enumerate(_batches(len(train_split), recipe.batch_size, order_generator, device), 1):
                loss_total += trainer.train_step(train_split, batch)
                labelled_total += train_split.labelled_per_example[batch].sum()
                if step % CHECK_EVERY_STEPS == 0 or step == steps_per_epoch:
                    # One host-device sync per CHECK_EVERY_STEPS steps: catch a NaN early, feed the progress bar.
                    running_loss = loss_total.item() / max(labelled_total.item(), 1)
                    _check_finite(running_loss, epoch, config)
                    if bar:
                        bar(status=f"epoch {epoch} loss {running_loss:.3f}")
                if bar:
                    bar(advance=1)
            if is_cuda:
                torch.cuda.synchronize(cuda_index)
            run.train_seconds += time.perf_counter() - epoch_started

            train_loss = loss_total.item() / max(labelled_total.item(), 1)
            _check_finite(train_loss, epoch, config)
            valid_loss, valid_accuracy = trainer.evaluate(valid_split)
            record = EpochRecord(
                epoch=epoch,
                train_loss=train_loss,
                valid_loss=valid_loss,
                valid_accuracy=valid_accuracy,
                lr=cosine_lr(config.lr, trainer.step, trainer.steps_total),
                seconds=time.perf_counter() - started,
            )
            curve.append(record)
            if run.best is None or valid_accuracy > run.best.valid_accuracy:
                run.best = record
                _, run.test_accuracy = trainer.evaluate(test_split)  # the test score of the best epoch so far
            if bar:
                bar(status=f"epoch {epoch} loss {train_loss:.3f} valid acc {valid_accuracy:.3f}")
            stop_early = valid_accuracy > recipe.early_stop_accuracy
            if checkpoint is not None:
                # Before on_epoch: a run stopped from there (Ctrl-C, a killed worker) keeps this epoch. The last one
                # too: a sweep stopped after the run ends but before its result is stored then only stores it.
                state = run.state(trainer, order_generator, cuda_index)
                save_checkpoint(checkpoint, config.id, {**state, "seconds": time.perf_counter() - started})
            if on_epoch is not None:
                on_epoch(record)
            if stop_early:
                break
        seconds = time.perf_counter() - started
        peak_memory = int(torch.cuda.max_memory_allocated(cuda_index)) if is_cuda else None
        num_params = count_params(trainer.model)

    best, test_accuracy, train_seconds = run.best, run.test_accuracy, run.train_seconds
    assert best is not None  # recipe.epochs >= 1
    if checkpoint is not None and not keep_checkpoint:
        remove_checkpoint(checkpoint)
    return RunResult(
        run_id=config.id,
        config=config,
        best_valid_accuracy=best.valid_accuracy,
        best_epoch=best.epoch,
        test_accuracy=test_accuracy,
        final_valid_accuracy=curve[-1].valid_accuracy,
        epochs=len(curve),
        stopped_early=len(curve) < recipe.epochs,
        curve=tuple(curve),
        seconds=seconds,
        tokens_per_s=tokens_per_epoch * len(curve) / train_seconds if train_seconds > 0 else 0.0,
        num_params=num_params,
        peak_memory_bytes=peak_memory,
        device=describe_device(device if not is_cuda else f"cuda:{cuda_index}"),
        versions=versions(),
    )
