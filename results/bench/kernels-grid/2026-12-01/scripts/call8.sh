#!/usr/bin/env bash
# Session 13, call 8 (nvidia-h200, the last ~4 min of device time): the parallel backward at 4 warps, where Triton
# can issue wgmma (2 warps cannot), under the head-major grid and with bwd_prep_kernel: query step x key block x
# warps 64x128x4, 128x128x4, 64x256x4 against this tree's 32x128x2 / 32x64x2. Written to $OUT as it goes.
set -u
S=$PWD/results/bench/kernels-grid/2026-12-01/scripts
export PYTHONPATH=$PWD
python3 -c "import mqar.provenance as p; print(p.source_digest())" > $OUT/source.txt 2>&1
run() {  # run LABEL FORM [settings...]
  timeout 45 python3 $S/time_variants.py "$@" >> $OUT/gpu0.jsonl 2>> $OUT/gpu0.err
  echo "$* exit $? at $SECONDS s" >> $OUT/gpu0.err
}
run base parallel; run bwd64x128x4 parallel bwd=64x128x4; run bwd128x128x4 parallel bwd=128x128x4
run bwd64x256x4 parallel bwd=64x256x4
