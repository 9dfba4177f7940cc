# Session 19, call 6 (nvidia-h200): the host cost of Python autograd Functions' backward on CUDA, and do_bench vs
# CUDA-graph replay (device time) for linear attention at the kernel bench's shapes
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nproc; timeout 200 python .scratch19/host_overhead.py 2>&1 | tee $OUT/host_overhead.txt
