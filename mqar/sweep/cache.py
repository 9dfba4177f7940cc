"""The dataset cache: each task's splits are generated once and shared by every run (arch, width, lr, seed) of it.

Entries live in `<cache_dir>/<key>/{train,valid,test}.npz`, keyed by the task spec's id, the data seed, the split
sizes and the generator version, so a change to any of them makes a new entry instead of reusing stale data.
A lock file per key makes one process generate while concurrent workers wait and then read; each file is written
under a temporary name and renamed (mqar.data.save), so a killed writer never leaves a half file that looks whole.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from mqar.config import stable_id
from mqar.data import GENERATOR_VERSION, SPLITS, Splits, load, save
from mqar.paths import RESULTS_DIR
from mqar.runs import RunConfig

DEFAULT_CACHE_DIR = RESULTS_DIR / "cache"


def cache_key(config: RunConfig) -> str:
    recipe = config.recipe
    return stable_id(
        {
            "task": config.task.id,
            "data_seed": recipe.data_seed,
            "sizes": [recipe.num_train_examples, recipe.num_valid_examples, recipe.num_test_examples],
            "generator_version": GENERATOR_VERSION,
        }
    )


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """An exclusive advisory lock between processes (fcntl where available; none elsewhere)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: concurrent workers may generate twice, the atomic renames keep files whole
        yield
        return
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_splits(config: RunConfig, cache_dir: str | os.PathLike = DEFAULT_CACHE_DIR) -> Splits:
    """The train/valid/test splits of `config`'s task, from the cache or generated (and cached) now."""
    recipe = config.recipe
    entry = Path(cache_dir) / cache_key(config)
    entry.mkdir(parents=True, exist_ok=True)
    paths = {split: entry / f"{split}.npz" for split in SPLITS}
    with _locked(entry / ".lock"):
        if not all(path.is_file() for path in paths.values()):
            splits = config.make_splits()
            for split in SPLITS:
                inputs, labels = getattr(splits, split)
                save(paths[split], inputs, labels, config.task, split, recipe.data_seed)
            return splits
    loaded = {split: load(paths[split]) for split in SPLITS}
    return Splits(**{split: (dataset.inputs, dataset.labels) for split, dataset in loaded.items()})
