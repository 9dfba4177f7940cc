"""The token embedding whose backward sums the frequent (filler) token's rows apart: same gradient as nn.Embedding."""

import pytest
import torch
import torch.nn.functional as F

from mqar.models.embedding import TokenEmbedding, frequent_token_embedding


def _grads(tokens, weight, grad, embed):
    weight = weight.clone().requires_grad_()
    out = embed(tokens, weight)
    (out * grad).sum().backward()
    return out.detach(), weight.grad


@pytest.mark.parametrize("frequent_token", [0, 5, 39], ids=["filler", "middle", "absent"])
def test_gradient_equals_nn_embedding(frequent_token):
    generator = torch.Generator().manual_seed(frequent_token)
    tokens = torch.randint(0, 39, (6, 50), generator=generator)  # token 39 never occurs
    tokens[:, ::3] = 0  # the filler: a third of the tokens, as MQAR's is a quarter
    weight = torch.randn(40, 8, generator=generator, dtype=torch.float64)
    grad = torch.randn(6, 50, 8, generator=generator, dtype=torch.float64)
    expected_out, expected_grad = _grads(tokens, weight, grad, F.embedding)
    out, weight_grad = _grads(tokens, weight, grad, lambda t, w: frequent_token_embedding(t, w, frequent_token))
    assert torch.equal(out, expected_out)
    torch.testing.assert_close(weight_grad, expected_grad, rtol=1e-12, atol=1e-12)
    assert (weight_grad[39] == 0).all()


def test_module_keeps_nn_embedding_on_cpu_and_checks_its_token():
    torch.manual_seed(0)
    module = TokenEmbedding(40, 8)
    reference = torch.nn.Embedding(40, 8)
    reference.load_state_dict(module.state_dict())  # same parameter names
    tokens = torch.randint(0, 40, (3, 7))
    torch.testing.assert_close(module(tokens), reference(tokens), rtol=0, atol=0)
    with pytest.raises(ValueError, match="frequent_token 40"):
        TokenEmbedding(40, 8, frequent_token=40)


@pytest.mark.gpu
def test_compiled_cuda_backward_with_a_tied_head_matches_nn_embedding():
    # The language model's use: compiled, with the weight also the LM head's, so autograd adds both gradients.
    generator = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, 8192, (64, 512), generator=generator).cuda()
    tokens[:, 256::2] = 0  # 8,192 filler rows: their fp32 sum differs from torch's by rounding only
    weight = torch.randn(8192, 128, generator=generator)
    grad = torch.randn(64, 512, 128, generator=generator).cuda()
    results = []
    for frequent_token in (None, 0):
        module = TokenEmbedding(8192, 128, frequent_token=frequent_token).cuda()
        with torch.no_grad():
            module.weight.copy_(weight)

        def loss(tokens):
            hidden = module(tokens)
            return (hidden * grad).sum() + (hidden[:, :4] @ module.weight.t()).logsumexp(-1).sum()

        torch._dynamo.reset()
        torch.compile(loss)(tokens).backward()
        results.append(module.weight.grad)
    torch.testing.assert_close(results[1], results[0], rtol=1e-4, atol=1e-3)
    assert (results[0][0] != 0).all()  # the filler row is summed


def test_module_takes_the_split_only_while_compiling(monkeypatch):
    calls = []
    monkeypatch.setattr("mqar.models.embedding.frequent_token_embedding", lambda *args: calls.append(args))
    module = TokenEmbedding(40, 8)
    tokens = torch.zeros(2, 3, dtype=torch.long)
    module(tokens)  # CPU, not compiling: nn.Embedding
    assert calls == []
    monkeypatch.setattr(torch.Tensor, "is_cuda", property(lambda self: True))
    module(tokens)  # "CUDA", still not compiling
    assert calls == []
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    module(tokens)
    assert len(calls) == 1 and calls[0][2] == 0
