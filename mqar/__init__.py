"""mqar: multi-query associative recall, the yardstick of in-context recall for efficient language models.

The library calls behind each command (`mqar generate`, `mqar train`, `mqar sweep`, `mqar report`) live in
their sub-packages; they are re-exported here lazily so that `import mqar` stays cheap (no torch import).
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
