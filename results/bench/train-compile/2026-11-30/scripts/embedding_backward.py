"""Issue 7: the token embedding's backward was ~0.85 ms of a 15 ms rebased d128 L512 bf16 step (train-profile.txt:
embedding_dense_backward + sum_and_scatter, a sort-based reduction). Times grad of an embedding lookup over 512x512
tokens, vocab 8192, d 128: torch's backward vs an index_add_ (atomic adds) backward vs torch.compile's lowering, and
checks each against torch's gradient. Run on a GPU."""
import torch
from triton.testing import do_bench

V, D, N = 8192, 128, 512 * 512
torch.manual_seed(0)
weight = torch.randn(V, D, device="cuda", requires_grad=True)
tokens = torch.randint(V, (N,), device="cuda")
grad_out = torch.randn(N, D, device="cuda")


class IndexAddEmbedding(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight, tokens):
        ctx.save_for_backward(tokens)
        ctx.num_rows = weight.shape[0]
        return weight[tokens]

    @staticmethod
    def backward(ctx, grad):
        (tokens,) = ctx.saved_tensors
        grad_weight = torch.zeros(ctx.num_rows, grad.shape[1], device=grad.device, dtype=torch.float32)
        grad_weight.index_add_(0, tokens, grad.float())
        return grad_weight, None


def torch_grad():
    return torch.autograd.grad(torch.nn.functional.embedding(tokens, weight), weight, grad_out)[0]


def index_add_grad():
    return torch.autograd.grad(IndexAddEmbedding.apply(weight, tokens), weight, grad_out)[0]


compiled_lookup = torch.compile(lambda w, t: torch.nn.functional.embedding(t, w))


def compiled_grad():
    return torch.autograd.grad(compiled_lookup(weight, tokens), weight, grad_out)[0]


expected = torch_grad()
for name, fn in [("torch", torch_grad), ("index_add_", index_add_grad), ("compiled", compiled_grad)]:
    got = fn()
    err = ((got - expected).norm() / expected.norm()).item()
    ms = do_bench(fn, warmup=10, rep=100, return_mode="median")
    print(f"embedding fwd+bwd {name}: {ms:.3f} ms, rel err vs torch {err:.1e}", flush=True)
