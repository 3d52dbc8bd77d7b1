"""The benchmark's eager cost-floor row counts the fused Function's passes correctly."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from paperzoo.af_kan.basis import grid
from paperzoo.af_kan.bench import EAGER_PASSES
from paperzoo.af_kan.fused import silu_quad1_sums

_NO_PASS = ("empty", "view", "detach", "select", "alias", "as_strided")


class _FullSizeOps(TorchDispatchMode):
    """Counts aten ops (allocations and views excluded) that touch a tensor of ``numel``
    elements."""

    def __init__(self, numel: int) -> None:
        super().__init__()
        self.numel = numel
        self.count = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        operands = [*args, *(kwargs or {}).values()]
        touches = any(isinstance(t, torch.Tensor) and t.numel() == self.numel for t in operands)
        if touches and not any(word in str(func) for word in _NO_PASS):
            self.count += 1
        return out


def test_eager_passes_is_the_functions_op_count() -> None:
    start, end = grid(3, 3)  # n = 6, the benchmark's case
    leaves = [t.clone().requires_grad_(True) for t in (start, end, torch.randn(6))]
    x = (torch.rand(20, 30) * 2 - 1).requires_grad_(True)
    grads = (torch.ones_like(x), torch.ones_like(x))
    with _FullSizeOps(x.numel()) as mode:
        out = silu_quad1_sums(x, *leaves)
        torch.autograd.backward(out[:2], grads)
    assert mode.count == EAGER_PASSES
