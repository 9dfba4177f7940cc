#!/usr/bin/env bash
# Session 15, sweep scaling call B (the same warm machine right after call A; carry .scratch/ray/b = the wheel's
# second half and jsonschema's wheels, which the device image lacks). Installs Ray 2.60.0, then run.sh's Ray phase
# (one long-lived actor per device slot since 63b10b1, never timed on GPUs) and its kill-one-worker phase.
set -u
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
W=/tmp/raywheel; mkdir -p $W
cat $W/ray.part.aa .scratch/ray/b/ray.part.ab > $W/ray-2.60.0-cp312-cp312-manylinux2014_x86_64.whl  # aa: callA2.sh
sha256sum $W/ray-2.60.0-*.whl  # b951b409... here
python3 -m pip install --no-deps -q $W/ray-2.60.0-*.whl .scratch/ray/b/*.whl > $OUT/pip-ray.log 2>&1; echo "pip ray exit $?"
python3 -m pip install --no-deps --no-build-isolation -q -e . >> $OUT/pip-ray.log 2>&1
python3 -c "import ray; print('ray', ray.__version__)" | tee $OUT/env.txt
OUT=$OUT/scaling EPOCHS=4 KILL_AFTER_S=12 PHASES="${PHASES:-ray-2gpu kill}" timeout 480 bash results/bench/sweep-scaling/run.sh
cat $OUT/scaling/phases.txt
