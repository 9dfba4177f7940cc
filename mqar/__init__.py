"""mqar: multi-query associative recall, the yardstick of in-context recall for efficient language models.

The library calls behind each command live in their sub-packages: `mqar.data.generate` (`mqar generate`),
`mqar.train.train` with `mqar.runs.RunConfig` (`mqar train`), `mqar.sweep.run_sweep` with `load_sweep_spec`
(`mqar sweep`), `mqar.report.report` and `figure` (`mqar report`, `mqar figure`). The data ones are re-exported here,
lazily, so that `import mqar` stays cheap (no torch import); `train`, `sweep` and `report` are the sub-packages'
own names here.
"""

__version__ = "0.1.0"

_LAZY_EXPORTS = {
    "TaskSpec": "mqar.data",
    "generate": "mqar.data",
    "load": "mqar.data",
}


def __getattr__(name: str):
    if name in _LAZY_EXPORTS:
        import importlib

        return getattr(importlib.import_module(_LAZY_EXPORTS[name]), name)
    raise AttributeError(f"module 'mqar' has no attribute {name!r}")
