#!/usr/bin/env bash
# Session 13, call 4 (nvidia-h200): the chunked form's warps. This tree: the scan at 2 warps (scan_warps), δ by
# bwd_prep_kernel. Against it: the scan at 4 warps (call 3's "prep" tree), the backward kernel at 2 / 8 warps
# (both layouts), the whole chunked config at 2 / 8 warps; then the scan alone again (D16 shapes included).
set -u
out=/tmp/s13c4; mkdir -p $out
S=$PWD/results/bench/kernels-grid/2026-12-01/scripts
export PYTHONPATH=$PWD
python3 -c "import mqar.provenance as p; print(p.source_digest())" > $out/source.txt 2>&1
run() {  # run LABEL FORM [settings...]
  timeout 150 python3 $S/time_variants.py "$@" >> $out/gpu0.jsonl 2>> $out/gpu0.err
  echo "$* exit $? at $SECONDS s" >> $out/gpu0.err
}
run scan2 chunked; run scan4 chunked scan_warps=4
run bwd2 chunked chunked_bwd_warps=2; run bwd8 chunked chunked_bwd_warps=8
run split4 chunked CHUNKED_BWD=split; run split8 chunked CHUNKED_BWD=split chunked_bwd_warps=8
run all2 chunked chunked=64x16x2; run all8 chunked chunked=64x16x8 scan_warps=2
run scan2b chunked
(timeout 200 python3 $S/scan_variants.py > $out/scan.jsonl 2> $out/scan.err)
echo "scan exit $? at $SECONDS s" >> $out/gpu0.err
cp -r $out $OUT/
