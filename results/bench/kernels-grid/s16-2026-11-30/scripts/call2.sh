#!/usr/bin/env bash
# Session 16, call 2 (nvidia-h200-x2): what the forward's row sums and A's lo half cost, all under FWD_GRAM=0.
# Trees (copies of this one with a diff from scripts/ applied): main; nozoff (TIMING ONLY: key blocks wholly before
# the query block add nothing to z); nolo (TIMING ONLY: A·v and z from A's hi bf16 half alone); zinv (z as one more
# column of v, a column of ones at D: one MMA pair of twice the width instead of two pairs).
# GPU 0: the four trees, twice in alternating order, then zinv with 128x64x4 forward tiles.
# GPU 1: the GPU kernel tests of zinv (FWD_GRAM 0).
set -u
out=/tmp/s16c2; mkdir -p $out
S=$PWD/results/bench/kernels-grid/s16-2026-11-30/scripts
R=/tmp/s16trees; mkdir -p $R
for t in main nozoff nolo zinv; do
  mkdir -p $R/$t && cp -r mqar tests pyproject.toml $R/$t/
  if [ $t != main ]; then (cd $R/$t && patch -p1 -s < $S/$t.diff) >> $out/patch.log 2>&1; fi
  (cd $R/$t && PYTHONPATH=$R/$t python3 -c "import mqar.provenance as p; print('$t', p.source_digest())" >> $out/source.txt 2>&1)
done
nvidia-smi --query-gpu=name,uuid --format=csv >> $out/source.txt 2>&1
run() {  # run TREE LABEL [settings...]
  local tree=$1; shift
  (cd $R/$tree && CUDA_VISIBLE_DEVICES=0 PYTHONPATH=$R/$tree timeout 150 python3 $S/time_variants.py "$1" parallel FWD_GRAM=0 "${@:2}" >> $out/gpu0.jsonl 2>> $out/gpu0.err)
  echo "$tree $* exit $? at $SECONDS s" >> $out/gpu0.err
}
( for pass in 1 2; do
    for t in main nozoff nolo zinv; do run $t $t-$pass; done
  done
  run zinv zinv-128x64x4 fwd=128x64x4
) &
( export CUDA_VISIBLE_DEVICES=1
  cd $R/zinv && PYTHONPATH=$R/zinv:$S timeout 250 python3 -m pytest -m gpu -q -n 6 -p no:cacheprovider -p gram0_plugin -k 'not two_to_the_31' tests/test_kernels_gpu.py > $out/gpu-tests-zinv.txt 2>&1
  echo "exit $? at $SECONDS s" >> $out/gpu-tests-zinv.txt
) &
wait
cd /tmp && tar czf $OUT/s16c2.tar.gz s16c2 && ls -R s16c2 | head
