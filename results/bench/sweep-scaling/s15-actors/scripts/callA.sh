#!/usr/bin/env bash
# Session 15, sweep scaling call A (nvidia-h200-x2; carry .scratch/ray/a = first half of Ray 2.60.0's cp312 wheel,
# which alone passes the device tool's 64 MiB carry limit; it stays on the warm machine for call B).
# The local executor's phases of run.sh, 1 and 2 GPUs, at EPOCHS=4.
set -u
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/pip-mqar.log 2>&1; echo "pip mqar exit $?"
which mqar; nvidia-smi -L > $OUT/env.txt
python3 -c "import torch, triton, mqar.provenance as p; print(torch.__version__, triton.__version__, p.source_digest())" >> $OUT/env.txt
OUT=$OUT/scaling EPOCHS=4 PHASES="local-1gpu local-2gpu" timeout 500 bash results/bench/sweep-scaling/run.sh
cat $OUT/scaling/phases.txt
