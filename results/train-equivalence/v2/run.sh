#!/usr/bin/env bash
# Run a plan of run.py runs, one queue per GPU. Usage: run.sh OUT_DIR SECONDS PLAN
# PLAN lines: "at-once DEVICE N" (runs at once on DEVICE), or "DEVICE VARIANT CELL SEED [--eval-diagnosis]",
# queued in file order per device. Every run still going at SECONDS is stopped; its .jsonl keeps its epochs.
set -u
out=$1; limit=$2; plan=$3
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
queue() {  # device, runs at once
  local device=$1 at_once=$2
  # (a loop fed by a pipe would run in a subshell whose runs the `wait` below does not wait for)
  while read -r _ variant cell seed flags; do
    [ "$SECONDS" -lt "$((limit - 30))" ] || break
    timeout --signal=TERM "$((limit - SECONDS))" python3 "$here/run.py" "$out" "$device" "$variant" "$cell" "$seed" \
      $flags < /dev/null > "$out/$cell-s$seed-$variant.log" 2>&1 &
    while [ "$(jobs -rp | wc -l)" -ge "$at_once" ]; do sleep 1; done
  done < <(grep "^$device " "$plan")
  wait
}
while read -r _ device at_once; do queue "$device" "$at_once" & done < <(grep "^at-once " "$plan")
wait
