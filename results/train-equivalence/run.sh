#!/usr/bin/env bash
# Issue 7, "equal accuracy": the same runs (same configs, same seeds) trained three ways, curves kept in JSON.
#   fast-fp32  the default of `mqar train` on CUDA: CUDA-graph step, Triton kernels, fp32
#   fast-bf16  the same with bf16 autocast (fp32 master weights)
#   plain-fp32 no CUDA graph, the plain-torch reference kernels, fp32
# Cells: a Table-1 cell (L=256, kv=32, d_model 48, based and rebased, lr 3e-3) and a Figure-1 cell (L=512, kv=128,
# d_model 128, rebased, lr 1e-3), seeds 0 and 1, the reduced recipes of sweeps/rebased-table1-reduced.toml and
# sweeps/rebased-figure1-reduced.toml. Usage: run.sh OUT_DIR DEVICE [JOBS_AT_ONCE]
set -u
out=$1; device=$2; jobs=${3:-3}
mkdir -p "$out"
variant_flags() {
  case $1 in
    fast-fp32) echo "" ;;
    fast-bf16) echo "--precision bf16" ;;
    plain-fp32) echo "--no-cuda-graphs --kernel-impl torch" ;;
  esac
}
run() {  # name, then mqar train flags
  local name=$1; shift
  python3 -m mqar train "$@" --device "$device" --no-progress --output "$out/$name.json" > "$out/$name.log" 2>&1 \
    || echo "FAILED $name (see $out/$name.log)"
}
for seed in 0 1; do
  for variant in fast-fp32 fast-bf16 plain-fp32; do
    for arch in rebased based; do
      run "table1-$arch-d48-s$seed-$variant" --arch $arch --d-model 48 --seq-len 256 --num-kv-pairs 32 --lr 3e-3 \
        --seed $seed --epochs 32 --num-train-examples 20000 --num-valid-examples 1000 --num-test-examples 1000 \
        $(variant_flags $variant) &
      while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 1; done
    done
    run "figure1-rebased-d128-s$seed-$variant" --arch rebased --d-model 128 --seq-len 512 --num-kv-pairs 128 \
      --lr 1e-3 --seed $seed --epochs 24 --num-train-examples 10000 --num-valid-examples 1000 \
      --num-test-examples 1000 $(variant_flags $variant) &
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 1; done
  done
done
wait
