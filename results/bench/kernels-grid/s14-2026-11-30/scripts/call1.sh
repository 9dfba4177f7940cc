#!/usr/bin/env bash
# Session 14, call 1 (nvidia-h200-x2): session 13's offline branches against main, both forms.
# Trees (carried in .scratch/s14, each `git archive REV mqar tests pyproject.toml`):
#   main = 453813e; comb = offline-s13-combined (bwd-offline-s13 + fwd-tma-offline);
#   nopairs = comb with e90e81f ((1/Z, delta) pairs) reverted.
# GPU 0: time_variants.py (session 13's dated copy) for each tree, parallel and chunked, twice in alternating order.
# GPU 1: GPU kernel tests of comb, then of nopairs, then the 2^31-offset tests of both.
set -u
out=/tmp/s14c1; mkdir -p $out
S=$PWD/results/bench/kernels-grid/2026-12-01/scripts/time_variants.py
R=$PWD/.scratch/s14
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" > $out/versions.txt 2>&1
nvidia-smi --query-gpu=name,driver_version --format=csv >> $out/versions.txt 2>&1
for t in main comb nopairs; do (cd $R/$t && PYTHONPATH=$R/$t python3 -c "import mqar.provenance as p; print('$t', p.source_digest())" >> $out/source.txt 2>&1); done
run() {  # run TREE LABEL FORM [settings...]
  local tree=$1; shift
  (cd $R/$tree && CUDA_VISIBLE_DEVICES=0 PYTHONPATH=$R/$tree timeout 150 python3 $S "$@" >> $out/gpu0.jsonl 2>> $out/gpu0.err)
  echo "$* exit $? at $SECONDS s" >> $out/gpu0.err
}
( for pass in 1 2; do
    for form in parallel chunked; do
      run main main$pass $form; run comb comb$pass $form; run nopairs nopairs$pass $form
    done
  done
) &
( export CUDA_VISIBLE_DEVICES=1
  for t in comb nopairs; do
    (cd $R/$t && PYTHONPATH=$R/$t timeout 170 python3 -m pytest -m gpu -q -n 6 -p no:cacheprovider -k 'not two_to_the_31' tests/test_kernels_gpu.py > $out/gpu-tests-$t.txt 2>&1
     echo "exit $? at $SECONDS s" >> $out/gpu-tests-$t.txt)
  done
  for t in comb nopairs; do
    (cd $R/$t && PYTHONPATH=$R/$t timeout 60 python3 -m pytest -m gpu -q -p no:cacheprovider -k two_to_the_31 tests/ > $out/gpu-2e31-$t.txt 2>&1
     echo "exit $? at $SECONDS s" >> $out/gpu-2e31-$t.txt)
  done
) &
wait
cd /tmp && tar czf $OUT/s14c1.tar.gz s14c1 && ls -R s14c1
