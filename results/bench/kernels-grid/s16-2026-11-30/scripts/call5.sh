#!/usr/bin/env bash
# Session 16, call 5 (nvidia-h200-x2): the forward's row sums from the keys' prefix Gram matrices, third form:
# key_gram_kernel per key block, then torch's cumsum over the blocks; the forward's loop keeps only the causal
# blocks' row sums, and its epilogue reads one prefix slot (qᵀGq as two bf16 MMAs on G's hi and lo halves).
# GPU 0: FWD_GRAM 0 / 1, three times in alternating order.
# GPU 1: the GPU test suite (FWD_GRAM True, the tree's default), then the 2^31-offset tests.
set -u
out=/tmp/s16c5; mkdir -p $out
S=$PWD/results/bench/kernels-grid/s16-2026-11-30/scripts
export PYTHONPATH=$PWD
python3 -c "import mqar.provenance as p; print(p.source_digest())" > $out/source.txt 2>&1
nvidia-smi --query-gpu=name,uuid --format=csv >> $out/source.txt 2>&1
run() {  # run LABEL [settings...]
  CUDA_VISIBLE_DEVICES=0 timeout 150 python3 $S/time_variants.py "$1" parallel "${@:2}" >> $out/gpu0.jsonl 2>> $out/gpu0.err
  echo "$* exit $? at $SECONDS s" >> $out/gpu0.err
}
( for pass in 1 2 3; do
    for g in 0 1; do run g$g-$pass FWD_GRAM=$g; done
  done ) &
( export CUDA_VISIBLE_DEVICES=1
  timeout 220 python3 -m pytest -m gpu -q -n 6 -p no:cacheprovider -k 'not two_to_the_31' tests/ > $out/gpu-tests.txt 2>&1
  echo "exit $? at $SECONDS s" >> $out/gpu-tests.txt
  timeout 60 python3 -m pytest -m gpu -q -p no:cacheprovider -k two_to_the_31 tests/ > $out/gpu-2e31.txt 2>&1
  echo "exit $? at $SECONDS s" >> $out/gpu-2e31.txt
) &
wait
cd /tmp && tar czf $OUT/s16c5.tar.gz s16c5 && ls -R s16c5 | head -30
