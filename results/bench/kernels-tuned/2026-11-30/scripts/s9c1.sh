# Next session, call 1 (nvidia-h200-x2; carry .scratch/next9, .scratch/fwd-diag, .scratch/bwd-fold), ~6 min (timings only; correctness runs in call 2):
#  GPU 0: tune_chunked.py (BE x stages x scan columns; issue 4's 32k / 8k targets) -> $OUT/tune-chunked.txt,
#         then tune_parallel_stages.py (issue 4's 256x512 target) -> $OUT/tune-parallel-stages.txt, then branch
#         fwd-diag-split (.scratch/fwd-diag: the forward skips the causal mask off the diagonal) against main, the
#         parallel form alone, and branch bwd-rebased-fold (.scratch/bwd-fold: rebased backward with the scale
#         folded into per-row factors and one mask) -> $OUT/k-{main,diag,fold}/ (its GPU suite goes in call 2, s9c2.sh, if it pays); then
#         ncu on the parallel kernels at 256x512 and 2048 (ncu_parallel.py) -> $OUT/ncu-parallel.txt, and on the
#         chunked form's kernels at 8x8192 (ncu_chunked.py) -> $OUT/ncu-chunked.txt;
#  GPU 1: embedding_backward.py (issue 7) -> $OUT/embedding-backward.txt, then the compiled step's profile
#         (prof_train_compiled.py) -> $OUT/train-profile-compiled.txt, then every arch compiled vs not
#         (compile_all_archs.py: may --compile become the default on CUDA?) -> $OUT/compile-all-archs.txt.
set -u
export PYTHONPATH=$PWD
N9=$PWD/.scratch/next9
FINAL_OUT=$OUT; OUT=$FINAL_OUT/r; mkdir -p $OUT  # one archive back: more than 8 files come out
( export CUDA_VISIBLE_DEVICES=0
  timeout 240 python3 $N9/tune_chunked.py > $OUT/tune-chunked.txt 2>&1
  timeout 150 python3 $N9/tune_parallel_stages.py > $OUT/tune-parallel-stages.txt 2>&1
  for tree in main:$PWD diag:$PWD/.scratch/fwd-diag fold:$PWD/.scratch/bwd-fold; do (cd ${tree#*:} && PYTHONPATH=$PWD timeout 90 python3 -m mqar bench \
      kernels --out $OUT/k-${tree%%:*} --rep-ms 40 --method 'ours parallel rebased' > /dev/null 2>&1); done
  # ncu (Firecracker machines read the counters; leave the clocks alone): the parallel kernels from the second
  # iteration at 256x512 on (both iterations at 2048) -> $OUT/ncu-parallel.txt
  timeout 150 ncu --clock-control none --kernel-name regex:parallel_ --launch-skip 2 --launch-count 6 \
    --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
    --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis python3 $N9/ncu_parallel.py \
    > $OUT/ncu-parallel.txt 2>&1
  # the chunked form at 8x8192: per iteration chunk_scan (fwd), parallel_fwd, chunk_scan (bwd), parallel_bwd
  timeout 120 ncu --clock-control none --kernel-name regex:"parallel_|chunk_scan" --launch-skip 4 --launch-count 4 \
    --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
    --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis python3 $N9/ncu_chunked.py \
    > $OUT/ncu-chunked.txt 2>&1 ) &
( export CUDA_VISIBLE_DEVICES=1
  timeout 120 python3 $N9/embedding_backward.py > $OUT/embedding-backward.txt 2>&1
  timeout 200 python3 $N9/prof_train_compiled.py $OUT/train-profile-compiled.txt > $OUT/prof.log 2>&1
  timeout 200 python3 $N9/compile_all_archs.py > $OUT/compile-all-archs.txt 2>&1 ) &
wait
tar czf $FINAL_OUT/s9c1.tgz -C $FINAL_OUT r && rm -rf $OUT
ls -la $FINAL_OUT
