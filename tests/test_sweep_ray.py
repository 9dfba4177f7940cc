"""The Ray backend on a local CPU instance: results come back to the driver, which alone writes the store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mqar.results import load, load_epochs
from mqar.sweep import run_sweep

from test_sweep import TINY_RECIPE, tiny_spec
from test_sweep_fakes import FAIL_SEED, fake_train

ray = pytest.importorskip("ray")
TESTS_DIR = Path(__file__).resolve().parent


@pytest.fixture
def local_ray(monkeypatch):
    # Ray workers import the fake training function by module name: put the tests folder on their path.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_backend_runs_the_grid_and_records_failures(tmp_path, local_ray):
    store = tmp_path / "s.db"
    spec = tiny_spec(seeds=(0, FAIL_SEED))
    summary = run_sweep(spec, store, backend="ray", train_fn=fake_train, cache_dir=tmp_path / "cache")
    assert (summary.done, summary.failed, summary.pending, summary.running) == (2, 2, 0, 0)
    runs = load(store, sweep="t")
    assert runs.run_id.is_unique and len(runs) == 4
    assert runs[runs.status == "failed"].error.str.contains("fake failure").all()
    assert len(load_epochs(store)) == 2 * TINY_RECIPE.epochs
    again = run_sweep(spec, store, backend="ray", train_fn=fake_train, cache_dir=tmp_path / "cache")
    assert again.finished_now == 0
