r"""The smooth adversarial comp-sum loss (paper Section 6, the ADV-COMP-SUM objective).

For logits ``h = h(x)`` and ``h' = h(x')`` of a clean input and a perturbed one,

.. math::  \tilde\ell_{\tau,\nu}(x, x', y) = \ell_\tau(h / \rho, y)
           + \nu\, \lVert \Delta(h', y) - \Delta(h, y) \rVert_2,
           \qquad \Delta(h, y)_k = h_y - h_k ,

and training takes the perturbation that maximises the second term over the ball
:math:`\lVert x' - x\rVert_p \le \gamma` (:class:`~paperzoo.compsum.attacks.PGD` with
:func:`~paperzoo.compsum.attacks.logit_diff_distance`). For ``tau >= 1`` :math:`\ell_\tau` is
1-Lipschitz in :math:`\Delta` (w.r.t. the 2-norm), so with ``nu >= 1 / rho`` the loss upper-bounds
:math:`\ell_\tau` at the perturbed point: a smooth surrogate of the adversarial comp-sum loss.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from paperzoo.compsum.losses import _comp_sum, check_logits_and_target, check_tau
from paperzoo.core.checks import (
    Reduction,
    check_finite,
    check_float_tensor,
    check_positive,
    check_reduction,
    reduce,
)

__all__ = [
    "SmoothAdvCompSumLoss",
    "logit_difference_distance",
    "logit_differences",
    "smooth_adv_comp_sum_loss",
]


def logit_differences(logits: Tensor, target: Tensor, *, validate: bool = True) -> Tensor:
    r""":math:`\Delta(h, y)_k = h_y - h_k`, the score margins of the true class (entry ``y`` is 0).

    Args:
        logits: ``(B, n)`` scores.
        target: ``(B,)`` labels in ``[0, n)``.
        validate: check finiteness and the label range (host syncs).

    Returns:
        ``(B, n)`` in ``logits``' dtype; invariant to adding a per-row constant to ``logits``.

    Raises:
        TypeError / ValueError: as :func:`~paperzoo.compsum.losses.comp_sum_loss`'s inputs.
    """
    x, y = check_logits_and_target(logits, target, validate=validate)
    return x.gather(1, y.unsqueeze(1)) - x


def _distance(logits_adv: Tensor, logits_clean: Tensor, target: Tensor) -> Tensor:
    r""":math:`\lVert\Delta(h', y) - \Delta(h, y)\rVert_2 = \lVert\delta_y 1 - \delta\rVert_2`,
    :math:`\delta = h' - h`, per row ``(B,)``; ``vector_norm`` has a zero (sub)gradient at 0."""
    d = logits_adv - logits_clean
    dist: Tensor = torch.linalg.vector_norm(d.gather(1, target.unsqueeze(1)) - d, dim=1)
    return dist


def _check_pair(
    logits_clean: Tensor, logits_adv: Tensor, target: Tensor, validate: bool
) -> tuple[Tensor, Tensor, Tensor]:
    clean, y = check_logits_and_target(logits_clean, target, validate=validate, name="logits_clean")
    adv = check_float_tensor("logits_adv", logits_adv)
    if adv.shape != clean.shape:
        raise ValueError(
            f"logits_adv: expected the shape of logits_clean {tuple(clean.shape)}, "
            f"got {tuple(adv.shape)}"
        )
    if adv.device != clean.device:
        raise ValueError(f"logits_adv: expected device {clean.device}, got {adv.device}")
    check_finite("logits_adv", adv, validate=validate)
    return clean, adv, y


def logit_difference_distance(
    logits_clean: Tensor,
    logits_adv: Tensor,
    target: Tensor,
    reduction: Reduction = "none",
    *,
    validate: bool = True,
) -> Tensor:
    r"""The regulariser :math:`\lVert \Delta(h', y) - \Delta(h, y)\rVert_2` without :math:`\nu`.

    Exactly 0 (with a zero gradient) when ``logits_adv == logits_clean``; ``>= 0``; invariant to
    adding a per-row constant to either input.

    Args:
        logits_clean: ``(B, n)`` ``h(x)``.
        logits_adv: ``(B, n)`` ``h(x')``.
        target: ``(B,)`` labels.
        reduction: ``"none"`` (default, ``(B,)``), ``"mean"`` or ``"sum"``.
        validate: finiteness and label-range checks.

    Raises:
        ValueError: different shapes or devices of the two logits, and the errors of
            :func:`~paperzoo.compsum.losses.comp_sum_loss`'s inputs.
    """
    red = check_reduction(reduction)
    clean, adv, y = _check_pair(logits_clean, logits_adv, target, validate)
    return reduce(_distance(adv, clean, y), red)


def _smooth_adv(
    clean: Tensor,
    adv: Tensor,
    y: Tensor,
    tau: float,
    nu: float,
    logit_scale: float,
    reduction: Reduction,
) -> tuple[Tensor, Tensor, Tensor]:
    """``(loss, clean term, regulariser)`` per example ``(B,)`` each, then the loss reduced."""
    scaled = clean / logit_scale if logit_scale != 1.0 else clean
    term = _comp_sum(scaled, y, tau, None, "none")
    reg = _distance(adv, clean, y)
    return reduce(term + nu * reg, reduction), term, reg


def _check_nu_scale(nu: object, logit_scale: object) -> tuple[float, float]:
    return (
        check_positive("nu", nu, allow_zero=True),
        check_positive("logit_scale", logit_scale),
    )


def smooth_adv_comp_sum_loss(
    logits_clean: Tensor,
    logits_adv: Tensor,
    target: Tensor,
    tau: float = 1.0,
    nu: float = 1.0,
    reduction: Reduction = "mean",
    *,
    logit_scale: float = 1.0,
    validate: bool = True,
) -> Tensor:
    r"""The smooth adversarial comp-sum loss
    :math:`\ell_\tau(h/\rho, y) + \nu \lVert\Delta(h', y) - \Delta(h, y)\rVert_2`.

    Gradients flow through both logits (detach the perturbed *input*, not ``logits_adv``). The
    regulariser uses ``torch.linalg.vector_norm`` (zero subgradient at 0), not
    ``sqrt(sum + 1e-12)``: at ``x' = x`` the loss equals :math:`\ell_\tau` exactly and its
    gradient is finite.

    Deviation: the logit scale :math:`\rho` (``logit_scale``) divides the logits of the comp-sum
    term only; how the paper scales its hypothesis set could not be checked against the paper's
    text (no official code exists). With the default ``rho = 1`` the two readings agree.

    Args:
        logits_clean: ``(B, n)`` ``h(x)``.
        logits_adv: ``(B, n)`` ``h(x')`` for the perturbed inputs.
        target: ``(B,)`` labels in ``[0, n)``.
        tau: :math:`\tau \ge 0` of the comp-sum term; default 1 (cross-entropy).
        nu: :math:`\nu \ge 0`; default 1 (the Lipschitz constant of :math:`\ell_{\tau\ge1}`).
            On small MLPs ``nu >= 1.5`` collapsed training to a constant classifier.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (``(B,)``).
        logit_scale: :math:`\rho > 0`; default 1.
        validate: finiteness and label-range checks (host syncs).

    Returns:
        A scalar, or ``(B,)`` with ``reduction="none"``.

    Raises:
        TypeError: non-floating logits, non-integer target, non-real ``tau``/``nu``.
        ValueError: ``tau < 0``, ``nu < 0``, ``logit_scale <= 0``, logits of different shapes,
            and the errors of :func:`~paperzoo.compsum.losses.comp_sum_loss`'s inputs.
    """
    red = check_reduction(reduction)
    t = check_tau(tau)
    v, rho = _check_nu_scale(nu, logit_scale)
    clean, adv, y = _check_pair(logits_clean, logits_adv, target, validate)
    return _smooth_adv(clean, adv, y, t, v, rho, red)[0]


class SmoothAdvCompSumLoss(nn.Module):
    """Module twin of :func:`smooth_adv_comp_sum_loss` (same arguments and defaults).

    ``forward(logits_clean (B, n), logits_adv (B, n), target (B,))``.
    """

    def __init__(
        self,
        tau: float = 1.0,
        nu: float = 1.0,
        reduction: Reduction = "mean",
        *,
        logit_scale: float = 1.0,
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.tau = check_tau(tau)
        self.nu, self.logit_scale = _check_nu_scale(nu, logit_scale)
        self.reduction: Reduction = check_reduction(reduction)
        self.validate = validate

    def forward(self, logits_clean: Tensor, logits_adv: Tensor, target: Tensor) -> Tensor:
        """The loss of clean and perturbed logits ``(B, n)`` for labels ``(B,)``."""
        return smooth_adv_comp_sum_loss(
            logits_clean,
            logits_adv,
            target,
            self.tau,
            self.nu,
            self.reduction,
            logit_scale=self.logit_scale,
            validate=self.validate,
        )

    def extra_repr(self) -> str:
        return f"tau={self.tau}, nu={self.nu}, logit_scale={self.logit_scale}"
