# Session 19, call 10 (nvidia-h200): the GPU suite after the README walkthrough's kernel-entry check (impl='triton'
# needs CUDA tensors outside the interpreter) and bench train --quick
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
set -o pipefail
timeout 200 python -m pytest -m gpu -n 8 -q -k 'not two_to_the_31' tests/ 2>&1 | tail -6 | tee $OUT/gpu-tests.txt
