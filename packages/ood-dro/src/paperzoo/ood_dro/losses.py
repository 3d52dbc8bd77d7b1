r"""Point losses and the closed-form Wasserstein-robust losses of a linear binary model.

The robust surrogate of a loss ``l`` at a labelled point (paper Sec. 3, squared-L2 cost):

.. math:: \phi_\gamma(x, y; \theta) = \sup_z \; l(z, y; \theta) - \gamma \lVert z - x \rVert_2^2 .

For a linear score ``theta . x`` and a loss of the margin ``mu = y theta . x`` that decreases in
``mu``, the worst ``z`` moves along ``-y theta / ||theta||`` by a distance ``t >= 0``, so the sup is
a scalar problem in ``t`` (margin ``mu - t ||theta||``, cost ``gamma t^2``). Its solutions:

- hinge ``max(0, 1 - mu)``: ``phi = max(0, 1 - mu + ||theta||^2 / (4 gamma))``;
- 0-1 ``1[mu <= 0]``: ``phi = 1`` if ``mu <= 0`` else ``max(0, 1 - gamma mu^2 / ||theta||^2)``;
- logistic ``softplus(-mu)``: ``phi = max_t softplus(t ||theta|| - mu) - gamma t^2``, concave in
  ``t`` when ``gamma > ||theta||^2 / 8``; solved by safeguarded Newton in float64.

The closed forms are exact (the gradient ascent of :func:`~paperzoo.ood_dro.robust_surrogate`
cannot reach the hinge sup when the hinge is inactive at ``x`` and never moves for 0-1), and one
pass instead of ``T_in + 1``: the fast path for linear models.

``BASE_LOSSES`` holds the point losses the robust module and the RSS objective take by name:
``loss(scores, target) -> (N,)``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.checks import (
    Reduction,
    check_choice,
    check_finite,
    check_float_tensor,
    check_labels,
    check_nonempty,
    check_positive,
    check_reduction,
    reduce,
)

__all__ = [
    "BASE_LOSSES",
    "LINEAR_KINDS",
    "LinearRobustLoss",
    "RampLoss",
    "binary_scores",
    "check_pm1_labels",
    "hinge_loss",
    "logistic_loss",
    "ramp_loss",
    "robust_hinge_linear",
    "robust_logistic_linear",
    "robust_zero_one_linear",
    "softmax_cross_entropy",
]

LINEAR_KINDS = ("hinge", "zero_one", "logistic")
"""The losses with a closed-form robust surrogate for a linear binary model."""


# ----------------------------------------------------------------------------- labels and scores


def check_pm1_labels(
    name: str, y: object, *, n: int | None = None, validate: bool = True
) -> Tensor:
    """``y`` if it is a 1-D integer tensor of binary labels in ``{-1, +1}`` (of length ``n``).

    Raises:
        TypeError: not an integer tensor.
        ValueError: wrong rank or length, or (with ``validate``, one host sync) a value other
            than -1 and +1.
    """
    t = check_labels(name, y, n=n, validate=False)
    if validate and t.numel() > 0 and not bool(((t == 1) | (t == -1)).all()):
        raise ValueError(
            f"{name}: expected binary labels in {{-1, +1}}, got values {t.unique().tolist()}"
        )
    return t


def binary_scores(scores: Tensor) -> Tensor:
    """The scores of a binary model as ``(N,)``: ``(N,)`` as is, ``(N, 1)`` squeezed.

    Raises:
        ValueError: any other shape.
    """
    if scores.dim() == 2 and scores.shape[1] == 1:
        return scores[:, 0]
    if scores.dim() != 1:
        raise ValueError(
            f"scores: expected (N,) or (N, 1) scores of a binary model, got shape {tuple(scores.shape)}"
        )
    return scores


# ----------------------------------------------------------------------------- point losses


def softmax_cross_entropy(scores: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy per example: logits ``(N, K)``; ``target`` integer ``(N,)`` in ``[0, K)`` or
    class probabilities ``(N, K)`` (soft pseudo-labels). Returns ``(N,)``."""
    if target.is_floating_point():
        return -(target * F.log_softmax(scores, dim=1)).sum(1)
    return F.cross_entropy(scores, target, reduction="none")


def logistic_loss(scores: Tensor, target: Tensor) -> Tensor:
    """``softplus(-y s)`` per example: scores ``(N,)``/``(N, 1)``, ``target`` in ``{-1, +1}``. ``(N,)``."""
    return F.softplus(-target.to(scores.dtype) * binary_scores(scores))


def hinge_loss(scores: Tensor, target: Tensor) -> Tensor:
    """``max(0, 1 - y s)`` per example: scores ``(N,)``/``(N, 1)``, ``target`` in ``{-1, +1}``. ``(N,)``."""
    return F.relu(1 - target.to(scores.dtype) * binary_scores(scores))


BASE_LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "ce": softmax_cross_entropy,
    "logistic": logistic_loss,
    "hinge": hinge_loss,
}
"""Point losses by name, ``loss(scores, target) -> (N,)``; ``"ce"`` takes ``[0, K)`` labels, the
binary ones ``{-1, +1}`` labels."""


def ramp_loss(margin: Tensor, scale: float = 1.0) -> Tensor:
    """The reference simulation's ramp ``clip(1 - g * mu, 0, 1)`` of margins ``mu``, any shape.

    The margin scale ``g`` (``scale``) plays the role of the robustness parameter in the
    non-robust setup; the loss has zero gradient for ``mu < 0`` and ``mu > 1/g``.
    """
    return (1 - scale * margin).clamp(0.0, 1.0)


class RampLoss(nn.Module):
    """The ramp ``clip(1 - g y s, 0, 1)`` of a binary model's scores (reference simulation).

    ``forward(scores (N,) or (N, 1), target (N,) in {-1, +1}) -> (N,)`` or a scalar; twin of
    :func:`ramp_loss` on the margins ``target * scores``.

    Args:
        scale: the margin scale ``g > 0`` (the notebook's ``g``, and ``g'`` for unlabeled data).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
        validate: check finiteness and the label values (host syncs).
    """

    def __init__(
        self, scale: float = 1.0, reduction: Reduction = "mean", validate: bool = True
    ) -> None:
        super().__init__()
        self.scale = check_positive("scale", scale)
        self.reduction = check_reduction(reduction)
        self.validate = validate

    def forward(self, scores: Tensor, target: Tensor) -> Tensor:
        """Ramp loss of ``scores`` ``(N,)``/``(N, 1)`` against ``target`` ``(N,)`` in ``{-1, +1}``."""
        check_float_tensor("scores", scores, nonempty=True)
        s = binary_scores(scores)
        check_pm1_labels("target", target, n=s.shape[0], validate=self.validate)
        check_finite("scores", s, validate=self.validate)
        return reduce(ramp_loss(target.to(s.dtype) * s, self.scale), self.reduction)


# ----------------------------------------------------------------------------- closed forms


def _check_margin(margin: Tensor, w_norm: Tensor | float, validate: bool) -> Tensor:
    check_float_tensor("margin", margin, ndim=1)
    check_nonempty("margin", margin)
    a = torch.as_tensor(w_norm, dtype=margin.dtype, device=margin.device)
    if a.dim() != 0 and a.shape != margin.shape:
        raise ValueError(
            f"w_norm: expected a scalar or the margin's shape {tuple(margin.shape)}, got {tuple(a.shape)}"
        )
    check_finite("margin", margin, validate=validate)
    if validate and not bool((a >= 0).all() & torch.isfinite(a).all()):
        raise ValueError(
            "w_norm: expected finite values >= 0 (norms of theta), got a negative or NaN/inf"
        )
    return a


def robust_hinge_linear(
    margin: Tensor, w_norm: Tensor | float, gamma: float, *, validate: bool = True
) -> Tensor:
    r"""Closed-form robust hinge of a linear binary model (squared-L2 cost), per example.

    ``phi = max(0, 1 - mu + ||theta||^2 / (4 gamma))``: the sup moves ``x`` by
    ``||theta|| / (2 gamma)`` against the label (exact for every ``mu``; the hinge is convex, so no
    concavity threshold). ``gamma = inf`` gives the plain hinge.

    Args:
        margin: ``mu = y theta . x``, ``(N,)``.
        w_norm: ``||theta||``: a float, a 0-D tensor or ``(N,)`` (gradients flow through it).
        gamma: the transport price ``gamma > 0`` (``inf`` allowed).
        validate: check finiteness (one host sync).

    Returns:
        ``(N,)``.

    Raises:
        TypeError: a non-float ``margin``.
        ValueError: a non-1-D ``margin``, an empty batch, NaN/inf, ``w_norm`` of another shape
            or negative, ``gamma <= 0``.
    """
    g = check_positive("gamma", gamma, allow_inf=True)
    a = _check_margin(margin, w_norm, validate)
    return F.relu(1 - margin + a.square() / (4 * g))


def robust_zero_one_linear(
    margin: Tensor, w_norm: Tensor | float, gamma: float, *, validate: bool = True
) -> Tensor:
    r"""Closed-form robust 0-1 loss of a linear binary model (squared-L2 cost), per example.

    ``phi = 1`` if ``mu <= 0`` else ``max(0, 1 - gamma mu^2 / ||theta||^2)``: flipping the sign
    costs ``gamma (mu / ||theta||)^2``; staying put scores 0. Shapes and errors as
    :func:`robust_hinge_linear`; ``(N,)``. The value is piecewise smooth in ``mu`` (its gradient is
    0 where the flip does not pay).
    """
    g = check_positive("gamma", gamma, allow_inf=True)
    a = _check_margin(margin, w_norm, validate)
    tiny = torch.finfo(margin.dtype).tiny
    flip = 1 - g * margin.square() / a.square().clamp_min(tiny)
    return torch.where(margin <= 0, torch.ones_like(margin), F.relu(flip))


def _logistic_step(mu: Tensor, a: Tensor, gamma: float, iters: int) -> Tensor:
    """The maximiser ``t* >= 0`` of ``softplus(a t - mu) - gamma t^2`` (float64, no grad).

    ``f(t) = a sigmoid(a t - mu) - 2 gamma t`` is positive at 0 and negative at ``a / (2 gamma)``;
    Newton steps that leave the bracket (or meet ``f' >= 0``) are replaced by bisection.
    """
    lo = torch.zeros_like(mu)
    hi = a / (2 * gamma)
    t = torch.zeros_like(mu)
    for _ in range(iters):
        s = torch.sigmoid(a * t - mu)
        f = a * s - 2 * gamma * t
        fp = a.square() * s * (1 - s) - 2 * gamma
        lo = torch.where(f >= 0, t, lo)
        hi = torch.where(f <= 0, t, hi)
        newton = t - f / torch.where(fp < 0, fp, -torch.ones_like(fp))
        ok = (fp < 0) & (newton > lo) & (newton < hi)
        t = torch.where(ok, newton, (lo + hi) / 2)
    return t


def robust_logistic_linear(
    margin: Tensor,
    w_norm: Tensor | float,
    gamma: float,
    *,
    iters: int = 60,
    validate: bool = True,
) -> Tensor:
    r"""Robust logistic loss of a linear binary model (squared-L2 cost), per example.

    ``phi = max_{t >= 0} softplus(t ||theta|| - mu) - gamma t^2``. The maximiser ``t*`` is found
    in float64 without gradient (safeguarded Newton, ``iters`` steps); the value is then written
    with ``t*`` held fixed, so autograd gives Danskin's gradient ``grad l(z*)`` exactly.

    The scalar problem is concave, and ``t*`` the global sup, when ``gamma > ||theta||^2 / 8``;
    below that threshold a stationary point is returned and a ``UserWarning`` is raised (with
    ``validate``).

    Args:
        margin: ``mu = y theta . x``, ``(N,)``.
        w_norm: ``||theta||`` (float, 0-D or ``(N,)``).
        gamma: ``gamma > 0`` (``inf``: the plain logistic loss).
        iters: Newton/bisection steps (60 reach float64 precision).
        validate: finiteness and the concavity warning (host syncs).

    Returns:
        ``(N,)`` in ``margin``'s dtype.
    """
    g = check_positive("gamma", gamma, allow_inf=True)
    a = _check_margin(margin, w_norm, validate)
    if math.isinf(g):
        return F.softplus(-margin)
    a_full = a.expand_as(margin)
    if validate and bool((a_full.square() / 8 >= g).any()):
        warnings.warn(
            f"gamma: {g} is not above ||theta||^2 / 8 = {float(a_full.max()) ** 2 / 8:.4g}; the inner "
            "problem is not concave and the value is a stationary point, not the sup",
            UserWarning,
            stacklevel=2,
        )
    with torch.no_grad():
        t = _logistic_step(margin.double(), a_full.double(), g, iters).to(margin.dtype)
    return F.softplus(a_full * t - margin) - g * t.square()


_CLOSED_FORMS: dict[str, Callable[..., Tensor]] = {
    "hinge": robust_hinge_linear,
    "zero_one": robust_zero_one_linear,
    "logistic": robust_logistic_linear,
}


class LinearRobustLoss(nn.Module):
    """The closed-form robust loss of a linear binary model, as a module.

    ``forward(margin (N,), w_norm scalar or (N,)) -> (N,)`` or a scalar; one of
    :func:`robust_hinge_linear`, :func:`robust_zero_one_linear`, :func:`robust_logistic_linear`.

    Args:
        kind: ``"hinge"``, ``"zero_one"`` or ``"logistic"`` (default).
        gamma: the transport price ``gamma > 0``.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
        validate: finiteness checks (and the logistic concavity warning).
    """

    def __init__(
        self,
        kind: str = "logistic",
        gamma: float = 1.0,
        reduction: Reduction = "mean",
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.kind = check_choice("kind", kind, LINEAR_KINDS)
        self.gamma = check_positive("gamma", gamma, allow_inf=True)
        self.reduction = check_reduction(reduction)
        self.validate = validate

    def forward(self, margin: Tensor, w_norm: Tensor | float) -> Tensor:
        """Robust loss of margins ``(N,)`` given ``||theta||`` (scalar or ``(N,)``)."""
        phi = _CLOSED_FORMS[self.kind](margin, w_norm, self.gamma, validate=self.validate)
        return reduce(phi, self.reduction)
