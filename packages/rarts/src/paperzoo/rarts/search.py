"""Search steppers: DARTS first order, DARTS second order, and RARTS (the paper's relaxed search).

Each stepper owns one search iteration: ``step(batch_train, batch_val) -> dict[str, float]`` takes one batch
``(x, y)`` of D_train and one of D_val, updates the weights and the architecture parameters α, and returns
the losses it computed. ``state_dict()`` / ``load_state_dict()`` hold everything needed for exact resume
(models, optimiser states, step counter). The model must expose ``arch_parameters()`` (α) and, optionally,
``weight_parameters()`` (w; default: every other parameter) — :class:`~paperzoo.rarts.space.SearchNetwork`,
:class:`~paperzoo.rarts.space.NATSSearchNetwork`, :class:`~paperzoo.rarts.width.WidthSearchResNet` and the
toy :class:`~paperzoo.rarts.toy.QuadraticBilevel` all do.

Losses are ``loss_fn(model(x), y)`` (default cross-entropy). With ``validate=True`` (default) each step checks
its batches (shapes, empty, label range: one host sync) and stops with a ``ValueError`` naming the step and
the tensor when a loss or α becomes NaN/Inf (checked with the one host sync that produces the returned floats).
That check runs after the step's updates, so on that error the stepper's parameters already hold the bad step:
restore them from the last checkpoint (``run_search(..., checkpoint_path=..., resume=True)``).
Weights with ``requires_grad=False`` are not searched (they stay fixed, and RARTS does not couple them).
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from paperzoo.rarts.ops import reset_all_parameters

__all__ = [
    "RARTS",
    "Batch",
    "DartsFirstOrder",
    "DartsSecondOrder",
    "LossFn",
    "OptimizerFactory",
    "SearchStepper",
    "arch_parameters_of",
    "coupling_penalty",
    "hvp_autograd",
    "hvp_finite_diff",
]

logger = logging.getLogger(__name__)

Batch = tuple[Tensor, Tensor]
LossFn = Callable[[Tensor, Tensor], Tensor]
OptimizerFactory = Callable[[list[nn.Parameter]], torch.optim.Optimizer]


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


def _flat_norm(tensors: Sequence[Tensor]) -> Tensor:
    norm: Tensor = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(list(tensors))))
    return norm


def hvp_finite_diff(
    loss_at: Callable[[Sequence[Tensor]], Tensor],
    weights: Sequence[Tensor],
    vector: Sequence[Tensor],
    arch: Sequence[Tensor],
    eps: float = 0.01,
) -> list[Tensor]:
    """Mixed Hessian-vector product ∇²_{α,w} L(w, α) · v by central differences (DARTS Eq. 8).

    ``R = eps / ‖v‖``, ``w± = w ± R·v``, result ``(∇_α L(w+, α) − ∇_α L(w−, α)) / (2R)`` — divided by
    ``2R`` (the ``(p − n) / 2 * eps`` precedence bug of khanrc/pt.darts#43 and nni#3044 is tested against).

    Args:
        loss_at: ``ws -> L(ws, α)``, the loss with the weights replaced by ``ws`` (e.g. a ``functional_call``).
        weights: w, tensors. vector: v, tensors shaped like ``weights``. arch: α tensors (``requires_grad``).
        eps: DARTS' ``r = 0.01``.
    Returns: one tensor per α tensor, shaped like it. A zero ``vector`` gives zeros.
    """
    if len(weights) != len(vector):
        raise ValueError(f"weights and vector differ in length: {len(weights)} vs {len(vector)}")
    if not weights:
        raise ValueError("weights is empty")
    _check_number(eps, "eps", low=0.0, strict=True, none_ok=False)
    ws = [w.detach() for w in weights]
    vs = [v.detach() for v in vector]
    R = eps / _flat_norm(vs).clamp_min(torch.finfo(vs[0].dtype).tiny)
    grads_p = torch.autograd.grad(
        loss_at(torch._foreach_add(ws, torch._foreach_mul(vs, R))), list(arch), allow_unused=True
    )
    grads_n = torch.autograd.grad(
        loss_at(torch._foreach_sub(ws, torch._foreach_mul(vs, R))), list(arch), allow_unused=True
    )
    return [
        torch.zeros_like(a) if p is None or n is None else (p - n) / (2.0 * R)
        for a, p, n in zip(arch, grads_p, grads_n, strict=True)
    ]


def hvp_autograd(
    loss_at: Callable[[Sequence[Tensor]], Tensor],
    weights: Sequence[Tensor],
    vector: Sequence[Tensor],
    arch: Sequence[Tensor],
) -> list[Tensor]:
    """Exact mixed Hessian-vector product ∇_α (∇_w L(w, α) · v) by double backward (same arguments as
    :func:`hvp_finite_diff`)."""
    if len(weights) != len(vector):
        raise ValueError(f"weights and vector differ in length: {len(weights)} vs {len(vector)}")
    ws = [w.detach().requires_grad_(True) for w in weights]
    loss = loss_at(ws)
    gw = torch.autograd.grad(loss, ws, create_graph=True, allow_unused=True)
    terms = [(g * v.detach()).sum() for g, v in zip(gw, vector, strict=True) if g is not None]
    if not terms:
        return [torch.zeros_like(a) for a in arch]
    out = torch.autograd.grad(torch.stack(terms).sum(), list(arch), allow_unused=True)
    return [torch.zeros_like(a) if g is None else g for a, g in zip(arch, out, strict=True)]


def arch_parameters_of(model: nn.Module) -> list[nn.Parameter]:
    """``model.arch_parameters()`` as a list; ``ValueError`` if the model has none (not a supernet)."""
    fn = getattr(model, "arch_parameters", None)
    if not callable(fn):
        raise ValueError(
            f"model ({type(model).__name__}) has no arch_parameters(); a search needs a supernet with "
            "architecture parameters (e.g. paperzoo.rarts.SearchNetwork)"
        )
    arch = list(fn())
    if not arch:
        raise ValueError(f"model ({type(model).__name__}).arch_parameters() is empty")
    return arch


def _weight_named(model: nn.Module, arch: Sequence[nn.Parameter]) -> list[tuple[str, nn.Parameter]]:
    """The searched weights w: every parameter that is not α and requires grad (frozen ones stay fixed)."""
    arch_ids = {id(a) for a in arch}
    named = [
        (n, p) for n, p in model.named_parameters() if id(p) not in arch_ids and p.requires_grad
    ]
    if not named:
        raise ValueError(
            f"model ({type(model).__name__}) has no trainable weight parameters besides α"
        )
    return named


def _check_number(value: Any, name: str, *, low: float, strict: bool, none_ok: bool) -> None:
    """``value`` must be a finite real number > low (``strict``) or >= low (``None`` if ``none_ok``)."""
    if value is None and none_ok:
        return
    bound = f"> {low}" if strict else f">= {low}"
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= low if strict else value < low):
        raise ValueError(
            f"{name} must be a finite number {bound}{' or None' if none_ok else ''}, got {value!r}"
        )


def _check_optimizer(opt: Any, allowed: Sequence[Tensor], name: str, what: str, hint: str) -> None:
    """``opt`` must be an optimiser over a non-empty subset of ``allowed`` (``what``; ``hint``: how to build it)."""
    if not isinstance(opt, torch.optim.Optimizer):
        raise TypeError(f"{name} must be a torch.optim.Optimizer, got {type(opt).__name__}")
    ids = {id(p) for p in allowed}
    params = [p for group in opt.param_groups for p in group["params"]]
    foreign = [p for p in params if id(p) not in ids]
    if foreign:
        raise ValueError(
            f"{name} must optimise only {what}, but {len(foreign)} of its {len(params)} parameters "
            f"are not among them (first: shape {tuple(foreign[0].shape)}); {hint}"
        )
    if not params:
        raise ValueError(f"{name} holds no parameters; {hint}")


def _check_batch(batch: Any, name: str) -> Batch:
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError(f"{name} must be a pair (x, y) of tensors, got {type(batch).__name__}")
    x, y = batch
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise TypeError(
            f"{name} must hold tensors (x, y), got ({type(x).__name__}, {type(y).__name__})"
        )
    if x.dim() == 0 or y.dim() == 0:
        raise ValueError(
            f"{name} must hold batched tensors (N, ...), got shapes {tuple(x.shape)}, {tuple(y.shape)}"
        )
    if x.shape[0] == 0 or y.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (x: {tuple(x.shape)}, y: {tuple(y.shape)})")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{name}: x has {x.shape[0]} rows but y has {y.shape[0]}")
    return x, y


def _check_state(state: Any, keys: Sequence[str], kind: str) -> None:
    if not isinstance(state, dict):
        raise TypeError(
            f"state must be a dict from {kind}.state_dict(), got {type(state).__name__}"
        )
    missing = [k for k in keys if k not in state]
    if missing:
        raise ValueError(
            f"state is not a {kind} state: missing {missing} (has {sorted(state)}); "
            "was it saved by another stepper type?"
        )


class SearchStepper:
    """Shared parts of the steppers (batch checks, non-finite guard, state). Not used directly."""

    def __init__(
        self,
        model: nn.Module,
        a_opt: torch.optim.Optimizer,
        loss_fn: LossFn,
        grad_clip: float | None,
        validate: bool,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        self.model = model
        self.arch = arch_parameters_of(model)
        _check_optimizer(
            a_opt, self.arch, "a_opt", "the model's α", "build it over model.arch_parameters()"
        )
        self.a_opt = a_opt
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable (logits, y) -> loss, got {loss_fn!r}")
        self.loss_fn = loss_fn
        _check_number(grad_clip, "grad_clip", low=0.0, strict=True, none_ok=True)
        self.grad_clip = grad_clip
        self.validate = validate
        self.num_steps = 0
        self.num_classes: int | None = getattr(model, "num_classes", None)

    def _loss(self, model: nn.Module, batch: Batch) -> Tensor:
        x, y = batch
        return self.loss_fn(model(x), y)

    def _check(self, batch_train: Any, batch_val: Any) -> tuple[Batch, Batch]:
        bt = _check_batch(batch_train, "batch_train")
        bv = _check_batch(batch_val, "batch_val")
        if not self.validate:
            return bt, bv
        device = self.arch[0].device
        for name, (x, y) in (("batch_train", bt), ("batch_val", bv)):
            if x.device != device or y.device != device:
                raise ValueError(
                    f"{name} is on ({x.device}, {y.device}) but the model's α are on {device}; "
                    "move the batch (run_search(..., device=...) does)"
                )
        if bt[0].shape[1:] != bv[0].shape[1:]:
            raise ValueError(
                "batch_train and batch_val features differ in shape: "
                f"{tuple(bt[0].shape[1:])} vs {tuple(bv[0].shape[1:])}"
            )
        k = self.num_classes
        if k is not None and not bt[1].is_floating_point() and not bv[1].is_floating_point():
            lo_t, hi_t, lo_v, hi_v = torch.stack(
                [bt[1].min(), bt[1].max(), bv[1].min(), bv[1].max()]
            ).tolist()
            for name, lo, hi in (("batch_train", lo_t, hi_t), ("batch_val", lo_v, hi_v)):
                if lo < 0 or hi >= k:
                    raise ValueError(
                        f"{name} labels must lie in [0, num_classes={k}), got range [{lo}, {hi}]"
                    )
        return bt, bv

    def _clip(self, params: Sequence[Tensor]) -> None:
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(params, self.grad_clip, foreach=True)

    def _finish(self, losses: dict[str, Tensor]) -> dict[str, float]:
        """One host sync: the returned floats and the finiteness of α."""
        self.num_steps += 1
        names = list(losses)
        vals = [losses[n].detach().float().reshape(()) for n in names]
        alpha_ok = torch.stack([torch.isfinite(a).all() for a in self.arch]).all()
        out = torch.stack([*vals, alpha_ok.to(vals[0].device, torch.float32)]).tolist()
        result = dict(zip(names, out[:-1], strict=True))
        if self.validate:
            for n, v in result.items():
                if v != v or v in (float("inf"), float("-inf")):
                    raise ValueError(
                        f"search step {self.num_steps}: loss {n!r} is non-finite ({v})"
                    )
            if out[-1] != 1.0:
                bad = [i for i, a in enumerate(self.arch) if not bool(torch.isfinite(a).all())]
                raise ValueError(
                    f"search step {self.num_steps}: architecture parameters {bad} (α) hold NaN/Inf"
                )
        return result

    def step(self, batch_train: Batch, batch_val: Batch) -> dict[str, float]:  # pragma: no cover
        """One search iteration on a D_train batch ``(x, y)`` and a D_val batch (same feature shape, any
        batch sizes); returns the losses it computed as floats."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Model(s), optimiser states and step counter (tensors, lists and numbers only)."""
        raise NotImplementedError  # pragma: no cover

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` exactly."""
        raise NotImplementedError  # pragma: no cover


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
        _check_number(alpha_grad_clip, "alpha_grad_clip", low=0.0, strict=True, none_ok=True)
        self.alpha_grad_clip = alpha_grad_clip
        self.weight_named = _weight_named(model, self.arch)
        self.weights = [p for _, p in self.weight_named]
        _check_optimizer(  # frozen weights may sit in w_opt (they never get a gradient)
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
        _check_state(state, ("model", "w_opt", "a_opt", "num_steps"), type(self).__name__)
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
        if hvp not in ("finite_diff", "autograd"):
            raise ValueError(f"hvp must be 'finite_diff' or 'autograd', got {hvp!r}")
        if hvp_point not in ("w", "unrolled"):
            raise ValueError(f"hvp_point must be 'w' or 'unrolled', got {hvp_point!r}")
        _check_number(eps, "eps", low=0.0, strict=True, none_ok=False)
        _check_number(xi, "xi", low=0.0, strict=False, none_ok=True)
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
        _check_number(lam, "lam (λ)", low=0.0, strict=True, none_ok=False)
        _check_number(beta, "beta (β)", low=0.0, strict=False, none_ok=False)
        if y_init not in ("copy", "independent"):
            raise ValueError(f"y_init must be 'copy' or 'independent', got {y_init!r}")
        if alpha_grad not in ("lagged", "exact"):
            raise ValueError(f"alpha_grad must be 'lagged' or 'exact', got {alpha_grad!r}")
        self.lam, self.beta = float(lam), float(beta)
        self.y_init, self.alpha_grad = y_init, alpha_grad
        self.model_w = model
        # deep copy whose α are the very same Parameter objects as model_w's
        memo: dict[int, Any] = {id(a): a for a in self.arch}
        self.model_y: nn.Module = copy.deepcopy(model, memo)
        if y_init == "independent":  # fresh y; α and frozen (requires_grad=False) weights are kept
            frozen = [p for p in self.model_y.parameters() if not p.requires_grad]
            _reinit(self.model_y, [*self.arch, *frozen])
        self.weights_w = [p for _, p in _weight_named(self.model_w, self.arch)]
        self.weights_y = [p for _, p in _weight_named(self.model_y, self.arch)]
        self.w_opt = w_opt_factory(self.weights_w)
        self.y_opt = (y_opt_factory or w_opt_factory)(self.weights_y)
        # a factory that ignores its argument (e.g. closes over net.parameters()) would make y_opt step w
        hint = "the factory must build its optimiser over the parameter list it is given"
        _check_optimizer(self.w_opt, self.weights_w, "w_opt_factory(w)", "model_w's weights", hint)
        _check_optimizer(self.y_opt, self.weights_y, "y_opt_factory(y)", "model_y's weights", hint)

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
        _check_state(state, ("model_w", "model_y", "w_opt", "y_opt", "a_opt", "num_steps"), "RARTS")
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
