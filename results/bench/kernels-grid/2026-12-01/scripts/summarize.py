"""Print time_variants.py's JSON lines as one row per (form, kernel, dtype, shape) and one column per label:
fwd ms / fwd+bwd ms. usage: python summarize.py callN/gpu0.jsonl"""
import collections
import json
import sys

rows, labels = collections.defaultdict(dict), []
for line in open(sys.argv[1]):
    r = json.loads(line)
    if "fwd_ms" not in r:  # skipped settings and failed cases (their "error" is in the file)
        continue
    if r["label"] not in labels:
        labels.append(r["label"])
    rows[(r["form"], r["kernel"], r["dtype"], "x".join(map(str, r["shape"])))][r["label"]] = (r["fwd_ms"], r["fwd_bwd_ms"])
print("| form | kernel | dtype | shape | " + " | ".join(labels) + " |")
print("|---" * (4 + len(labels)) + "|")
for key, by_label in rows.items():
    cells = [f"{by_label[l][0]:.3f} / {by_label[l][1]:.3f}" if l in by_label else "-" for l in labels]
    print("| " + " | ".join(key) + " | " + " | ".join(cells) + " |")
