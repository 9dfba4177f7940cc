#!/usr/bin/env bash
# Session 13, call 5 (nvidia-h200): the chunked form at 2 warps by feature block and backward layout (this tree:
# fwd / bwd kernels 4 warps, scan 2), and two parallel forward tiles at 2 warps.
set -u
out=/tmp/s13c5; mkdir -p $out
S=$PWD/results/bench/kernels-grid/2026-12-01/scripts
export PYTHONPATH=$PWD
python3 -c "import mqar.provenance as p; print(p.source_digest())" > $out/source.txt 2>&1
run() {  # run LABEL FORM [settings...]
  timeout 150 python3 $S/time_variants.py "$@" >> $out/gpu0.jsonl 2>> $out/gpu0.err
  echo "$* exit $? at $SECONDS s" >> $out/gpu0.err
}
run base chunked; run bwd2 chunked chunked_bwd_warps=2
run all2be16 chunked chunked=64x16x2; run all2be32 chunked chunked=64x32x2
run all2be16split chunked chunked=64x16x2 CHUNKED_BWD=split; run all2be32sum chunked chunked=64x32x2 CHUNKED_BWD=sum
run all2be32split chunked chunked=64x32x2 CHUNKED_BWD=split
run all2be16b chunked chunked=64x16x2
run par parallel; run fwd64x64x2 parallel fwd=64x64x2; run fwd32x64x2 parallel fwd=32x64x2
cp -r $out $OUT/
