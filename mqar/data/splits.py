"""Train / valid / test splits of one task from one master seed, and the leakage check between them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mqar.data.generate import generate
from mqar.data.spec import TaskSpec

Arrays = tuple[np.ndarray, np.ndarray]  # (inputs, labels), each [num_examples, seq_len]


@dataclass(frozen=True)
class Splits:
    train: Arrays
    valid: Arrays
    test: Arrays


def make_splits(spec: TaskSpec, seed: int, num_train: int, num_valid: int, num_test: int) -> Splits:
    """The three splits of `spec`, each from its own seed stream of `seed` (disjoint streams, same master)."""
    return Splits(
        train=generate(spec, num_train, seed, split="train"),
        valid=generate(spec, num_valid, seed, split="valid"),
        test=generate(spec, num_test, seed, split="test"),
    )


def count_leaked(train_inputs: np.ndarray, other_inputs: np.ndarray) -> int:
    """How many rows of `other_inputs` also occur, token for token, in `train_inputs`."""
    if train_inputs.shape[1] != other_inputs.shape[1]:
        return 0

    def as_rows(array: np.ndarray) -> np.ndarray:
        # View each row as one opaque item so that whole rows compare and sort at once.
        array = np.ascontiguousarray(array)
        return array.view(np.dtype((np.void, array.dtype.itemsize * array.shape[1]))).ravel()

    return int(np.isin(as_rows(other_inputs), as_rows(train_inputs)).sum())
