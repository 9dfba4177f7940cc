#!/usr/bin/env bash
# Session 15, call D: callB.sh with PHASES="local-1gpu ray-2gpu" right after call C on the same warm machine: the
# Ray backend against the local executor on one GPU in one call, and the store's device column per physical GPU.
PHASES="local-1gpu ray-2gpu" bash results/bench/sweep-scaling/s15-actors/scripts/callB.sh
python3 - "$OUT/scaling/ray-2gpu.db" <<'PY'
import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("select device, count(*) from runs group by device").fetchall())
PY
