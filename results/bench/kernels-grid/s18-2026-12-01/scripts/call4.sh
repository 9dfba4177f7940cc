# Session 18, call 4 (nvidia-h200): the GPU suite on the final tree, then the 2^31 tests
set -x
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
git log -1 --format=%h; git status --short | grep -v scratch
set -o pipefail
timeout 300 python -m pytest -m gpu -n 8 -q -k 'not two_to_the_31' tests/ 2>&1 | tail -15 | tee $OUT/gpu-tests.txt
timeout 200 python -m pytest -m gpu -q -k 'two_to_the_31' tests/test_kernels_gpu.py 2>&1 | tail -5 | tee $OUT/gpu-2e31.txt
