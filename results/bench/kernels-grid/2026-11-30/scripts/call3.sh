#!/usr/bin/env bash
# Session 12, call 3 (nvidia-h200-x2). GPU 0: this tree's defaults (parallel and chunked forms), then parallel
# backward tiles (query rows x key rows x warps) and forward tiles under the head-major grid. GPU 1: the whole GPU
# test suite of this tree (8 xdist workers, then the 2^31-offset tests alone).
set -u
out=/tmp/s12c3; mkdir -p $out
S=results/bench/kernels-grid/2026-11-30/scripts
export PYTHONPATH=$PWD
python3 -c "import mqar.provenance as p; print(p.source_digest())" > $out/source.txt 2>&1
run() {  # run GPU LABEL FORM [settings...]
  local gpu=$1; shift
  CUDA_VISIBLE_DEVICES=$gpu timeout 200 python3 $S/time_variants.py "$@" >> $out/gpu$gpu.jsonl 2>> $out/gpu$gpu.err
  echo "$* exit $? at $SECONDS s" >> $out/gpu$gpu.err
}
( run 0 default parallel
  run 0 default chunked
  for t in 32x64x4 16x64x4 16x128x4 16x32x2 32x128x2; do run 0 bwd$t parallel bwd=$t; done
  for t in 128x64x8 64x32x4 128x32x8 32x64x4; do run 0 fwd$t parallel fwd=$t; done
) &
( export CUDA_VISIBLE_DEVICES=1
  timeout 330 python3 -m pytest -m gpu -q -n 8 -p no:cacheprovider -k 'not two_to_the_31' tests/ > $out/gpu-tests-a.txt 2>&1
  echo "exit $? at $SECONDS s" >> $out/gpu-tests-a.txt
  timeout $((560 - SECONDS)) python3 -m pytest -m gpu -q -p no:cacheprovider -k two_to_the_31 tests/ > $out/gpu-tests-b.txt 2>&1
  echo "exit $? at $SECONDS s" >> $out/gpu-tests-b.txt
) &
wait
cd /tmp && tar czf $OUT/s12c3.tar.gz s12c3 && ls -R s12c3
