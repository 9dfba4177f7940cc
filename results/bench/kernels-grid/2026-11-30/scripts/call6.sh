#!/usr/bin/env bash
# Session 12, call 6 (nvidia-h200): main's defaults after the merge, then the last tiles not tried under the
# head-major grid: backward 64x128x4 (wgmma-sized), forward 64x64x8 and 128x64x4.
set -u
out=/tmp/s12c6; mkdir -p $out
S=results/bench/kernels-grid/2026-11-30/scripts
export PYTHONPATH=$PWD
python3 -c "import mqar.provenance as p; print(p.source_digest())" > $out/source.txt 2>&1
run() {
  timeout 150 python3 $S/time_variants.py "$@" >> $out/gpu0.jsonl 2>> $out/gpu0.err
  echo "$* exit $? at $SECONDS s" >> $out/gpu0.err
}
run default parallel
run bwd64x128x4 parallel bwd=64x128x4
run fwd64x64x8 parallel fwd=64x64x8
run fwd128x64x4 parallel fwd=128x64x4
cd /tmp && tar czf $OUT/s12c6.tar.gz s12c6 && ls -R s12c6
