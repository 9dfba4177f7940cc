"""NAME-provenance.md beside a report: where, with what and at what cost its runs were trained, read from the store.

Written by `mqar figure` and `mqar report` next to the table and figure, so a committed result carries its own
provenance: the runs' devices, the software each was trained with (the mqar source digest included: a sweep resumed
after a code change shows two), the training time the runs add up to, and the commands that continue the sweep and
redraw the figure. What the store cannot know (how long a machine was held, how many runs shared a GPU) is left
to the folder's README.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import pandas as pd

from mqar.report.tables import to_markdown

STATUS_ORDER = ("done", "failed", "running", "pending", "absent")


def provenance_markdown(runs: pd.DataFrame, *, name: str, planned: int, notes: Sequence[str] = (),
                        commands: Sequence[str] = ()) -> str:
    """The provenance of report `name` from its runs (rows of `mqar.results.load`; `planned` runs in its grid)."""
    lines = [f"# Provenance: {name}\n", "Written by mqar from the results store; the numbers are the runs' own.\n"]
    lines += [f"- {note}" for note in notes]
    counts = runs["status"].value_counts().to_dict()
    counts["absent"] = max(planned - len(runs), 0)
    lines.append("- runs: " + ", ".join(f"{counts[status]} {status}" for status in STATUS_ORDER if counts.get(status)))
    if commands:
        lines += ["\n## Commands\n", "```bash", *commands, "```"]

    done = runs[runs["status"] == "done"]
    if done.empty:
        return "\n".join(lines) + "\n"
    where = done.assign(where=done["device"].fillna("unknown device") + " on host " + done["host"].fillna("unknown"))
    lines += ["\n## Where\n", to_markdown(_count_by(where, "where", "device")).rstrip()]
    stacks = done.assign(software=done["versions"].map(_describe_versions))
    lines += ["\n## Software\n", to_markdown(_count_by(stacks, "software", "software")).rstrip()]
    if stacks["software"].nunique() > 1:
        lines.append("\n**These runs were trained with more than one software stack.** Check that the difference "
                     "cannot matter before comparing them.")
    seconds = done["seconds"].astype(float)
    tokens_per_s = done["tokens_per_s"].astype(float)
    resumed = int((done["attempts"].fillna(1) > 1).sum())
    lines += [
        "\n## Cost\n",
        f"- training time of the {len(done)} finished runs: {seconds.sum() / 3600:.2f} run-hours "
        f"(per run {seconds.min() / 60:.1f}-{seconds.max() / 60:.1f} min); runs that shared a device overlapped in "
        "time, so the device-hours are fewer",
        f"- tokens/s per run: {tokens_per_s.min() / 1e6:.2f}-{tokens_per_s.max() / 1e6:.2f} M "
        f"(median {tokens_per_s.median() / 1e6:.2f} M)",
        f"- finished between {done['ended_at'].min()} and {done['ended_at'].max()} (UTC)",
        f"- runs that needed more than one attempt (resumed from a checkpoint, or retried): {resumed}",
    ]
    return "\n".join(lines) + "\n"


def write_provenance(path: Path, runs: pd.DataFrame, **fields) -> Path:
    path.write_text(provenance_markdown(runs, **fields))
    return path


def _count_by(frame: pd.DataFrame, column: str, label: str) -> pd.DataFrame:
    counts = frame[column].fillna("unknown").value_counts()
    return pd.DataFrame({label: counts.index, "finished runs": counts.to_numpy()})


def _describe_versions(versions) -> str:
    """'mqar 0.1.0 (source b2e970541501), torch 2.11.0+cu130, ...' from the stored JSON (or dict)."""
    if versions is None or (isinstance(versions, float) and pd.isna(versions)):
        return "unknown"
    found = dict(json.loads(versions) if isinstance(versions, str) else versions)
    text = f"mqar {found.pop('mqar', '?')}"
    source = found.pop("mqar_source", None)
    text += f" (source {source})" if source else " (source not recorded)"
    return ", ".join([text] + [f"{package} {version}" for package, version in sorted(found.items())])
