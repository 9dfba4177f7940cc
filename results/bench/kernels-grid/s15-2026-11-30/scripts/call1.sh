#!/usr/bin/env bash
# Session 15, call 1 (nvidia-h200-x2; carry .scratch/s15 from prep.sh): session 14's offline branches, untimed so far.
# GPU 0: parallel form, main / comb / fwd / bwd / comb-joinz / comb-split-acc, twice in alternating order, then the
#        backward helper's launch list on the bwd tree (bwd= always explicit: an override skips the seq-len rule).
# GPU 1: GPU kernel tests of comb, comb-joinz, comb-split-acc (the 2^31 test slices the forward grid past 65535).
set -u
out=/tmp/s15c1; mkdir -p $out
R=$PWD/.scratch/s15
S=$R/results/bench/kernels-grid/s14-2026-11-30/scripts/time_variants.py  # the combined branch's copy (prep.sh)
for t in main comb fwd bwd comb-joinz comb-split-acc; do
  (cd $R/$t && PYTHONPATH=$R/$t python3 -c "import mqar.provenance as p; print('$t', p.source_digest())" >> $out/source.txt 2>&1)
done
run() {  # run TREE LABEL FORM [settings...]
  local tree=$1; shift
  (cd $R/$tree && CUDA_VISIBLE_DEVICES=0 PYTHONPATH=$R/$tree timeout 150 python3 $S "$@" >> $out/gpu0.jsonl 2>> $out/gpu0.err)
  echo "$tree $* exit $? at $SECONDS s" >> $out/gpu0.err
}
( for pass in 1 2; do
    for t in main comb fwd bwd comb-joinz comb-split-acc; do run $t $t-$pass parallel; done
  done
  run bwd b4 parallel bwd=32x128x4
  run bwd b4r128 parallel bwd=32x128x4 bwd_maxnreg=128
  run bwd b4s1 parallel bwd=32x128x4 bwd_stages=1
  run bwd b4s1r128 parallel bwd=32x128x4 bwd_stages=1 bwd_maxnreg=128
  run bwd b2s2 parallel bwd=32x128x2 bwd_stages=2
  run bwd b2s1 parallel bwd=32x128x2 bwd_stages=1
  run bwd b2r168 parallel bwd=32x128x2 bwd_maxnreg=168
  run main main-b4 parallel bwd=32x128x4
  run comb comb-tma parallel FWD_TMA=1
) &
( export CUDA_VISIBLE_DEVICES=1
  for t in comb comb-joinz comb-split-acc; do
    (cd $R/$t && PYTHONPATH=$R/$t timeout 170 python3 -m pytest -m gpu -q -n 6 -p no:cacheprovider tests/test_kernels_gpu.py > $out/gpu-tests-$t.txt 2>&1
     echo "exit $? at $SECONDS s" >> $out/gpu-tests-$t.txt)
  done ) &
wait
cd /tmp && tar czf $OUT/s15c1.tar.gz s15c1 && ls -R s15c1 | head
