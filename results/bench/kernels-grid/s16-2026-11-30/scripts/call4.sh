#!/usr/bin/env bash
# Session 16, call 4 (nvidia-h200-x2; carry .whl): the forward's row sums from the keys' prefix Gram matrices
# (key_gram_kernel per key block, summed by the forward as it walks the blocks; FWD_GRAM True, the tree's default) against tile sums (FWD_GRAM 0).
# GPU 0: FWD_GRAM 0 / 1, three times in alternating order, then 128x64x4 forward tiles with it; then the GPU test
#        suite and the 2^31-offset tests.
# GPU 1: `mqar bench kernels` (every method, FLA 0.6 and SDPA in the same run) with the tree's defaults.
set -u
out=/tmp/s16c4; mkdir -p $out
S=$PWD/results/bench/kernels-grid/s16-2026-11-30/scripts
export PYTHONPATH=$PWD
python3 -m pip install --no-deps -q .whl/*.whl > $out/pip.log 2>&1; python3 -c "import fla; print('fla', fla.__version__)" >> $out/pip.log 2>&1
python3 -c "import mqar.provenance as p; print(p.source_digest())" > $out/source.txt 2>&1
nvidia-smi --query-gpu=name,uuid --format=csv >> $out/source.txt 2>&1
run() {  # run LABEL [settings...]
  CUDA_VISIBLE_DEVICES=0 timeout 150 python3 $S/time_variants.py "$1" parallel "${@:2}" >> $out/gpu0.jsonl 2>> $out/gpu0.err
  echo "$* exit $? at $SECONDS s" >> $out/gpu0.err
}
( for pass in 1 2 3; do
    for g in 0 1; do run g$g-$pass FWD_GRAM=$g; done
  done
  run g1-128x64x4 FWD_GRAM=1 fwd=128x64x4
  export CUDA_VISIBLE_DEVICES=0
  timeout 220 python3 -m pytest -m gpu -q -n 6 -p no:cacheprovider -k 'not two_to_the_31' tests/ > $out/gpu-tests.txt 2>&1
  echo "exit $? at $SECONDS s" >> $out/gpu-tests.txt
  timeout 60 python3 -m pytest -m gpu -q -p no:cacheprovider -k two_to_the_31 tests/ > $out/gpu-2e31.txt 2>&1
  echo "exit $? at $SECONDS s" >> $out/gpu-2e31.txt
) &
( CUDA_VISIBLE_DEVICES=1 timeout 500 python3 -m mqar bench kernels --out $out/all --rep-ms 40 > $out/all.log 2>&1
  echo "exit $? at $SECONDS s" >> $out/all.log ) &
wait
cd /tmp && tar czf $OUT/s16c4.tar.gz s16c4 && ls -R s16c4 | head -30
