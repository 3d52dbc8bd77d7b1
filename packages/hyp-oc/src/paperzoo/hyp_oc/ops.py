r"""Poincaré-ball operations (curvature :math:`-c`, :math:`c > 0`), exact formulas by default.

The ball is :math:`\mathbb{B}_c = \{x : c\|x\|^2 < 1\}` (radius :math:`1/\sqrt{c}`); every function
broadcasts over leading dimensions, the last dimension holds the features. ``c`` is a positive
Python float (sectional curvature ``-c``; geoopt's newer API writes ``k = -c``).

Clamps kept from the official code (``hyptorch/pmath.py``): norms are clamped below at ``1e-5``
before a division, ``artanh`` clamps its argument to ``±(1 - 1e-5)``, and :func:`project` keeps a
margin of ``1e-3`` to the boundary. Half-precision inputs are computed in float32 and cast back.

Deviation: the official Möbius addition adds ``1e-5`` to its denominator; here it is the exact
formula (the denominator is clamped at ``1e-15`` as geoopt does) and ``mobius_eps=1e-5`` restores
the official value. The additive eps shifts distances and MLR logits by up to ~1e-3 at
``‖x‖ ≈ 1.77, c = 0.1``, which the exact hand values and the geoopt comparison would not tolerate.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from paperzoo.core.checks import as_real, check_finite, check_float_tensor, check_positive

__all__ = [
    "BALL_EPS",
    "MIN_NORM",
    "artanh",
    "check_curvature",
    "check_in_ball",
    "clip_norm",
    "expmap",
    "expmap0",
    "lambda_x",
    "logmap0",
    "mobius_add",
    "poincare_dist",
    "poincare_dist_matrix",
    "project",
]

MIN_NORM = 1e-5
"""Lower clamp of a norm before a division (official ``1e-5``)."""
BALL_EPS = 1e-3
"""Relative margin :func:`project` keeps to the boundary (official ``1e-3``)."""
_ARTANH_CLAMP = 1.0 - 1e-5
_DEN_MIN = 1e-15


def check_curvature(c: object) -> float:
    """``c`` as a float if it is a finite real ``> 0``.

    Raises:
        TypeError: not a real number. ValueError: ``c <= 0``, NaN or infinite.
    """
    return check_positive("c", c)


def _mobius_eps(mobius_eps: object) -> float:
    return check_positive("mobius_eps", mobius_eps, allow_zero=True)


def _up(x: Tensor) -> Tensor:
    """Half precision to float32 (the ball ops lose the boundary margin in fp16)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _point(name: str, x: object) -> Tensor:
    t = check_float_tensor(name, x)
    if t.dim() == 0:
        raise ValueError(f"{name}: expected a tensor with a feature dimension, got a 0-D tensor")
    return t


def _same_dim(xn: str, x: Tensor, yn: str, y: Tensor) -> None:
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(
            f"{yn}: expected feature dimension {x.shape[-1]} (like {xn}), got {y.shape[-1]}"
        )


def check_in_ball(name: str, x: Tensor, c: float, *, check: bool = True) -> Tensor:
    """``x`` if every point lies strictly inside the ball (``c‖x‖² < 1``) and is finite.

    With ``check=False`` nothing is synchronised: ``x`` is returned projected onto the ball
    (:func:`project`) without a test. Deviation: the spec asks for a warning on projection; that
    would need the very host sync ``check=False`` exists to avoid, so projection is silent.

    Raises:
        ValueError: a point with ``‖x‖ >= 1/sqrt(c)``, or NaN/inf (only when ``check``).
    """
    if not check:
        return project(x, c)
    check_finite(name, x)
    sq = x.detach().pow(2).sum(-1)
    if bool((c * sq >= 1.0).any()):
        worst = float(sq.max().sqrt())
        raise ValueError(
            f"{name}: expected points inside the Poincaré ball of radius "
            f"{1.0 / math.sqrt(c):.6g} (c={c}), got a point of norm {worst:.6g}"
        )
    return x


def artanh(x: Tensor) -> Tensor:
    """``atanh(x)`` with ``x`` clamped to ``±(1 - 1e-5)`` (official), any shape."""
    out: Tensor = torch.atanh(x.clamp(-_ARTANH_CLAMP, _ARTANH_CLAMP))
    return out


def _norm(x: Tensor) -> Tensor:
    n: Tensor = x.norm(dim=-1, keepdim=True).clamp_min(MIN_NORM)
    return n


def lambda_x(x: Tensor, c: float, *, keepdim: bool = False, check: bool = True) -> Tensor:
    r"""Conformal factor :math:`\lambda^c_x = 2 / (1 - c\|x\|^2)`.

    Args:
        x: points ``(..., d)`` inside the ball.
        c: curvature magnitude ``> 0``.
        keepdim: keep the feature dimension as size 1, ``(..., 1)``; else ``(...)``.
        check: raise on points outside the ball (one host sync); ``False`` projects silently.

    Returns:
        ``(...)`` (or ``(..., 1)``), in ``x``'s dtype.
    """
    c = check_curvature(c)
    x0 = _point("x", x)
    x = check_in_ball("x", _up(x0), c, check=check)
    out = 2.0 / (1.0 - c * x.pow(2).sum(-1, keepdim=keepdim))
    return out.to(x0.dtype)


def _mobius_add(x: Tensor, y: Tensor, c: float, eps: float) -> Tensor:
    xy = (x * y).sum(-1, keepdim=True)
    x2 = x.pow(2).sum(-1, keepdim=True)
    y2 = y.pow(2).sum(-1, keepdim=True)
    num = (1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y
    den = 1 + 2 * c * xy + c**2 * x2 * y2
    den = den + eps if eps > 0 else den.clamp_min(_DEN_MIN)
    return num / den


def mobius_add(
    x: Tensor, y: Tensor, c: float, *, mobius_eps: float = 0.0, check: bool = True
) -> Tensor:
    r"""Möbius addition :math:`x \oplus_c y`.

    .. math:: x \oplus_c y = \frac{(1 + 2c\langle x,y\rangle + c\|y\|^2)\,x + (1 - c\|x\|^2)\,y}
              {1 + 2c\langle x,y\rangle + c^2\|x\|^2\|y\|^2}

    Args:
        x, y: points ``(..., d)`` inside the ball (broadcast against each other).
        c: curvature magnitude ``> 0``.
        mobius_eps: added to the denominator (official ``1e-5``; default ``0`` = exact formula).
        check: raise on points outside the ball or NaN/inf (host sync); ``False`` projects
            silently.

    Returns:
        ``(..., d)``, broadcast shape, in the inputs' dtype.

    Raises:
        TypeError/ValueError: non-float tensors, feature dims that differ, bad ``c``, points
            outside the ball.
    """
    c, eps = check_curvature(c), _mobius_eps(mobius_eps)
    x0, y0 = _point("x", x), _point("y", y)
    _same_dim("x", x0, "y", y0)
    xu = check_in_ball("x", _up(x0), c, check=check)
    yu = check_in_ball("y", _up(y0), c, check=check)
    return _mobius_add(xu, yu, c, eps).to(torch.promote_types(x0.dtype, y0.dtype))


def _expmap0(u: Tensor, c: float) -> Tensor:
    sc = math.sqrt(c)
    n = _norm(u)
    return torch.tanh(sc * n) * u / (sc * n)


def expmap0(u: Tensor, c: float) -> Tensor:
    r"""Exponential map at the origin: :math:`\tanh(\sqrt{c}\|u\|)\,u / (\sqrt{c}\|u\|)`.

    Args:
        u: tangent vectors ``(..., d)`` (any finite Euclidean vectors).
        c: curvature magnitude ``> 0``.

    Returns:
        Points ``(..., d)`` with norm ``< 1/sqrt(c)`` (in exact arithmetic).
    """
    c = check_curvature(c)
    u0 = _point("u", u)
    return _expmap0(_up(u0), c).to(u0.dtype)


def _expmap(x: Tensor, u: Tensor, c: float, eps: float) -> Tensor:
    sc = math.sqrt(c)
    n = _norm(u)
    lam = 2.0 / (1.0 - c * x.pow(2).sum(-1, keepdim=True))
    second = torch.tanh(sc * lam * n / 2) * u / (sc * n)
    return _mobius_add(x, second, c, eps)


def expmap(
    x: Tensor, u: Tensor, c: float, *, mobius_eps: float = 0.0, check: bool = True
) -> Tensor:
    r"""Exponential map at ``x``: :math:`x \oplus_c \tanh(\sqrt{c}\lambda_x\|u\|/2)\,u/(\sqrt{c}\|u\|)`.

    Args:
        x: base points ``(..., d)`` inside the ball.
        u: tangent vectors at ``x``, ``(..., d)``.
        c: curvature magnitude ``> 0``.
        mobius_eps: see :func:`mobius_add`.
        check: see :func:`mobius_add` (applies to ``x``).

    Returns:
        ``(..., d)`` points.
    """
    c, eps = check_curvature(c), _mobius_eps(mobius_eps)
    x0, u0 = _point("x", x), _point("u", u)
    _same_dim("x", x0, "u", u0)
    xu = check_in_ball("x", _up(x0), c, check=check)
    return _expmap(xu, _up(u0), c, eps).to(torch.promote_types(x0.dtype, u0.dtype))


def logmap0(y: Tensor, c: float, *, check: bool = True) -> Tensor:
    r"""Logarithmic map at the origin: :math:`\operatorname{artanh}(\sqrt{c}\|y\|)\,y/(\sqrt{c}\|y\|)`.

    Args:
        y: points ``(..., d)`` inside the ball.
        c: curvature magnitude ``> 0``.
        check: raise on points outside the ball (host sync); ``False`` projects silently.

    Returns:
        Tangent vectors ``(..., d)`` at the origin; the inverse of :func:`expmap0`.
    """
    c = check_curvature(c)
    y0 = _point("y", y)
    yu = check_in_ball("y", _up(y0), c, check=check)
    sc = math.sqrt(c)
    n = _norm(yu)
    return (artanh(sc * n) * yu / (sc * n)).to(y0.dtype)


def project(x: Tensor, c: float, eps: float = BALL_EPS) -> Tensor:
    """Rescale points outside the ball of radius ``(1 - eps)/sqrt(c)`` onto its sphere.

    Args:
        x: ``(..., d)`` any finite vectors.
        c: curvature magnitude ``> 0``.
        eps: relative boundary margin in ``[0, 1)`` (official ``1e-3``).

    Returns:
        ``(..., d)``: ``x`` unchanged where ``‖x‖ <= (1 - eps)/sqrt(c)``, rescaled to that norm
        elsewhere.
    """
    c = check_curvature(c)
    e = as_real("eps", eps)
    if not 0.0 <= e < 1.0:
        raise ValueError(f"eps: expected a value in [0, 1), got {eps!r}")
    x0 = _point("x", x)
    xu = _up(x0)
    maxnorm = (1.0 - e) / math.sqrt(c)
    # one scale factor per point: exactly 1 inside (x * 1 == x), maxnorm / |x| outside
    return (xu * (maxnorm / _norm(xu)).clamp(max=1.0)).to(x0.dtype)


def _dist(x: Tensor, y: Tensor, c: float, eps: float) -> Tensor:
    sc = math.sqrt(c)
    return 2.0 / sc * artanh(sc * _mobius_add(-x, y, c, eps).norm(dim=-1))


def poincare_dist(
    x: Tensor, y: Tensor, c: float, *, mobius_eps: float = 0.0, check: bool = True
) -> Tensor:
    r"""Geodesic distance :math:`d_c(x,y) = \frac{2}{\sqrt{c}}\operatorname{artanh}(\sqrt{c}\|(-x)\oplus_c y\|)`.

    Args:
        x, y: points ``(..., d)`` inside the ball (broadcast against each other).
        c: curvature magnitude ``> 0``.
        mobius_eps: see :func:`mobius_add`.
        check: see :func:`mobius_add`.

    Returns:
        Distances ``(...)`` (the feature dimension reduced). As ``c -> 0`` it tends to
        ``2‖x - y‖``.
    """
    c, eps = check_curvature(c), _mobius_eps(mobius_eps)
    x0, y0 = _point("x", x), _point("y", y)
    _same_dim("x", x0, "y", y0)
    xu = check_in_ball("x", _up(x0), c, check=check)
    yu = check_in_ball("y", _up(y0), c, check=check)
    return _dist(xu, yu, c, eps).to(torch.promote_types(x0.dtype, y0.dtype))


def poincare_dist_matrix(
    x: Tensor, y: Tensor, c: float, *, mobius_eps: float = 0.0, check: bool = True
) -> Tensor:
    r"""All pairwise distances :math:`D_{ij} = d_c(x_i, y_j)`, memory-light.

    :math:`\|(-x_i)\oplus_c y_j\|` is assembled from the norms and the inner products
    :math:`\langle x_i, y_j\rangle` (one ``(N, d) @ (d, M)`` matmul): only ``(N, M)`` temporaries,
    never ``(N, M, d)``.

    Args:
        x: ``(N, d)`` points inside the ball.
        y: ``(M, d)`` points inside the ball.
        c: curvature magnitude ``> 0``.
        mobius_eps: see :func:`mobius_add`.
        check: see :func:`mobius_add`.

    Returns:
        ``(N, M)`` distances. In float32 the expanded squared norm loses ~1e-7 relative, so for
        nearly equal points the distance carries an absolute error up to ~1e-3 (use float64 there).
    """
    c, eps = check_curvature(c), _mobius_eps(mobius_eps)
    x0, y0 = check_float_tensor("x", x, 2), check_float_tensor("y", y, 2)
    _same_dim("x", x0, "y", y0)
    xu = check_in_ball("x", _up(x0), c, check=check)
    yu = check_in_ball("y", _up(y0), c, check=check)
    xy = -(xu @ yu.mT)  # <a, y> with a = -x: (N, M)
    x2 = xu.pow(2).sum(-1, keepdim=True)  # (N, 1)
    y2 = yu.pow(2).sum(-1).unsqueeze(0)  # (1, M)
    a = 1 + 2 * c * xy + c * y2
    b = 1 - c * x2
    den = 1 + 2 * c * xy + c**2 * x2 * y2
    den = den + eps if eps > 0 else den.clamp_min(_DEN_MIN)
    num2 = (a.pow(2) * x2 + 2 * a * b * xy + b.pow(2) * y2).clamp_min(0.0)
    sc = math.sqrt(c)
    # sqrt at exactly 0 has an infinite derivative: clamp (distance error <= 1e-15 / sqrt(c))
    norm = num2.clamp_min(1e-30).sqrt() / den
    return (2.0 / sc * artanh(sc * norm)).to(torch.promote_types(x0.dtype, y0.dtype))


def clip_norm(x: Tensor, r: float) -> Tensor:
    r"""Feature clipping (Guo et al.): :math:`x \cdot \min(1, r / (\|x\| + 10^{-5}))`.

    Args:
        x: Euclidean vectors ``(..., d)``.
        r: clip radius ``> 0`` (official ``2``).

    Returns:
        ``(..., d)`` with ``‖·‖ < r``; unchanged where ``‖x‖ + 1e-5 <= r``.
    """
    r = check_positive("r", r)
    x0 = _point("x", x)
    xu = _up(x0)
    n = xu.norm(dim=-1, keepdim=True) + 1e-5
    return (xu * torch.clamp(r / n, max=1.0)).to(x0.dtype)
