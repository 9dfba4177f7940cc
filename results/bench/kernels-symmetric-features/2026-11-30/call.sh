# Next session, call 1 (nvidia-h200-x2, carry .scratch):
#  1. MPS packing bench (~2-3 min; bench train now starts CUDA before its memory stats);
#  2. branch symmetric-features (trees: .scratch/symfeat1 = its first commit, unordered pairs; .scratch/symfeat = both
#     commits, + one-hot factor picking): its kernel GPU tests on GPU 1 while GPU 0 benches the chunked kernels of
#     main, symfeat1, symfeat, one after the other on the same GPU; then GPU 1 tunes the branch's chunk size and
#     feature block and times parallel vs chunked around the crossover (.scratch/tune_sym.py) (~5 min in all);
#  3. Table 1's remaining runs and the lr check at once, for the rest of the call.
# Later calls: SECONDS_LIMIT=540 RUNS_PER_DEVICE=4 ALSO_SWEEP=rebased-table1-lr-check [PACK_CHECKPOINTS=1] \
#   OUT=$OUT bash results/run-figure-on-device.sh rebased-table1   (copy the returned mqar.db back between calls)
set -u
T0=$(date +%s); ROOT=$PWD; SYM=$ROOT/.scratch/symfeat; SYM1=$ROOT/.scratch/symfeat1; K=$OUT/k; mkdir -p $K
COUNTS="1 4 8" STEPS=100 timeout 200 bash results/bench/mps-packing/run.sh > $OUT/mps-run.log 2>&1
echo quit | CUDA_MPS_PIPE_DIRECTORY=/tmp/mps-pipe nvidia-cuda-mps-control 2>/dev/null; sleep 2
tar czf $OUT/mps.tgz -C $OUT mps && rm -rf $OUT/mps
kb() { # kb TREE TAG
  (cd $1 && CUDA_VISIBLE_DEVICES=0 PYTHONPATH=$1 timeout 120 python3 -m mqar bench kernels --out $K/$2 --rep-ms 40 \
     --method 'ours chunked rebased' > $K/$2.log 2>&1); }
( kb $ROOT main; kb $SYM1 sym1; kb $SYM sym2 ) &
( cd $SYM && CUDA_VISIBLE_DEVICES=1 PYTHONPATH=$SYM timeout 240 python3 -m pytest -q -m gpu tests/test_kernels_gpu.py \
    > $K/gpu-tests-sym.txt 2>&1
  CUDA_VISIBLE_DEVICES=1 PYTHONPATH=$SYM timeout 150 python3 $ROOT/.scratch/tune_sym.py > $K/tune-sym.txt 2>&1 ) &
wait
echo "kernel work done at $(( $(date +%s) - T0 )) s" >> $K/gpu-tests-sym.txt
tar czf $OUT/k.tgz -C $OUT k && rm -rf $K
LEFT=$(( 570 - ($(date +%s) - T0) ))  # timeout 0 would mean no limit at all: start the sweep only with time left
[ "$LEFT" -gt 90 ] && SECONDS_LIMIT=$LEFT RUNS_PER_DEVICE=4 ALSO_SWEEP=rebased-table1-lr-check \
  bash results/run-figure-on-device.sh rebased-table1
