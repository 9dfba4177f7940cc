# Session 20, call 5 (nvidia-h200): with vs without learned positions for Zoology's conv baselines (pos_ab.py)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
git log --oneline -1
for arch in base-conv hyena; do for lr in 1e-2 2.1544e-3; do for pos in 0 1; do
  timeout 400 python results/zoology-figure2/2026-12-01-l64-check/positions-ab/pos_ab.py $arch 128 $lr $pos > $OUT/ab-$arch-$lr-$pos.json 2> $OUT/ab-$arch-$lr-$pos.err &
done; done; done
wait
cat $OUT/ab-*.json
tail -n 3 $OUT/ab-*.err | grep -v "^$" | tail -20
