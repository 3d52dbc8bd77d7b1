"""The search-stepper interface and the parts every stepper shares (batch checks, non-finite guard, state).

Each stepper owns one search iteration: ``step(batch_train, batch_val) -> dict[str, float]`` takes one batch
``(x, y)`` of D_train and one of D_val, updates the weights and the architecture parameters α, and returns
the losses it computed. ``state_dict()`` / ``load_state_dict()`` hold everything needed for exact resume
(models, optimiser states, step counter). The model must expose ``arch_parameters()`` (α) and, optionally,
``weight_parameters()`` (w; default: every other parameter) — :class:`~paperzoo.rarts.space.SearchNetwork`,
:class:`~paperzoo.rarts.nats.NATSSearchNetwork`, :class:`~paperzoo.rarts.width.WidthSearchResNet` and the
toy :class:`~paperzoo.rarts.toy.QuadraticBilevel` all do. The steppers are
:class:`~paperzoo.rarts.darts.DartsFirstOrder`, :class:`~paperzoo.rarts.darts.DartsSecondOrder` and
:class:`~paperzoo.rarts.search.RARTS`.

Losses are ``loss_fn(model(x), y)`` (default cross-entropy). With ``validate=True`` (default) each step first
checks its batches and α, with one host sync, *before* it changes anything: shapes, empty batches, integer
labels in ``[0, num_classes)`` (for a model with ``num_classes`` and 1-D labels), finite ``x`` and finite α.
A bad batch or a NaN/Inf α raises a ``ValueError`` naming it, and the weights, α, BN statistics and optimiser
states stay as they were. After the updates, the host sync that produces the returned floats also checks
the losses and α: a step that itself diverges (finite inputs, non-finite loss or α after the update) stops
with a ``ValueError`` naming the step and the tensor; the parameters then hold that step, so restore them
from the last checkpoint (``run_search(..., checkpoint_path=..., resume=True)``).
Weights with ``requires_grad=False`` are not searched (they stay fixed, and RARTS does not couple them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from paperzoo.core.checks import check_labels, check_positive

__all__ = [
    "Batch",
    "LossFn",
    "OptimizerFactory",
    "SearchStepper",
    "arch_parameters_of",
    "check_optimizer",
    "check_state",
    "searched_weights_of",
]

Batch = tuple[Tensor, Tensor]
LossFn = Callable[[Tensor, Tensor], Tensor]
OptimizerFactory = Callable[[list[nn.Parameter]], torch.optim.Optimizer]


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


def searched_weights_of(
    model: nn.Module, arch: Sequence[nn.Parameter]
) -> list[tuple[str, nn.Parameter]]:
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


def check_optimizer(opt: Any, allowed: Sequence[Tensor], name: str, what: str, hint: str) -> None:
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
        raise TypeError(f"{name}: expected a pair (x, y) of tensors, got {type(batch).__name__}")
    x, y = batch
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise TypeError(
            f"{name}: expected tensors (x, y), got ({type(x).__name__}, {type(y).__name__})"
        )
    if x.dim() == 0 or y.dim() == 0:
        raise ValueError(
            f"{name}: expected batched tensors (N, ...), got shapes {tuple(x.shape)}, "
            f"{tuple(y.shape)}"
        )
    if x.shape[0] == 0 or y.shape[0] == 0:
        raise ValueError(
            f"{name}: expected a non-empty batch, got x {tuple(x.shape)}, y {tuple(y.shape)}"
        )
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"{name}: expected as many labels as rows ({x.shape[0]}), got {y.shape[0]}"
        )
    return x, y


def check_state(state: Any, keys: Sequence[str], kind: str) -> None:
    """``state`` must be a dict holding ``keys`` (a ``kind`` stepper's :meth:`~SearchStepper.state_dict`)."""
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
        check_optimizer(
            a_opt, self.arch, "a_opt", "the model's α", "build it over model.arch_parameters()"
        )
        self.a_opt = a_opt
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable (logits, y) -> loss, got {loss_fn!r}")
        self.loss_fn = loss_fn
        if grad_clip is not None:
            check_positive("grad_clip", grad_clip)
        self.grad_clip = grad_clip
        self.validate = validate
        self.num_steps = 0
        self.num_classes: int | None = getattr(model, "num_classes", None)

    def _loss(self, model: nn.Module, batch: Batch) -> Tensor:
        x, y = batch
        return self.loss_fn(model(x), y)

    def _check(self, batch_train: Any, batch_val: Any) -> tuple[Batch, Batch]:
        """The batches, checked before the step changes anything (see the module docstring)."""
        bt = _check_batch(batch_train, "batch_train")
        bv = _check_batch(batch_val, "batch_val")
        if not self.validate:
            return bt, bv
        device = self.arch[0].device
        for name, (x, y) in (("batch_train", bt), ("batch_val", bv)):
            if x.device != device or y.device != device:
                raise ValueError(
                    f"{name}: expected tensors on the device of the model's α ({device}), got "
                    f"({x.device}, {y.device}); move the batch (run_search(..., device=...) does)"
                )
        if bt[0].shape[1:] != bv[0].shape[1:]:
            raise ValueError(
                "batch_val: expected the feature shape of batch_train "
                f"{tuple(bt[0].shape[1:])}, got {tuple(bv[0].shape[1:])}"
            )
        k = self.num_classes
        labelled = k is not None and bt[1].dim() == 1 and bv[1].dim() == 1
        if labelled:  # class labels: integer dtype (TypeError), range checked in the one sync below
            for name, (_, y) in (("batch_train", bt), ("batch_val", bv)):
                check_labels(f"{name} labels", y, validate=False)
        # one host sync: label ranges, finite x, finite α
        flags = [torch.isfinite(bt[0]).all(), torch.isfinite(bv[0]).all()]
        flags += [torch.isfinite(a.detach()).all() for a in self.arch]
        stats = [f.to(device, torch.float64) for f in flags]
        if labelled:
            stats += [
                t.to(torch.float64) for t in (bt[1].min(), bt[1].max(), bv[1].min(), bv[1].max())
            ]
        values = torch.stack(stats).tolist()
        na = len(self.arch)
        for name, ok in (("batch_train", values[0]), ("batch_val", values[1])):
            if ok != 1.0:
                raise ValueError(f"{name} x: expected finite values, got NaN or inf")
        bad = [i for i, ok in enumerate(values[2 : 2 + na]) if ok != 1.0]
        if bad:
            raise ValueError(
                f"arch_parameters() {bad} (α): expected finite values, got NaN or inf before search "
                f"step {self.num_steps + 1}; the step changed nothing (restore α, e.g. from a checkpoint)"
            )
        if labelled and k is not None:
            lo_t, hi_t, lo_v, hi_v = (int(v) for v in values[2 + na :])
            for name, lo, hi in (("batch_train", lo_t, hi_t), ("batch_val", lo_v, hi_v)):
                if lo < 0 or hi >= k:
                    raise ValueError(
                        f"{name} labels: expected labels in [0, {k}) (num_classes), got range "
                        f"[{lo}, {hi}]"
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
                        f"search step {self.num_steps}: loss {n!r} is non-finite ({v}) after the "
                        "update; the parameters hold this step (restore them from a checkpoint)"
                    )
            if out[-1] != 1.0:
                bad = [i for i, a in enumerate(self.arch) if not bool(torch.isfinite(a).all())]
                raise ValueError(
                    f"search step {self.num_steps}: arch_parameters() {bad} (α) hold NaN/Inf after "
                    "the update; the parameters hold this step (restore them from a checkpoint)"
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
