#!/usr/bin/env bash
# Session 17, call 2 (nvidia-h200-x2): key_gram_kernel as one program per head (STEP key blocks per step).
# GPU 0: time_gram.py (old per-block kernel + cumsum vs the new kernel over STEP / warps / stages), then
#        time_variants.py FORM gram with FWD_GRAM 0 / 1, twice in alternating order.
# GPU 1: the GPU test suite on this tree (FWD_GRAM's rule), the 2^31 tests, then the suite on a copy with FWD_GRAM
#        forced on (every rebased parallel launch with more than one query block takes the Gram).
set -u
out=/tmp/s17c2; mkdir -p $out
S=$PWD/.scratch17
export PYTHONPATH=$PWD
python3 -c "import mqar.provenance as p; print(p.source_digest())" > $out/source.txt 2>&1
nvidia-smi --query-gpu=name,uuid,driver_version --format=csv >> $out/source.txt 2>&1
python3 -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $out/source.txt 2>&1
( export CUDA_VISIBLE_DEVICES=0
  timeout 300 python3 $S/time_gram.py > $out/gram.jsonl 2> $out/gram.err; echo "exit $? at $SECONDS s" >> $out/gram.err
  for pass in 1 2; do
    for g in 0 1; do
      timeout 80 python3 $S/time_variants.py g$g-$pass gram FWD_GRAM=$g >> $out/gpu0.jsonl 2>> $out/gpu0.err
      echo "g$g-$pass exit $? at $SECONDS s" >> $out/gpu0.err
    done
  done
) &
( export CUDA_VISIBLE_DEVICES=1
  timeout 220 python3 -m pytest -m gpu -q -n 6 -p no:cacheprovider -k 'not two_to_the_31' tests/ > $out/gpu-tests.txt 2>&1
  echo "exit $? at $SECONDS s" >> $out/gpu-tests.txt
  timeout 60 python3 -m pytest -m gpu -q -p no:cacheprovider -k two_to_the_31 tests/ > $out/gpu-2e31.txt 2>&1
  echo "exit $? at $SECONDS s" >> $out/gpu-2e31.txt
  rm -rf /tmp/forced && cp -r $PWD /tmp/forced && cd /tmp/forced
  sed -i 's/^FWD_GRAM: bool | None = None$/FWD_GRAM: bool | None = True/' mqar/kernels/triton_ops.py
  grep -n "^FWD_GRAM" mqar/kernels/triton_ops.py > $out/gpu-tests-forced.txt
  PYTHONPATH=/tmp/forced timeout 220 python3 -m pytest -m gpu -q -n 6 -p no:cacheprovider -k 'not two_to_the_31' tests/ >> $out/gpu-tests-forced.txt 2>&1
  echo "exit $? at $SECONDS s" >> $out/gpu-tests-forced.txt
) &
wait
cd /tmp && tar czf $OUT/s17c2.tar.gz s17c2 && tail -n 3 s17c2/*.txt s17c2/*.err
