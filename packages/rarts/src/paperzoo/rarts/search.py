"""RARTS, the paper's relaxed architecture search: its stepper and the coupling penalty ½‖y − w‖².

The DARTS steppers it is raced against are in :mod:`paperzoo.rarts.darts`; the interface and the shared
checks of all steppers (batches, non-finite guard, state) in :mod:`paperzoo.rarts.stepper`.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.core.checks import check_choice, check_positive
from paperzoo.rarts.ops import reset_all_parameters
from paperzoo.rarts.stepper import (
    Batch,
    LossFn,
    OptimizerFactory,
    SearchStepper,
    check_optimizer,
    check_state,
    searched_weights_of,
)

__all__ = ["RARTS", "coupling_penalty"]

logger = logging.getLogger(__name__)


def coupling_penalty(params_w: Sequence[Tensor], params_y: Sequence[Tensor]) -> Tensor:
    """½‖y − w‖² summed over all parameter tensors (the RARTS coupling term without β).

    Args: params_w, params_y: matching sequences of tensors of equal shapes. Returns a 0-dim tensor.
    """
    if len(params_w) != len(params_y):
        raise ValueError(
            f"params_w and params_y must have the same length, got {len(params_w)} and {len(params_y)}"
        )
    if not params_w:
        raise ValueError("params_w is empty")
    for i, (a, b) in enumerate(zip(params_w, params_y, strict=True)):
        if a.shape != b.shape:
            raise ValueError(
                f"params_w[{i}] and params_y[{i}] differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}"
            )
    diffs = torch._foreach_sub(list(params_y), list(params_w))
    norms = torch._foreach_norm(diffs)
    return 0.5 * torch.stack(norms).square().sum()


def _reinit(model: nn.Module, keep: Iterable[nn.Parameter]) -> None:
    saved = [(p, p.detach().clone()) for p in keep]
    reset_all_parameters(model)
    with torch.no_grad():
        for p, v in saved:
            p.copy_(v)


class RARTS(SearchStepper):
    """RARTS: relaxed architecture search by data and network splitting (Xue, Qi & Xin, arXiv 2008.03901).

    Minimises the relaxed Lagrangian L_β(w, y, α) = L_val(y, α) + λ·L_train(w, α) + (β/2)‖y − w‖² over two
    copies of the network — ``model_w`` (weights w, trained on D_train) and ``model_y`` (weights y, trained on
    D_val) — that share the *same* α ``nn.Parameter`` objects. One Gauss–Seidel iteration:

    1. w ← w − η_w [λ ∇_w L_train(w, α; B_t) + β (w − y)]
    2. y ← y − η_y [∇_y L_val(y, α; B_v) + β (y − w)]           (with the new w)
    3. α ← α − η_α [∇_α L_val(y, α; B_v) + λ ∇_α L_train(w, α; B_t)]

    The coupling gradient is added to ``.grad`` before ``optimizer.step()``, so momentum and weight decay treat it
    like any gradient; gradient clipping (``grad_clip``) applies to the full step-1/step-2 gradient.

    Args:
        model: supernet with ``arch_parameters()``; it becomes ``model_w``.
        w_opt_factory: ``params -> optimiser`` for w (and for y unless ``y_opt_factory``); the spec's default is
            the DARTS w-optimiser (SGD 0.025, momentum 0.9, wd 3e-4, cosine schedule).
        a_opt: optimiser over α (DARTS' α-optimiser: Adam 3e-4, betas (0.5, 0.999), wd 1e-3).
        lam: λ > 0, weight of L_train (default 1). Putting λ on L_val instead is the same family up to a global
            rescale of the objective and of β.
        beta: β ≥ 0, coupling strength (default 1). β→∞ forces y = w (single-level first-order search on the
            union of the splits); β = 0 decouples the networks (α still sees both).
        y_init: ``"copy"`` (y = w at start) or ``"independent"`` (fresh ``reset_parameters()`` init).
        alpha_grad: ``"lagged"`` (default) takes ∇_α from the same two passes that give ∇_w and ∇_y, i.e. at the
            pre-update w, y: 2 forward+backward passes per step (the cost of DARTS-1st). ``"exact"`` evaluates
            step 3 at the updated w, y as written: 4 passes. Both have the same fixed points.
        y_opt_factory: optimiser factory for y (default ``w_opt_factory``).
        grad_clip: max gradient norm for the w and y steps (DARTS: 5.0; ``None`` = off).

    Deviation/choice: the paper's exact λ, β defaults and update schedule could not be re-read (no official
    code exists); λ = β = 1 and the lagged schedule are our defaults, to sweep {0.1, 1, 10}.
    """

    def __init__(
        self,
        model: nn.Module,
        w_opt_factory: OptimizerFactory,
        a_opt: torch.optim.Optimizer,
        lam: float = 1.0,
        beta: float = 1.0,
        y_init: Literal["copy", "independent"] = "copy",
        alpha_grad: Literal["lagged", "exact"] = "lagged",
        loss_fn: LossFn = F.cross_entropy,
        *,
        y_opt_factory: OptimizerFactory | None = None,
        grad_clip: float | None = 5.0,
        validate: bool = True,
    ) -> None:
        super().__init__(model, a_opt, loss_fn, grad_clip, validate)
        check_positive("lam", lam)
        check_positive("beta", beta, allow_zero=True)
        check_choice("y_init", y_init, ("copy", "independent"))
        check_choice("alpha_grad", alpha_grad, ("lagged", "exact"))
        self.lam, self.beta = float(lam), float(beta)
        self.y_init, self.alpha_grad = y_init, alpha_grad
        self.model_w = model
        # deep copy whose α are the very same Parameter objects as model_w's
        memo: dict[int, Any] = {id(a): a for a in self.arch}
        self.model_y: nn.Module = copy.deepcopy(model, memo)
        if y_init == "independent":  # fresh y; α and frozen (requires_grad=False) weights are kept
            frozen = [p for p in self.model_y.parameters() if not p.requires_grad]
            _reinit(self.model_y, [*self.arch, *frozen])
        self.weights_w = [p for _, p in searched_weights_of(self.model_w, self.arch)]
        self.weights_y = [p for _, p in searched_weights_of(self.model_y, self.arch)]
        self.w_opt = w_opt_factory(self.weights_w)
        self.y_opt = (y_opt_factory or w_opt_factory)(self.weights_y)
        # a factory that ignores its argument (e.g. closes over net.parameters()) would make y_opt step w
        hint = "the factory must build its optimiser over the parameter list it is given"
        check_optimizer(self.w_opt, self.weights_w, "w_opt_factory(w)", "model_w's weights", hint)
        check_optimizer(self.y_opt, self.weights_y, "y_opt_factory(y)", "model_y's weights", hint)

    def lagrangian(self, batch_train: Batch, batch_val: Batch) -> Tensor:
        """L_β(w, y, α) on one pair of batches (a 0-dim tensor with its graph; forward passes in the current
        mode, so in train mode BN running statistics of both networks move: call ``model_w.eval()`` and
        ``model_y.eval()`` first to only monitor)."""
        bt, bv = self._check(batch_train, batch_val)
        return (
            self._loss(self.model_y, bv)
            + self.lam * self._loss(self.model_w, bt)
            + self.beta * coupling_penalty(self.weights_w, self.weights_y)
        )

    def _couple_and_step(
        self,
        params: list[nn.Parameter],
        other: list[nn.Parameter],
        grads: Sequence[Tensor],
        opt: torch.optim.Optimizer,
        other_minus_params: Sequence[Tensor] | None = None,
    ) -> None:
        """params ← opt step with gradient grads + β (params − other).

        ``other_minus_params`` (other − params, already computed for the coupling value) saves one pass
        over the weights; ``grads`` are fresh autograd outputs and are updated in place.
        """
        total = list(grads)
        if self.beta:
            with torch.no_grad():
                if other_minus_params is None:
                    diff = torch._foreach_sub(
                        [p.detach() for p in params], [o.detach() for o in other]
                    )
                    torch._foreach_add_(total, diff, alpha=self.beta)
                else:
                    torch._foreach_add_(total, list(other_minus_params), alpha=-self.beta)
        for p, g in zip(params, total, strict=True):
            p.grad = g
        self._clip(params)
        opt.step()

    def step(self, batch_train: Batch, batch_val: Batch) -> dict[str, float]:
        """One RARTS iteration; returns ``{"train_loss"`` (at w), ``"val_loss"`` (at y), ``"coupling"``
        (½‖y − w‖² before the step), ``"lagrangian"}`` (L_β before the step)."""
        bt, bv = self._check(batch_train, batch_val)
        self.model_w.train()
        self.model_y.train()
        nw = len(self.weights_w)
        with torch.no_grad():  # y − w once: the coupling value and the w step's β (w − y) term
            y_minus_w = torch._foreach_sub(
                [p.detach() for p in self.weights_y], [p.detach() for p in self.weights_w]
            )
            coupling = 0.5 * torch.stack(torch._foreach_norm(y_minus_w)).square().sum()
        if self.alpha_grad == "lagged":
            loss_train = self._loss(self.model_w, bt)
            loss_val = self._loss(self.model_y, bv)
            grads = torch.autograd.grad(
                self.lam * loss_train + loss_val, [*self.weights_w, *self.weights_y, *self.arch]
            )
            self._couple_and_step(self.weights_w, self.weights_y, grads[:nw], self.w_opt, y_minus_w)
            self._couple_and_step(self.weights_y, self.weights_w, grads[nw : 2 * nw], self.y_opt)
            alpha_grads = grads[2 * nw :]
        else:
            loss_train = self._loss(self.model_w, bt)
            gw = torch.autograd.grad(self.lam * loss_train, self.weights_w)
            self._couple_and_step(self.weights_w, self.weights_y, gw, self.w_opt, y_minus_w)
            loss_val = self._loss(self.model_y, bv)
            gy = torch.autograd.grad(loss_val, self.weights_y)
            self._couple_and_step(self.weights_y, self.weights_w, gy, self.y_opt)
            obj = self._loss(self.model_y, bv) + self.lam * self._loss(self.model_w, bt)
            alpha_grads = torch.autograd.grad(obj, self.arch)
        for a, g in zip(self.arch, alpha_grads, strict=True):
            a.grad = g
        self.a_opt.step()
        lagr = loss_val.detach() + self.lam * loss_train.detach() + self.beta * coupling
        return self._finish(
            {
                "train_loss": loss_train,
                "val_loss": loss_val,
                "coupling": coupling,
                "lagrangian": lagr,
            }
        )

    def state_dict(self) -> dict[str, Any]:
        """Both networks (w, y and the shared α), the three optimiser states, the step counter and the
        coupling hyperparameters ``lam``, ``beta``, ``alpha_grad``."""
        return {
            "num_steps": self.num_steps,
            "lam": self.lam,
            "beta": self.beta,
            "alpha_grad": self.alpha_grad,
            "model_w": self.model_w.state_dict(),
            "model_y": self.model_y.state_dict(),
            "w_opt": self.w_opt.state_dict(),
            "y_opt": self.y_opt.state_dict(),
            "a_opt": self.a_opt.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` exactly. λ and β are restored from the state (a run that changed
        them, e.g. a β schedule, resumes with its current values; a warning names a change from this
        stepper's values); a different ``alpha_grad`` raises ``ValueError``."""
        check_state(state, ("model_w", "model_y", "w_opt", "y_opt", "a_opt", "num_steps"), "RARTS")
        if state.get("alpha_grad", self.alpha_grad) != self.alpha_grad:
            raise ValueError(
                f"state was saved with alpha_grad={state['alpha_grad']!r}, this stepper uses "
                f"alpha_grad={self.alpha_grad!r}"
            )
        for key in ("lam", "beta"):
            if key in state and float(state[key]) != getattr(self, key):
                logger.warning(
                    "RARTS.load_state_dict: %s restored to %s (this stepper was built with %s)",
                    key,
                    state[key],
                    getattr(self, key),
                )
                setattr(self, key, float(state[key]))
        self.model_w.load_state_dict(state["model_w"])
        self.model_y.load_state_dict(state["model_y"])
        self.w_opt.load_state_dict(state["w_opt"])
        self.y_opt.load_state_dict(state["y_opt"])
        self.a_opt.load_state_dict(state["a_opt"])
        self.num_steps = int(state["num_steps"])
