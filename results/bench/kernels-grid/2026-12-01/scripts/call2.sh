#!/usr/bin/env bash
# Session 13, call 2 (nvidia-h200): where the fwd+bwd time goes, per CUDA kernel, at main after the merge of
# parallel-bwd-offline (run inline as the device command; recorded here as it ran).
export PYTHONPATH=$PWD; mkdir -p /tmp/s13c2
python3 $PWD/results/bench/kernels-grid/2026-12-01/scripts/kernel_breakdown.py > /tmp/s13c2/breakdown.jsonl 2> /tmp/s13c2/breakdown.err; echo exit $?
python3 -c "import mqar.provenance as p; print(p.source_digest())" > /tmp/s13c2/source.txt; cp -r /tmp/s13c2 $OUT/
