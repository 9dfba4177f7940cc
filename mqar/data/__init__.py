"""The MQAR task: spec -> numpy arrays, splits, dataset files, task suites. Pure numpy: no torch import."""

from mqar.data.files import Dataset, load, save
from mqar.data.generate import CHUNK_SIZE, SPLITS, generate
from mqar.data.spec import GENERATOR_VERSION, IGNORE_INDEX, TaskSpec
from mqar.data.splits import Splits, count_leaked, make_splits
from mqar.data.suites import Suite, generate_suite, load_suite

__all__ = [
    "CHUNK_SIZE",
    "Dataset",
    "GENERATOR_VERSION",
    "IGNORE_INDEX",
    "SPLITS",
    "Splits",
    "Suite",
    "TaskSpec",
    "count_leaked",
    "generate",
    "generate_suite",
    "load",
    "load_suite",
    "make_splits",
    "save",
]
