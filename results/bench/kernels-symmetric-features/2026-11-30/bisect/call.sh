# Next session, call 1 (nvidia-h200-x2, carry .scratch): why branch symmetric-features fails its GPU tests at F=64 in
# half precision (results/bench/kernels-symmetric-features/2026-11-30/README.md), then the fixed MPS bench.
#  GPU 0: full GPU kernel tests of symfeat-pick32 (the factor-picking dot in fp32 for every dtype), then the
#         F=64 half cases of symfeat1 (commit 1 alone), one process each (an illegal access poisons the process);
#  GPU 1: full GPU kernel tests of symfeat-stage1 (no pipelining in the chunked kernels), then compute-sanitizer
#         memcheck on the first failing case of the branch tip (symfeat);
#  then the chunked bench of each variant whose full suite passed; then (~6 min) the MPS bench with aligned windows.
set -u
T0=$(date +%s); ROOT=$PWD; B=$OUT/bisect; mkdir -p $B
F64=B1T257H3F64D128
suite() { # suite GPU TREE TAG
  (cd $2 && CUDA_VISIBLE_DEVICES=$1 PYTHONPATH=$2 timeout 260 python3 -m pytest -q -m gpu -p no:cacheprovider \
     tests/test_kernels_gpu.py > $B/suite-$3.txt 2>&1; echo "rc=$? at $(( $(date +%s) - T0 )) s" >> $B/suite-$3.txt); }
cases() { # cases GPU TREE TAG: the four half-precision F=64 chunked cases, one process each
  for id in chunked-based-torch.bfloat16 chunked-based-torch.float16 chunked-rebased-torch.bfloat16 chunked-rebased-torch.float16; do
    (cd $2 && CUDA_VISIBLE_DEVICES=$1 PYTHONPATH=$2 timeout 90 python3 -m pytest -q -m gpu -p no:cacheprovider \
       "tests/test_kernels_gpu.py::test_matches_reference[$id-$F64]" 2>&1 | tail -2 | sed "s/^/$3 $id: /")
  done >> $B/cases.txt; }
( suite 0 $ROOT/.scratch/symfeat-pick32 pick32; cases 0 $ROOT/.scratch/symfeat1 sym1 ) &
( suite 1 $ROOT/.scratch/symfeat-stage1 stage1
  cd $ROOT/.scratch/symfeat && CUDA_VISIBLE_DEVICES=1 PYTHONPATH=$PWD timeout 150 compute-sanitizer --tool memcheck \
    --print-limit 20 python3 -m pytest -q -m gpu -p no:cacheprovider \
    "tests/test_kernels_gpu.py::test_matches_reference[chunked-rebased-torch.bfloat16-$F64]" > $B/memcheck-sym2.txt 2>&1 ) &
wait
for tag in pick32 stage1; do
  if grep -q " passed" $B/suite-$tag.txt && ! grep -q "failed" $B/suite-$tag.txt; then
    (cd $ROOT/.scratch/symfeat-$tag && CUDA_VISIBLE_DEVICES=0 PYTHONPATH=$PWD timeout 100 python3 -m mqar bench kernels \
       --out $B/bench-$tag --rep-ms 40 --method 'ours chunked rebased' > $B/bench-$tag.log 2>&1)
  fi
done
echo "bisect done at $(( $(date +%s) - T0 )) s" >> $B/cases.txt
tar czf $OUT/bisect.tgz -C $OUT bisect && rm -rf $B
LEFT=$(( 560 - ($(date +%s) - T0) ))
[ "$LEFT" -gt 330 ] && COUNTS="1 4 8" WAIT=30 timeout $LEFT bash results/bench/mps-packing/run.sh > $OUT/mps-run.log 2>&1
echo quit | CUDA_MPS_PIPE_DIRECTORY=/tmp/mps-pipe nvidia-cuda-mps-control 2>/dev/null
[ -d $OUT/mps ] && tar czf $OUT/mps.tgz -C $OUT mps && rm -rf $OUT/mps
