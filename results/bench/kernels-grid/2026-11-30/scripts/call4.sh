#!/usr/bin/env bash
# Session 12, call 4 (nvidia-h200-x2). GPU 0: this tree's defaults, more parallel backward tiles (key blocks of
# 128 / 256) and chunked chunk sizes / feature blocks. GPU 1: the GPU kernel tests of this tree (the new backward
# tiles at D <= 16, T >= 512), then the 2^31-offset tests.
set -u
out=/tmp/s12c4; mkdir -p $out
S=results/bench/kernels-grid/2026-11-30/scripts
export PYTHONPATH=$PWD
python3 -c "import mqar.provenance as p; print(p.source_digest())" > $out/source.txt 2>&1
run() {  # run GPU LABEL FORM [settings...]
  local gpu=$1; shift
  CUDA_VISIBLE_DEVICES=$gpu timeout 200 python3 $S/time_variants.py "$@" >> $out/gpu$gpu.jsonl 2>> $out/gpu$gpu.err
  echo "$* exit $? at $SECONDS s" >> $out/gpu$gpu.err
}
( run 0 default parallel
  for t in 32x256x4 64x128x2 32x128x4 16x128x2 32x256x2; do run 0 bwd$t parallel bwd=$t; done
  run 0 default chunked
  for c in 128x16x4 32x16x4 128x32x4; do run 0 chunk$c chunked chunked=$c; done
) &
( export CUDA_VISIBLE_DEVICES=1
  timeout 300 python3 -m pytest -m gpu -q -n 8 -p no:cacheprovider -k 'not two_to_the_31' tests/test_kernels_gpu.py > $out/gpu-tests-a.txt 2>&1
  echo "exit $? at $SECONDS s" >> $out/gpu-tests-a.txt
  timeout 200 python3 -m pytest -m gpu -q -p no:cacheprovider -k two_to_the_31 tests/ > $out/gpu-tests-b.txt 2>&1
  echo "exit $? at $SECONDS s" >> $out/gpu-tests-b.txt
) &
wait
cd /tmp && tar czf $OUT/s12c4.tar.gz s12c4 && ls -R s12c4
