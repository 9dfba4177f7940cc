# Session 9, call 3 (nvidia-h200-x2; carry .scratch/s9), branch s9-candidates (+ bwd_warps honoured by the chunked form):
#  GPU 0: the GPU tests call 2 did not reach (kernels, LayerNorm, train, models, sweep) -> suite2.txt
#  GPU 1: chunked warps tune -> tune-chunked-warps.txt; LayerNorm tune -> tune-ln.txt; compiled step profile
set -u
export PYTHONPATH=$PWD
S=$PWD/.scratch/s9
( export CUDA_VISIBLE_DEVICES=0
  timeout 420 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_kernels_gpu.py tests/test_kernels_triton.py \
    tests/test_layer_norm_gpu.py tests/test_train.py tests/test_models.py tests/test_sweep.py tests/test_sweep_cli.py \
    tests/test_report.py tests/test_store.py > $OUT/suite2.txt 2>&1; echo "rc=$?" >> $OUT/suite2.txt ) &
( export CUDA_VISIBLE_DEVICES=1
  timeout 170 python3 $S/tune_chunked_warps.py > $OUT/tune-chunked-warps.txt 2>&1
  timeout 150 python3 $S/tune_ln.py > $OUT/tune-ln.txt 2>&1
  timeout 90 python3 $S/prof_train_compiled.py $OUT/train-profile-compiled.txt > $OUT/prof.log 2>&1 ) &
wait
ls -la $OUT
