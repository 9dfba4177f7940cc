#!/usr/bin/env bash
# Sweep scaling on one host (issue 10): the same 32-run grid on 1 GPU and on 2 GPUs with the local executor,
# on 2 GPUs with Ray, then a sweep whose worker is SIGKILLed mid-run and resumed. Run from the repo root on a
# machine with >= 2 GPUs; writes timings and store checks to $OUT (default ./scaling-out).
# EPOCHS (default 4) sets the runs' length; PHASES (default "local-1gpu local-2gpu ray-2gpu kill") picks phases
# (also "ray-kill": the kill phase under Ray).
set -uo pipefail
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
OUT=${OUT:-scaling-out}; mkdir -p "$OUT"
GRID="--archs based,rebased --d-models 16,24 --tasks rebased-table1 --lrs 1e-3,3e-3 --seeds 0,1,2,3
      --epochs ${EPOCHS:-4} --num-train-examples 20000 --runs-per-device 4 --no-live --cache-dir /tmp/mqar-cache"
phase() {  # name, then the rest of the mqar sweep command line
  local name=$1; shift
  local start=$(date +%s.%N)
  "$@" > "$OUT/$name.log" 2>&1; local rc=$?
  local end=$(date +%s.%N)
  echo "$name rc=$rc seconds=$(awk "BEGIN{print $end - $start}")" | tee -a "$OUT/phases.txt"
}
# Warm the dataset cache once so no phase pays for data generation.
mqar sweep $GRID --seeds 0 --archs based --d-models 16 --lrs 1e-3 --epochs 1 --store /tmp/warm.db --name warm > /dev/null 2>&1
PHASES=${PHASES:-local-1gpu local-2gpu ray-2gpu kill}
has() { [[ " $PHASES " == *" $1 "* ]]; }
has local-1gpu && phase local-1gpu mqar sweep $GRID --devices cuda:0        --store "$OUT/local-1gpu.db" --name scaling
has local-2gpu && phase local-2gpu mqar sweep $GRID --devices cuda:0,cuda:1 --store "$OUT/local-2gpu.db" --name scaling
has ray-2gpu   && phase ray-2gpu   mqar sweep $GRID --backend ray           --store "$OUT/ray-2gpu.db"   --name scaling
# Kill one worker mid-sweep, let the sweep finish, then resume: nothing lost, nothing duplicated.
kill_phase() {  # name, seconds before the kill, victim-finding command, then the executor's options
  local name=$1 after=$2 find_victim=$3; shift 3
  mqar sweep $GRID "$@" --store "$OUT/$name.db" --name scaling > "$OUT/$name-first.log" 2>&1 &
  local sweep=$!
  sleep "$after"
  local victim=$($find_victim "$OUT/$name.db")
  echo "$name: killing worker pid $victim of sweep $sweep" | tee -a "$OUT/phases.txt"
  [ -n "$victim" ] && kill -9 "$victim"
  wait "$sweep"; echo "$name: first sweep rc=$?" | tee -a "$OUT/phases.txt"
  # The killed worker's run is recorded failed (the sweep goes on); --retry-failed trains it again, from its last
  # checkpointed epoch.
  phase "$name-resume" mqar sweep $GRID "$@" --store "$OUT/$name.db" --name scaling --retry-failed
}
# Local executor: the worker of a run that is training now, read from the store (a child of the sweep found by name
# can be multiprocessing's resource tracker, whose death changes nothing: that happened on 2026-11-30).
local_victim() {
  python3 -c "import sqlite3, sys; row = sqlite3.connect(sys.argv[1]).execute(
    \"select pid from runs where status = 'running' order by started_at limit 1\").fetchone(); print(row[0] if row else '')" "$1"
}
# Ray: the store names the driver as every run's owner, so the victim is an actor process in a run's method (Ray
# titles it "ray::RunWorker.run"; an idle one is "ray::RunWorker").
ray_victim() {
  python3 -c "import psutil; print(next((p.pid for p in psutil.process_iter(['cmdline'])
    if (p.info['cmdline'] or [''])[0].startswith('ray::RunWorker.run')), ''))"
}
has kill && kill_phase kill "${KILL_AFTER_S:-25}" local_victim --devices cuda:0,cuda:1
has ray-kill && kill_phase ray-kill "${RAY_KILL_AFTER_S:-20}" ray_victim --backend ray
python3 - "$OUT" <<'PY' | tee "$OUT/stores.txt"
import sqlite3, sys, pathlib
for db in sorted(pathlib.Path(sys.argv[1]).glob("*.db")):
    con = sqlite3.connect(db)
    rows = con.execute("select status, count(*) from runs group by status").fetchall()
    # ids and (run, epoch) are primary keys, so duplicates cannot be stored; what can go wrong is a lost run
    # (not done) or a run trained twice (attempts > 1 without a kill) -- count both.
    retrained = con.execute("select count(*) from runs where attempts > 1").fetchone()[0]
    curves = con.execute("select count(distinct run_id) from epochs").fetchone()[0]
    span = con.execute("select min(started_at), max(ended_at) from runs").fetchone()
    # an unfinished run's checkpoint (mqar.checkpoint) is deleted when the run ends: none may be left
    left = len(list(db.with_name(db.name + ".checkpoints").glob("*.pt")))
    print(db.name, dict(rows), "runs trained more than once:", retrained, "runs with curves:", curves, "span:", span,
          "checkpoints left:", left)
PY
