#!/usr/bin/env bash
# Session 13, call 6 (nvidia-h200): the chunked form with the scan's backward direction multiplying by 1/Z (this
# tree) against dividing by Z per element (.scratch/s13/div: the tree of calls 4-5 with the 2-warp config), twice
# in alternating order; then the scan's backward direction alone by pipelining stages (this tree).
set -u
out=/tmp/s13c6; mkdir -p $out
S=$PWD/results/bench/kernels-grid/2026-12-01/scripts
D=$PWD/.scratch/s13/div
python3 -c "import mqar.provenance as p; print(p.source_digest())" > $out/source.txt 2>&1
run() {  # run TREE LABEL FORM [settings...]
  local tree=$1; shift
  (cd $tree && PYTHONPATH=$tree timeout 100 python3 $S/time_variants.py "$@" >> $out/gpu0.jsonl 2>> $out/gpu0.err)
  echo "$* exit $? at $SECONDS s" >> $out/gpu0.err
}
run $PWD rz1 chunked; run $D div1 chunked; run $PWD rz2 chunked; run $D div2 chunked
(PYTHONPATH=$PWD timeout 100 python3 $S/scan_variants.py 2x2 2x3 2x4 1x3 --backward-only > $out/scan.jsonl 2> $out/scan.err)
echo "scan exit $? at $SECONDS s" >> $out/gpu0.err
cp -r $out $OUT/
