# Session 20, call 3 (nvidia-h200): the GPU suite after the session's merges (Zoology-model fidelity, recipe per
# length, sample-std error bars, store/resume fixes), and the changed and new Zoology archs trained on CUDA
set -x
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
git log --oneline -1
set -o pipefail
timeout 330 python -m pytest -m gpu -n 8 -q -k 'not two_to_the_31' tests/ 2>&1 | tail -6 | tee $OUT/gpu-tests.txt
for a in hyena h3 base-conv rwkv-zoology rwkv; do
  timeout 60 python -m mqar train --arch $a --d-model 64 --seq-len 128 --num-kv-pairs 8 --lr 1e-3 --epochs 2 \
    --num-train-examples 8000 --device cuda --no-progress 2>&1 | tail -1 | cut -c1-400
done 2>&1 | tee $OUT/zoology-archs-cuda.txt
timeout 120 python -m mqar train --arch base-conv --d-model 64 --seq-len 128 --num-kv-pairs 8 --lr 1e-3 --epochs 2 \
    --num-train-examples 8000 --device cuda --no-progress --compile 2>&1 | tail -1 | cut -c1-400 | tee $OUT/base-conv-compile.txt
