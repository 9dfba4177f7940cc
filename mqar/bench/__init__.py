"""Benchmarks: commands that print tables and write JSON + markdown under results/bench/ (never timed tests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterable

from mqar.errors import UserError


def write_report(out_dir: Path, stem: str, report: dict, markdown: Callable[[dict], str]) -> None:
    """`out_dir/stem.json` (every number) and `out_dir/stem.md` (the table people read), folders made as needed."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
        (out_dir / f"{stem}.md").write_text(markdown(report))
    except OSError as error:
        raise UserError(f"cannot write {stem}.json and {stem}.md into {out_dir} ({error.strerror}); "
                        "pass a writable --out") from None


def format_cell(result: dict | None, key: str) -> str:
    """One measurement's `key` for a table or log line: '–' when not measured, 'err' when it failed, else 3 decimals."""
    if result is None:
        return "–"
    if "error" in result:
        return "err"
    return f"{result[key]:.3f}"


def measure_each(cases: Iterable, measure: Callable[[object], dict], label: Callable[[dict], str], out_dir: Path,
                 stem: str, markdown: Callable[[dict], str], environment: Callable[[], dict]) -> dict:
    """Measure each case in turn (a row with {method: {fwdbwd_ms, ...} or {error}} under "results"), print its
    forward+backward milliseconds, and write stem.json/.md after every one, so a run cut short (a device call's time
    limit) keeps what it measured. Returns the payload: {"environment": ..., "rows": [...]}."""
    rows = []
    payload = {"environment": environment(), "rows": rows}
    for case in cases:
        row = measure(case)
        rows.append(row)
        summary = ", ".join(f"{name} {format_cell(result, 'fwdbwd_ms')}" for name, result in row["results"].items())
        print(f"[{label(row)}] fwd+bwd ms: {summary}", flush=True)
        payload = {"environment": environment(), "rows": rows}
        write_report(out_dir, stem, payload, markdown)
    return payload
