"""Basis functions of ReLU-KAN and AF-KAN (Ta & Tran, arXiv 2503.06112, Sec. 3).

Axis names used in the shapes below: ``*`` any leading (batch) axes, ``d`` inputs of a layer,
``n = G + K`` bumps per input (``G`` grid size, ``K`` order).

Verified against the official code (``hoangthangta/All-KAN``, ``models/af_kan.py`` and
``models/relu_kan.py``): the grid ``s_j = (j - K)/G``, ``e_j = s_j + (K + 1)/G``; the ReLU-KAN bump
``[r ReLU(x - s) ReLU(e - x)]²`` with ``r = 4G²/(K+1)²``; the seven function combinations; and the
"L2MM" normalisation (``F.normalize(p=2, dim=None)`` of the whole batch tensor, then a global
min–max).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from paperzoo.core.checks import check_choice

__all__ = [
    "ACTIVATIONS",
    "FUNCS",
    "FuncNorm",
    "af_basis",
    "grid",
    "l2mm",
    "minmax_stats",
    "range_floor",
    "relu_kan_basis",
    "relu_kan_scale",
]

FuncNorm = Literal["batch", "sample"]

#: σ of the paper: the activation used inside the basis (and after the post-LayerNorm).
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "silu": F.silu,
    "relu": F.relu,
    "leaky_relu": F.leaky_relu,
    "elu": F.elu,
    "selu": F.selu,
    "gelu": F.gelu,
    "softplus": F.softplus,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
}


def _quad1(u: Tensor, v: Tensor) -> Tensor:
    return (u * v).square()


def _quad2(u: Tensor, v: Tensor) -> Tensor:
    return u * v + u.square() + v.square()


def _sum(u: Tensor, v: Tensor) -> Tensor:
    return u + v


def _prod(u: Tensor, v: Tensor) -> Tensor:
    return u * v


def _sum_prod(u: Tensor, v: Tensor) -> Tensor:
    return u + v + u * v


def _cubic1(u: Tensor, v: Tensor) -> Tensor:
    return (u + v) * (u.square() + v.square())


def _cubic2(u: Tensor, v: Tensor) -> Tensor:
    return (u * v).pow(3)


#: The function combinations ``F = c(u, v)`` of two shifted activations
#: ``u = σ(x - s)``, ``v = σ(e - x)`` (paper Sec. 3, official ``cal_output``).
FUNCS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "quad1": _quad1,  # (uv)²
    "quad2": _quad2,  # uv + u² + v²
    "sum": _sum,  # u + v
    "prod": _prod,  # uv
    "sum_prod": _sum_prod,  # u + v + uv
    "cubic1": _cubic1,  # (u + v)(u² + v²)
    "cubic2": _cubic2,  # (uv)³
}


def grid(
    grid_size: int,
    order: int,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor]:
    """Start and end points of the ``n = G + K`` bumps (paper Sec. 3).

    ``s_j = (j - K)/G`` and ``e_j = s_j + (K + 1)/G`` for ``j = 0..n-1``, so each bump spans
    ``K + 1`` grid cells like an order-``K`` B-spline and together they cover
    ``[-K/G, (G + K)/G]``.

    Args:
        grid_size: ``G >= 1``.
        order: ``K >= 0``.

    Returns:
        ``(start, end)``, each of shape ``(n,)``.
    """
    if isinstance(grid_size, bool) or not isinstance(grid_size, int) or grid_size < 1:
        raise ValueError(f"grid_size must be an integer >= 1, got {grid_size!r}")
    if isinstance(order, bool) or not isinstance(order, int) or order < 0:
        raise ValueError(f"order must be an integer >= 0, got {order!r}")
    dtype = dtype or torch.get_default_dtype()
    start = torch.arange(-order, grid_size, dtype=dtype, device=device) / grid_size
    end = start + (order + 1) / grid_size
    return start, end


def relu_kan_scale(grid_size: int, order: int) -> float:
    """ReLU-KAN normaliser ``r = 4G²/(K + 1)²``, which makes every bump peak at exactly 1."""
    return 4.0 * grid_size * grid_size / float((order + 1) * (order + 1))


def relu_kan_basis(x: Tensor, start: Tensor, end: Tensor, r: float) -> Tensor:
    """ReLU-KAN bumps ``φ_j(x_i) = [r · ReLU(x_i - s_j) · ReLU(e_j - x_i)]²``.

    Args:
        x: ``(*, d)`` inputs.
        start: ``(n,)`` shared or ``(d, n)`` per-input bump starts ``s``.
        end: same shape as ``start``, bump ends ``e``.
        r: the scale, normally :func:`relu_kan_scale` ``(G, K)``.

    Returns:
        ``(*, d, n)``; each bump is 1 at its midpoint and 0 outside ``(s_j, e_j)``.
    """
    xe = x.unsqueeze(-1)
    return (r * F.relu(xe - start) * F.relu(end - xe)).square()


def af_basis(
    x: Tensor,
    start: Tensor,
    end: Tensor,
    activation: str = "silu",
    func: str = "quad1",
    *,
    pointwise: bool = False,
) -> Tensor:
    """AF-KAN basis responses ``F_ij = c(σ(x_i - s_j), σ(e_j - x_i))`` (paper Sec. 3).

    No normalisation is applied here (see :func:`l2mm`); with ``activation='relu'`` and
    ``func='quad1'`` this is the ReLU-KAN basis divided by ``r²``.

    Args:
        x: ``(*, d)`` inputs.
        start: ``(n,)`` or ``(d, n)`` bump starts ``s``.
        end: same shape as ``start``, bump ends ``e``.
        activation: σ, a key of :data:`ACTIVATIONS` (default ``'silu'``, the paper's best).
        func: the combination ``c``, a key of :data:`FUNCS` (default ``'quad1'``).

        pointwise: evaluate ``c(σ(x - s), σ(e - x))`` elementwise on tensors of one shape
            (``x``, ``start`` and ``end`` broadcast together) instead of on the ``d × n`` grid.

    Returns:
        ``(*, d, n)`` (or the broadcast shape when ``pointwise``).
    """
    check_choice("activation", activation, ACTIVATIONS)
    check_choice("func", func, FUNCS)
    act = ACTIVATIONS[activation]
    xe = x if pointwise else x.unsqueeze(-1)
    return FUNCS[func](act(xe - start), act(end - xe))


def l2mm(features: Tensor, mode: str = "batch", eps: float = 1e-8) -> Tensor:
    """The paper's "L2MM" normalisation: L2 scaling followed by min–max rescaling to ``[0, 1]``.

    The official code divides the whole ``(B, d, n)`` tensor by its L2 norm and then min–max
    rescales the whole tensor. Min–max is invariant to a positive scale, so the L2 step is a
    mathematical no-op and is skipped here (the tests check equality with the two-step form).

    Args:
        features: ``(*, d, n)`` basis responses (at least 2 dims).
        mode: ``'batch'`` pools the min and max over the whole tensor, as the official code does
            (an example's output then depends on the rest of its batch); ``'sample'`` pools over
            ``(d, n)`` of each example separately (batch independent; recommended for inference).
        eps: lower bound on ``max - min`` (raised to the smallest normal number of the dtype
            when it is below it, e.g. float16, where ``1e-8`` would round to 0). Deviation: the
            official code has no guard and returns NaN (0/0) on a constant tensor; here a
            constant tensor maps to 0.

    Returns:
        Same shape as ``features``, with values in ``[0, 1]``.
    """
    lo, hi = minmax_stats(features, mode)
    return (features - lo) / (hi - lo).clamp_min(range_floor(eps, features.dtype))


def range_floor(eps: float, dtype: torch.dtype) -> float:
    """``eps`` raised to the smallest positive normal number of ``dtype`` (``finfo.tiny``).

    A floor such as ``1e-8`` rounds to 0 in float16 (smallest subnormal ~6e-8), which would turn
    the constant-tensor guard of L2MM back into ``0/0``; float32/float64 (``tiny`` ~1e-38) and
    bfloat16 keep ``eps`` unchanged.
    """
    if not dtype.is_floating_point:  # integer features: the division promotes to float
        return eps
    return max(eps, torch.finfo(dtype).tiny)


def minmax_stats(features: Tensor, mode: str = "batch") -> tuple[Tensor, Tensor]:
    """Min and max of ``features`` (``(*, d, n)``) pooled as :func:`l2mm` pools them.

    Returns ``(lo, hi)`` shaped to broadcast against ``features``: ``(1, ..., 1)`` for
    ``'batch'`` and ``(*, 1, 1)`` for ``'sample'``. The gradient of each goes to the single element
    ``torch.min``/``torch.max`` selects (a valid subgradient, and much cheaper than
    ``torch.amin``'s tie-splitting backward); both agree when the extreme value is unique.
    """
    check_choice("func_norm", mode, ("batch", "sample"))
    if features.dim() < 2:
        raise ValueError(f"features must have shape (*, d, n), got {tuple(features.shape)}")
    lead = features.shape[:-2]
    if mode == "batch":
        rows = features.reshape(1, -1)
    else:
        rows = features.reshape(-1, features.shape[-2] * features.shape[-1])
    shape = (1,) * features.dim() if mode == "batch" else (*lead, 1, 1)
    lo = rows.min(dim=1).values.reshape(shape)
    hi = rows.max(dim=1).values.reshape(shape)
    return lo, hi
