"""The one-pass Triton cross-entropy (loss, accuracy, gradient) against torch's, under the Triton interpreter on CPU
(tests/conftest.py sets TRITON_INTERPRET=1 without CUDA) and in bf16 on the GPU."""

import pytest
import torch
import torch.nn.functional as F

from mqar.errors import UserError
from mqar.kernels.cross_entropy import cross_entropy_sum


def _torch_result(logits, targets):
    logits = logits.detach().double().requires_grad_()
    loss = F.cross_entropy(logits, targets, reduction="sum")
    loss.backward()
    return loss.detach(), (logits.argmax(-1) == targets).sum(), logits.grad


@pytest.mark.parametrize("rows, vocab", [(5, 40), (3, 2048 + 77), (1, 1), (0, 16)])
def test_triton_cross_entropy_matches_torch(rows, vocab):
    generator = torch.Generator().manual_seed(rows + vocab)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    logits = (3 * torch.randn(rows, vocab, generator=generator)).to(device)
    targets = torch.randint(vocab, (rows,), generator=generator).to(device)
    if rows > 1:
        targets[1] = logits[1].argmax()  # at least one row right
    logits.requires_grad_()
    loss, correct = cross_entropy_sum(logits, targets, impl="triton")
    (2.5 * loss).backward()
    expected_loss, expected_correct, expected_grad = _torch_result(logits, targets)
    torch.testing.assert_close(loss.double(), expected_loss.to(device), rtol=1e-5, atol=1e-5)
    assert int(correct) == int(expected_correct)
    torch.testing.assert_close(logits.grad.double(), 2.5 * expected_grad.to(device), rtol=1e-5, atol=1e-6)


def test_argmax_ties_go_to_the_lowest_index_as_in_torch():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    logits = torch.zeros(2, 4100, device=device)
    logits[0, [7, 3000]] = 5.0  # a tie across the kernel's blocks: index 7 wins
    logits[1, [4000, 4001]] = 5.0  # a tie within a block: 4000 wins
    _, correct = cross_entropy_sum(logits, torch.tensor([7, 4000], device=device), impl="triton")
    assert int(correct) == 2
    _, correct = cross_entropy_sum(logits, torch.tensor([3000, 4001], device=device), impl="triton")
    assert int(correct) == 0


def test_unknown_impl_is_a_user_error():
    with pytest.raises(UserError, match="choose one of"):
        cross_entropy_sum(torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), impl="cuda")


@pytest.mark.gpu
def test_bf16_logits_on_the_gpu_match_the_fp32_torch_path():
    generator = torch.Generator().manual_seed(0)
    logits = (4 * torch.randn(4096, 8192, generator=generator)).cuda().bfloat16().requires_grad_()
    targets = torch.randint(8192, (4096,), generator=generator).cuda()
    loss, correct = cross_entropy_sum(logits, targets, impl="triton")
    loss.backward()
    grad = logits.grad.float()
    logits.grad = None
    expected_loss, expected_correct = cross_entropy_sum(logits, targets, impl="torch")
    expected_loss.backward()
    torch.testing.assert_close(loss, expected_loss, rtol=1e-5, atol=1e-3)
    assert int(correct) == int(expected_correct)
    relative = (grad - logits.grad.float()).norm() / logits.grad.float().norm()
    assert relative < 5e-3


def test_double_backward_is_refused_not_silently_missing_the_kernels_terms():
    # The kernel's gradient has no graph: a second derivative through it came back without the cross-entropy's terms
    # (here only logits.pow(3)'s), silently, as the Triton linear attention's and LayerNorm's did.
    generator = torch.Generator().manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    logits = torch.randn(4, 40, generator=generator).to(device).requires_grad_()
    targets = torch.randint(40, (4,), generator=generator).to(device)
    loss = cross_entropy_sum(logits, targets, impl="triton")[0] + logits.pow(3).sum()
    with pytest.raises(UserError, match="no second derivative .*; use impl='torch' for higher-order") as error:
        torch.autograd.grad(loss, logits, create_graph=True)
    assert "\n" not in str(error.value)
