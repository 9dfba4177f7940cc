#!/usr/bin/env bash
# Session 12, call 2 (nvidia-h200-x2). GPU 0: the parallel form on this tree and on three patched copies carried in
# .scratch/s12/ (v-noatomic: the backward's dq atomics dropped, timing only; v-fwd1loop: one forward loop with the
# causal mask behind a runtime branch; v-fwdhm0: forward block-major, backward head-major), pipelining depth 2 / 4;
# then ncu of this tree's parallel kernels at 256x512 and 64x2048. GPU 1: the chunked form (main for the noise
# floor, this tree's sum / split with TWO_MMA), then the 2^31-offset GPU tests.
set -u
out=/tmp/s12c2; mkdir -p $out
S=results/bench/kernels-grid/2026-11-30/scripts
python3 -c "import mqar.provenance as p; print(p.source_digest())" > $out/source.txt 2>&1
run() {  # run GPU TREE LABEL FORM [settings...]
  local gpu=$1 tree=$2; shift 2
  CUDA_VISIBLE_DEVICES=$gpu PYTHONPATH=$tree timeout 200 python3 $PWD/$S/time_variants.py "$@" >> $out/gpu$gpu.jsonl 2>> $out/gpu$gpu.err
  echo "$* exit $? at $SECONDS s" >> $out/gpu$gpu.err
}
( run 0 $PWD s12 parallel
  for v in noatomic fwd1loop fwdhm0; do run 0 $PWD/.scratch/s12/v-$v $v parallel; done
  run 0 $PWD s12-stages2 parallel stages=2
  run 0 $PWD s12-stages4 parallel stages=4
  run 0 $PWD s12-hm0 parallel HEAD_MAJOR_GRID=0
  export CUDA_VISIBLE_DEVICES=0 PYTHONPATH=$PWD
  for shape in "256 512" "64 2048"; do
    timeout 150 ncu --clock-control none --kernel-name regex:'parallel_(fwd|bwd)_kernel' --launch-skip 2 --launch-count 2 \
      --section SpeedOfLight --section WarpStateStats --section InstructionStats --section SchedulerStats \
      --section SourceCounters --section MemoryWorkloadAnalysis --section Occupancy --section LaunchStats \
      python3 $S/ncu_parallel.py $shape > $out/ncu-${shape/ /x}.txt 2>&1
    echo "ncu $shape exit $? at $SECONDS s" >> $out/gpu0.err
  done
) &
( run 1 $PWD/.scratch/s12/main-tree main chunked
  run 1 $PWD s12-sum-2mma1 chunked CHUNKED_BWD=sum CHUNKED_BWD_TWO_MMA=1
  run 1 $PWD s12-split-2mma1 chunked CHUNKED_BWD=split CHUNKED_BWD_TWO_MMA=1
  run 1 $PWD s12-sum-2mma0 chunked CHUNKED_BWD=sum CHUNKED_BWD_TWO_MMA=0
  export CUDA_VISIBLE_DEVICES=1 PYTHONPATH=$PWD
  timeout $((540 - SECONDS)) python3 -m pytest -m gpu -q -p no:cacheprovider -k two_to_the_31 tests/ > $out/gpu-tests-2e31.txt 2>&1
  echo "exit $? at $SECONDS s" >> $out/gpu-tests-2e31.txt
) &
wait
cd /tmp && tar czf $OUT/s12c2.tar.gz s12c2 && ls -R s12c2
