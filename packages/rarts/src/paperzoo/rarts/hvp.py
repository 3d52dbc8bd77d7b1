"""Mixed Hessian-vector products ∇²_{α,w} L · v for second-order DARTS: central differences (DARTS Eq. 8)
and exact double backward."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from paperzoo.core.checks import check_positive

__all__ = ["hvp_autograd", "hvp_finite_diff"]


def _flat_norm(tensors: Sequence[Tensor]) -> Tensor:
    norm: Tensor = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(list(tensors))))
    return norm


def hvp_finite_diff(
    loss_at: Callable[[Sequence[Tensor]], Tensor],
    weights: Sequence[Tensor],
    vector: Sequence[Tensor],
    arch: Sequence[Tensor],
    eps: float = 0.01,
) -> list[Tensor]:
    """Mixed Hessian-vector product ∇²_{α,w} L(w, α) · v by central differences (DARTS Eq. 8).

    ``R = eps / ‖v‖``, ``w± = w ± R·v``, result ``(∇_α L(w+, α) − ∇_α L(w−, α)) / (2R)`` — divided by
    ``2R`` (the ``(p − n) / 2 * eps`` precedence bug of khanrc/pt.darts#43 and nni#3044 is tested against).

    Args:
        loss_at: ``ws -> L(ws, α)``, the loss with the weights replaced by ``ws`` (e.g. a ``functional_call``).
        weights: w, tensors. vector: v, tensors shaped like ``weights``. arch: α tensors (``requires_grad``).
        eps: DARTS' ``r = 0.01``.
    Returns: one tensor per α tensor, shaped like it. A zero ``vector`` gives zeros.
    """
    if len(weights) != len(vector):
        raise ValueError(f"weights and vector differ in length: {len(weights)} vs {len(vector)}")
    if not weights:
        raise ValueError("weights is empty")
    check_positive("eps", eps)
    ws = [w.detach() for w in weights]
    vs = [v.detach() for v in vector]
    R = eps / _flat_norm(vs).clamp_min(torch.finfo(vs[0].dtype).tiny)
    grads_p = torch.autograd.grad(
        loss_at(torch._foreach_add(ws, torch._foreach_mul(vs, R))), list(arch), allow_unused=True
    )
    grads_n = torch.autograd.grad(
        loss_at(torch._foreach_sub(ws, torch._foreach_mul(vs, R))), list(arch), allow_unused=True
    )
    return [
        torch.zeros_like(a) if p is None or n is None else (p - n) / (2.0 * R)
        for a, p, n in zip(arch, grads_p, grads_n, strict=True)
    ]


def hvp_autograd(
    loss_at: Callable[[Sequence[Tensor]], Tensor],
    weights: Sequence[Tensor],
    vector: Sequence[Tensor],
    arch: Sequence[Tensor],
) -> list[Tensor]:
    """Exact mixed Hessian-vector product ∇_α (∇_w L(w, α) · v) by double backward (same arguments as
    :func:`hvp_finite_diff`)."""
    if len(weights) != len(vector):
        raise ValueError(f"weights and vector differ in length: {len(weights)} vs {len(vector)}")
    ws = [w.detach().requires_grad_(True) for w in weights]
    loss = loss_at(ws)
    gw = torch.autograd.grad(loss, ws, create_graph=True, allow_unused=True)
    terms = [(g * v.detach()).sum() for g, v in zip(gw, vector, strict=True) if g is not None]
    if not terms:
        return [torch.zeros_like(a) for a in arch]
    out = torch.autograd.grad(torch.stack(terms).sum(), list(arch), allow_unused=True)
    return [torch.zeros_like(a) if g is None else g for a, g in zip(arch, out, strict=True)]
