#!/usr/bin/env bash
# Do packed runs overlap on a GPU under CUDA MPS (issue 7)? On a 2-GPU machine, from the repo root:
#   OUT=/some/dir bash results/bench/mps-packing/run.sh
# For N in 1, 2, 4, 8: N `mqar bench train` processes at once on GPU 0 without MPS, and at the same moment N on
# GPU 1 under an MPS daemon that sees only GPU 1. Each process writes its tokens/s; summary.md adds them up per
# GPU, so the two columns are measured side by side in one run. The MPS clients set CUDA_VISIBLE_DEVICES=0. The
# server remaps the daemon's devices, so the client's device 0 is physical GPU 1. NVIDIA's MPS guide advises leaving
# it unset in clients, but torch counts GPUs through NVML, which ignores MPS. Unset, torch counts 2 while the CUDA
# runtime under this daemon has 1, and the first CUDA call fails an internal assert (seen 2026-11-30).
set -u
OUT=${OUT:?set OUT}; CASES=${CASES:-rebased:16:256,rebased:48:256}; STEPS=${STEPS:-150}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
MPS_ENV="CUDA_MPS_PIPE_DIRECTORY=/tmp/mps-pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps-log"
mkdir -p "$OUT/mps" /tmp/mps-pipe /tmp/mps-log
{ nvidia-smi -L; python3 -c "import torch,triton;print(torch.__version__,triton.__version__,torch.version.cuda)"; } > "$OUT/mps/env.txt" 2>&1
env CUDA_VISIBLE_DEVICES=1 $MPS_ENV nvidia-cuda-mps-control -d || { echo "no MPS daemon" >> "$OUT/mps/env.txt"; exit 1; }
bench() { # bench MODE N I
  timeout 300 python3 -m mqar bench train --cases "$CASES" --precision fp32 --paths mqar --steps "$STEPS" \
    --device cuda:0 --out "$OUT/mps/$1-n$2-$3" > "$OUT/mps/$1-n$2-$3.log" 2>&1; }
for N in ${COUNTS:-1 2 4 8}; do
  for I in $(seq 1 "$N"); do
    ( export CUDA_VISIBLE_DEVICES=0; bench plain "$N" "$I" ) &
    ( export CUDA_VISIBLE_DEVICES=0 $MPS_ENV; bench mps "$N" "$I" ) &
  done
  wait
done
env $MPS_ENV bash -c 'echo quit | nvidia-cuda-mps-control'
python3 - "$OUT/mps" > "$OUT/mps/summary.md" <<'PY'
import collections, glob, json, os, sys
root = sys.argv[1]
total = collections.defaultdict(float)  # (case, N, mode) -> tokens/s summed over the N processes
seen = collections.Counter()
for path in glob.glob(os.path.join(root, "*-n*-*", "train.json")):
    mode, n, _ = os.path.basename(os.path.dirname(path)).split("-")
    for row in json.load(open(path))["rows"]:
        key = (f"{row['arch']}:{row['d_model']}:{row['seq_len']}", int(n[1:]), mode)
        total[key] += row["mqar"]["tokens_per_s"]; seen[key] += 1
print("| case | processes | plain GPU: M tokens/s, all processes | MPS GPU: M tokens/s, all processes | MPS / plain |")
print("|---|---|---|---|---|")
for case, n in sorted({(c, n) for c, n, _ in total}):
    plain, mps = total[(case, n, "plain")], total[(case, n, "mps")]
    done = f"{seen[(case, n, 'plain')]}+{seen[(case, n, 'mps')]} of {n}+{n} finished"
    ratio = f"{mps / plain:.2f}" if plain and mps else "–"
    print(f"| {case} | {n} ({done}) | {plain / 1e6:.1f} | {mps / 1e6:.1f} | {ratio} |")
PY
cat "$OUT/mps/summary.md"
