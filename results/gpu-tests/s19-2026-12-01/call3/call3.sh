# Session 19, call 3 (nvidia-h200): the README's commands on a GPU machine, as written where they fit the call
# (install as the README says for a machine with torch; the train example as written; the quick sweep and its report on
# On the device `pip` is the system pip (its `mqar` script ran a python without typer), so: python -m pip, python -m mqar.
# the GPU; the benchmarks' --quick smoke runs).
set -x
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python -c "import torch, triton; print(torch.__version__, triton.__version__)"
(python -m pip install --no-deps -e . > $OUT/install.log 2>&1 && echo "README install: ok") || (echo "README install failed (no network for build isolation?)"; tail -3 $OUT/install.log; python -m pip install --no-deps --no-build-isolation -e . >> $OUT/install.log 2>&1 && echo "with --no-build-isolation: ok")
cd /tmp && mkdir -p walk && cd walk
{ time timeout 180 python -m mqar train --arch rebased --d-model 48 --seq-len 256 --num-kv-pairs 32 --lr 1e-3 --seed 0 ; } > $OUT/train-example.log 2>&1; echo "train rc $?"; tail -3 $OUT/train-example.log
{ time timeout 90 python -m mqar sweep --preset quick --devices all --store /tmp/walk/quick.db && python -m mqar report --sweep quick --store /tmp/walk/quick.db --out /tmp/walk/fig ; } > $OUT/quick-sweep.log 2>&1; echo "sweep rc $?"; tail -14 $OUT/quick-sweep.log
for b in kernels train layer-norm; do { time timeout 80 python -m mqar bench $b --quick --out /tmp/walk/bench-$b ; } >> $OUT/bench-quick.log 2>&1; echo "bench $b rc $?"; done
tail -60 $OUT/bench-quick.log
