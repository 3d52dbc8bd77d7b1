r"""Layers: the map onto the Poincaré ball (:class:`ToPoincare`) and the hyperbolic multinomial
logistic regression of Ganea et al. 2018 (:class:`HyperbolicMLR`), as in the official
``hyptorch/nn.py``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from paperzoo.core.checks import (
    check_finite,
    check_float_tensor,
    check_positive,
    check_positive_int,
)
from paperzoo.hyp_oc.ops import (
    _DEN_MIN,
    _expmap,
    _expmap0,
    _mobius_eps,
    _up,
    check_curvature,
    clip_norm,
    project,
)

__all__ = ["HyperbolicMLR", "ToPoincare", "hyperbolic_mlr_logits", "riemannian_gradient"]


class _RiemannianGradient(torch.autograd.Function):
    """Identity forward; backward scales the gradient by ``(1 - c‖z‖²)² / 4``."""

    @staticmethod
    def forward(ctx: Any, z: Tensor, c: float) -> Tensor:
        ctx.save_for_backward(z)
        ctx.c = c
        return z.view_as(z)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        (z,) = ctx.saved_tensors
        scale = (1 - ctx.c * z.pow(2).sum(-1, keepdim=True)).pow(2) / 4
        return grad * scale, None


def riemannian_gradient(z: Tensor, c: float) -> Tensor:
    r"""Identity on ``z`` ``(..., d)`` whose backward multiplies the incoming gradient by
    :math:`\lambda_z^{-2} = (1 - c\|z\|^2)^2 / 4` (the official "Riemannian gradient" fix).

    Deviation: the official ``RiemannianGradient.c`` is a class attribute shared by every
    instance; here ``c`` is passed per call.
    """
    return _RiemannianGradient.apply(z, check_curvature(c))  # type: ignore[no-any-return]


def _check_points(name: str, x: object, dim: int | None, validate: bool) -> Tensor:
    t = check_float_tensor(name, x, 2, nonempty=True)
    if dim is not None and t.shape[1] != dim:
        raise ValueError(f"{name}: expected {dim} features, got shape {tuple(t.shape)}")
    check_finite(name, t, validate=validate)
    return t


class ToPoincare(nn.Module):
    r"""Euclidean features ``(N, d)`` -> Poincaré-ball points ``(N, d)``.

    .. math:: z = \operatorname{proj}(\exp^c_{p_0}(\operatorname{clip}_r(x))),\quad
              p_0 = \operatorname{proj}(\exp^c_0(w))

    with the learnable base point ``w`` (initialised at 0) when ``learn_base_point``, else
    :math:`z = \operatorname{proj}(\exp^c_0(\operatorname{clip}_r(x)))`; with ``riemannian_grad``
    the backward pass scales gradients by :math:`(1 - c\|z\|^2)^2/4`. With ``c = 0.1, r = 2`` and
    the base point at 0, :math:`\|z\| \le \tanh(2\sqrt{0.1})/\sqrt{0.1} \approx 1.7701`.

    Args:
        c: curvature magnitude ``> 0`` (official ``0.1``).
        clip_r: feature-clipping radius ``> 0``, or ``None`` for no clipping (official ``2``).
        learn_base_point: learn ``p_0`` (official ``train_x=True``); needs ``dim``.
        dim: feature dimension ``d`` (required with a learned base point).
        riemannian_grad: apply the gradient scaling (official ``True``); the forward is the same.
        mobius_eps: see :func:`paperzoo.hyp_oc.ops.mobius_add` (official ``1e-5``; default exact).
        validate: check inputs for NaN/inf (one host sync per call).

    Attributes:
        last_max_norm: the largest ``‖z‖`` of the last forward (a detached 0-D tensor), to watch
            for points creeping to the boundary.
    """

    def __init__(
        self,
        c: float = 0.1,
        clip_r: float | None = 2.0,
        learn_base_point: bool = True,
        dim: int | None = None,
        riemannian_grad: bool = True,
        mobius_eps: float = 0.0,
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.c = check_curvature(c)
        self.clip_r = None if clip_r is None else check_positive("clip_r", clip_r)
        self.dim = None if dim is None else check_positive_int("dim", dim)
        if learn_base_point and self.dim is None:
            raise ValueError("dim: expected the feature dimension with learn_base_point=True")
        self.learn_base_point = bool(learn_base_point)
        self.riemannian_grad = bool(riemannian_grad)
        self.mobius_eps = _mobius_eps(mobius_eps)
        self.validate = bool(validate)
        self.base_point: nn.Parameter | None = (
            nn.Parameter(torch.zeros(self.dim)) if self.learn_base_point and self.dim else None
        )
        self.last_max_norm: Tensor | None = None

    def reset_parameters(self) -> None:
        """Base point back to the origin (official init)."""
        if self.base_point is not None:
            with torch.no_grad():
                self.base_point.zero_()

    def forward(self, x: Tensor) -> Tensor:
        """``(N, d)`` Euclidean features -> ``(N, d)`` ball points (``x``'s dtype)."""
        x0 = _check_points("x", x, self.dim, self.validate)
        xu = _up(x0)
        if self.clip_r is not None:
            xu = clip_norm(xu, self.clip_r)
        if self.base_point is not None:
            p0 = project(_expmap0(_up(self.base_point).to(xu.dtype), self.c), self.c)
            z = project(_expmap(p0, xu, self.c, self.mobius_eps), self.c)
        else:
            z = project(_expmap0(xu, self.c), self.c)
        if self.riemannian_grad:
            z = riemannian_gradient(z, self.c)
        self.last_max_norm = z.detach().norm(dim=-1).max()
        return z.to(x0.dtype)

    def extra_repr(self) -> str:
        return (
            f"c={self.c}, clip_r={self.clip_r}, learn_base_point={self.learn_base_point}, "
            f"dim={self.dim}, riemannian_grad={self.riemannian_grad}"
        )


def hyperbolic_mlr_logits(
    z: Tensor, p: Tensor, a: Tensor, c: float, *, mobius_eps: float = 0.0
) -> Tensor:
    r"""Hyperbolic MLR logits of ball points ``z`` for gyroplanes ``(p_k, a_k)`` (Ganea et al.).

    .. math:: \zeta_k(z) = \frac{\lambda_{p_k}\|a_k\|}{\sqrt{c}}\operatorname{arsinh}\Big(
              \frac{2\sqrt{c}\langle(-p_k)\oplus_c z, a_k\rangle}
              {(1 - c\|(-p_k)\oplus_c z\|^2)\|a_k\|}\Big)

    :math:`= \lambda_{p_k}\|a_k\|` times the signed distance of ``z`` to the gyroplane. The
    Möbius sums are assembled from inner products (``(N, K)`` temporaries, no ``(K, N, d)``
    tensor as in the official ``_mobius_addition_batch``).

    Args:
        z: ``(N, d)`` points inside the ball.
        p: ``(K, d)`` gyroplane offsets, points inside the ball.
        a: ``(K, d)`` normals, tangent vectors at ``p_k`` (non-zero).
        c: curvature magnitude ``> 0``.
        mobius_eps: see :func:`paperzoo.hyp_oc.ops.mobius_add`.

    Returns:
        ``(N, K)`` logits. As ``c -> 0`` they tend to ``4<z - p_k, a_k>``.
    """
    c, eps = check_curvature(c), _mobius_eps(mobius_eps)
    sc = math.sqrt(c)
    zp = -(z @ p.mT)  # <-p_k, z_n>: (N, K)
    z2 = z.pow(2).sum(-1, keepdim=True)  # (N, 1)
    p2 = p.pow(2).sum(-1).unsqueeze(0)  # (1, K)
    pa = -(p * a).sum(-1).unsqueeze(0)  # <-p_k, a_k>: (1, K)
    za = z @ a.mT  # (N, K)
    big_a = 1 + 2 * c * zp + c * z2  # coefficient of -p_k
    big_b = 1 - c * p2  # coefficient of z
    den = 1 + 2 * c * zp + c**2 * p2 * z2
    den = den + eps if eps > 0 else den.clamp_min(_DEN_MIN)
    m_dot_a = (big_a * pa + big_b * za) / den
    m2 = (big_a.pow(2) * p2 + 2 * big_a * big_b * zp + big_b.pow(2) * z2) / den.pow(2)
    a_norm = a.norm(dim=-1).unsqueeze(0)  # (1, K)
    lam_p = 2.0 / (1.0 - c * p2)
    arg = 2 * sc * m_dot_a / ((1 - c * m2) * a_norm)
    logits: Tensor = lam_p * a_norm / sc * torch.asinh(arg)
    return logits


class HyperbolicMLR(nn.Module):
    r"""Hyperbolic multinomial logistic regression: ``(N, dim)`` ball points -> ``(N, K)`` logits.

    Euclidean parameters :math:`\hat p_k, \hat a_k` ``(K, dim)`` are mapped as in the official
    code: :math:`p_k = \exp^c_0(\hat p_k)`, :math:`a_k = \hat a_k (1 - c\|p_k\|^2)`; logits by
    :func:`hyperbolic_mlr_logits`. Init: kaiming-uniform (``a = sqrt(5)``) on both.

    Args:
        dim: ball dimension ``d``.
        num_classes: ``K >= 2`` (Hyp-OC: 2, bona fide = 0, pseudo-negative/spoof = 1).
        c: curvature magnitude ``> 0`` (official ``0.1``).
        mobius_eps: see :func:`paperzoo.hyp_oc.ops.mobius_add`.
        validate: check inputs for NaN/inf and for points outside the ball (one host sync).
    """

    def __init__(
        self,
        dim: int,
        num_classes: int,
        c: float = 0.1,
        mobius_eps: float = 0.0,
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.dim = check_positive_int("dim", dim)
        self.num_classes = check_positive_int("num_classes", num_classes, minimum=2)
        self.c = check_curvature(c)
        self.mobius_eps = _mobius_eps(mobius_eps)
        self.validate = bool(validate)
        self.a_vals = nn.Parameter(torch.empty(self.num_classes, self.dim))
        self.p_vals = nn.Parameter(torch.empty(self.num_classes, self.dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-uniform (``a = sqrt(5)``) on ``a_vals`` and ``p_vals`` (official)."""
        nn.init.kaiming_uniform_(self.a_vals, a=math.sqrt(5))
        nn.init.kaiming_uniform_(self.p_vals, a=math.sqrt(5))

    def gyroplanes(self) -> tuple[Tensor, Tensor]:
        """``(p, a)``: the offsets on the ball and the transported normals, each ``(K, dim)``."""
        p = _expmap0(_up(self.p_vals), self.c)
        a = _up(self.a_vals) * (1 - self.c * p.pow(2).sum(-1, keepdim=True))
        return p, a

    def forward(self, z: Tensor) -> Tensor:
        """``(N, dim)`` ball points -> ``(N, K)`` logits (``z``'s dtype)."""
        z0 = _check_points("z", z, self.dim, self.validate)
        zu = _up(z0)
        if self.validate:
            if bool((self.c * zu.detach().pow(2).sum(-1) >= 1).any()):
                raise ValueError(
                    f"z: expected points inside the Poincaré ball of radius "
                    f"{1 / math.sqrt(self.c):.6g} (c={self.c})"
                )
        else:
            zu = project(zu, self.c)
        p, a = self.gyroplanes()
        out = hyperbolic_mlr_logits(
            zu, p.to(zu.dtype), a.to(zu.dtype), self.c, mobius_eps=self.mobius_eps
        )
        return out.to(z0.dtype)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_classes={self.num_classes}, c={self.c}"
