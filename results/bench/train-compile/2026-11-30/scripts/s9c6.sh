# Session 9, final call (nvidia-h200-x2; carry .scratch/s9): branch s9-candidates with the LayerNorm / CE launch configs.
#  GPU 0: GPU tests of LayerNorm, cross-entropy, training (CUDA graph and compiled steps) -> suite3.txt
#  GPU 1: mqar bench train, mqar and compiled paths -> train/ (train.md + train.json come back in train.tgz)
set -u
export PYTHONPATH=$PWD
( CUDA_VISIBLE_DEVICES=0 timeout 200 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_layer_norm_gpu.py \
    tests/test_cross_entropy.py tests/test_train.py tests/test_bench_train.py > $OUT/suite3.txt 2>&1; echo "rc=$?" >> $OUT/suite3.txt ) &
( CUDA_VISIBLE_DEVICES=1 timeout 220 python3 -m mqar bench train \
    --cases rebased:128:512,based:128:512,attention:128:512,conv-attention:128:512,rebased:128:2048 \
    --precision bf16 --paths mqar,compiled --steps 30 --out $OUT/train > $OUT/train.log 2>&1 ) &
wait
tar czf $OUT/train.tgz -C $OUT train && rm -rf $OUT/train
ls -la $OUT
