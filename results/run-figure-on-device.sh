#!/usr/bin/env bash
# Run (or continue) a paper figure's reduced sweep on a lent GPU machine within one call's time limit, then pack the
# store, figure and logs into $OUT/figure.tgz. Usage, from the repo root on the device:
#   SECONDS_LIMIT=500 RUNS_PER_DEVICE=4 [MPS=1] bash results/run-figure-on-device.sh rebased-table1
# The store is results/<figure>/mqar.db: copy the returned one back into the checkout after each call (on a fresh
# machine, the next call starts from the checkout's store; on a warm one, see below). Unfinished runs continue from results/<figure>/mqar.db.checkpoints/ (git-ignored; it stays
# on a machine that is still warm, else those runs restart from epoch 1).
# Across sessions (a fresh machine has no checkpoints): PACK_CHECKPOINTS=1 also returns the unfinished runs'
# checkpoints as $OUT/checkpoints.tar.part-* (15 MiB pieces: the device returns at most 16 MiB a file). Put those
# pieces in .scratch/checkpoints/FIGURE/ here and carry .scratch: the next call restores them before the sweep
# starts, unless the machine still holds newer ones.
# Between calls of one warm stretch there is no need to copy the store back: the machine keeps the store each call
# ends with in /tmp/mqar-keep/ (KEEP_DIR), and the next call continues from it when the checkout's store is still
# the one the previous call started from (the device copies the checkout afresh each call). A store changed in the
# checkout since (e.g. the returned one copied back, or runs deleted) is used as it is.
# ALSO_SWEEP=PRESET trains that sweep preset at the same time, into the same store and under the same time limit
# (e.g. a follow-up grid that shares runs with the figure's: the store's atomic claims give each run to one process
# only). Each process packs RUNS_PER_DEVICE runs per GPU, so the GPUs hold twice that.
# COMPILE=1 trains with --compile (torch.compile of each run's model: 8-20 % more tokens/s on an H200, seconds of
# compilation per run; results/bench/train-compile/), the figure's sweep and ALSO_SWEEP alike.
# MPS=1 runs the sweep under the CUDA MPS daemon (pipe and log dirs in /tmp, stopped at the end) so that packed
# runs' kernels overlap instead of taking turns; compare the runs' tokens/s with and without it.
set -u
FIGURE=${1:?usage: run-figure-on-device.sh FIGURE}
# `timeout 0` means no limit, which would run past the call's own and lose the packing at the end.
LIMIT=${SECONDS_LIMIT:-500} RUNS=${RUNS_PER_DEVICE:-4}
[ "$LIMIT" -ge 1 ] 2>/dev/null || { echo "SECONDS_LIMIT must be a whole number of seconds ≥ 1" >&2; exit 2; }
OUT=${OUT:-/tmp/figure-out}; mkdir -p "$OUT/r"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
DEVICES=$(python3 -c "import torch; print(','.join(f'cuda:{i}' for i in range(torch.cuda.device_count())))")
{ nvidia-smi; python3 -c "import torch, triton, sys; print(sys.version, torch.__version__, triton.__version__, torch.version.cuda)"; } > "$OUT/r/gpu.txt" 2>&1
if [ "${MPS:-0}" = 1 ]; then
  export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps-pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps-log
  mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY" && nvidia-cuda-mps-control -d && echo "MPS on" >> "$OUT/r/gpu.txt"
fi
STORE=results/$FIGURE/mqar.db; CKPT=$STORE.checkpoints CARRIED=.scratch/checkpoints/$FIGURE
if [ ! -d "$CKPT" ] && ls "$CARRIED"/checkpoints.tar.part-* > /dev/null 2>&1; then
  cat "$CARRIED"/checkpoints.tar.part-* | tar xf - -C "results/$FIGURE" && echo "restored $(ls "$CKPT" | wc -l) checkpoints from $CARRIED" >> "$OUT/r/gpu.txt"
fi
KEEP=${KEEP_DIR:-/tmp/mqar-keep}/$FIGURE; mkdir -p "$KEEP"
digest() { sha256sum "$1" 2>/dev/null | cut -c1-64; }
if [ -f "$KEEP/ended.db" ] && [ "$(digest "$STORE")" = "$(cat "$KEEP/started.sha256" 2>/dev/null)" ]; then
  cp "$KEEP/ended.db" "$STORE" && echo "continued from the store the previous call on this machine ended with" >> "$OUT/r/gpu.txt"
fi
digest "$STORE" > "$KEEP/started.sha256"
COMPILE_FLAG=(); [ "${COMPILE:-0}" = 1 ] && COMPILE_FLAG=(--compile)
START=$(date +%s)
if [ -n "${ALSO_SWEEP:-}" ]; then
  ( timeout -s INT "$LIMIT" python3 -m mqar sweep --preset "$ALSO_SWEEP" --store "$STORE" \
      --devices "$DEVICES" --runs-per-device "$RUNS" "${COMPILE_FLAG[@]}" --no-live > "$OUT/r/also-$ALSO_SWEEP-$START.log" 2>&1
    echo "rc=$? seconds=$(( $(date +%s) - START ))" >> "$OUT/r/also-$ALSO_SWEEP-$START.log" ) &
fi
timeout -s INT "$LIMIT" python3 -m mqar figure "$FIGURE" --scale reduced --run \
  --store "$STORE" --out "results/$FIGURE" --curves --devices "$DEVICES" \
  --runs-per-device "$RUNS" "${COMPILE_FLAG[@]}" > "$OUT/r/sweep-$START.log" 2>&1
echo "rc=$? seconds=$(( $(date +%s) - START )) devices=$DEVICES mps=${MPS:-0} compile=${COMPILE:-0}" >> "$OUT/r/sweep-$START.log"
wait  # for ALSO_SWEEP, before the store and checkpoints are packed
[ -f "$STORE" ] && cp "$STORE" "$KEEP/ended.db"
[ "${MPS:-0}" = 1 ] && echo quit | nvidia-cuda-mps-control
cp "results/$FIGURE"/*.* "$OUT/r/" 2>/dev/null
tar czf "$OUT/figure.tgz" -C "$OUT" r && rm -rf "$OUT/r"
if [ "${PACK_CHECKPOINTS:-0}" = 1 ] && [ -n "$(ls -A "$CKPT" 2>/dev/null)" ]; then
  tar cf - -C "results/$FIGURE" mqar.db.checkpoints | split -b 15M - "$OUT/checkpoints.tar.part-"
fi
