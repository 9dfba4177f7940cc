# Session 19, call 2 (nvidia-h200): the GPU suite and the 2^31 tests after the kernel-API fixes (first_order_only on the
# Triton backwards, one dtype for q/k/v, head-width limits, LayerNorm device check, one check_inputs), and the
# CUDA-graph bf16 training step's rate beside session 18's call 6 (21.77 M tokens/s at d128, 8.02 M at d512)
set -x
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
git log --oneline -1 2>/dev/null
set -o pipefail
timeout 330 python -m pytest -m gpu -n 8 -q -k 'not two_to_the_31' tests/ 2>&1 | tail -15 | tee $OUT/gpu-tests.txt
timeout 120 python -m pytest -m gpu -q -k 'two_to_the_31' tests/test_kernels_gpu.py 2>&1 | tail -5 | tee $OUT/gpu-2e31.txt
timeout 150 python -m mqar bench train --cases rebased:128:512,rebased:512:512 --precision bf16 --paths mqar --steps 20 --out $OUT/train > $OUT/train.log 2>&1
echo "exit $?" >> $OUT/train.log
tail -20 $OUT/train.log
