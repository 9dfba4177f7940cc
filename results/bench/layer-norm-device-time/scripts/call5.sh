# Session 19, call 5 (nvidia-h200): the Triton LayerNorm's host time per call, and where it goes (cProfile)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 120 python .scratch19/ln_host.py 2>&1 | tee $OUT/ln_host.txt | head -70
