#!/usr/bin/env bash
# Session 12, call 7 (nvidia-h200): the training step after session 12's kernel changes (head-major grids, key
# blocks of 128 in the parallel backward at D <= 16, T >= 512), bf16, beside the plain path, as session 10's
# results/train-equivalence/v2/round4/bench512/ measured it before them.
set -u
export PYTHONPATH=$PWD
timeout 300 python3 -m mqar bench train --cases rebased:128:512,based:128:512 --precision bf16 \
  --paths plain,mqar,compiled --steps 30 --out $OUT/train > $OUT/train.log 2>&1
echo "exit $? at $SECONDS s" >> $OUT/train.log
