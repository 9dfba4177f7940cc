#!/usr/bin/env bash
# Session 12, call 1 (nvidia-h200-x2). GPU 0: the parallel form on main (a copy of main's mqar/ carried in
# .scratch/s12/main-tree), then this tree with HEAD_MAJOR_GRID 0 / 1, then backward tiles under head-major order.
# GPU 1: the chunked form on main, then CHUNKED_BWD sum / fused / split x CHUNKED_BWD_TWO_MMA 0 / 1 on this tree,
# then the GPU kernel tests of this tree.
set -u
export NCCL_NVLS_ENABLE=0
out=/tmp/s12c1; mkdir -p $out
S=results/bench/kernels-grid/2026-11-30/scripts/time_variants.py
MAIN=$PWD/.scratch/s12/main-tree
python3 -c "import mqar.provenance as p; print(p.source_digest())" > $out/source.txt 2>&1
python3 -c "import torch, triton; print(torch.__version__, triton.__version__, torch.version.cuda, torch.cuda.get_device_name())" >> $out/source.txt 2>&1
run() {  # run GPU LABEL FORM [settings...]: one process, its JSON lines into $out/GPU.jsonl
  local gpu=$1 tree=$PWD; shift
  [ "$1" = main ] && tree=$MAIN
  CUDA_VISIBLE_DEVICES=$gpu PYTHONPATH=$tree timeout 240 python3 $PWD/$S "$@" >> $out/gpu$gpu.jsonl 2>> $out/gpu$gpu.err
  echo "$* exit $? at $SECONDS s" >> $out/gpu$gpu.err
}
( run 0 main parallel
  run 0 s12-hm0 parallel HEAD_MAJOR_GRID=0
  run 0 s12-hm1 parallel HEAD_MAJOR_GRID=1
  for t in 64x128x4 32x128x4 64x64x4 32x32x2 16x64x2; do run 0 s12-hm1-bwd$t parallel HEAD_MAJOR_GRID=1 bwd=$t; done
) &
( run 1 main chunked
  for c in sum fused split; do for m in 0 1; do run 1 s12-$c-2mma$m chunked CHUNKED_BWD=$c CHUNKED_BWD_TWO_MMA=$m; done; done
  run 1 s12-sum-hm0 chunked HEAD_MAJOR_GRID=0
  export CUDA_VISIBLE_DEVICES=1 PYTHONPATH=$PWD
  timeout $((560 - SECONDS)) python3 -m pytest -m gpu -q -n 8 -p no:cacheprovider -k 'not two_to_the_31' \
    tests/test_kernels_gpu.py > $out/gpu-tests.txt 2>&1
  echo "exit $? at $SECONDS s" >> $out/gpu-tests.txt
) &
wait
cd /tmp && tar czf $OUT/s12c1.tar.gz s12c1 && ls -R s12c1
