#!/usr/bin/env bash
# Session 12, call 8 (nvidia-h200): branch parallel-bwd-offline (a helper's offline-SASS changes: truncated hi/lo
# split and MMA row sums in the forward, 1/Z loaded in the backward; tree carried in .scratch/s12/offline-tree)
# against main, parallel form; then the branch's GPU kernel tests.
set -u
out=/tmp/s12c8; mkdir -p $out
S=results/bench/kernels-grid/2026-11-30/scripts/time_variants.py
B=$PWD/.scratch/s12/offline-tree
python3 -c "import mqar.provenance as p; print(p.source_digest())" > $out/source.txt 2>&1
PYTHONPATH=$PWD timeout 60 python3 $S main parallel >> $out/gpu0.jsonl 2>> $out/gpu0.err
PYTHONPATH=$B timeout 60 python3 $S offline parallel >> $out/gpu0.jsonl 2>> $out/gpu0.err
cd $B && PYTHONPATH=$B timeout 110 python3 -m pytest -m gpu -q -n 8 -p no:cacheprovider -k 'not two_to_the_31' tests/test_kernels_gpu.py > $out/gpu-tests.txt 2>&1
echo "exit $? at $SECONDS s" >> $out/gpu-tests.txt
cd /tmp && tar czf $OUT/s12c8.tar.gz s12c8 && ls -R s12c8
