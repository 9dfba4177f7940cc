# Call 1 (x2): fused-LayerNorm benches side by side (main vs main+fused-ln, same GPU each), then the Figure-1 slice
# on both GPUs, with the merged tree's GPU tests sharing GPU 1 meanwhile.
set -u
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
T0=$(date +%s); ROOT=$PWD; FLN=$ROOT/.scratch/fln; R=$OUT/r; mkdir -p $R
{ nvidia-smi -L; python3 -c "import torch,triton;print(torch.__version__,triton.__version__,torch.version.cuda)"; } > $R/env.txt 2>&1
tb() { # tb TREE PRECISION TAG
  (cd $1 && PYTHONPATH=$1 timeout 60 python3 -m mqar bench train --cases rebased:128:512,based:128:512,rebased:16:256 \
     --precision $2 --paths mqar --steps 20 --out $R/tb-$3 > $R/tb-$3.log 2>&1); }
( export CUDA_VISIBLE_DEVICES=0; tb $ROOT bf16 main-bf16; tb $FLN bf16 fln-bf16; tb $ROOT bf16 main-bf16-b ) &
( export CUDA_VISIBLE_DEVICES=1; tb $FLN fp32 fln-fp32; tb $ROOT fp32 main-fp32; tb $FLN fp32 fln-fp32-b
  cd $FLN && PYTHONPATH=$FLN timeout 40 python3 -m mqar bench layer-norm --out $R/ln > $R/ln.log 2>&1 ) &
wait
echo "benches done at $(( $(date +%s) - T0 )) s" >> $R/env.txt
( cd $FLN && CUDA_VISIBLE_DEVICES=1 PYTHONPATH=$FLN timeout 300 python3 -m pytest -q -m gpu tests/test_layer_norm_gpu.py \
    tests/test_train.py tests/test_models.py tests/test_cross_entropy.py > $R/gpu-tests-fln.txt 2>&1 ) &
SECONDS_LIMIT=$(( ${CALL_S:-565} - ($(date +%s) - T0) )) RUNS_PER_DEVICE=3 OUT=$R bash results/run-figure-on-device.sh rebased-figure1
wait
cp $R/figure.tgz $OUT/ 2>/dev/null; rm -f $R/figure.tgz
tar czf $OUT/c1.tgz -C $OUT r && rm -rf $R
