"""Benchmarks: commands that print tables and write JSON + markdown under results/bench/ (never timed tests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable


def write_report(out_dir: Path, stem: str, report: dict, markdown: Callable[[dict], str]) -> None:
    """`out_dir/stem.json` (every number) and `out_dir/stem.md` (the table people read), folders made as needed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / f"{stem}.md").write_text(markdown(report))
