"""DARTS' two search steppers, first order and second order (unrolled), on the shared stepper interface
(:mod:`paperzoo.rarts.stepper`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from paperzoo.core.checks import check_choice, check_positive
from paperzoo.rarts.hvp import hvp_autograd, hvp_finite_diff
from paperzoo.rarts.stepper import (
    Batch,
    LossFn,
    SearchStepper,
    check_optimizer,
    check_state,
    searched_weights_of,
)

__all__ = ["DartsFirstOrder", "DartsSecondOrder"]


class DartsFirstOrder(SearchStepper):
    """First-order DARTS: α ← α − η_α ∇_α L_val(w, α; B_v), then w ← w − η_w ∇_w L_train(w, α; B_t).

    Two forward+backward passes per step (``train_search.py`` of ``quark0/darts`` without ``--unrolled``).

    Args:
        model: supernet with ``arch_parameters()``.
        w_opt: optimiser over the weights (DARTS: SGD lr 0.025 cosine→0.001, momentum 0.9, wd 3e-4).
        a_opt: optimiser over α (DARTS: Adam lr 3e-4, betas (0.5, 0.999), wd 1e-3).
        loss_fn: ``(logits, y) -> loss``; default cross-entropy.
        grad_clip: max ‖∇_w‖ (DARTS: 5.0; ``None`` = off).
        alpha_grad_clip: max ‖∇_α‖ (default off; one stored version of the official ``architect.py`` clips
            at 10 — not in the paper).
        validate: batch checks and the non-finite guard (one host sync per step).
    """

    def __init__(
        self,
        model: nn.Module,
        w_opt: torch.optim.Optimizer,
        a_opt: torch.optim.Optimizer,
        loss_fn: LossFn = F.cross_entropy,
        *,
        grad_clip: float | None = 5.0,
        alpha_grad_clip: float | None = None,
        validate: bool = True,
    ) -> None:
        super().__init__(model, a_opt, loss_fn, grad_clip, validate)
        if alpha_grad_clip is not None:
            check_positive("alpha_grad_clip", alpha_grad_clip)
        self.alpha_grad_clip = alpha_grad_clip
        self.weight_named = searched_weights_of(model, self.arch)
        self.weights = [p for _, p in self.weight_named]
        check_optimizer(  # frozen weights may sit in w_opt (they never get a gradient)
            w_opt,
            [p for p in model.parameters() if all(p is not a for a in self.arch)],
            "w_opt",
            "the model's weights (trainable, not α)",
            "build it over model.weight_parameters()",
        )
        self.w_opt = w_opt

    def _alpha_step(self, grads: Sequence[Tensor]) -> None:
        for a, g in zip(self.arch, grads, strict=True):
            a.grad = g.detach()
        if self.alpha_grad_clip is not None:
            nn.utils.clip_grad_norm_(self.arch, self.alpha_grad_clip, foreach=True)
        self.a_opt.step()

    def _weight_step(self, bt: Batch) -> Tensor:
        self.w_opt.zero_grad(set_to_none=True)
        loss_train = self._loss(self.model, bt)
        loss_train.backward(inputs=self.weights)
        self._clip(self.weights)
        self.w_opt.step()
        return loss_train

    def step(self, batch_train: Batch, batch_val: Batch) -> dict[str, float]:
        """One DARTS-1st iteration; returns ``{"val_loss", "train_loss"}``."""
        bt, bv = self._check(batch_train, batch_val)
        self.model.train()
        loss_val = self._loss(self.model, bv)
        self._alpha_step(torch.autograd.grad(loss_val, self.arch))
        loss_train = self._weight_step(bt)
        return self._finish({"val_loss": loss_val, "train_loss": loss_train})

    def state_dict(self) -> dict[str, Any]:
        return {
            "num_steps": self.num_steps,
            "model": self.model.state_dict(),
            "w_opt": self.w_opt.state_dict(),
            "a_opt": self.a_opt.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_state(state, ("model", "w_opt", "a_opt", "num_steps"), type(self).__name__)
        self.model.load_state_dict(state["model"])
        self.w_opt.load_state_dict(state["w_opt"])
        self.a_opt.load_state_dict(state["a_opt"])
        self.num_steps = int(state["num_steps"])


class DartsSecondOrder(DartsFirstOrder):
    """Second-order (unrolled) DARTS.

    g_α = ∇_α L_val(w', α) − ξ · ∇²_{α,w} L_train(w, α) · v with the virtual step
    w' = w − ξ (m·buf + ∇_w L_train(w, α) + λ_wd·w) (as the official ``_compute_unrolled_model``: momentum
    buffer ``buf`` and weight decay read from ``w_opt`` when it is SGD) and v = ∇_{w'} L_val(w', α)
    (+ λ_wd·w' as the official code). Then the real weight step on B_t with the updated α. ξ = the current
    w learning rate unless ``xi`` is given. About 5 forward+backward passes per step.

    Args (beyond :class:`DartsFirstOrder`):
        hvp: ``"finite_diff"`` (DARTS Eq. 8, ``eps``/‖v‖ central difference) or ``"autograd"`` (exact).
        eps: the finite-difference radius r (DARTS: 0.01).
        xi: fixed virtual learning rate ξ (default: ``w_opt.param_groups[0]["lr"]`` at each step).
        hvp_point: ``"w"`` (default) evaluates the Hessian at w, as the paper's Eq. 7–8.
            Deviation from the official code, which perturbs the unrolled w' (``_hessian_vector_product``
            is called on ``model_unrolled`` in ``cnn/architect.py``; acknowledged in quark0/darts#21);
            ``"unrolled"`` reproduces the official behaviour.
    """

    def __init__(
        self,
        model: nn.Module,
        w_opt: torch.optim.Optimizer,
        a_opt: torch.optim.Optimizer,
        loss_fn: LossFn = F.cross_entropy,
        *,
        hvp: Literal["finite_diff", "autograd"] = "finite_diff",
        eps: float = 0.01,
        xi: float | None = None,
        hvp_point: Literal["w", "unrolled"] = "w",
        grad_clip: float | None = 5.0,
        alpha_grad_clip: float | None = None,
        validate: bool = True,
    ) -> None:
        super().__init__(
            model,
            w_opt,
            a_opt,
            loss_fn,
            grad_clip=grad_clip,
            alpha_grad_clip=alpha_grad_clip,
            validate=validate,
        )
        check_choice("hvp", hvp, ("finite_diff", "autograd"))
        check_choice("hvp_point", hvp_point, ("w", "unrolled"))
        check_positive("eps", eps)
        if xi is not None:
            check_positive("xi", xi, allow_zero=True)
        self.hvp, self.eps, self.xi, self.hvp_point = hvp, eps, xi, hvp_point

    def _functional_loss(self, batch: Batch) -> Callable[[Sequence[Tensor]], Tensor]:
        names = [n for n, _ in self.weight_named]
        # the unrolled/perturbed passes must not move the real model's BN running statistics
        buffers = {n: b.clone() for n, b in self.model.named_buffers()}
        x, y = batch

        def loss_at(ws: Sequence[Tensor]) -> Tensor:
            params = dict(zip(names, ws, strict=True))
            out = functional_call(self.model, {**params, **buffers}, (x,), strict=False)
            return self.loss_fn(out, y)

        return loss_at

    def unrolled_alpha_grad(self, bt: Batch, bv: Batch) -> tuple[list[Tensor], Tensor]:
        """The second-order α gradient g_α (list shaped like α) and L_val(w', α); changes no state
        except BN running statistics of the virtual training pass (as the official code)."""
        group = self.w_opt.param_groups[0]
        xi = float(group["lr"]) if self.xi is None else self.xi
        momentum = float(group.get("momentum", 0.0) or 0.0) if "momentum" in group else 0.0
        wd = float(group.get("weight_decay", 0.0) or 0.0)
        ws = [p.detach() for p in self.weights]
        loss_train = self._loss(self.model, bt)
        g = [t.detach() for t in torch.autograd.grad(loss_train, self.weights)]
        d = torch._foreach_add(g, ws, alpha=wd) if wd else g
        if momentum:
            bufs = [self.w_opt.state.get(p, {}).get("momentum_buffer") for p in self.weights]
            if all(b is not None for b in bufs):
                d = torch._foreach_add(d, [b for b in bufs if b is not None], alpha=momentum)
        w_unrolled = [t.requires_grad_(True) for t in torch._foreach_add(ws, d, alpha=-xi)]
        loss_val = self._functional_loss(bv)(w_unrolled)
        grads = torch.autograd.grad(loss_val, [*self.arch, *w_unrolled])
        g_alpha = [t.detach() for t in grads[: len(self.arch)]]
        v = [t.detach() for t in grads[len(self.arch) :]]
        if wd:
            v = list(torch._foreach_add(v, [t.detach() for t in w_unrolled], alpha=wd))
        point = ws if self.hvp_point == "w" else [t.detach() for t in w_unrolled]
        loss_at = self._functional_loss(bt)
        if self.hvp == "finite_diff":
            implicit = hvp_finite_diff(loss_at, point, v, self.arch, eps=self.eps)
        else:
            implicit = hvp_autograd(loss_at, point, v, self.arch)
        torch._foreach_add_(g_alpha, implicit, alpha=-xi)
        return g_alpha, loss_val

    def step(self, batch_train: Batch, batch_val: Batch) -> dict[str, float]:
        """One DARTS-2nd iteration; returns ``{"val_loss"`` (at w'), ``"train_loss"}``."""
        bt, bv = self._check(batch_train, batch_val)
        self.model.train()
        g_alpha, loss_val = self.unrolled_alpha_grad(bt, bv)
        self._alpha_step(g_alpha)
        loss_train = self._weight_step(bt)
        return self._finish({"val_loss": loss_val, "train_loss": loss_train})
