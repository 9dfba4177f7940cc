# Session 9, call 2 (nvidia-h200-x2; carry .scratch/s9, .whl), on branch s9-candidates (fold + chunked BE16 + CE):
#  GPU 0: every GPU test on one GPU -> suite.txt; then the kernel bench with FLA -> kernels/
#  GPU 1: CE old vs new -> ce.txt; LayerNorm backward tune -> tune-ln.txt; bench train compiled -> train/
set -u
export PYTHONPATH=$PWD
python3 -m pip install --no-deps -q .whl/*.whl > $OUT/pip.log 2>&1; python3 -c "import fla; print('fla', fla.__version__)" >> $OUT/pip.log 2>&1
S=$PWD/.scratch/s9
( export CUDA_VISIBLE_DEVICES=0
  timeout 330 python3 -m pytest -q -m gpu -p no:cacheprovider tests/ > $OUT/suite.txt 2>&1; echo "rc=$?" >> $OUT/suite.txt
  timeout 200 python3 -m mqar bench kernels --out $OUT/kernels --rep-ms 40 --method 'ours auto rebased' \
    --method 'ours parallel rebased' --method 'ours chunked rebased' --method 'fla parallel_rebased' --method sdpa \
    > $OUT/kernels.log 2>&1 ) &
( export CUDA_VISIBLE_DEVICES=1
  timeout 60 python3 $S/bench_ce.py $S > $OUT/ce.txt 2>&1
  timeout 200 python3 $S/tune_ln.py > $OUT/tune-ln.txt 2>&1
  timeout 240 python3 -m mqar bench train --cases rebased:128:512,based:128:512,attention:128:512,conv-attention:128:512,rebased:128:2048 \
    --precision bf16 --paths mqar,compiled --steps 30 --out $OUT/train > $OUT/train.log 2>&1 ) &
wait
ls -la $OUT
