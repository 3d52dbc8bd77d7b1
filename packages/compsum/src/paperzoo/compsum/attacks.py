r"""Projected gradient ascent (PGD) over an :math:`\ell_\infty` or :math:`\ell_2` ball, and the
inner objectives of ADV-COMP-SUM, PGD-AT (Madry et al.) and TRADES.

One attack loop serves the three trainers, so they differ only in their objective: the
conventions follow TRADES' ``trades.py`` (the model in eval mode while attacking, start at
``x + 0.001 N(0, I)``, sign-gradient steps, projection onto the ball, clamp to the data range).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.checks import (
    check_choice,
    check_float_tensor,
    check_labels,
    check_nonempty,
    check_positive,
    check_positive_int,
    check_range,
)

__all__ = [
    "PGD",
    "AttackObjective",
    "Norm",
    "PGDInit",
    "cross_entropy_objective",
    "logit_diff_distance",
    "robust_accuracy",
    "trades_kl_objective",
]

Norm = Literal["linf", "l2"]
PGDInit = Literal["normal", "uniform", "none"]


@dataclass(frozen=True)
class AttackObjective:
    """A per-example objective of the perturbed logits that PGD maximises.

    ``fn(logits_adv (B, n), logits_clean (B, n) or None, target (B,)) -> (B,)``; ``logits_clean``
    (``h(x)`` in eval mode, no gradient) is computed once per attack and passed only when
    ``needs_clean`` (otherwise ``None``), so an objective that does not use it costs no forward.
    """

    name: str
    fn: Callable[[Tensor, Tensor | None, Tensor], Tensor]
    needs_clean: bool = True

    def __call__(self, logits_adv: Tensor, logits_clean: Tensor | None, target: Tensor) -> Tensor:
        """The ``(B,)`` objective values."""
        return self.fn(logits_adv, logits_clean, target)


def _logit_diff(adv: Tensor, clean: Tensor | None, y: Tensor) -> Tensor:
    assert clean is not None
    d = adv - clean
    diff = d.gather(1, y.unsqueeze(1)) - d
    return torch.sqrt(diff.square().sum(1) + 1e-12)


def _ce(adv: Tensor, clean: Tensor | None, y: Tensor) -> Tensor:
    return F.cross_entropy(adv, y, reduction="none")


def _trades_kl(adv: Tensor, clean: Tensor | None, y: Tensor) -> Tensor:
    assert clean is not None
    log_p = torch.log_softmax(clean, dim=1)
    return (log_p.exp() * (log_p - torch.log_softmax(adv, dim=1))).sum(1)


logit_diff_distance = AttackObjective("logit_diff_distance", _logit_diff)
r"""ADV-COMP-SUM's inner objective :math:`\sqrt{\lVert\Delta(h', y) - \Delta(h, y)\rVert_2^2 + 10^{-12}}`.

The ``1e-12`` keeps the gradient finite at ``x' = x``, where it is exactly 0: PGD with this
objective needs a random start (``init="normal"`` or ``"uniform"``)."""

cross_entropy_objective = AttackObjective("cross_entropy", _ce, needs_clean=False)
"""PGD-AT's (Madry et al.) inner objective: the cross-entropy of the perturbed logits."""

trades_kl_objective = AttackObjective("trades_kl", _trades_kl)
r"""TRADES' inner objective :math:`\mathrm{KL}(\mathrm{softmax}(h) \,\|\, \mathrm{softmax}(h'))`
per example (TRADES sums it over the batch: the same per-example gradients)."""


class PGD:
    r"""Projected gradient ascent on ``objective`` within :math:`\lVert x' - x\rVert_p \le \gamma`.

    Steps: ``linf``: :math:`x' \leftarrow \Pi(x' + \alpha\,\mathrm{sign}(g))`; ``l2``:
    :math:`x' \leftarrow \Pi(x' + \alpha\, g / \lVert g\rVert_2)` (per example), then a clamp to
    ``clamp``. The last iterate is returned (as TRADES and torchattacks do).

    Args:
        eps: radius :math:`\gamma > 0`.
        step_size: :math:`\alpha > 0`.
        steps: number of ascent steps ``T >= 0``.
        norm: ``"linf"`` (default) or ``"l2"``.
        init: ``"normal"`` (default, TRADES: ``x + init_std * N(0, I)``), ``"uniform"`` (uniform
            in the ball, Madry et al.) or ``"none"`` (start at ``x``).
        clamp: the data range ``(lo, hi)`` (default ``(0, 1)``), or ``None`` for no clamp.
        objective: an :class:`AttackObjective` or any callable
            ``(logits_adv, logits_clean, target) -> (B,)``; default :data:`logit_diff_distance`.
        init_std: the standard deviation of the ``"normal"`` start; default 0.001 (TRADES).
        eval_mode: attack with the model in eval mode (default, as TRADES and Madry et al.: batch
            norm uses its running statistics); the model's mode is restored afterwards.
        generator: optional ``torch.Generator`` (on the inputs' device) for the random start.
        validate: check the inputs and warn when ``x`` lies outside ``clamp`` (host syncs).

    Deviation: the spec's objective signature ``(model, x_adv, x, y)`` is replaced by one on
    logits, ``(logits_adv, logits_clean, y)``, so that ``h(x)`` is computed once per attack (as
    TRADES does) instead of once per step.

    Raises:
        TypeError / ValueError: naming the argument, for ``eps <= 0``, ``step_size <= 0``,
            ``steps < 0``, an unknown ``norm``/``init``, ``clamp`` with ``lo >= hi``, and
            ``init="none"`` with :data:`logit_diff_distance` (its gradient is 0 at ``x``).
    """

    def __init__(
        self,
        eps: float,
        step_size: float,
        steps: int,
        norm: Norm = "linf",
        init: PGDInit = "normal",
        clamp: tuple[float, float] | None = (0.0, 1.0),
        objective: AttackObjective
        | Callable[[Tensor, Tensor | None, Tensor], Tensor] = logit_diff_distance,
        *,
        init_std: float = 1e-3,
        eval_mode: bool = True,
        generator: torch.Generator | None = None,
        validate: bool = True,
    ) -> None:
        self.eps = check_positive("eps", eps)
        self.step_size = check_positive("step_size", step_size)
        self.steps = check_positive_int("steps", steps, minimum=0)
        self.norm: Norm = check_choice("norm", norm, ("linf", "l2"))
        self.init: PGDInit = check_choice("init", init, ("normal", "uniform", "none"))
        self.clamp = None if clamp is None else check_range("clamp", clamp)
        if not callable(objective):
            raise TypeError(f"objective: expected a callable, got {type(objective).__name__}")
        if objective is logit_diff_distance and self.init == "none" and self.steps > 0:
            raise ValueError(
                "init: expected 'normal' or 'uniform' with the logit_diff_distance objective "
                "(its gradient is exactly 0 at x' = x, so PGD would never move), got 'none'"
            )
        self.objective = objective
        self.init_std = check_positive("init_std", init_std)
        self.eval_mode = eval_mode
        self.generator = generator
        self.validate = validate

    def __repr__(self) -> str:
        name = getattr(self.objective, "name", getattr(self.objective, "__name__", "custom"))
        return (
            f"PGD(eps={self.eps}, step_size={self.step_size}, steps={self.steps}, "
            f"norm={self.norm!r}, init={self.init!r}, clamp={self.clamp}, objective={name})"
        )

    # ------------------------------------------------------------------ the ball
    def _per_example(self, v: Tensor) -> Tensor:
        """Per-example 2-norms of ``v`` ``(B, ...)``, shaped to broadcast against it."""
        norms: Tensor = torch.linalg.vector_norm(v.flatten(1), dim=1)
        return norms.view(-1, *([1] * (v.dim() - 1)))

    def _project(self, x_adv: Tensor, x: Tensor) -> Tensor:
        delta = x_adv - x
        if self.norm == "linf":
            delta = delta.clamp(-self.eps, self.eps)
        else:
            delta = delta * (self.eps / self._per_example(delta).clamp_min(1e-12)).clamp(max=1.0)
        out = x + delta
        if self.clamp is not None:
            out = out.clamp(*self.clamp)
        return out

    def _start(self, x: Tensor) -> Tensor:
        if self.init == "none":
            return x.clone()
        noise = torch.randn(x.shape, generator=self.generator, device=x.device, dtype=x.dtype)
        if self.init == "normal":
            return self._project(x + self.init_std * noise, x)
        if self.norm == "linf":
            u = torch.rand(x.shape, generator=self.generator, device=x.device, dtype=x.dtype)
            return self._project(x + self.eps * (2 * u - 1), x)
        # uniform in the l2 ball: a uniform direction times eps * U^(1/d)
        d = x[0].numel()
        r = torch.rand(x.shape[0], generator=self.generator, device=x.device, dtype=x.dtype)
        r = r.pow(1.0 / d).view(-1, *([1] * (x.dim() - 1)))
        direction = noise / self._per_example(noise).clamp_min(1e-12)
        return self._project(x + self.eps * r * direction, x)

    def _check(self, x: Tensor, y: Tensor) -> None:
        check_float_tensor("x", x)
        check_nonempty("x", x)
        check_labels("target", y, n=x.shape[0], like=x, validate=self.validate)
        if self.validate and self.clamp is not None:
            lo, hi = self.clamp
            xmin, xmax = float(x.min()), float(x.max())
            if math.isnan(xmin) or math.isnan(xmax):
                raise ValueError("x: expected finite values, got NaN")
            if xmin < lo or xmax > hi:
                warnings.warn(
                    f"x: values in [{xmin:.4g}, {xmax:.4g}] lie outside the declared clamp range "
                    f"{self.clamp}; the attack will clamp them (normalise inside the model, or "
                    "pass clamp=None)",
                    stacklevel=3,
                )

    # ------------------------------------------------------------------ the attack
    def perturb(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        """The perturbed inputs ``x'`` (same shape as ``x``, detached).

        Args:
            model: maps ``x`` ``(B, ...)`` to logits ``(B, n)``.
            x: ``(B, ...)`` clean inputs in the ``clamp`` range.
            y: ``(B,)`` integer labels.
        """
        self._check(x, y)
        was_training = model.training
        if self.eval_mode:
            model.eval()
        try:
            needs_clean = getattr(self.objective, "needs_clean", True)
            clean: Tensor | None = None
            if needs_clean:
                with torch.no_grad():
                    clean = model(x).detach()
            x = x.detach()
            x_adv = self._start(x)
            for _ in range(self.steps):
                x_adv.requires_grad_(True)
                with torch.enable_grad():
                    value = self.objective(model(x_adv), clean, y).sum()
                    (grad,) = torch.autograd.grad(value, [x_adv])
                with torch.no_grad():
                    if self.norm == "linf":
                        step = grad.sign()
                    else:
                        step = grad / self._per_example(grad).clamp_min(1e-12)
                    x_adv = self._project(x_adv.detach() + self.step_size * step, x)
            return x_adv.detach()
        finally:
            model.train(was_training)


@torch.no_grad()
def _correct(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    out: Tensor = model(x)
    return out.argmax(dim=1) == y


def robust_accuracy(
    model: nn.Module,
    loader: Sequence[tuple[Tensor, Tensor]] | torch.utils.data.DataLoader[tuple[Tensor, ...]],
    attack: PGD | Sequence[PGD] | None,
) -> float:
    """Accuracy of ``model`` (eval mode) on ``loader`` under ``attack``.

    With several attacks an example counts as correct only if it is classified correctly under
    every one of them (the worst case per example); ``attack=None`` gives the clean accuracy.
    Batches move to the model's device. The model's training mode is restored.

    Args:
        model: maps ``x`` ``(B, ...)`` to logits ``(B, n)``.
        loader: yields ``(x, y)`` batches.
        attack: a :class:`PGD`, a sequence of them, or ``None``.

    Returns:
        The accuracy in ``[0, 1]`` as a float (one host sync at the end).

    Raises:
        ValueError: an empty loader.
    """
    attacks: list[PGD] = (
        [] if attack is None else [attack] if isinstance(attack, PGD) else list(attack)
    )
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=device)
    total = 0
    try:
        for xb, yb in loader:
            x, y = xb.to(device), yb.to(device)
            ok = _correct(model, x, y)
            for a in attacks:
                ok &= _correct(model, a.perturb(model, x, y), y)
            correct += ok.sum()
            total += int(y.shape[0])
    finally:
        model.train(was_training)
    if total == 0:
        raise ValueError("loader: yielded no examples")
    return float(correct) / total
