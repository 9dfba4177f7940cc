#!/usr/bin/env bash
# Session 13, call 3 (nvidia-h200): the backward's δ and 1/Z by one Triton pass (bwd_prep_kernel) against HEAD
# (torch ops; tree carried in .scratch/s13/head), both forms, in alternating order; the kernel breakdown of the new
# tree; then the prefix-state scan alone by warps / stages / value columns.
set -u
out=/tmp/s13c3; mkdir -p $out
S=$PWD/results/bench/kernels-grid/2026-12-01/scripts
H=$PWD/.scratch/s13/head
python3 -c "import mqar.provenance as p; print(p.source_digest())" > $out/source.txt 2>&1
run() {  # run TREE LABEL FORM [settings...]
  local tree=$1; shift
  (cd $tree && PYTHONPATH=$tree timeout 150 python3 $S/time_variants.py "$@" >> $out/gpu0.jsonl 2>> $out/gpu0.err)
  echo "$* exit $? at $SECONDS s" >> $out/gpu0.err
}
for form in parallel chunked; do run $H head $form; run $PWD prep $form; done
(PYTHONPATH=$PWD timeout 60 python3 $S/kernel_breakdown.py > $out/breakdown.jsonl 2> $out/breakdown.err)
echo "breakdown exit $? at $SECONDS s" >> $out/gpu0.err
(PYTHONPATH=$PWD timeout 240 python3 $S/scan_variants.py > $out/scan.jsonl 2> $out/scan.err)
echo "scan exit $? at $SECONDS s" >> $out/gpu0.err
cp -r $out $OUT/
