#!/usr/bin/env bash
# Do packed runs overlap on a GPU under CUDA MPS (issue 7)? On a 2-GPU machine, from the repo root:
#   OUT=/some/dir bash results/bench/mps-packing/run.sh
# For each case and N in 1, 2, 4, 8: N `mqar bench train` processes at once on GPU 0 without MPS, and at the same moment
# N on GPU 1 under an MPS daemon that sees only GPU 1. Every process times the same interval: they agree on a start
# time (--start-at, WAIT s after launch, enough for start-up and CUDA-graph capture) and time for SECONDS_TIMED s
# (--seconds), so summary.md may add up their tokens/s per GPU. It checks that: a process that started late, or
# windows that overlap less than 95%, are flagged (the first run, with fixed step counts and no agreed start, summed
# processes that had each run alone for part of the time). The MPS clients set CUDA_VISIBLE_DEVICES=0. The
# server remaps the daemon's devices, so the client's device 0 is physical GPU 1. NVIDIA's MPS guide advises leaving
# it unset in clients, but torch counts GPUs through NVML, which ignores MPS. Unset, torch counts 2 while the CUDA
# runtime under this daemon has 1, and the first CUDA call fails an internal assert (seen 2026-11-30).
set -u
OUT=${OUT:?set OUT}; CASES=${CASES:-rebased:16:256,rebased:48:256}; WAIT=${WAIT:-40}; SECONDS_TIMED=${SECONDS_TIMED:-10}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
MPS_ENV="CUDA_MPS_PIPE_DIRECTORY=/tmp/mps-pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps-log"
mkdir -p "$OUT/mps" /tmp/mps-pipe /tmp/mps-log
{ nvidia-smi -L; python3 -c "import torch,triton;print(torch.__version__,triton.__version__,torch.version.cuda)"; } > "$OUT/mps/env.txt" 2>&1
env CUDA_VISIBLE_DEVICES=1 $MPS_ENV nvidia-cuda-mps-control -d || { echo "no MPS daemon" >> "$OUT/mps/env.txt"; exit 1; }
bench() { # bench MODE N I CASE START
  local name="$1-n$2-$3-${4//:/_}"
  timeout $(( WAIT + SECONDS_TIMED + 120 )) python3 -m mqar bench train --cases "$4" --precision fp32 --paths mqar \
    --seconds "$SECONDS_TIMED" --start-at "$5" --device cuda:0 --out "$OUT/mps/$name" > "$OUT/mps/$name.log" 2>&1; }
for CASE in ${CASES//,/ }; do
  for N in ${COUNTS:-1 2 4 8}; do
    START=$(( $(date +%s) + WAIT ))
    for I in $(seq 1 "$N"); do
      ( export CUDA_VISIBLE_DEVICES=0; bench plain "$N" "$I" "$CASE" "$START" ) &
      ( export CUDA_VISIBLE_DEVICES=0 $MPS_ENV; bench mps "$N" "$I" "$CASE" "$START" ) &
    done
    wait
  done
done
env $MPS_ENV bash -c 'echo quit | nvidia-cuda-mps-control'
python3 - "$OUT/mps" > "$OUT/mps/summary.md" <<'PY'
import collections, glob, json, os, sys
root = sys.argv[1]
found = collections.defaultdict(list)  # (case, N, mode) -> the processes' measurements
for path in glob.glob(os.path.join(root, "*-n*-*-*", "train.json")):
    mode, n, _, case = os.path.basename(os.path.dirname(path)).split("-", 3)
    for row in json.load(open(path))["rows"]:
        found[(case.replace("_", ":"), int(n[1:]), mode)].append(row["mqar"])

def total(measured, n):
    """Summed M tokens/s, and why it may not be a sum over one interval."""
    if not measured:
        return "–", ""
    starts, ends = [m["window"][0] for m in measured], [m["window"][1] for m in measured]
    overlap = max(0.0, min(ends) - max(starts)) / (max(ends) - min(starts))
    flags = [f"{len(measured)} of {n} finished"] if len(measured) < n else []
    flags += [f"{sum('late_start_s' in m for m in measured)} started late"] if any("late_start_s" in m for m in measured) else []
    flags += [f"windows overlap {overlap:.0%}"] if overlap < 0.95 else []
    return f"{sum(m['tokens_per_s'] for m in measured) / 1e6:.1f}", "; ".join(flags)

print("| case | processes | plain GPU: M tokens/s, all processes | MPS GPU: M tokens/s, all processes | MPS / plain | check |")
print("|---|---|---|---|---|---|")
for case, n in sorted({(c, n) for c, n, _ in found}):
    (plain, plain_flags), (mps, mps_flags) = (total(found[(case, n, mode)], n) for mode in ("plain", "mps"))
    ratio = f"{float(mps) / float(plain):.2f}" if "–" not in (plain, mps) else "–"
    check = "; ".join(f"{mode}: {flags}" for mode, flags in (("plain", plain_flags), ("MPS", mps_flags)) if flags) or "ok"
    print(f"| {case} | {n} | {plain} | {mps} | {ratio} | {check} |")
PY
cat "$OUT/mps/summary.md"
