"""A/B on CUDA: Zoology's conv baselines with and without learned position embeddings, at Zoology's shortest task
(seq_len 64, kv 4) with Zoology's data size (100k examples), <= 32 epochs, batch 512, one seed. Usage:
python pos_ab.py ARCH D_MODEL LR POSITIONS(0|1) -> one JSON line."""
import json, sys
from mqar.data.spec import TaskSpec
from mqar.runs import Recipe, RunConfig
from mqar.models import registry
from mqar.train import train

arch, d_model, lr, positions = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1"
registry.POSITION_EMBEDDINGS[arch] = positions  # the A/B switch (registry default for these archs: False)
config = RunConfig(task=TaskSpec(seq_len=64, num_kv_pairs=4), arch=arch, d_model=d_model, lr=lr, seed=0,
                   recipe=Recipe(epochs=32, num_train_examples=100_000, num_valid_examples=1000, num_test_examples=1000))
result = train(config, device="cuda")
print(json.dumps({"arch": arch, "d_model": d_model, "lr": lr, "positions": positions,
                  "best_valid_accuracy": round(result.best_valid_accuracy, 4), "test_accuracy": round(result.test_accuracy, 4),
                  "epochs": result.epochs, "num_params": result.num_params, "seconds": round(result.seconds, 1)}))
