# Session 19, call 9 (nvidia-h200): host timeline of one eager linear-attention fwd+bwd at a tiny shape
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 100 python .scratch19/la_timeline.py 2>&1 | tee $OUT/la_timeline.txt
