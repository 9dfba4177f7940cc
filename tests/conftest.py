"""Test-wide setup.

Triton kernels run under the Triton interpreter on machines without CUDA. The interpreter is chosen when a kernel
is decorated, so TRITON_INTERPRET must be set before any kernel module is imported: here, before every test.
"""

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(autouse=True)
def _dataset_cache_outside_the_checkout(tmp_path_factory, monkeypatch):
    """The default dataset cache (results/cache/ of the checkout, which `mqar sweep` creates when no --cache-dir is
    given) in a temporary folder: the suite leaves nothing in the checkout."""
    monkeypatch.setattr("mqar.sweep.cache.DEFAULT_CACHE_DIR", tmp_path_factory.getbasetemp() / "default-cache")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
