#!/usr/bin/env bash
# Session 15, call 2 (nvidia-h200-x2; carry .whl): main after the merge of bwd-offline-s14 and the removal of FWD_TMA.
# GPU 0: `mqar bench kernels` (every method, FLA 0.6 and SDPA in the same run).
# GPU 1: the GPU test suite, the 2^31-offset tests, then parallel vs chunked near the crossover.
set -u
out=/tmp/s15c2; mkdir -p $out
S=$PWD/results/bench/kernels-grid/2026-12-01/scripts
export PYTHONPATH=$PWD
python3 -m pip install --no-deps -q .whl/*.whl > $out/pip.log 2>&1; python3 -c "import fla; print('fla', fla.__version__)" >> $out/pip.log 2>&1
python3 -c "import mqar.provenance as p; print(p.source_digest())" > $out/source.txt 2>&1
( CUDA_VISIBLE_DEVICES=0 timeout 470 python3 -m mqar bench kernels --out $out/all --rep-ms 40 > $out/all.log 2>&1
  echo "exit $? at $SECONDS s" >> $out/all.log ) &
( export CUDA_VISIBLE_DEVICES=1
  timeout 260 python3 -m pytest -m gpu -q -n 6 -p no:cacheprovider -k 'not two_to_the_31' tests/ > $out/gpu-tests.txt 2>&1
  echo "exit $? at $SECONDS s" >> $out/gpu-tests.txt
  timeout 60 python3 -m pytest -m gpu -q -p no:cacheprovider -k two_to_the_31 tests/ > $out/gpu-2e31.txt 2>&1
  echo "exit $? at $SECONDS s" >> $out/gpu-2e31.txt
  timeout 90 python3 $S/crossover.py > $out/crossover.jsonl 2> $out/crossover.err
  echo "exit $? at $SECONDS s" >> $out/crossover.err
) &
wait
cd /tmp && tar czf $OUT/s15c2.tar.gz s15c2 && ls -R s15c2 | head -30
