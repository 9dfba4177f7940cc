# Session 18, call 6 (nvidia-h200): the GPU suite and the 2^31 tests on the final tree (after the API audits:
# once_differentiable backwards, input checks), and the CUDA-graph training step's rate beside call 2's
set -x
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
set -o pipefail
timeout 300 python -m pytest -m gpu -n 8 -q -k 'not two_to_the_31' tests/ 2>&1 | tail -15 | tee $OUT/gpu-tests.txt
timeout 100 python -m pytest -m gpu -q -k 'two_to_the_31' tests/test_kernels_gpu.py 2>&1 | tail -5 | tee $OUT/gpu-2e31.txt
timeout 150 python -m mqar bench train --cases rebased:128:512,rebased:512:512 --precision bf16 --paths mqar --steps 20 --out $OUT/train > $OUT/train.log 2>&1
echo "exit $?" >> $OUT/train.log
