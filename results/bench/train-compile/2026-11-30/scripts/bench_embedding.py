"""Issue 7: the token embedding's backward on MQAR tokens (filler 0 = a quarter of them at L 512, kv 128) vs
uniform tokens, torch's nn.Embedding vs mqar's TokenEmbedding (filler row summed apart). fwd+bwd of 512 x 512
tokens, d 128, fp32 weight, timed as CUDA-graph replays (GPU time only). Run from the root on a GPU."""
import torch
from triton.testing import do_bench

from mqar.data import TaskSpec, generate
from mqar.models.embedding import TokenEmbedding

mqar_tokens = torch.from_numpy(generate(TaskSpec(seq_len=512, num_kv_pairs=128), 512, seed=0)[0]).long().cuda()
uniform_tokens = torch.randint(0, 8192, (512, 512), device="cuda")
print(f"filler share of the MQAR batch: {(mqar_tokens == 0).float().mean().item():.3f}")
grad = torch.randn(512, 512, 128, device="cuda")
results = {}
for data, tokens in (("uniform", uniform_tokens), ("mqar", mqar_tokens)):
    for name, frequent in (("torch nn.Embedding", None), ("TokenEmbedding", 0)):
        torch.manual_seed(0)
        module = TokenEmbedding(8192, 128, frequent_token=frequent).cuda()

        def step():
            module.weight.grad = None
            torch.autograd.backward(module(tokens), grad)
            return module.weight.grad

        step()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            step()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        module.weight.grad = None
        with torch.cuda.graph(graph):
            out = module(tokens)
            weight_grad = torch.autograd.grad(out, module.weight, grad)[0]
        graph.replay()
        results[data, name] = weight_grad.clone()
        print(f"{data} tokens, {name}: fwd+bwd {do_bench(graph.replay, rep=100):.3f} ms", flush=True)
    a, b = results[data, "TokenEmbedding"], results[data, "torch nn.Embedding"]
    print(f"{data}: max abs grad difference {(a - b).abs().max().item():.2e} (max {b.abs().max().item():.2e})")
