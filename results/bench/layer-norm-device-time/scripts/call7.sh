# Session 19, call 7 (nvidia-h200): the LayerNorm bench with device time (CUDA-graph replay) beside do_bench, its GPU
# test, then the full bench into $OUT
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 100 python -m pytest -m gpu -q tests/test_layer_norm_gpu.py 2>&1 | tail -3 | tee $OUT/gpu-tests-layer-norm.txt
timeout 300 python -m mqar bench layer-norm --out $OUT/layer-norm > $OUT/bench.log 2>&1; echo "bench rc $?"
cat $OUT/layer-norm/layer-norm.md
