#!/usr/bin/env bash
# Session 14, call 2 (nvidia-h200-x2): the parallel form's tiles re-timed on main after the merge (0ea02db), whose
# backward (EVEN masks, per-row factors) and forward (row clamp) changed the instruction mix the tiles were tuned on.
# GPU 0: backward tiles (bwd=BMxBNxWARPS); GPU 1: forward tiles and pipelining depth, with the backward held at
# its D16 default (32x128x2: an override bypasses the seq-len rule, see time_variants.py), then the per-kernel
# breakdown. Each list twice in alternating order; each GPU has its own baseline run.
set -u
out=/tmp/s14c2; mkdir -p $out
S=$PWD/results/bench/kernels-grid/2026-12-01/scripts
export PYTHONPATH=$PWD
python3 -c "import mqar.provenance as p; print(p.source_digest())" > $out/source.txt 2>&1
run() {  # run GPU LABEL [settings...]
  local gpu=$1; shift
  (CUDA_VISIBLE_DEVICES=$gpu timeout 150 python3 $S/time_variants.py "$1" parallel "${@:2}" >> $out/gpu$gpu.jsonl 2>> $out/gpu$gpu.err)
  echo "$* exit $? at $SECONDS s" >> $out/gpu$gpu.err
}
( for pass in 1 2; do
    run 0 base$pass
    for t in 64x128x2 16x128x2 32x256x2 16x256x2 32x128x1 16x64x1; do run 0 b$t-$pass bwd=$t; done
  done ) &
( for pass in 1 2; do
    run 1 fbase$pass bwd=32x128x2
    for t in 128x64x4 64x128x4 128x64x8 128x128x8; do run 1 f$t-$pass bwd=32x128x2 fwd=$t; done
    for s in 2 4; do run 1 s$s-$pass bwd=32x128x2 stages=$s; done
  done
  (CUDA_VISIBLE_DEVICES=1 timeout 60 python3 $S/kernel_breakdown.py > $out/breakdown.jsonl 2> $out/breakdown.err)
  echo "breakdown exit $? at $SECONDS s" >> $out/gpu1.err ) &
wait
cp -r $out $OUT/
