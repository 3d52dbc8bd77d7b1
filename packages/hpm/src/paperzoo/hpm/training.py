"""HPM on the core's training loop: the fit step, the teacher callback, the per-step LR schedule.

``paperzoo.core.training.fit`` steps its scheduler once per epoch; MAE and HPM use a per-iteration
warm-up + cosine schedule, so :class:`WarmupCosineLR` is a callback that sets the learning rate
before every optimizer step. :func:`param_groups` reproduces the reference's weight-decay split.
"""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor, nn

from paperzoo.core.training import Callback, TrainState
from paperzoo.hpm.hpm import HPM

__all__ = ["HPMCallback", "WarmupCosineLR", "param_groups", "warmup_cosine_lr"]


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two AdamW groups as timm's ``add_weight_decay`` (used by the reference): no decay for
    biases and other 1-D parameters (LayerNorm), ``weight_decay`` for the rest."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.dim() <= 1 or name.endswith(".bias") else decay).append(p)
    return [
        {"params": no_decay, "weight_decay": 0.0},
        {"params": decay, "weight_decay": weight_decay},
    ]


def warmup_cosine_lr(
    epoch: float, base_lr: float, epochs: int, warmup_epochs: float, min_lr: float = 0.0
) -> float:
    """MAE's ``lr_sched.adjust_learning_rate``: linear warm-up, then half-cosine to ``min_lr``.

    ``epoch`` is fractional (``step / steps_per_epoch``), so the schedule changes every iteration.
    """
    if epoch < warmup_epochs:
        return base_lr * epoch / warmup_epochs
    span = max(epochs - warmup_epochs, 1e-12)
    return min_lr + (base_lr - min_lr) * 0.5 * (
        1.0 + math.cos(math.pi * (epoch - warmup_epochs) / span)
    )


class WarmupCosineLR(Callback):
    """Sets every param group's ``lr`` before each optimizer step (per-iteration schedule)."""

    def __init__(
        self,
        base_lr: float,
        epochs: int,
        steps_per_epoch: int,
        warmup_epochs: float,
        min_lr: float = 0.0,
    ) -> None:
        if steps_per_epoch <= 0:
            raise ValueError(f"steps_per_epoch: expected a positive int, got {steps_per_epoch}")
        self.base_lr, self.epochs, self.steps_per_epoch = base_lr, epochs, steps_per_epoch
        self.warmup_epochs, self.min_lr = warmup_epochs, min_lr

    def _set(self, state: TrainState) -> None:
        lr = warmup_cosine_lr(
            state.step / self.steps_per_epoch,
            self.base_lr,
            self.epochs,
            self.warmup_epochs,
            self.min_lr,
        )
        for group in state.optimizer.param_groups:
            group["lr"] = lr

    def on_train_begin(self, state: TrainState) -> None:
        self._set(state)

    def on_batch_end(self, state: TrainState, loss: Tensor) -> None:
        self._set(state)


class HPMCallback(Callback):
    """Drives an :class:`~paperzoo.hpm.HPM` stepper inside ``fit``.

    Tells the stepper the epoch (and step), updates the EMA teacher after every optimizer step
    (as the reference does), and adds ``loss_rec`` / ``loss_pred`` epoch means to ``fit``'s logs.
    Use with ``step_fn=hpm.fit_step``.

    Its :meth:`state_dict` (the stepper's :meth:`HPM.state_dict`: EMA teacher, mask generator,
    schedule position) goes into ``fit``'s checkpoint with everything else, in the same atomic
    write, and ``fit(resume=True)`` restores it, so a resumed run matches an uninterrupted one
    exactly (on CPU).

    Args:
        hpm: the stepper.
        epochs: the run's total epochs (as given to ``fit``).
        steps_per_epoch: optimizer steps per epoch (required with ``schedule="step"``).
    """

    def __init__(self, hpm: HPM, epochs: int, steps_per_epoch: int | None = None) -> None:
        if hpm.schedule == "step" and steps_per_epoch is None:
            raise ValueError("steps_per_epoch: required with schedule='step'")
        self.hpm = hpm
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self._last_step = 0
        self._sums: dict[str, Tensor] = {}
        self._count = 0

    def _position(self, state: TrainState) -> dict[str, int | None]:
        total = None if self.steps_per_epoch is None else self.epochs * self.steps_per_epoch
        step = None if total is None else min(state.step, total - 1)
        return {"step": step, "total_steps": total}

    def on_train_begin(self, state: TrainState) -> None:
        self._last_step = state.step

    def on_epoch_begin(self, state: TrainState) -> None:
        self.hpm.set_position(state.epoch, self.epochs, **self._position(state))
        self._sums, self._count = {}, 0

    def on_batch_end(self, state: TrainState, loss: Tensor) -> None:
        last = self.hpm.last
        for key in ("loss_rec", "loss_pred"):
            if key in last:
                self._sums[key] = self._sums[key] + last[key] if key in self._sums else last[key]
        self._count += 1
        if state.step != self._last_step:  # an optimizer step happened
            self._last_step = state.step
            pos = self._position(state)
            self.hpm.update_teacher(state.epoch, self.epochs, **pos)
            self.hpm.set_position(state.epoch, self.epochs, **pos)

    def on_epoch_end(self, state: TrainState, logs: dict[str, float]) -> None:
        for key, total in self._sums.items():
            logs[key] = float(total) / max(self._count, 1)

    def state_dict(self) -> dict[str, Any]:
        """``{"hpm": HPM.state_dict()}`` for ``fit``'s checkpoint."""
        return {"hpm": self.hpm.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the stepper from :meth:`state_dict` (``fit(resume=True)`` calls it)."""
        if "hpm" not in state:
            raise ValueError(f"state: expected the key 'hpm', got {sorted(state)}")
        self.hpm.load_state_dict(state["hpm"])
