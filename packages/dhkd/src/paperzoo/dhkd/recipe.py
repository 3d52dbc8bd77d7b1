"""Training recipes on the core's loop: the teacher, and distillation into a (dual-head) student.

``distill`` trains a student with one of four objectives, all through
:func:`paperzoo.core.training.fit` with a step function:

* ``"ce"``: cross-entropy on the main head (no teacher);
* ``"kd"``: ``gamma CE + alpha KD_T`` on the main head (vanilla KD, ``T = 4``);
* ``"binary_kl"``: ``gamma CE + alpha BinaryKL_T`` on the *same* main head (the paper's negative
  single-head result);
* ``"dhkd"``: ``gamma CE`` on the main head + ``alpha BinaryKL-Norm_T`` on the auxiliary head,
  optionally with gradient alignment (:class:`~paperzoo.dhkd.dhkd.GradAlign`).

The schedule is the reference's CIFAR recipe scaled to the epoch budget: SGD (momentum 0.9,
weight decay 5e-4), learning rate x0.1 at 62.5 / 75 / 87.5 % of the epochs (150/180/210 of 240).
Teacher logits are computed once per batch under ``no_grad`` from a teacher in eval mode.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from paperzoo.core.checks import check_choice, check_positive, check_positive_int
from paperzoo.core.devices import to_device
from paperzoo.core.training import Callback, FitResult, fit
from paperzoo.dhkd.dhkd import DHKDLoss, GradAlign, cross_entropy
from paperzoo.dhkd.heads import DualHeadOutput
from paperzoo.dhkd.losses import binary_kl, kd_loss

__all__ = [
    "METHODS",
    "Method",
    "conv1d_teacher",
    "distill",
    "distillation_step",
    "step_decay",
    "train_teacher",
]

Method = Literal["ce", "kd", "binary_kl", "dhkd"]
METHODS: tuple[Method, ...] = ("ce", "kd", "binary_kl", "dhkd")
"""The objectives :func:`distill` trains with (see the module docstring)."""

Batch = Sequence[Tensor]


def conv1d_teacher(length: int = 40, num_classes: int = 10, channels: int = 64) -> nn.Module:
    """The reproduction's 1-D CNN teacher, ``(N, length)`` or ``(N, 1, length)`` -> ``(N, K)``:
    conv5-64, conv3-64 stride 2, conv3-64 stride 2 (ReLU after each, 'same' padding), linear."""
    n = check_positive_int("length", length)
    c = check_positive_int("channels", channels)
    out_len = ((n + 1) // 2 + 1) // 2
    return nn.Sequential(
        nn.Unflatten(1, (1, n)),
        nn.Conv1d(1, c, 5, padding=2),
        nn.ReLU(),
        nn.Conv1d(c, c, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv1d(c, c, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(c * out_len, check_positive_int("num_classes", num_classes)),
    )


def step_decay(
    optimizer: torch.optim.Optimizer,
    epochs: int,
    fractions: Sequence[float] = (0.625, 0.75, 0.875),
    factor: float = 0.1,
) -> torch.optim.lr_scheduler.MultiStepLR:
    """The reference's step schedule at ``fractions`` of ``epochs`` (150/180/210 of 240)."""
    e = check_positive_int("epochs", epochs)
    milestones = sorted({max(1, round(f * e)) for f in fractions})
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=factor)


def train_teacher(
    teacher: nn.Module,
    loader: Any,
    epochs: int = 40,
    *,
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    device: str | torch.device = "cpu",
) -> FitResult:
    """The teacher recipe: cross-entropy, SGD (momentum 0.9, weight decay 5e-4), cosine schedule.

    Weight decay matters: the spec's prototype found an Adam teacher without it reached a
    similar accuracy but logits 2x larger (std 19, max 117), which made linear-aux DHKD collapse.
    ``loader`` yields ``(x, y)``.
    """
    opt = torch.optim.SGD(teacher.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    return fit(
        teacher,
        loader,
        opt,
        loss_fn=lambda z, y: cross_entropy(z, y, validate=False),
        epochs=epochs,
        device=device,
        scheduler=sched,
        progress=False,
    )


def distillation_step(
    method: Method,
    teacher_logits_of: Callable[[Batch, torch.device], Tensor] | None,
    *,
    temperature: float = 2.0,
    kd_temperature: float = 4.0,
    alpha: float = 1.0,
    gamma: float = 1.0,
    grad_align: GradAlign | None = None,
    validate: bool = False,
) -> Callable[[nn.Module, Any, torch.device], Mapping[str, Tensor]]:
    """A ``fit`` step function for ``method`` on batches ``(x, y, ...)``.

    Args:
        method: one of :data:`METHODS`.
        teacher_logits_of: ``(batch, device) -> (N, K)`` teacher logits (e.g. a frozen teacher's
            forward, or a lookup of precomputed logits); ``None`` only for ``"ce"``.
        temperature: ``T`` of BinaryKL / BinaryKL-Norm (2).
        kd_temperature: ``T`` of KD (4).
        alpha, gamma: weights of the distillation and cross-entropy terms.
        grad_align: align the two gradients (DHKD ``--ga``); the returned ``"loss"`` then
            carries the aligned gradient (:meth:`GradAlign.aligned_loss`).
        validate: check the logits and labels on every step (host syncs).

    Returns:
        ``step(model, batch, device) -> {"loss", "ce", "kd"}``; ``model`` returns a
        :class:`DualHeadOutput` in training mode (a plain ``(N, K)`` is accepted for the
        single-head methods).
    """
    m = check_choice("method", method, METHODS)
    if m != "ce" and teacher_logits_of is None:
        raise ValueError(f"teacher_logits_of: method {m!r} needs the teacher's logits")
    dhkd = DHKDLoss(temperature, alpha, gamma, validate=validate)

    def step(model: nn.Module, batch: Any, device: torch.device) -> Mapping[str, Tensor]:
        b = to_device(batch, device)
        out = model(b[0])
        main = out.main if isinstance(out, DualHeadOutput) else out
        y = b[1]
        if m == "ce":
            ce = gamma * cross_entropy(main, y, validate=validate)
            return {"loss": ce, "ce": ce.detach(), "kd": torch.zeros_like(ce.detach())}
        assert teacher_logits_of is not None
        zt = teacher_logits_of(b, device)
        if m == "dhkd":
            terms = dhkd(out, zt, y)
            ce, kd = terms.ce, terms.logit_kd
        else:
            ce = gamma * cross_entropy(main, y, validate=validate)
            fn = kd_loss if m == "kd" else binary_kl
            t = kd_temperature if m == "kd" else temperature
            kd = alpha * fn(main, zt, t, validate=validate)
        loss = grad_align.aligned_loss([ce, kd]) if grad_align is not None else ce + kd
        return {"loss": loss, "ce": ce.detach(), "kd": kd.detach()}

    return step


def distill(
    student: nn.Module,
    teacher: nn.Module | None,
    loader: Any,
    epochs: int,
    *,
    method: Method = "dhkd",
    temperature: float = 2.0,
    kd_temperature: float = 4.0,
    alpha: float = 1.0,
    gamma: float = 1.0,
    grad_align: bool = False,
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    teacher_logits_of: Callable[[Batch, torch.device], Tensor] | None = None,
    callbacks: Sequence[Callback] = (),
    device: str | torch.device = "cpu",
) -> FitResult:
    """Distil ``teacher`` into ``student`` with the reference's CIFAR recipe (scaled to ``epochs``).

    Args:
        student: a :class:`~paperzoo.dhkd.heads.DualHeadClassifier` (required for ``"dhkd"``).
        teacher: frozen (eval mode, no grads); ignored when ``teacher_logits_of`` is given;
            ``None`` for ``"ce"``.
        loader: yields ``(x, y)`` (or ``(x, y, ...)`` for ``teacher_logits_of``).
        epochs: training epochs; the learning rate drops x0.1 at 62.5/75/87.5 % of them.
        method: ``"dhkd"`` (default), ``"ce"``, ``"kd"`` or ``"binary_kl"``.
        grad_align: DHKD's ``--ga`` (two backward passes per step).
        lr, momentum, weight_decay: SGD (0.05, 0.9, 5e-4, the reference's CIFAR values).
        teacher_logits_of: optional ``(batch, device) -> (N, K)`` (e.g. precomputed logits).

    Returns:
        ``fit``'s :class:`~paperzoo.core.training.FitResult` (history with ``train_loss``).
    """
    check_positive("lr", lr)
    if teacher_logits_of is None and teacher is not None:
        frozen = teacher
        frozen.eval()
        for p in frozen.parameters():
            p.requires_grad_(False)

        def from_teacher(batch: Batch, dev: torch.device) -> Tensor:
            with torch.no_grad():
                z: Tensor = frozen.to(dev)(batch[0])
            return z

        teacher_logits_of = from_teacher
    opt = torch.optim.SGD(student.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    ga = GradAlign(opt) if grad_align else None
    step = distillation_step(
        method,
        teacher_logits_of,
        temperature=temperature,
        kd_temperature=kd_temperature,
        alpha=alpha,
        gamma=gamma,
        grad_align=ga,
    )
    return fit(
        student,
        loader,
        opt,
        step_fn=step,
        epochs=epochs,
        device=device,
        scheduler=step_decay(opt, epochs),
        callbacks=callbacks,
        progress=False,
    )
