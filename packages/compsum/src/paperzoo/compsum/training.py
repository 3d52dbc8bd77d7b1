r"""Adversarial training steppers: ADV-COMP-SUM (the paper's algorithm), PGD-AT and TRADES.

Each stepper computes one mini-batch's loss from the same :class:`~paperzoo.compsum.attacks.PGD`
loop with its own objective, and offers two doors:

- ``fit_step(model, batch, device)``: a ``step_fn`` for :func:`paperzoo.core.training.fit`
  (returns ``{"loss", ...}``; ``fit`` does the backward pass and the optimiser step);
- ``step(x, y)``: the whole update (attack, loss, backward, optimiser step) for a hand-written loop.

Per mini-batch (ADV-COMP-SUM): the attack runs in eval mode from
``x + 0.001 N(0, I)`` and maximises :math:`\lVert\Delta(h(x'), y) - \Delta(h(x), y)\rVert_2`;
then, in train mode, the loss :math:`\mathrm{mean}_i[\ell_\tau(h(x_i), y_i) + \nu \lVert
\Delta(h(x'_i), y_i) - \Delta(h(x_i), y_i)\rVert_2]` with ``x'`` detached and gradients through
both forward passes. Weight decay belongs to the optimiser.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.compsum.adversarial import _check_nu_scale, _smooth_adv
from paperzoo.compsum.attacks import (
    PGD,
    cross_entropy_objective,
    logit_diff_distance,
    trades_kl_objective,
)
from paperzoo.compsum.losses import check_tau
from paperzoo.core.checks import check_finite, check_labels, check_positive
from paperzoo.core.training import to_device

__all__ = ["AdvCompSumTrainer", "AdversarialTrainer", "PGDATTrainer", "TRADESTrainer"]

CIFAR_EPS = 8 / 255
CIFAR_STEP = 2 / 255


class AdversarialTrainer:
    """The shared part of the steppers: the attack, the two doors, input checks.

    Subclasses implement :meth:`losses`.

    Args:
        model: maps ``x`` ``(B, ...)`` to logits ``(B, n)`` (put input normalisation inside it:
            the attack works in the data range ``attack.clamp``).
        optimizer: over ``model``'s parameters (used by :meth:`step` only).
        attack: the :class:`PGD` that makes ``x'``.
        validate: check labels and logits (host syncs); turn off in long runs.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None,
        attack: PGD,
        *,
        validate: bool = True,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
        if not isinstance(attack, PGD):
            raise TypeError(f"attack: expected a PGD, got {type(attack).__name__}")
        self.model = model
        self.optimizer = optimizer
        self.attack = attack
        self.validate = validate

    def losses(self, model: nn.Module, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        """``{"loss": scalar with graph, ...detached scalar parts}`` for one batch ``x``, ``y``."""
        raise NotImplementedError

    def _logits(self, model: nn.Module, x: Tensor, y: Tensor | None = None) -> Tensor:
        out: Tensor = model(x)
        if self.validate:
            check_finite("logits", out)
            if y is not None:
                check_labels("target", y, n=out.shape[0], num_classes=out.shape[1], like=out)
        return out

    def fit_step(self, model: nn.Module, batch: Any, device: torch.device) -> dict[str, Tensor]:
        """``step_fn`` for :func:`paperzoo.core.training.fit`: ``batch`` is ``(x, y)``."""
        x, y = to_device(batch, device)[:2]
        return self.losses(model, x, y)

    def step(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        """One full update of ``self.model`` on ``x`` ``(B, ...)``, ``y`` ``(B,)``; returns the
        detached parts of :meth:`losses` (0-d tensors, no host sync)."""
        if self.optimizer is None:
            raise ValueError("optimizer: step() needs an optimizer (fit_step does not)")
        self.model.train()
        out = self.losses(self.model, x, y)
        self.optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        self.optimizer.step()
        return {k: v.detach() for k, v in out.items()}


class AdvCompSumTrainer(AdversarialTrainer):
    r"""ADV-COMP-SUM: minimise the smooth adversarial comp-sum loss with a PGD inner maximisation.

    Args:
        model, optimizer: as :class:`AdversarialTrainer`.
        tau: :math:`\tau \ge 0` of the comp-sum term; default 1 (cross-entropy).
        nu: :math:`\nu \ge 0`; default 1. On small MLPs ``nu >= 1.5`` collapsed training to the
            constant classifier (cross-entropy at ``log n``, regulariser at 0); sweep
            ``{0.25, 0.5, 1}``.
        attack: default ``PGD(8/255, 2/255, 10)`` on :data:`logit_diff_distance` from the TRADES
            start (the CIFAR convention).
        logit_scale: :math:`\rho > 0`, default 1 (see
            :func:`~paperzoo.compsum.adversarial.smooth_adv_comp_sum_loss`).
        validate: as :class:`AdversarialTrainer`.

    ``losses`` returns ``{"loss", "clean"`` (the comp-sum term), ``"reg"`` (the distance)``}``.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        tau: float = 1.0,
        nu: float = 1.0,
        attack: PGD | None = None,
        *,
        logit_scale: float = 1.0,
        validate: bool = True,
    ) -> None:
        if attack is None:
            attack = PGD(CIFAR_EPS, CIFAR_STEP, 10, objective=logit_diff_distance)
        super().__init__(model, optimizer, attack, validate=validate)
        self.tau = check_tau(tau)
        self.nu, self.logit_scale = _check_nu_scale(nu, logit_scale)

    def losses(self, model: nn.Module, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        """Attack, then the loss in train mode (gradients through both forward passes)."""
        x_adv = self.attack.perturb(model, x, y)
        clean = self._logits(model, x, y)
        adv = self._logits(model, x_adv)
        loss, term, reg = _smooth_adv(clean, adv, y, self.tau, self.nu, self.logit_scale, "mean")
        return {"loss": loss, "clean": term.detach().mean(), "reg": reg.detach().mean()}


class PGDATTrainer(AdversarialTrainer):
    """PGD adversarial training (Madry et al., 2018): cross-entropy at the PGD point.

    Args:
        model, optimizer, validate: as :class:`AdversarialTrainer`.
        attack: default ``PGD(8/255, 2/255, 10, init="uniform")`` on
            :data:`cross_entropy_objective` (Madry's uniform random start).

    ``losses`` returns ``{"loss"}`` (the cross-entropy of the perturbed logits).
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        attack: PGD | None = None,
        *,
        validate: bool = True,
    ) -> None:
        if attack is None:
            attack = PGD(
                CIFAR_EPS, CIFAR_STEP, 10, init="uniform", objective=cross_entropy_objective
            )
        super().__init__(model, optimizer, attack, validate=validate)

    def losses(self, model: nn.Module, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        """Cross-entropy of ``model(x')``."""
        x_adv = self.attack.perturb(model, x, y)
        return {"loss": F.cross_entropy(self._logits(model, x_adv, y), y)}


class TRADESTrainer(AdversarialTrainer):
    r"""TRADES (Zhang et al., 2019): :math:`\mathrm{CE}(h(x), y) + \beta\,
    \mathrm{KL}(\mathrm{softmax}(h(x)) \,\|\, \mathrm{softmax}(h(x')))`.

    The KL term is summed over classes and averaged over the batch (``batchmean``), as the
    official ``trades.py`` (``(1 / batch_size) * KLDivLoss(size_average=False)``).

    Args:
        model, optimizer, validate: as :class:`AdversarialTrainer`.
        beta: :math:`\beta > 0`; default 6 (the TRADES paper's CIFAR-10 value).
        attack: default ``PGD(8/255, 2/255, 10)`` on :data:`trades_kl_objective` from the
            TRADES start ``x + 0.001 N(0, I)``.

    ``losses`` returns ``{"loss", "clean"`` (cross-entropy), ``"reg"`` (the KL)``}``.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        beta: float = 6.0,
        attack: PGD | None = None,
        *,
        validate: bool = True,
    ) -> None:
        if attack is None:
            attack = PGD(CIFAR_EPS, CIFAR_STEP, 10, objective=trades_kl_objective)
        super().__init__(model, optimizer, attack, validate=validate)
        self.beta = check_positive("beta", beta)

    def losses(self, model: nn.Module, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        """Cross-entropy of ``model(x)`` plus ``beta`` times the batch-mean KL to ``model(x')``."""
        x_adv = self.attack.perturb(model, x, y)
        clean = self._logits(model, x, y)
        adv = self._logits(model, x_adv)
        ce = F.cross_entropy(clean, y)
        kl = trades_kl_objective(adv, clean, y).mean()
        return {"loss": ce + self.beta * kl, "clean": ce.detach(), "reg": kl.detach()}
