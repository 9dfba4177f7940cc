#!/usr/bin/env bash
# Session 14, call 5 (nvidia-h200-x2): dq written in the input dtype by the program that adds last into each query
# tile, counted once per program at its end, 8 tiles per counter atomic (CAST_DQ_IN_KERNEL=1), against the fp32
# buffer and a torch cast after the kernel (=0); parallel form, twice in alternating order.
# GPU 0: the timings, then the per-kernel breakdown. GPU 1: the GPU kernel tests (with the new dq test), 2^31 tests.
set -u
out=/tmp/s14c5; mkdir -p $out
S=$PWD/results/bench/kernels-grid/s14-2026-11-30/scripts
B=$PWD/results/bench/kernels-grid/2026-12-01/scripts
export PYTHONPATH=$PWD
python3 -c "import mqar.provenance as p; print(p.source_digest())" > $out/source.txt 2>&1
run() {  # run LABEL FORM [settings...]
  (CUDA_VISIBLE_DEVICES=0 timeout 150 python3 $S/time_variants.py "$@" >> $out/gpu0.jsonl 2>> $out/gpu0.err)
  echo "$* exit $? at $SECONDS s" >> $out/gpu0.err
}
( for pass in 1 2 3; do
    run torchcast$pass parallel CAST_DQ_IN_KERNEL=0
    run kcast$pass parallel CAST_DQ_IN_KERNEL=1
  done
  (CUDA_VISIBLE_DEVICES=0 timeout 60 python3 $B/kernel_breakdown.py > $out/breakdown.jsonl 2> $out/breakdown.err)
  echo "breakdown exit $? at $SECONDS s" >> $out/gpu0.err ) &
( export CUDA_VISIBLE_DEVICES=1
  timeout 200 python3 -m pytest -m gpu -q -n 6 -p no:cacheprovider -k 'not two_to_the_31' tests/test_kernels_gpu.py > $out/gpu-tests.txt 2>&1
  echo "exit $? at $SECONDS s" >> $out/gpu-tests.txt
  timeout 60 python3 -m pytest -m gpu -q -p no:cacheprovider -k two_to_the_31 tests/ > $out/gpu-2e31.txt 2>&1
  echo "exit $? at $SECONDS s" >> $out/gpu-2e31.txt ) &
wait
cp -r $out $OUT/
