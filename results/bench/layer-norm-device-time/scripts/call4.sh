# Session 19, call 4 (nvidia-h200): where the Triton LayerNorm's fwd+bwd time goes (the quick bench showed
# 0.68 ms at 4096x128 fp32 against torch's 0.10)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
timeout 200 python .scratch19/ln_profile.py 2>&1 | tee $OUT/ln_profile.txt | grep -E "^==|_kernel|Self CUDA time total|aten::(sum|zeros|fill_|copy_)" 
