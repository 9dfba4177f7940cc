#!/usr/bin/env bash
# Session 16, call 1 (nvidia-h200-x2): the parallel forward's row sums from the keys' Gram matrix (FWD_GRAM).
# GPU 0: FWD_GRAM 0 (main's per-block sums) / 1 (Gram, one loop) / 2 (Gram, two loops), three times in alternating
#        order, then forward tiles under FWD_GRAM 1 (fwd= always explicit).
# GPU 1: the GPU kernel tests under FWD_GRAM 1 (the default) and 2, then the 2^31-offset tests.
set -u
out=/tmp/s16c1; mkdir -p $out
S=$PWD/results/bench/kernels-grid/s16-2026-11-30/scripts
export PYTHONPATH=$PWD
python3 -c "import mqar.provenance as p; print(p.source_digest())" > $out/source.txt 2>&1
nvidia-smi --query-gpu=name,uuid,clocks.max.sm --format=csv >> $out/source.txt 2>&1
run() {  # run LABEL [settings...]
  CUDA_VISIBLE_DEVICES=0 timeout 150 python3 $S/time_variants.py "$1" parallel "${@:2}" >> $out/gpu0.jsonl 2>> $out/gpu0.err
  echo "$* exit $? at $SECONDS s" >> $out/gpu0.err
}
( for pass in 1 2 3; do
    for g in 0 1 2; do run g$g-$pass FWD_GRAM=$g; done
  done
  for tile in 128x64x4 64x128x4 64x64x2 32x64x2 128x64x8 64x32x4; do run g1-$tile FWD_GRAM=1 fwd=$tile; done
  run g2-128x64x4 FWD_GRAM=2 fwd=128x64x4
) &
( export CUDA_VISIBLE_DEVICES=1
  timeout 200 python3 -m pytest -m gpu -q -n 6 -p no:cacheprovider -k 'not two_to_the_31' tests/test_kernels_gpu.py > $out/gpu-tests-g1.txt 2>&1
  echo "exit $? at $SECONDS s" >> $out/gpu-tests-g1.txt
  PYTHONPATH=$PWD:$S timeout 200 python3 -m pytest -m gpu -q -n 6 -p no:cacheprovider -p gram2_plugin -k 'not two_to_the_31' tests/test_kernels_gpu.py > $out/gpu-tests-g2.txt 2>&1
  echo "exit $? at $SECONDS s" >> $out/gpu-tests-g2.txt
  timeout 90 python3 -m pytest -m gpu -q -p no:cacheprovider -k two_to_the_31 tests/ > $out/gpu-2e31.txt 2>&1
  echo "exit $? at $SECONDS s" >> $out/gpu-2e31.txt
) &
wait
cd /tmp && tar czf $OUT/s16c1.tar.gz s16c1 && ls -R s16c1 | head
