"""A run's checkpoint: everything `mqar.train.train` needs to continue a run after its last finished epoch.

Why: a sweep stopped mid-run (Ctrl-C, a time limit, a killed worker, a preempted machine) would otherwise train
the unfinished runs again from epoch 1. A full-recipe run at seq_len 1024 is tens of minutes; machines lent for
ten minutes at a time cannot finish it without this.

What is saved, after every epoch (the last one too): model and optimiser state, the optimiser step (it drives the
cosine schedule), the batch-order generator and torch's RNG states, the curve so far, the best epoch, its test
accuracy and the time spent. Resuming from it gives the same curve as a run that was never stopped (on CPU bit
for bit; tested).

A checkpoint names its run id and data generator version and is used only for that run on those data; the file
is written to a temporary name and renamed, so a kill during the write leaves the previous checkpoint intact. The
training function deletes it when the run ends (done, or stopped early), or leaves it to its caller
(`keep_checkpoint`): a local sweep's worker deletes it once the store holds the result, so a sweep stopped in between
stores the result from the last epoch's checkpoint rather than training the run again.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

FORMAT = 1


def sweep_checkpoint_dir(store_path: str | os.PathLike) -> Path:
    """Where a sweep keeps its runs' checkpoints: `<store>.checkpoints/` beside the store (e.g. mqar.db.checkpoints),
    one `<run id>.pt` per unfinished run. Ray workers on other hosts write to that path on their own host."""
    store_path = Path(store_path)
    return store_path.with_name(store_path.name + ".checkpoints")


def check_checkpoint_path(path: Path) -> None:
    """Fail now, in one line, rather than after the first epoch, when --checkpoint `path` cannot be written: the
    checkpoint is written beside it and renamed onto it (save_checkpoint), so its folder must take files."""
    from mqar.errors import UserError
    from mqar.paths import check_writable_folder

    if path.is_dir():
        raise UserError(f"cannot write checkpoint {path}: it is a folder; pass a file path to --checkpoint")
    check_writable_folder(path.parent, what=f"checkpoint {path}", flag="--checkpoint")


def save_checkpoint(path: Path, run_id: str, state: dict[str, Any]) -> None:
    """Write `state` for run `run_id` to `path` atomically."""
    import torch  # here, not at the top: the sweep driver imports this module for the path alone

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    from mqar.data.spec import GENERATOR_VERSION

    # The generator version too: the run id names the task and data seed, not the bytes they make (v5 -> v6
    # changed them).
    with open(temporary, "wb") as handle:
        torch.save({"format": FORMAT, "run_id": run_id, "generator_version": GENERATOR_VERSION, **state}, handle)
        # On disk before the rename: after a power cut the rename alone can survive with the data unwritten, and a
        # truncated checkpoint is refused (load_checkpoint) until someone deletes it, failing its run on every retry.
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def load_checkpoint(path: Path, run_id: str, device: str) -> Optional[dict[str, Any]]:
    """The checkpoint at `path` if it is one of run `run_id` in this format, tensors on `device`; else None.

    A checkpoint of this run in another format or data generator version is ignored (and later overwritten): the run
    starts from epoch 1. A checkpoint of another run is a UserError (it is that run's progress: `mqar train
    --checkpoint` given another run's file overwrote it), and so is a file that is no checkpoint at all (truncated,
    empty, something else); both say to delete it or choose another path.
    """
    if not path.exists():
        return None
    import torch

    from mqar.errors import UserError

    try:
        # weights_only: the file holds tensors, numbers, strings and plain containers; nothing to unpickle beyond that
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # truncated, empty, not torch's format: torch raises several types (EOFError, ...)
        reason = type(error).__name__ + (f": {str(error).splitlines()[0]}" if str(error).strip() else "")
    else:
        reason = None if isinstance(state, dict) and {"format", "run_id"} <= state.keys() else "no mqar run id in it"
    if reason is not None:
        # Not a traceback (an empty file was click's bare "Aborted."), nor overwritten and then deleted at the run's
        # end: every mqar checkpoint names its format and run, so this file is something else (or damaged).
        raise UserError(f"checkpoint {path} is not a readable mqar checkpoint ({reason}); "
                        f"delete it to start the run afresh, or choose another checkpoint path")
    if state["run_id"] != run_id:  # run ids cover the whole config (mqar.runs.RunConfig.id)
        raise UserError(f"checkpoint {path} holds the progress of run {state['run_id']}, not of this run ({run_id}); "
                        f"resume that run with its own settings, or delete the file, or choose another checkpoint path")
    from mqar.data.spec import GENERATOR_VERSION

    # Another generator version trained the saved epochs on other data; continuing on this version's would mix two
    # datasets in one run. (Checkpoints that predate the field cannot show theirs: they start afresh too.)
    if state.get("format") != FORMAT or state.get("generator_version") != GENERATOR_VERSION:
        return None
    return state


def remove_checkpoint(path: Path) -> None:
    """Delete the checkpoint and any temporary file a writer killed mid-save left beside it."""
    path.unlink(missing_ok=True)
    for temporary in path.parent.glob(f".{path.name}.*.tmp"):
        temporary.unlink(missing_ok=True)
