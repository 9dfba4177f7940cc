# Session 19, call 8 (nvidia-h200): linear attention's host time per call at a tiny shape, and a cProfile of it
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 120 python .scratch19/la_host.py 2>&1 | tee $OUT/la_host.txt | head -120
