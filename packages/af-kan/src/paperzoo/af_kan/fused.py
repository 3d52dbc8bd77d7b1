"""Fused AF-KAN basis for the default configuration (σ = SiLU, combination ``quad1``).

:class:`SiluQuad1Sums` computes, for ``x`` of shape ``(N, d)`` and bumps ``(s_j, e_j)``,
``j = 0..n-1``,

* ``S_i = Σ_j F_ij`` and ``P_i = Σ_j a_j F_ij`` with ``F_ij = (u_ij v_ij)²``,
  ``u_ij = silu(x_i - s_j)``, ``v_ij = silu(e_j - x_i)`` (the two reductions that
  ``global_attn`` and ``multistep`` need, see :class:`~paperzoo.af_kan.layers.AFKANLayer`);
* ``min_j F_ij`` and ``max_j F_ij`` (for the L2MM min–max, not differentiated here: the layer
  recomputes the two extreme values from their own ``(x_i, s_j, e_j)`` with autograd),

without ever holding the ``(N, n, d)`` basis tensor: it runs over the ``n`` bumps (a small,
fixed axis: 6 by default) with every step vectorised over ``(N, d)``, in place into a few
``(N, d)`` work buffers allocated once per call, and accumulates into
``(N, d)`` buffers, which stay in cache. The backward is derived by hand and recomputes the basis
from ``x``, ``s``, ``e`` (nothing of shape ``(N, n, d)`` is saved):

``dF/dz₁ = 2 uv · v · silu'(z₁)``, ``dF/dz₂ = 2 uv · u · silu'(z₂)`` with ``z₁ = x - s``,
``z₂ = e - x``, ``silu'(z) = σ(z) + silu(z)(1 - σ(z))``; with ``w_j = ḡ_S + a_j ḡ_P``:
``ḡ_x = Σ_j w_j (dF/dz₁ - dF/dz₂)``, ``ḡ_s_j = -Σ w_j dF/dz₁``, ``ḡ_e_j = Σ w_j dF/dz₂``,
``ḡ_a_j = Σ ḡ_P F_j``.

One exponential per input instead of ``2n``: ``σ(x - s_j) = 1/(1 + e^{-x} e^{s_j})`` and
``σ(e_j - x) = 1/(1 + e^{x} e^{-e_j})``, so only ``e^{±x}`` (``(N, d)``) and ``e^{s_j}``,
``e^{-e_j}`` (``(n,)``) are evaluated. Overflow is safe: ``e^{±x} = inf`` gives
``1/(1 + inf) = 0``, the right limit; ``e^{s_j}`` and ``e^{-e_j}`` are clamped to the finite
positive range of the dtype so that ``0 · inf`` (NaN) cannot occur (this changes values only for
a grid point beyond ``±log(finfo.max)``, ~±88 in float32, far outside any grid AF-KAN learns).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["SiluQuad1Sums", "silu_quad1_sums"]


def _scale_factors(start: Tensor, end: Tensor) -> tuple[Tensor, Tensor]:
    """``e^{s_j}`` and ``e^{-e_j}`` clamped to the finite positive range of the dtype."""
    info = torch.finfo(start.dtype)
    es = start.exp().clamp(info.tiny, info.max)
    ee = end.neg().exp().clamp(info.tiny, info.max)
    return es, ee


def _sigmoids_into(
    x: Tensor,
    ex_neg: Tensor,
    ex_pos: Tensor,
    s: Tensor,
    e: Tensor,
    es: Tensor,
    ee: Tensor,
    out: tuple[Tensor, Tensor, Tensor, Tensor],
) -> None:
    """Write ``σ(x - s)``, ``σ(e - x)``, ``silu(x - s)``, ``silu(e - x)`` for one bump into the
    four ``(N, d)`` buffers of ``out`` (in-place ops only: fresh ``(N, d)`` allocations cost more
    than the arithmetic on a CPU, through page faults)."""
    sig1, sig2, u, v = out
    torch.mul(ex_neg, es, out=sig1).add_(1.0).reciprocal_()
    torch.mul(ex_pos, ee, out=sig2).add_(1.0).reciprocal_()
    torch.sub(x, s, out=u).mul_(sig1)
    torch.sub(e, x, out=v).mul_(sig2)


def _forward_grid(
    x: Tensor, start: Tensor, end: Tensor, a: Tensor, ex_neg: Tensor, ex_pos: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The forward as one broadcast expression over ``(N, n, d)`` (the form ``torch.compile``
    fuses into a single loop; used only while compiling, never materialised there)."""
    es, ee = _scale_factors(start, end)
    xe = x.unsqueeze(1)
    u = (xe - start[:, None]) / (1 + ex_neg.unsqueeze(1) * es[:, None])
    v = (end[:, None] - xe) / (1 + ex_pos.unsqueeze(1) * ee[:, None])
    f = (u * v).square()
    return f.sum(1), (f * a[:, None]).sum(1), f.amin(1), f.amax(1)


def _backward_grid(
    x: Tensor,
    start: Tensor,
    end: Tensor,
    a: Tensor,
    ex_neg: Tensor,
    ex_pos: Tensor,
    g_sum: Tensor,
    g_proj: Tensor,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The backward of :func:`_forward_grid` (same formulas as the eager loop)."""
    es, ee = _scale_factors(start, end)
    xe = x.unsqueeze(1)
    sig1 = 1 / (1 + ex_neg.unsqueeze(1) * es[:, None])
    sig2 = 1 / (1 + ex_pos.unsqueeze(1) * ee[:, None])
    u = (xe - start[:, None]) * sig1
    v = (end[:, None] - xe) * sig2
    uv = u * v
    gp = g_proj.unsqueeze(1)
    k = 2 * (g_sum.unsqueeze(1) + a[:, None] * gp) * uv
    t1 = k * v * (sig1 + u * (1 - sig1))
    t2 = k * u * (sig2 + v * (1 - sig2))
    g_a = (gp * uv * uv).sum((0, 2))
    return (t1 - t2).sum(1), -t1.sum((0, 2)), t2.sum((0, 2)), g_a


class SiluQuad1Sums(torch.autograd.Function):
    """``(x, s, e, a) -> (S, P, lo, hi)``; see the module docstring.

    Shapes: ``x`` ``(N, d)``; ``s``, ``e``, ``a`` ``(n,)``; ``S``, ``P``, ``lo``, ``hi``
    ``(N, d)``; ``lo``/``hi`` (the min/max over bumps) are not differentiable.
    """

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, start: Tensor, end: Tensor, a: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        ex_neg = torch.exp(-x)
        ex_pos = torch.exp(x)
        if torch.compiler.is_compiling():
            f_sum, f_proj, lo, hi = _forward_grid(x, start, end, a, ex_neg, ex_pos)
            ctx.save_for_backward(x, start, end, a, ex_neg, ex_pos)
            ctx.mark_non_differentiable(lo, hi)
            return f_sum, f_proj, lo, hi
        es, ee = _scale_factors(start, end)
        f_sum = torch.zeros_like(x)
        f_proj = torch.zeros_like(x)
        lo = torch.full_like(x, float("inf"))
        hi = torch.full_like(x, float("-inf"))
        bufs = (torch.empty_like(x), torch.empty_like(x), torch.empty_like(x), torch.empty_like(x))
        for j in range(start.shape[0]):  # the n bumps; each step is vectorised over (N, d)
            _sigmoids_into(x, ex_neg, ex_pos, start[j], end[j], es[j], ee[j], bufs)
            f = bufs[2].mul_(bufs[3]).square_()  # F = (uv)^2
            f_sum.add_(f)
            f_proj.addcmul_(f, a[j])
            lo.clamp_max_(f)  # running min / max over the bumps, in place
            hi.clamp_min_(f)
        ctx.save_for_backward(x, start, end, a, ex_neg, ex_pos)
        ctx.mark_non_differentiable(lo, hi)
        return f_sum, f_proj, lo, hi

    @staticmethod
    def backward(
        ctx: Any, g_sum: Tensor | None, g_proj: Tensor | None, _g_lo: Tensor, _g_hi: Tensor
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None, Tensor | None]:
        x, start, end, a, ex_neg, ex_pos = ctx.saved_tensors
        if g_sum is None:
            g_sum = torch.zeros_like(x)
        if g_proj is None:
            g_proj = torch.zeros_like(x)
        needs = ctx.needs_input_grad
        if torch.compiler.is_compiling():
            grads = _backward_grid(x, start, end, a, ex_neg, ex_pos, g_sum, g_proj)
            return tuple(g if need else None for g, need in zip(grads, needs, strict=True))  # type: ignore[return-value]
        es, ee = _scale_factors(start, end)
        n = start.shape[0]
        g_x = torch.zeros_like(x)
        g_s = torch.empty_like(start)
        g_e = torch.empty_like(end)
        g_a = torch.empty_like(a)
        bufs = (torch.empty_like(x), torch.empty_like(x), torch.empty_like(x), torch.empty_like(x))
        sig1, sig2, u, v = bufs
        uv, tmp, k = torch.empty_like(x), torch.empty_like(x), torch.empty_like(x)
        for j in range(n):  # the n bumps; each step is vectorised over (N, d)
            _sigmoids_into(x, ex_neg, ex_pos, start[j], end[j], es[j], ee[j], bufs)
            torch.mul(u, v, out=uv)
            g_a[j] = torch.mul(uv, uv, out=tmp).mul_(g_proj).sum()
            torch.addcmul(g_sum, g_proj, a[j], out=k).mul_(uv)  # w_j · uv (the 2 comes last)
            # silu'(z) = σ + silu - silu·σ, built in place in the σ buffers
            torch.mul(u, sig1, out=tmp)
            sig1.add_(u).sub_(tmp)
            torch.mul(v, sig2, out=tmp)
            sig2.add_(v).sub_(tmp)
            t1 = sig1.mul_(v).mul_(k)  # w · dF/dz1 / 2
            t2 = sig2.mul_(u).mul_(k)  # w · dF/dz2 / 2
            g_s[j] = -2.0 * t1.sum()
            g_e[j] = 2.0 * t2.sum()
            g_x.add_(t1).sub_(t2)
        g_x.mul_(2.0)
        return (
            g_x if ctx.needs_input_grad[0] else None,
            g_s if ctx.needs_input_grad[1] else None,
            g_e if ctx.needs_input_grad[2] else None,
            g_a if ctx.needs_input_grad[3] else None,
        )


def silu_quad1_sums(
    x: Tensor, start: Tensor, end: Tensor, a: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Functional form of :class:`SiluQuad1Sums`.

    Args:
        x: ``(N, d)`` inputs.
        start: ``(n,)`` bump starts ``s``.
        end: ``(n,)`` bump ends ``e``.
        a: ``(n,)`` score weights.

    Returns:
        ``(S, P, lo, hi)``, each ``(N, d)``: ``Σ_j F``, ``Σ_j a_j F``, ``min_j F``, ``max_j F``.
    """
    out: tuple[Tensor, Tensor, Tensor, Tensor] = SiluQuad1Sums.apply(x, start, end, a)
    return out
