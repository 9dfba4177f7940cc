#!/usr/bin/env bash
# Session 15, call C (nvidia-h200-x2, carry .scratch/ray/a): after describe_device gained the GPU's UUID. The first
# half of the Ray wheel goes to /tmp/raywheel for call D; the GPU test of describe_device; one process per GPU
# (CUDA_VISIBLE_DEVICES=0 / 1, as Ray sets it) prints its cuda:0's description.
set -u
mkdir -p /tmp/raywheel && cp .scratch/ray/a/ray.part.aa /tmp/raywheel/
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/pip-mqar.log 2>&1; echo "pip mqar exit $?"
python3 -m pytest -q -p no:cacheprovider tests/test_provenance.py 2>&1 | tail -2
for gpu in 0 1; do
  CUDA_VISIBLE_DEVICES=$gpu python3 -c "from mqar.provenance import describe_device; print('$gpu', describe_device('cuda:0'))"
done
nvidia-smi -L
