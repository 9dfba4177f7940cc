"""Work-arounds for how Triton runs: it has no CPU driver outside its interpreter (`check_triton_device`), its
launches go to the current CUDA device (`on_device_of`), its interpreter breaks under numpy ≥ 2.4
(`patch_interpreter_index`, triton-lang/triton#9171), and gradients its kernels compute have no autograd graph
(`first_order_only`).

The interpreter (TRITON_INTERPRET=1) turns a scalar into an int with `int(array)` on a one-element array, which
numpy 2.4 refuses ("only 0-dimensional arrays can be converted to Python scalars"), so any `range(0, T, ...)`
over a kernel argument fails. Upstream's fix squeezes the array first; we apply the same fix by wrapping the
interpreter's tensor patching. Nothing changes when the interpreter is off or already fixed.
"""

from __future__ import annotations

import contextlib
import functools
import os

import torch

from mqar.errors import UserError

# Triton picks the interpreter when a kernel is decorated, so what counts is the variable when the kernel modules
# (which import this one) were imported, not at call time.
INTERPRETER = os.environ.get("TRITON_INTERPRET", "0") == "1"


def check_triton_device(tensor: torch.Tensor, name: str) -> None:
    """impl='triton' on a CPU tensor outside the interpreter: a UserError naming impl='torch', not Triton's own
    "0 active drivers ([]). There should only be one." (no GPU) or "Pointer argument cannot be accessed from Triton
    (cpu tensor?)" (a GPU, but CPU tensors)."""
    if not tensor.is_cuda and not INTERPRETER:
        raise UserError(
            f"impl='triton' needs CUDA tensors, got {name} on {tensor.device} (Triton runs on the CPU only under "
            "its interpreter, TRITON_INTERPRET=1 set before mqar's kernels are imported); use impl='torch' or "
            "impl='auto'"
        )


def on_device_of(tensor: torch.Tensor) -> contextlib.AbstractContextManager:
    """Make the tensor's CUDA device the current one while Triton launches on it: Triton launches on the current
    device whatever the tensors' (cuda:1 tensors while cuda:0 was current: "Pointer argument cannot be accessed
    from Triton"). Nothing to do for CPU tensors (the interpreter)."""
    return torch.cuda.device(tensor.device) if tensor.is_cuda else contextlib.nullcontext()


def first_order_only(what: str):
    """Decorate the backward of an autograd Function whose gradients come from Triton kernels (above
    `once_differentiable`): a backward with create_graph=True raises a UserError naming impl="torch".

    once_differentiable alone does not catch every second derivative. Its error node hangs off its outputs, apart
    from the graph: `torch.autograd.grad(..., inputs=q)` never runs it, and where the incoming gradient needs no
    grad (out.sum()'s ones) there is none, so such second derivatives came back without the kernels' terms, silently.
    Autograd runs backward in grad mode exactly when create_graph=True, so the check is made there, up front.
    """

    def decorate(backward):
        @functools.wraps(backward)
        def checked(ctx, *grads):
            if torch.is_grad_enabled():
                raise UserError(
                    f"{what} has no second derivative (a backward with create_graph=True); "
                    "use impl='torch' for higher-order gradients"
                )
            return backward(ctx, *grads)

        return checked

    return decorate


def patch_interpreter_index() -> None:
    """Make interpreter tensors convert to int through a squeeze (idempotent)."""
    if not INTERPRETER:
        return
    from triton.runtime import interpreter

    original = interpreter._patch_lang_tensor
    if getattr(original, "_mqar_index_fix", False):
        return

    def patched(tensor, scope):
        original(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))

    patched._mqar_index_fix = True  # type: ignore[attr-defined]
    interpreter._patch_lang_tensor = patched
