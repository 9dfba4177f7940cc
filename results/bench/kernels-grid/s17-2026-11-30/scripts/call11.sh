#!/usr/bin/env bash
# Session 17, call 11 (nvidia-h200): host time of small calls before / after the host-side trims of triton_ops
# (_pad cached, _strides4 one stride() call, _rows32 a loop): host_parts.py on a copy with main's triton_ops.py
# ("before") and on this tree ("after"), alternating, twice; then host_parts3.py on each.
set -u
rm -rf /tmp/before && cp -r $PWD /tmp/before && cp .scratch17/old_triton_ops.py /tmp/before/mqar/kernels/triton_ops.py
for pass in 1 2; do
  for tree in /tmp/before $PWD; do
    echo "== $tree pass $pass" >> $OUT/call11.txt
    (cd .scratch17 && PYTHONPATH=$tree:$PWD/.scratch17 python3 host_parts.py >> $OUT/call11.txt 2>&1)
  done
done
for tree in /tmp/before $PWD; do
  echo "== $tree host_parts3" >> $OUT/call11.txt
  (cd .scratch17 && PYTHONPATH=$tree:$PWD/.scratch17 python3 host_parts3.py >> $OUT/call11.txt 2>&1)
done
cat $OUT/call11.txt
