#!/usr/bin/env bash
# Session 17, call 6 (nvidia-h200): FWD_GRAM's rule at small batch·heads (main's kernels): time_variants.py FORM small
# with FWD_GRAM 0 / 1, three times in alternating order.
set -u
export PYTHONPATH=$PWD
S=$PWD/.scratch17
nvidia-smi --query-gpu=name,uuid --format=csv > $OUT/source.txt
git rev-parse HEAD >> $OUT/source.txt 2>&1; python3 -c "import mqar.provenance as p; print(p.source_digest())" >> $OUT/source.txt 2>&1
for pass in 1 2 3; do
  for g in 0 1; do
    timeout 100 python3 $S/time_variants.py g$g-$pass small FWD_GRAM=$g >> $OUT/small.jsonl 2>> $OUT/small.err
    echo "g$g-$pass exit $? at $SECONDS s" >> $OUT/small.err
  done
done
cat $OUT/small.err
