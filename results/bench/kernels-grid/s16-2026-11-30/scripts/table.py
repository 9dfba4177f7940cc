"""Session 16: fwd / fwd+bwd ms per label and shape from time_variants.py's JSON lines, as a plain-text table.
usage: python table.py gpu0.jsonl"""
import collections
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
shapes, table = [], collections.defaultdict(dict)
for row in rows:
    if "error" in row:
        print("error:", row["label"], row["shape"], row["error"][:150])
    if "fwd_bwd_ms" not in row:
        continue
    key = (row["kernel"], row["dtype"], tuple(row["shape"]))
    if key not in shapes:
        shapes.append(key)
    table[row["label"]][key] = (row["fwd_ms"], row["fwd_bwd_ms"], max(row["rel_rms"].values()))
name = lambda k: f"{k[0][:2]} {k[1]} {k[2][0]}x{k[2][1]} D{k[2][4]}"  # noqa: E731
print("fwd / fwd+bwd ms (max relative RMS of o, dq, dk, dv on batch 0, head 0)")
print("label".ljust(18), " ".join(name(k).rjust(21) for k in shapes))
for label, cells in table.items():
    text = [f"{cells[k][0]:.3f}/{cells[k][1]:.3f} ({cells[k][2]:.0e})" if k in cells else "-" for k in shapes]
    print(label.ljust(18), " ".join(t.rjust(21) for t in text))
