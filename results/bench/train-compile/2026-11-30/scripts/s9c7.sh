# Session 9, call 7 (nvidia-h200-x2; carry .scratch/s9), branch frequent-token-embedding:
#  GPU 0: embedding micro-bench -> embedding.txt; GPU tests of embedding, models, train -> suite4.txt
#  GPU 1: mqar bench train (mqar, compiled) -> train.tgz
set -u
export PYTHONPATH=$PWD
( export CUDA_VISIBLE_DEVICES=0
  timeout 60 python3 .scratch/s9/bench_embedding.py > $OUT/embedding.txt 2>&1
  timeout 150 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_embedding.py tests/test_models.py tests/test_train.py \
    > $OUT/suite4.txt 2>&1; echo "rc=$?" >> $OUT/suite4.txt ) &
( CUDA_VISIBLE_DEVICES=1 timeout 200 python3 -m mqar bench train \
    --cases rebased:128:512,based:128:512,attention:128:512,conv-attention:128:512,rebased:128:2048 \
    --precision bf16 --paths mqar,compiled --steps 30 --out $OUT/train > $OUT/train.log 2>&1 ) &
wait
tar czf $OUT/train.tgz -C $OUT train && rm -rf $OUT/train
ls -la $OUT
