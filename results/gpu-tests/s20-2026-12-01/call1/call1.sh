# Session 20, call 1 (nvidia-h200): the GPU suite and the 2^31 tests at main HEAD; an eager host-time breakdown
set -x
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
git log --oneline -1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python -c "import torch, triton; print(torch.__version__, triton.__version__)"
set -o pipefail
timeout 330 python -m pytest -m gpu -n 8 -q -k 'not two_to_the_31' tests/ 2>&1 | tail -15 | tee $OUT/gpu-tests.txt
timeout 120 python -m pytest -m gpu -q -k 'two_to_the_31' tests/test_kernels_gpu.py 2>&1 | tail -5 | tee $OUT/gpu-2e31.txt
timeout 100 python results/gpu-tests/s20-2026-12-01/call1/host_breakdown.py 2>&1 | tee $OUT/host_breakdown.txt
