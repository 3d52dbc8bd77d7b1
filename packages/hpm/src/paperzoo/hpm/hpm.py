"""The HPM training step: EMA teacher scores patches, easy-to-hard mask, L_rec + L_pred."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import Tensor, nn

from paperzoo.core.checks import check_unit_interval
from paperzoo.core.training import to_device
from paperzoo.hpm.losses import absolute_loss_prediction_loss, relative_loss_prediction_loss
from paperzoo.hpm.masking import easy_to_hard_alpha, hard_patch_mask, num_masked, random_mask
from paperzoo.hpm.model import MaskedAutoencoderViT
from paperzoo.hpm.teacher import EMATeacher

__all__ = ["HPM"]

log = logging.getLogger(__name__)


class HPM:
    r"""Hard Patches Mining: one training step of the student, plus the EMA teacher update.

    Per step (reference ``engine_pretrain.py``):

    1. the EMA teacher sees the *full* image (no mask) and predicts per-patch difficulty
       ``s^T (N, L)`` (under ``inference_mode``);
    2. the mask takes the ``floor(N_m alpha_t)`` predicted-hardest patches and fills the rest of
       its ``N_m`` patches uniformly at random (:func:`~paperzoo.hpm.hard_patch_mask`), with
       ``alpha_t`` from :func:`~paperzoo.hpm.easy_to_hard_alpha` (0 -> ``alpha_end``);
    3. the student reconstructs the masked patches, giving per-patch losses ``l (N, M)``,
       ``L_rec = mean(l)``, and predicts ``s (N, M)`` for its mask tokens;
    4. ``L_pred`` = relative (pairwise BCE) or absolute loss between ``s`` and detached ``l``;
       ``loss = L_rec + pred_weight * L_pred``.

    After the optimizer step call :meth:`update_teacher` (``fit`` does it through
    :meth:`callback`).

    Known mismatch (HPM issue #1, kept as in the paper): the teacher scores fully visible
    tokens, while the student's predictor is trained on mask tokens. A learned predictor is needed
    because an unmasked image has no reconstruction loss to rank.

    With a model built with ``loss_predictor=False`` (or ``learning_loss=False``) this is a plain
    MAE step: random masks, ``L_rec`` only, no teacher.

    Deviation: when ``alpha_t`` gives no hard patch, the teacher forward is skipped (the mask is
    random either way); the teacher runs only its encoder and loss predictor
    (:meth:`MaskedAutoencoderViT.predict_loss`), not the reconstruction decoder whose output the
    reference computes and discards (same ``s^T``, less work). ``ema_decay`` and ``ema_warmup_frac`` are exposed because the reference's
    0.999 -> 0.9999 is too slow for runs of ~1k steps.

    Args:
        model: the student :class:`MaskedAutoencoderViT`.
        mask_ratio: ``r`` (0.75).
        alpha_start, alpha_end: easy-to-hard schedule ends (0.0, 0.5).
        relative: relative (ranking) loss-prediction objective (True) or absolute (ablation).
        pred_weight: weight of ``L_pred`` (1.0 in the reference).
        ema_decay: ``(start, end)`` EMA decay (0.999, 0.9999).
        ema_warmup_frac: share of training over which the decay ramps (0.125 = 100 / 800 epochs).
        learning_loss: train the predictor and mine hard patches (default: whether the model has
            a loss predictor).
        schedule: ``"epoch"`` (reference: alpha and EMA decay change per epoch) or ``"step"``.
        generator: optional ``torch.Generator`` for the masks.
        validate: check each batch is finite (one host sync per step); ``False`` in hot loops
            keeps only the free shape checks.
    """

    def __init__(
        self,
        model: MaskedAutoencoderViT,
        mask_ratio: float = 0.75,
        alpha_start: float = 0.0,
        alpha_end: float = 0.5,
        relative: bool = True,
        pred_weight: float = 1.0,
        ema_decay: tuple[float, float] = (0.999, 0.9999),
        ema_warmup_frac: float = 0.125,
        learning_loss: bool | None = None,
        schedule: Literal["epoch", "step"] = "epoch",
        generator: torch.Generator | None = None,
        validate: bool = True,
    ) -> None:
        if not isinstance(model, MaskedAutoencoderViT):
            raise TypeError(f"model: expected a MaskedAutoencoderViT, got {type(model).__name__}")
        self.model = model
        self.mask_ratio = check_unit_interval("mask_ratio", mask_ratio, open_=True)
        self.num_masked = num_masked(model.num_patches, mask_ratio)
        self.alpha_start = check_unit_interval("alpha_start", alpha_start)
        self.alpha_end = check_unit_interval("alpha_end", alpha_end)
        if not pred_weight >= 0:
            raise ValueError(f"pred_weight: expected a non-negative float, got {pred_weight}")
        self.pred_weight = float(pred_weight)
        self.relative = relative
        if schedule not in ("epoch", "step"):
            raise ValueError(f"schedule: expected 'epoch' or 'step', got {schedule!r}")
        self.schedule = schedule
        if learning_loss is None:
            learning_loss = model.has_loss_predictor
        if learning_loss and not model.has_loss_predictor:
            raise ValueError("learning_loss: True needs a model built with loss_predictor=True")
        self.learning_loss = learning_loss
        if not isinstance(ema_decay, tuple | list) or len(ema_decay) != 2:
            raise ValueError(f"ema_decay: expected a (start, end) pair, got {ema_decay!r}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"generator: expected a torch.Generator, got {type(generator).__name__}"
            )
        self.generator = generator
        self.validate = validate
        self.teacher: EMATeacher | None = None
        self.last: dict[str, Tensor] = {}
        self._pos: tuple[int, int, int | None, int | None] = (0, 1, None, None)
        if learning_loss:
            self.teacher = EMATeacher(model, ema_decay[0], ema_decay[1], ema_warmup_frac)

    # ------------------------------------------------------------------ schedule
    def _position(
        self, epoch: int, total_epochs: int, step: int | None, total_steps: int | None
    ) -> tuple[int, int]:
        if isinstance(total_epochs, bool) or not isinstance(total_epochs, int) or total_epochs <= 0:
            raise ValueError(f"total_epochs: expected a positive int, got {total_epochs!r}")
        if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch < total_epochs:
            raise ValueError(f"epoch: expected an int in [0, {total_epochs}), got {epoch!r}")
        if self.schedule == "epoch":
            return epoch, total_epochs
        if step is None or total_steps is None:
            raise ValueError("step, total_steps: required with schedule='step'")
        if total_steps <= 0 or not 0 <= step < total_steps:
            raise ValueError(f"step: expected an int in [0, {total_steps}), got {step!r}")
        return step, total_steps

    def alpha(
        self, epoch: int, total_epochs: int, step: int | None = None, total_steps: int | None = None
    ) -> float:
        """``alpha_t``, the hard share of the mask at this point of training."""
        if not self.learning_loss:
            return 0.0
        t, total = self._position(epoch, total_epochs, step, total_steps)
        return easy_to_hard_alpha(t, total, self.alpha_start, self.alpha_end)

    # ------------------------------------------------------------------ masks
    def teacher_scores(self, imgs: Tensor) -> Tensor:
        """The EMA teacher's predicted difficulty of every patch, ``(N, L)`` (full image).

        Runs under ``torch.inference_mode`` (no autograd bookkeeping): the scores only choose
        the mask and never enter a graph. The teacher first moves to ``imgs``' device if it is
        elsewhere (an ``HPM`` built before ``fit`` moved the model).
        """
        if self.teacher is None:
            raise ValueError("learning_loss: the teacher exists only with learning_loss=True")
        if self.teacher.device != imgs.device:
            self.teacher.to(imgs.device)
        teacher = self.teacher.module
        assert isinstance(teacher, MaskedAutoencoderViT)
        with torch.inference_mode():
            return teacher.predict_loss(imgs, validate=False)

    def make_mask(self, imgs: Tensor, alpha: float) -> Tensor:
        """The mask for ``imgs`` at hard share ``alpha`` (random when no hard patch is due)."""
        n = imgs.shape[0]
        n_hard = int(self.num_masked * check_unit_interval("alpha", alpha))
        if n_hard <= 0 or self.teacher is None:
            gen_dev = self.generator.device if self.generator is not None else imgs.device
            mask = random_mask(
                n, self.model.num_patches, self.mask_ratio, self.generator, device=gen_dev
            )
            return mask.to(imgs.device)
        scores = self.teacher_scores(imgs)
        return hard_patch_mask(scores, self.mask_ratio, alpha, self.generator, validate=False)

    # ------------------------------------------------------------------ step
    def step(
        self,
        imgs: Tensor,
        epoch: int,
        total_epochs: int,
        *,
        step: int | None = None,
        total_steps: int | None = None,
        forward: nn.Module | None = None,
    ) -> dict[str, Tensor]:
        """Losses of one student step (with graph; call ``backward`` and the optimizer yourself).

        Args:
            imgs: ``(N, C, H, W)``.
            epoch: 0-based epoch; ``total_epochs``: ``T`` (> epoch).
            step, total_steps: the global step and step count (needed for ``schedule="step"``).
            forward: the module to run the student forward through (default the model; pass
                a DDP wrapper of it for distributed training).

        Returns:
            ``loss`` (scalar, with graph), ``loss_rec``, ``loss_pred`` (detached scalars;
            ``loss_pred`` is 0 for MAE), ``mask`` ``(N, L)`` bool and ``alpha`` (0-d tensor).
        """
        self.model._check_imgs(imgs, validate=self.validate)
        alpha = self.alpha(epoch, total_epochs, step, total_steps)
        mask = self.make_mask(imgs, alpha)
        net = self.model if forward is None else forward
        out = net(imgs, mask, num_masked=self.num_masked, validate=False)
        per_patch = self.model.reconstruction_loss(imgs, out)
        loss_rec = per_patch.mean()
        loss = loss_rec
        loss_pred = torch.zeros((), device=imgs.device)
        if self.learning_loss:
            assert out.loss_pred_masked is not None
            s = out.loss_pred_masked.float()
            target = per_patch.detach().float()
            if self.relative:
                loss_pred = relative_loss_prediction_loss(s, target, validate=False)
            else:
                loss_pred = absolute_loss_prediction_loss(s, target, validate=False)
            loss = loss_rec + self.pred_weight * loss_pred
        out_dict = {
            "loss": loss,
            "loss_rec": loss_rec.detach(),
            "loss_pred": loss_pred.detach(),
            "mask": mask,
            "alpha": torch.tensor(alpha),
        }
        self.last = {k: v.detach() for k, v in out_dict.items()}
        return out_dict

    def set_position(
        self,
        epoch: int,
        total_epochs: int,
        step: int | None = None,
        total_steps: int | None = None,
    ) -> None:
        """Where training is, for :meth:`fit_step` (``HPMCallback`` keeps it current)."""
        self._position(epoch, total_epochs, step, total_steps)
        self._pos = (epoch, total_epochs, step, total_steps)

    def fit_step(self, model: nn.Module, batch: Any, device: torch.device) -> dict[str, Tensor]:
        """``step_fn`` for ``paperzoo.core.training.fit``: the batch is ``imgs`` or
        ``(imgs, labels)``; the forward runs through ``model`` (e.g. the DDP wrapper ``fit``
        passes), the position comes from :meth:`set_position` (use ``HPMCallback``)."""
        imgs = batch_images(batch, device)
        epoch, total, step, total_steps = self._pos
        return self.step(imgs, epoch, total, step=step, total_steps=total_steps, forward=model)

    def update_teacher(
        self,
        epoch: int,
        total_epochs: int,
        *,
        step: int | None = None,
        total_steps: int | None = None,
    ) -> float | None:
        """EMA step of the teacher (after the optimizer step); returns the decay used."""
        if self.teacher is None:
            return None
        t, total = self._position(epoch, total_epochs, step, total_steps)
        return self.teacher.update(self.model, t / total)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """What exact resume needs beyond the model and optimizer: the EMA teacher (weights and
        decay schedule), the mask generator's state and the schedule position of
        :meth:`fit_step`. Plain tensors, numbers and ``None`` (``weights_only`` loads it)."""
        return {
            "teacher": None if self.teacher is None else self.teacher.state_dict(),
            "generator": None if self.generator is None else self.generator.get_state(),
            "position": list(self._pos),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (load the student's weights separately).

        Raises:
            ValueError: a missing key; a teacher state for a stepper without teacher or the
                reverse; a generator state for a stepper built without ``generator``.
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"state: expected a mapping, got {type(state).__name__}")
        missing = {"teacher", "generator", "position"} - set(state)
        if missing:
            raise ValueError(f"state: missing keys {sorted(missing)}")
        if (state["teacher"] is None) != (self.teacher is None):
            raise ValueError(
                "state: teacher state and this stepper disagree on learning_loss "
                f"(saved teacher: {state['teacher'] is not None}, here: {self.teacher is not None})"
            )
        if state["generator"] is not None and self.generator is None:
            raise ValueError("state: holds a generator state; build HPM with generator=...")
        epoch, total, step, total_steps = state["position"]
        self._pos = (
            int(epoch),
            int(total),
            None if step is None else int(step),
            None if total_steps is None else int(total_steps),
        )
        if self.teacher is not None:
            self.teacher.load_state_dict(state["teacher"])
        if self.generator is not None and state["generator"] is not None:
            self.generator.set_state(state["generator"])


def batch_images(batch: Any, device: torch.device) -> Tensor:
    """The image tensor of a batch (``imgs``, ``(imgs, labels, ...)`` or ``{"imgs": ...}``)."""
    if isinstance(batch, Mapping):
        batch = batch["imgs"]
    if isinstance(batch, list | tuple):
        batch = batch[0]
    if not isinstance(batch, Tensor):
        raise TypeError(f"batch: expected a tensor or (tensor, ...), got {type(batch).__name__}")
    out: Tensor = to_device(batch, device)
    return out
