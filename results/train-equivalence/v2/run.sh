#!/usr/bin/env bash
# Issue 7's equal-accuracy experiment, second round: fp32 (the default fast path) vs bf16c (bf16 + torch.compile,
# the path whose rates meet the targets), same configs and seeds, on two GPUs, each with its own queue.
# Usage: run.sh OUT_DIR SECONDS   (every run still going at SECONDS is stopped; its .jsonl keeps its epochs)
set -u
out=$1; limit=$2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
queue() {  # device, runs at once, then "variant cell seed" triples
  local device=$1 at_once=$2; shift 2
  while [ $# -gt 0 ] && [ "$SECONDS" -lt "$((limit - 30))" ]; do
    read -r variant cell seed <<< "$1"; shift
    timeout --signal=TERM "$((limit - SECONDS))" python3 "$here/run.py" "$out" "$device" $variant $cell $seed \
      > "$out/$cell-s$seed-$variant.log" 2>&1 &
    while [ "$(jobs -rp | wc -l)" -ge "$at_once" ]; do sleep 1; done
  done
  wait
}
table1=(); for seed in 0 1 2 3; do for arch in based rebased; do for variant in fp32 bf16c; do
  table1+=("$variant table1-$arch-d48 $seed"); done; done; done
figure1=(); for seed in 0 1; do for variant in fp32 bf16c; do figure1+=("$variant figure1-rebased-d128 $seed"); done; done
extra=(); for seed in 4 5; do for arch in based rebased; do for variant in fp32 bf16c; do
  extra+=("$variant table1-$arch-d48 $seed"); done; done; done
queue cuda:0 8 "${table1[@]}" &
queue cuda:1 4 "${figure1[@]}" "${extra[@]}" &
wait
