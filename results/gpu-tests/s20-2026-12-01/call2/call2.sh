# Session 20, call 2 (nvidia-h200): where the eager host time of linear attention goes
export PYTHONPATH=$PWD
python results/gpu-tests/s20-2026-12-01/call2/host_probe2.py 2>&1 | tee $OUT/host_probe2.txt
