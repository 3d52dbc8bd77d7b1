r"""The Wasserstein-robust surrogate of any differentiable model by inner gradient ascent (WRM).

.. math:: \phi_\gamma(x, y; \theta) = \sup_z \; l(z, y; \theta) - \gamma\, c(z, x)

is approximated as in the reference code (``TrainingFlow.optimize_x_adv``): ``z^0 = x``,
``z^{t+1} = z^t + (a / (t + 1)) \nabla_z [l(z^t, y) - \gamma c(z^t, x)]`` for ``T_in`` steps
(defaults ``T_in = 10``, ``a = 1e-3``, ``gamma = 1e-3``), then ``z*`` is detached and
``phi = l(z*, y) - gamma c(z*, x)``; its parameter gradient is Danskin's ``grad_theta l(z*, y)``.

The inner problem is strongly concave (and the ascent converges to the sup) when ``l`` is
``L_z``-smooth in ``z`` and ``gamma > L_z / 2``. The reference defaults (``gamma = 1e-3`` with
cross-entropy) do not satisfy it, and with ``a = 1e-3``, 10 steps and the ``1/(t+1)`` schedule
``z`` moves only about ``2.93 a ||grad_z l||``: a small perturbation of the plain loss. Hinge and
0-1 losses are not smooth: use the closed forms of :mod:`paperzoo.ood_dro.losses` for linear models.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from paperzoo.core.checks import (
    Reduction,
    check_choice,
    check_finite,
    check_float_tensor,
    check_labels,
    check_positive,
    check_positive_int,
    check_reduction,
    reduce,
)
from paperzoo.ood_dro.costs import COSTS
from paperzoo.ood_dro.losses import BASE_LOSSES, check_pm1_labels

__all__ = [
    "SCHEDULES",
    "LossFn",
    "WassersteinRobustLoss",
    "check_target",
    "point_loss",
    "resolve_loss",
    "robust_surrogate",
]

LossFn = Callable[[Tensor, Tensor], Tensor]
"""A point loss ``loss(scores, target) -> (N,)`` (per example, no reduction)."""

SCHEDULES = ("1/t", "constant")
"""Inner step-size schedules: the reference's ``a / (t + 1)`` and a constant ``a``."""


def resolve_loss(loss_fn: str | LossFn) -> tuple[str | None, LossFn]:
    """``(name or None, callable)`` for a :data:`~paperzoo.ood_dro.losses.BASE_LOSSES` name or a
    callable ``loss(scores, target) -> (N,)``."""
    if isinstance(loss_fn, str):
        check_choice("loss_fn", loss_fn, tuple(BASE_LOSSES))
        return loss_fn, BASE_LOSSES[loss_fn]
    if not callable(loss_fn):
        raise TypeError(
            f"loss_fn: expected a name in {list(BASE_LOSSES)} or a callable, got {type(loss_fn).__name__}"
        )
    return None, loss_fn


def check_target(name: str, kind: str | None, y: Tensor, n: int, validate: bool) -> None:
    """Check the labels a named point loss takes: ``[0, K)`` integers or ``(N, K)`` class
    probabilities for ``"ce"`` (``K`` checked on the scores), ``{-1, +1}`` for the binary losses."""
    if kind == "ce" and isinstance(y, Tensor) and y.is_floating_point():
        check_float_tensor(name, y, ndim=2)
        if y.shape[0] != n:
            raise ValueError(f"{name}: expected {n} rows of class probabilities, got {y.shape[0]}")
        check_finite(name, y, validate=validate)
    elif kind == "ce":
        check_labels(name, y, n=n, validate=validate)
    elif kind is not None:
        check_pm1_labels(name, y, n=n, validate=validate)
    elif not isinstance(y, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(y).__name__}")
    elif y.shape[0] != n:
        raise ValueError(f"{name}: expected {n} targets (one per row), got {y.shape[0]}")


def point_loss(kind: str | None, loss: LossFn, scores: Tensor, y: Tensor, validate: bool) -> Tensor:
    """``loss(scores, y)`` ``(B,)``, checking ``"ce"`` labels against the number of logits."""
    if kind == "ce" and not y.is_floating_point():
        check_labels("y", y, num_classes=scores.shape[1], validate=validate)
    out = loss(scores, y)
    if out.shape != (scores.shape[0],):
        raise ValueError(
            f"loss_fn: expected per-example values of shape ({scores.shape[0]},), got {tuple(out.shape)}"
        )
    return out


def robust_surrogate(
    model: Callable[[Tensor], Tensor],
    x: Tensor,
    y: Tensor,
    loss_fn: str | LossFn = "ce",
    gamma: float = 1e-3,
    *,
    cost: str = "sq_l2",
    steps: int = 10,
    step_size: float = 1e-3,
    schedule: str = "1/t",
    validate: bool = True,
) -> tuple[Tensor, Tensor]:
    r"""Per-example robust surrogate ``phi_gamma(x_i, y_i)`` by inner gradient ascent, and ``z*``.

    Args:
        model: any callable ``(B, ...) -> scores`` (a module, in whatever train/eval mode it is in).
        x: inputs ``(B, ...)``, floating point.
        y: targets ``(B,)`` (or ``(B, K)`` class probabilities for ``"ce"``).
        loss_fn: ``"ce"`` (default), ``"logistic"``, ``"hinge"`` or a callable
            ``loss(scores, target) -> (B,)``.
        gamma: the transport price ``gamma`` (reference 1e-3); must be ``> 0`` when ``steps > 0``.
        cost: ``"sq_l2"`` (default) or ``"l2"``.
        steps: inner ascent steps ``T_in`` (reference 10; 0 gives the plain loss).
        step_size: ``a`` (reference 1e-3).
        schedule: ``"1/t"`` (reference: ``a / (t + 1)``) or ``"constant"``.
        validate: finiteness and label checks (host syncs).

    Returns:
        ``(phi, z_star)``: ``phi`` ``(B,)`` = ``l(z*, y) - gamma c(z*, x)`` (differentiable in the
        model's parameters by Danskin, and in ``x`` through the cost), ``z_star`` ``(B, ...)``
        detached (``x`` itself when ``steps = 0``).

    Raises:
        TypeError: non-float ``x`` or labels of the wrong type.
        ValueError: empty or non-finite ``x``; bad label values; ``gamma <= 0`` with
            ``steps > 0`` (the inner sup is unbounded); ``steps < 0``; ``step_size <= 0``;
            unknown ``cost``/``schedule``/``loss_fn``.

    Deviations: the model's train/eval mode is left as it is (the reference switches to eval
    inside the ascent and never switches back); ``z*`` is detached explicitly.
    """
    check_float_tensor("x", x, nonempty=True)
    check_finite("x", x, validate=validate)
    kind, loss = resolve_loss(loss_fn)
    check_target("y", kind, y, x.shape[0], validate)
    t_in = check_positive_int("steps", steps, minimum=0)
    a = check_positive("step_size", step_size)
    check_choice("schedule", schedule, SCHEDULES)
    c = COSTS[check_choice("cost", cost, tuple(COSTS))]
    g = check_positive("gamma", gamma, allow_zero=t_in == 0, allow_inf=True)
    if t_in == 0:
        return point_loss(kind, loss, model(x), y, validate), x
    x0 = x.detach()
    z = x0.clone()
    with torch.enable_grad():
        for t in range(t_in):
            z.requires_grad_(True)
            objective = point_loss(kind, loss, model(z), y, validate and t == 0) - g * c(z, x0)
            (grad,) = torch.autograd.grad(objective.sum(), z)
            lr = a / (t + 1) if schedule == "1/t" else a
            z = (z + lr * grad).detach()
    phi = point_loss(kind, loss, model(z), y, False) - g * c(z, x)
    return phi, z


class WassersteinRobustLoss(nn.Module):
    """The WRM robust loss of a model on a batch: ``forward(model, x, y) -> loss``.

    Module twin of :func:`robust_surrogate` (same defaults as the reference code); the last
    batch's worst-case points are kept in ``last_adversarial`` ``(B, ...)`` (detached).

    Args:
        base_loss: ``"ce"`` (default), ``"logistic"``, ``"hinge"`` or a callable
            ``loss(scores, target) -> (B,)``.
        gamma: transport price (reference 1e-3).
        cost: ``"sq_l2"`` (default) or ``"l2"``.
        steps: inner steps ``T_in`` (reference 10).
        step_size: ``a`` (reference 1e-3).
        schedule: ``"1/t"`` (reference) or ``"constant"``.
        reduction: ``"mean"`` (default; the reference's sum over the batch divided by its size),
            ``"sum"`` or ``"none"`` (``(B,)``).
        validate: finiteness and label checks.

    Raises:
        ValueError: as :func:`robust_surrogate`, at construction for the hyper-parameters.
    """

    last_adversarial: Tensor | None

    def __init__(
        self,
        base_loss: str | LossFn = "ce",
        gamma: float = 1e-3,
        cost: str = "sq_l2",
        steps: int = 10,
        step_size: float = 1e-3,
        schedule: str = "1/t",
        reduction: Reduction = "mean",
        validate: bool = True,
    ) -> None:
        super().__init__()
        resolve_loss(base_loss)
        self.base_loss = base_loss
        self.steps = check_positive_int("steps", steps, minimum=0)
        self.gamma = check_positive("gamma", gamma, allow_zero=self.steps == 0, allow_inf=True)
        self.cost = check_choice("cost", cost, tuple(COSTS))
        self.step_size = check_positive("step_size", step_size)
        self.schedule = check_choice("schedule", schedule, SCHEDULES)
        self.reduction = check_reduction(reduction)
        self.validate = validate
        self.last_adversarial = None

    def forward(self, model: Callable[[Tensor], Tensor], x: Tensor, y: Tensor) -> Tensor:
        """Robust loss of ``model`` on ``x`` ``(B, ...)``, ``y`` ``(B,)``: a scalar, or ``(B,)``."""
        phi, z = robust_surrogate(
            model,
            x,
            y,
            self.base_loss,
            self.gamma,
            cost=self.cost,
            steps=self.steps,
            step_size=self.step_size,
            schedule=self.schedule,
            validate=self.validate,
        )
        self.last_adversarial = z.detach()
        return reduce(phi, self.reduction)
