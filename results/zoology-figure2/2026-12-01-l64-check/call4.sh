# Session 20, call 4 (nvidia-h200): a sanity check of Zoology Figure 2's models as mqar now builds them (no position
# embeddings for the non-attention archs, rwkv-zoology, Zoology's batch per length) on Zoology's shortest task,
# (seq_len 64, kv 4), with the reduced preset's recipe (20k examples, <= 32 epochs), 3 lrs x 1 seed.
set -x
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
git log --oneline -1
python -c "import torch, triton; print(torch.__version__, triton.__version__)"
timeout 480 python -m mqar sweep --preset zoology-figure2-reduced \
  --archs attention,based,rebased,h3,hyena,rwkv-zoology,base-conv --seq-lens 64 --num-kv-pairs 4 \
  --lrs 4.6416e-4,2.1544e-3,1e-2 --seeds 0 --name zoology-l64-check --store $OUT/mqar.db \
  --devices cuda:0 --runs-per-device 4 2>&1 | tee $OUT/sweep.log | tail -50
python -m mqar report --store $OUT/mqar.db --sweep zoology-l64-check --out $OUT --metric best-valid --curves 2>&1 | tail -40
