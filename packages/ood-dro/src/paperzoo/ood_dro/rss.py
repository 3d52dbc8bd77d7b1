r"""Robust self-supervised (RSS) training on labeled plus (out-of-domain) unlabeled data.

.. math::
    \hat\theta_{RSS} = \arg\min_\theta \frac1m \sum_{i \le m} \phi_\gamma(x_i, y_i; \theta)
        + \frac{\lambda}{n} \sum_{j \le n} \phi_{\gamma'}(x'_j, h_\theta(x'_j); \theta)

with ``h_theta`` the model's own (detached) prediction. Special cases: ``lam = 0`` is WRM;
``robust=False`` (``gamma, gamma' -> inf``) is ERM plus self-training.

:class:`RSSObjective` computes the three terms on one batch; :class:`RSSTrainer` trains it in
:func:`paperzoo.core.training.fit` with restarts, an optional labeled-only warm-up, a plateau
schedule and a best-epoch choice by validation accuracy or training loss; :func:`tune` picks
hyper-parameters on a validation set with :func:`paperzoo.core.selection.select_on_validation`.
"""

from __future__ import annotations

import copy
import logging
import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from paperzoo.core.checks import (
    check_choice,
    check_finite,
    check_float_tensor,
    check_positive,
    check_positive_int,
)
from paperzoo.core.devices import to_device
from paperzoo.core.selection import Selection, select_on_validation
from paperzoo.core.training import Callback, TrainState, fit
from paperzoo.ood_dro.losses import binary_scores
from paperzoo.ood_dro.robust import (
    LossFn,
    check_target,
    point_loss,
    resolve_loss,
    robust_surrogate,
)

__all__ = ["PSEUDO_LABELS", "RSSObjective", "RSSTrainer", "predict_labels", "tune"]

log = logging.getLogger(__name__)

PSEUDO_LABELS = ("hard", "soft")
"""Pseudo-labels: the detached hard prediction (default), or detached class probabilities (CE)."""


def _in_features(model: nn.Module) -> int | None:
    for mod in model.modules():
        n = getattr(mod, "in_features", None)
        if isinstance(n, int):
            return n
    return None


def predict_labels(scores: Tensor) -> Tensor:
    """Hard labels from scores: ``{-1, +1}`` (``sign``, 0 -> +1) for binary scores ``(N,)`` or
    ``(N, 1)``, ``argmax`` in ``[0, K)`` for logits ``(N, K)``, ``K >= 2``. Returns ``(N,)`` int64."""
    if scores.dim() == 1 or scores.shape[1] == 1:
        s = binary_scores(scores)
        return torch.where(s >= 0, 1, -1).to(torch.long)
    return scores.argmax(1)


class RSSObjective(nn.Module):
    """The RSS objective of ``model`` on a batch: ``forward(x_l, y_l, x_u) -> dict``.

    Args:
        model: the classifier ``(B, ...) -> scores``: logits ``(B, K)`` for ``"ce"``, one score
            ``(B,)``/``(B, 1)`` for binary losses with ``{-1, +1}`` labels.
        loss_fn: point loss ``loss(scores, target) -> (B,)``: ``"ce"`` (default), ``"logistic"``,
            ``"hinge"`` or a callable (e.g. ``RampLoss(g, reduction="none")``).
        gamma: transport price on labeled data (reference 1e-3; ignored when ``robust=False``).
        gamma_u: transport price ``gamma'`` on unlabeled data (default: ``gamma``).
        lam: weight ``lambda >= 0`` of the unlabeled term (reference 1e-3).
        pseudo_label: ``"hard"`` (default; sign or argmax, detached, recomputed every call) or
            ``"soft"`` (detached softmax probabilities; ``"ce"`` only).
        robust: inner ascent (:func:`robust_surrogate`) on both terms; ``False`` uses the plain
            point loss (the reference simulation's non-robust setup).
        unlabeled_loss_fn: point loss of the unlabeled term (default ``loss_fn``): e.g. the ramp
            with its own margin scale ``g'``.
        steps, step_size, schedule, cost: the inner ascent (reference 10, 1e-3, ``"1/t"``, sq-L2).
        loss_scale: multiplies the total (the reference multiplies by 100).
        validate: checks with host syncs (finiteness, labels).

    ``forward`` returns ``{"loss", "total", "labeled", "unlabeled"}`` (``loss`` = ``total``,
    scalars); ``lam_scale`` (default 1) multiplies ``lam`` (the trainer's warm-up sets it to 0).

    Deviations: pseudo-labels are hard and detached (the reference feeds raw logits as soft
    targets without detaching them); ``loss_scale`` defaults to 1, not the reference's 100 (with
    Adam that factor only rescales the loss against the coupled weight decay); the model's mode
    is left as it is during the ascent.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: str | LossFn = "ce",
        gamma: float = 1e-3,
        gamma_u: float | None = None,
        lam: float = 1e-3,
        pseudo_label: str = "hard",
        robust: bool = True,
        unlabeled_loss_fn: str | LossFn | None = None,
        *,
        steps: int = 10,
        step_size: float = 1e-3,
        schedule: str = "1/t",
        cost: str = "sq_l2",
        loss_scale: float = 1.0,
        validate: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
        self.model = model
        self.kind, self.loss = resolve_loss(loss_fn)
        u = loss_fn if unlabeled_loss_fn is None else unlabeled_loss_fn
        self.kind_u, self.loss_u = resolve_loss(u)
        self.robust = bool(robust)
        self.steps = check_positive_int("steps", steps, minimum=0)
        need = self.robust and self.steps > 0
        self.gamma = check_positive("gamma", gamma, allow_zero=not need, allow_inf=True)
        gu = self.gamma if gamma_u is None else gamma_u
        self.gamma_u = check_positive("gamma_u", gu, allow_zero=not need, allow_inf=True)
        self.lam = check_positive("lam", lam, allow_zero=True)
        self.pseudo_label = check_choice("pseudo_label", pseudo_label, PSEUDO_LABELS)
        if self.pseudo_label == "soft" and self.kind_u != "ce":
            raise ValueError(f"pseudo_label: 'soft' needs the 'ce' loss, got {u!r}")
        self.step_size = check_positive("step_size", step_size)
        self.schedule = schedule
        self.cost = cost
        self.loss_scale = check_positive("loss_scale", loss_scale)
        self.validate = validate
        self.lam_scale = 1.0

    def _term(
        self, x: Tensor, y: Tensor, kind: str | None, loss: LossFn, gamma: float, validate: bool
    ) -> Tensor:
        if self.robust:
            phi, _ = robust_surrogate(
                self.model,
                x,
                y,
                loss if kind is None else kind,
                gamma,
                cost=self.cost,
                steps=self.steps,
                step_size=self.step_size,
                schedule=self.schedule,
                validate=validate,
            )
            return phi.mean()
        return point_loss(kind, loss, self.model(x), y, validate).mean()

    def pseudo_labels(self, scores: Tensor) -> Tensor:
        """Detached pseudo-labels from the model's scores on unlabeled data ``(n, ...)``: hard
        ``(n,)`` (see :func:`predict_labels`) or soft ``(n, K)`` probabilities."""
        s = scores.detach()
        if self.pseudo_label == "soft":
            return s.softmax(1)
        return predict_labels(s)

    def forward(self, x_l: Tensor, y_l: Tensor, x_u: Tensor | None = None) -> dict[str, Tensor]:
        """The objective on labeled ``x_l`` ``(m, ...)``, ``y_l`` ``(m,)`` and unlabeled ``x_u``
        ``(n, ...)`` (``None`` or ``n = 0``: WRM only, with a warning)."""
        check_float_tensor("x_l", x_l, nonempty=True)
        check_finite("x_l", x_l, validate=self.validate)
        check_target("y_l", self.kind, y_l, x_l.shape[0], self.validate)
        d = _in_features(self.model)
        if d is not None and x_l.dim() == 2 and x_l.shape[1] != d:
            raise ValueError(f"x_l: expected {d} features (the model's input), got {x_l.shape[1]}")
        labeled = self._term(x_l, y_l, self.kind, self.loss, self.gamma, self.validate)
        lam = self.lam * self.lam_scale
        if x_u is None or x_u.shape[0] == 0:
            warnings.warn(
                "x_u: no unlabeled data; the objective is the labeled term alone (WRM)",
                UserWarning,
                stacklevel=2,
            )
            unlabeled = torch.zeros_like(labeled)
        else:
            check_float_tensor("x_u", x_u)
            if x_u.shape[1:] != x_l.shape[1:]:
                raise ValueError(
                    f"x_u: expected the labeled feature shape {tuple(x_l.shape[1:])}, got {tuple(x_u.shape[1:])}"
                )
            check_finite("x_u", x_u, validate=self.validate)
            if self.lam == 0:
                warnings.warn(
                    "lam: 0, so the unlabeled data are ignored", UserWarning, stacklevel=2
                )
            if lam == 0:
                unlabeled = torch.zeros_like(labeled)
            elif self.robust:
                with torch.no_grad():
                    y_u = self.pseudo_labels(self.model(x_u))
                unlabeled = self._term(x_u, y_u, self.kind_u, self.loss_u, self.gamma_u, False)
            else:
                scores = self.model(x_u)
                unlabeled = self.loss_u(scores, self.pseudo_labels(scores)).mean()
        total = (labeled + lam * unlabeled) * self.loss_scale
        return {"loss": total, "total": total, "labeled": labeled, "unlabeled": unlabeled}


def _accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        return float((predict_labels(model(x)) == y).double().mean())


class _PairedBatches:
    """Per epoch: ``ceil(m / b)`` batches of labeled rows and as many unlabeled batches (seeded
    shuffles); one full batch ``(x_l, y_l, x_u)`` when ``batch_size`` is ``None``."""

    def __init__(
        self, x_l: Tensor, y_l: Tensor, x_u: Tensor | None, batch_size: int | None, seed: int
    ) -> None:
        self.x_l, self.y_l, self.x_u, self.b = x_l, y_l, x_u, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return 1 if self.b is None else math.ceil(self.x_l.shape[0] / self.b)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor | None]]:
        if self.b is None:
            yield self.x_l, self.y_l, self.x_u
            return
        k = len(self)
        pl = torch.randperm(self.x_l.shape[0], generator=self.generator)
        pu = (
            None
            if self.x_u is None
            else torch.randperm(self.x_u.shape[0], generator=self.generator)
        )
        bu = 0 if self.x_u is None else math.ceil(self.x_u.shape[0] / k)
        for i in range(k):
            il = pl[i * self.b : (i + 1) * self.b]
            xu = None if self.x_u is None or pu is None else self.x_u[pu[i * bu : (i + 1) * bu]]
            yield self.x_l[il], self.y_l[il], xu


class _Track(Callback):
    """Warm-up (``lam_scale`` 0 for the first epochs), plateau schedule on the epoch loss, and
    the best state by validation accuracy or by training loss (full batch: the loss belongs to
    the parameters at the start of the epoch, so those are the ones kept)."""

    def __init__(self, trainer: RSSTrainer, restart: int) -> None:
        self.t, self.restart = trainer, restart
        self.start: dict[str, Tensor] = {}

    def on_epoch_begin(self, state: TrainState) -> None:
        self.t.objective.lam_scale = 0.0 if state.epoch < self.t.warmup_epochs else 1.0
        if self.t.select == "train_loss":
            self.start = {k: v.detach().clone() for k, v in state.model.state_dict().items()}

    def on_epoch_end(self, state: TrainState, logs: dict[str, float]) -> None:
        loss = logs["train_loss"]
        if self.t._plateau is not None:
            self.t._plateau.step(loss)
        if self.t.select == "train_loss":
            score, snap = -loss, self.start
        else:
            assert self.t.val is not None
            was = state.model.training
            state.model.eval()
            score = _accuracy(state.model, *self.t.val)
            state.model.train(was)
            snap = {k: v.detach().clone() for k, v in state.model.state_dict().items()}
        epoch = state.epoch  # fit has counted this epoch already: 1-based here
        if epoch <= self.t.warmup_epochs < self.t.epochs:
            return  # a warm-up epoch is not the RSS model
        if not math.isnan(score) and (self.t.best_score is None or score > self.t.best_score):
            self.t.best_score, self.t.best_state = score, snap
            self.t.best_restart, self.t.best_epoch = self.restart, epoch


def _reset(model: nn.Module) -> None:
    for mod in model.modules():
        reset = getattr(mod, "reset_parameters", None)
        if callable(reset):
            reset()


@dataclass
class RSSTrainer:
    """Trains an :class:`RSSObjective` in :func:`paperzoo.core.training.fit` with restarts.

    ``fit(x_l, y_l, x_u)`` re-initialises the model for each restart (``init``, seeded with
    ``seed + restart``), trains ``epochs`` epochs and returns the model loaded with the best state
    over all restarts and epochs: the highest validation accuracy (``select="val_acc"``, needs
    ``val=(x_val, y_val)``; the reference histopathology code) or the lowest training objective
    (``select="train_loss"``; the reference simulation: best epoch per restart, best restart).

    Args:
        objective: the :class:`RSSObjective` (its ``model`` is trained in place).
        optimizer: ``"adam"`` (default), ``"adamw"`` or ``"sgd"``.
        lr: learning rate (reference: 1e-3 histopathology, 0.07 simulation).
        weight_decay: the optimizer's weight decay (Adam's coupled L2, as the reference).
        epochs: epochs per restart.
        restarts: independent initialisations.
        scheduler: ``None`` or ``"plateau"`` (``ReduceLROnPlateau(factor, patience)`` on the epoch's
            training objective; simulation: factor 0.1, patience 3).
        warmup_epochs: labeled-only epochs (``lam`` scaled to 0) before the unlabeled term starts;
            warm-up epochs are not candidates for the best state.
        batch_size: labeled rows per step (``None``: full batch, the reference simulation).
        select: ``"val_acc"`` or ``"train_loss"``.
        val: ``(x_val, y_val)`` for ``select="val_acc"``.
        init: ``init(model)`` for each restart (default: every submodule's ``reset_parameters``).
        seed: base seed of the initialisations and batch orders.
        device: where to train.

    After ``fit``: ``best_score``, ``best_restart``, ``best_epoch``, ``history`` (one list of
    per-epoch logs per restart).
    """

    objective: RSSObjective
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    epochs: int = 10
    restarts: int = 1
    scheduler: str | None = None
    plateau_factor: float = 0.1
    plateau_patience: int = 3
    warmup_epochs: int = 0
    batch_size: int | None = None
    select: str = "val_acc"
    val: tuple[Tensor, Tensor] | None = None
    init: Callable[[nn.Module], None] | None = None
    seed: int = 0
    device: str | torch.device = "cpu"
    best_score: float | None = field(default=None, init=False)
    best_state: dict[str, Tensor] | None = field(default=None, init=False, repr=False)
    best_restart: int = field(default=-1, init=False)
    best_epoch: int = field(default=-1, init=False)
    history: list[list[dict[str, float]]] = field(default_factory=list, init=False, repr=False)
    _plateau: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        """Check every argument."""
        if not isinstance(self.objective, RSSObjective):
            raise TypeError(
                f"objective: expected an RSSObjective, got {type(self.objective).__name__}"
            )
        check_choice("optimizer", self.optimizer, ("adam", "adamw", "sgd"))
        check_positive("lr", self.lr)
        check_positive("weight_decay", self.weight_decay, allow_zero=True)
        check_positive_int("epochs", self.epochs)
        check_positive_int("restarts", self.restarts)
        check_choice("scheduler", self.scheduler, (None, "plateau"))
        check_positive("plateau_factor", self.plateau_factor)
        check_positive_int("plateau_patience", self.plateau_patience, minimum=0)
        check_positive_int("warmup_epochs", self.warmup_epochs, minimum=0)
        if self.batch_size is not None:
            check_positive_int("batch_size", self.batch_size)
        check_choice("select", self.select, ("val_acc", "train_loss"))
        if self.select == "val_acc" and self.val is None:
            raise ValueError("val: select='val_acc' needs val=(x_val, y_val)")

    def _optim(self, model: nn.Module) -> torch.optim.Optimizer:
        params = model.parameters()
        if self.optimizer == "adam":
            return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        if self.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        return torch.optim.SGD(params, lr=self.lr, weight_decay=self.weight_decay)

    def fit(self, x_l: Tensor, y_l: Tensor, x_u: Tensor | None = None) -> nn.Module:
        """Train on labeled ``x_l`` ``(m, ...)``, ``y_l`` ``(m,)`` and unlabeled ``x_u`` ``(n, ...)``;
        returns the objective's model loaded with the best state."""
        obj = self.objective
        model = obj.model
        self.best_score, self.best_state, self.history = None, None, []
        loader = _PairedBatches(x_l, y_l, x_u, self.batch_size, self.seed)
        if self.val is not None:
            dev = torch.device(self.device)
            self.val = (self.val[0].to(dev), self.val[1].to(dev))
        for r in range(self.restarts):
            torch.manual_seed(self.seed + r)
            (self.init or _reset)(model)
            opt = self._optim(model)
            self._plateau = (
                torch.optim.lr_scheduler.ReduceLROnPlateau(
                    opt, factor=self.plateau_factor, patience=self.plateau_patience
                )
                if self.scheduler == "plateau"
                else None
            )
            res = fit(
                model,
                loader,
                opt,
                step_fn=_step(obj),
                epochs=self.epochs,
                device=self.device,
                callbacks=[_Track(self, r)],
                progress=False,
            )
            self.history.append(res.history)
        obj.lam_scale = 1.0
        assert self.best_state is not None
        model.load_state_dict(self.best_state)
        model.eval()
        return model


def _step(obj: RSSObjective) -> Callable[[nn.Module, Any, torch.device], Mapping[str, Tensor]]:
    def step(model: nn.Module, batch: Any, device: torch.device) -> Mapping[str, Tensor]:
        x_l, y_l, x_u = to_device(batch, device)
        out: dict[str, Tensor] = obj(x_l, y_l, x_u)
        return out

    return step


def tune(
    build: Callable[[dict[str, Any]], RSSTrainer],
    candidates: Sequence[dict[str, Any]],
    x_l: Tensor,
    y_l: Tensor,
    x_u: Tensor | None,
    val: tuple[Tensor, Tensor],
) -> tuple[Selection[dict[str, Any]], nn.Module]:
    """Choose hyper-parameters on a validation set only (never on test).

    ``build(params)`` returns a fresh :class:`RSSTrainer` for one grid point (e.g. from
    :func:`paperzoo.core.selection.grid`); each is fitted on ``(x_l, y_l, x_u)`` and scored by its
    accuracy on ``val = (x_val, y_val)``. Ties go to the earlier candidate.

    Returns:
        The core's :class:`~paperzoo.core.selection.Selection` (winner, score, every score) and
        the winner's trained model.
    """
    models: dict[int, nn.Module] = {}

    def score(params: dict[str, Any]) -> float:
        trainer = build(params)
        model = trainer.fit(x_l, y_l, x_u)
        models[id(params)] = copy.deepcopy(model)
        return _accuracy(
            model,
            val[0].to(next(model.parameters()).device),
            val[1].to(next(model.parameters()).device),
        )

    sel = select_on_validation(candidates, score, log=log)
    return sel, models[id(sel.best)]
