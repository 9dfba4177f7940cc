"""A work-around for the Triton interpreter under numpy ≥ 2.4 (triton-lang/triton#9171).

The interpreter (TRITON_INTERPRET=1) turns a scalar into an int with `int(array)` on a one-element array, which
numpy 2.4 refuses ("only 0-dimensional arrays can be converted to Python scalars"), so any `range(0, T, ...)`
over a kernel argument fails. Upstream's fix squeezes the array first; we apply the same fix by wrapping the
interpreter's tensor patching. Nothing changes when the interpreter is off or already fixed.
"""

from __future__ import annotations

import os


def patch_interpreter_index() -> None:
    """Make interpreter tensors convert to int through a squeeze (idempotent)."""
    if os.environ.get("TRITON_INTERPRET", "0") != "1":
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
