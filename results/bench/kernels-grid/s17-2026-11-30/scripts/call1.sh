set -x
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv
python -c "import torch, triton; print(torch.__version__, triton.__version__)"
python .scratch17/profile_gram.py 2>&1 | tee $OUT/profile_gram.txt
