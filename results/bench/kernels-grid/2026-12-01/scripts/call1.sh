#!/usr/bin/env bash
# Session 13, call 1 (nvidia-h200-x2): branch parallel-bwd-offline against main, both forms.
# Trees (carried in .scratch/s13): r1 = 54d6b1a (round 1: truncated split, MMA row sums, 1/Z loaded),
# r2 = 7395d14 (round 1 + int32 row offsets ROWS32 + 32-bit forward causal compare). main = this tree.
# GPU 0: time_variants main / r1 / r2 (and r2 with ROWS32=0), parallel and chunked, twice in alternating order.
# GPU 1: GPU kernel tests of r1, then of r2, then the 2^31-offset tests of both.
set -u
out=/tmp/s13c1; mkdir -p $out
S=$PWD/results/bench/kernels-grid/2026-12-01/scripts/time_variants.py
R=$PWD/.scratch/s13
python3 -c "import mqar.provenance as p; print(p.source_digest())" > $out/source.txt 2>&1
nvidia-smi --query-gpu=name,driver_version --format=csv > $out/gpu.txt 2>&1
run() {  # run TREE LABEL FORM [settings...]
  local tree=$1; shift
  (cd $tree && CUDA_VISIBLE_DEVICES=0 PYTHONPATH=$tree timeout 150 python3 $S "$@" >> $out/gpu0.jsonl 2>> $out/gpu0.err)
  echo "$* exit $? at $SECONDS s" >> $out/gpu0.err
}
( for pass in 1 2; do
    for form in parallel chunked; do
      run $PWD main$pass $form; run $R/r1 r1-$pass $form; run $R/r2 r2-$pass $form
    done
  done
  run $R/r2 r2-int64 parallel ROWS32=0
) &
( export CUDA_VISIBLE_DEVICES=1
  for t in r1 r2; do
    (cd $R/$t && PYTHONPATH=$R/$t timeout 170 python3 -m pytest -m gpu -q -n 6 -p no:cacheprovider -k 'not two_to_the_31' tests/test_kernels_gpu.py > $out/gpu-tests-$t.txt 2>&1
     echo "exit $? at $SECONDS s" >> $out/gpu-tests-$t.txt)
  done
  for t in r1 r2; do
    (cd $R/$t && PYTHONPATH=$R/$t timeout 100 python3 -m pytest -m gpu -q -p no:cacheprovider -k two_to_the_31 tests/ > $out/gpu-2e31-$t.txt 2>&1
     echo "exit $? at $SECONDS s" >> $out/gpu-2e31-$t.txt)
  done
) &
wait
cd /tmp && tar czf $OUT/s13c1.tar.gz s13c1 && ls -R s13c1
