#!/usr/bin/env bash
# Session 16, call 6 (nvidia-h200-x2; carry .whl): main with FWD_GRAM's rule (bf16 rebased, values ≤ 16 wide,
# T ≥ 2048).
# GPU 0: the GPU test suite and the 2^31-offset tests; then FWD_GRAM 0 / 1 at the rule's edges (T = 1024 and 3072
#        at D16, fp16), twice in alternating order.
# GPU 1: `mqar bench kernels` (every method, FLA 0.6 and SDPA in the same run).
set -u
out=/tmp/s16c6; mkdir -p $out
S=$PWD/results/bench/kernels-grid/s16-2026-11-30/scripts
export PYTHONPATH=$PWD
python3 -m pip install --no-deps -q .whl/*.whl > $out/pip.log 2>&1; python3 -c "import fla; print('fla', fla.__version__)" >> $out/pip.log 2>&1
python3 -c "import mqar.provenance as p; print(p.source_digest())" > $out/source.txt 2>&1
nvidia-smi --query-gpu=name,uuid --format=csv >> $out/source.txt 2>&1
( export CUDA_VISIBLE_DEVICES=0
  timeout 220 python3 -m pytest -m gpu -q -n 6 -p no:cacheprovider -k 'not two_to_the_31' tests/ > $out/gpu-tests.txt 2>&1
  echo "exit $? at $SECONDS s" >> $out/gpu-tests.txt
  timeout 60 python3 -m pytest -m gpu -q -p no:cacheprovider -k two_to_the_31 tests/ > $out/gpu-2e31.txt 2>&1
  echo "exit $? at $SECONDS s" >> $out/gpu-2e31.txt
  for pass in 1 2; do
    for g in 0 1; do
      timeout 60 python3 $S/time_variants.py g$g-$pass gram FWD_GRAM=$g >> $out/gpu0.jsonl 2>> $out/gpu0.err
      echo "g$g-$pass exit $? at $SECONDS s" >> $out/gpu0.err
    done
  done
) &
( CUDA_VISIBLE_DEVICES=1 timeout 330 python3 -m mqar bench kernels --out $out/all --rep-ms 40 > $out/all.log 2>&1
  echo "exit $? at $SECONDS s" >> $out/all.log ) &
wait
cd /tmp && tar czf $OUT/s16c6.tar.gz s16c6 && ls -R s16c6 | head -30
