"""HPM's EMA teacher: a momentum copy of the whole model that scores every patch's difficulty."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from paperzoo.core.checks import check_unit_interval

__all__ = ["EMATeacher"]


class EMATeacher:
    r"""Exponential moving average of a model, ``theta_T <- d theta_T + (1 - d) theta_S``.

    The decay ramps linearly from ``decay_start`` to ``decay_end`` over the first
    ``warmup_frac`` of training and stays at ``decay_end`` after. The reference sets, per epoch,
    ``d = 0.999 + epoch / 100 * (0.9999 - 0.999)`` for the first 100 of 800 epochs, i.e.
    ``decay_start=0.999, decay_end=0.9999, warmup_frac=0.125`` with ``progress = epoch /
    epochs`` (the defaults here). The teacher starts as a copy of the student, is kept in
    ``eval()`` mode and never receives gradients. Floating buffers are copied, not averaged
    (ours are fixed position embeddings). The teacher follows the student's device: built on a
    CPU model that is later moved (as ``fit`` does), it moves with the first :meth:`update` or
    :meth:`to`. :meth:`state_dict` / :meth:`load_state_dict` round-trip it for checkpoints.

    Args:
        model: the student to copy.
        decay_start, decay_end: in [0, 1].
        warmup_frac: share of training (in [0, 1]) over which the decay ramps.

    Attributes:
        module: the teacher network.
    """

    def __init__(
        self,
        model: nn.Module,
        decay_start: float = 0.999,
        decay_end: float = 0.9999,
        warmup_frac: float = 0.125,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
        self.decay_start = check_unit_interval("decay_start", decay_start)
        self.decay_end = check_unit_interval("decay_end", decay_end)
        self.warmup_frac = check_unit_interval("warmup_frac", warmup_frac)
        self.module = copy.deepcopy(model).eval()
        self.module.requires_grad_(False)
        for p in self.module.parameters():
            p.grad = None  # deepcopy copies the student's .grad: memory the teacher never uses

    def decay(self, progress: float) -> float:
        """The decay at ``progress`` in [0, 1] (share of training done)."""
        p = check_unit_interval("progress", progress)
        if self.warmup_frac > 0 and p < self.warmup_frac:
            return self.decay_start + p / self.warmup_frac * (self.decay_end - self.decay_start)
        return self.decay_end

    @torch.no_grad()
    def update(self, student: nn.Module, progress: float) -> float:
        """One EMA step towards ``student`` (call after each optimizer step); returns the decay.

        Raises:
            ValueError: ``student``'s parameters do not match the teacher's.
        """
        d = self.decay(progress)
        t_params = list(self.module.parameters())
        s_params = list(student.parameters())
        if len(t_params) != len(s_params) or any(
            a.shape != b.shape for a, b in zip(t_params, s_params, strict=False)
        ):
            raise ValueError("student: its parameters do not match the teacher's")
        if s_params and t_params[0].device != s_params[0].device:
            self.to(s_params[0].device)
            t_params = list(self.module.parameters())
        s_data = [p.detach().to(t.dtype) for p, t in zip(s_params, t_params, strict=True)]
        torch._foreach_lerp_([t.data for t in t_params], s_data, 1.0 - d)
        for tb, sb in zip(self.module.buffers(), student.buffers(), strict=False):
            tb.copy_(sb)
        return d

    def to(self, device: torch.device | str) -> EMATeacher:
        """Move the teacher to ``device`` (outside any inference mode); returns ``self``."""
        with torch.inference_mode(False):
            self.module.to(device)
        return self

    @property
    def device(self) -> torch.device:
        """The device of the teacher's first parameter (CPU when it has none)."""
        first = next(self.module.parameters(), None)
        return first.device if first is not None else torch.device("cpu")

    def state_dict(self) -> dict[str, object]:
        """The teacher's weights and schedule (for checkpoints; plain tensors and floats, so
        ``torch.load(weights_only=True)`` reads it)."""
        return {
            "module": self.module.state_dict(),
            "decay_start": self.decay_start,
            "decay_end": self.decay_end,
            "warmup_frac": self.warmup_frac,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (weights copied onto the teacher's device).

        Raises:
            ValueError: a missing key, or weights that do not fit the teacher's architecture.
            TypeError: ``state`` is not a mapping.
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"state: expected a mapping, got {type(state).__name__}")
        missing = {"module", "decay_start", "decay_end", "warmup_frac"} - set(state)
        if missing:
            raise ValueError(f"state: missing keys {sorted(missing)}")
        decays = (
            check_unit_interval("decay_start", state["decay_start"]),
            check_unit_interval("decay_end", state["decay_end"]),
            check_unit_interval("warmup_frac", state["warmup_frac"]),
        )
        try:
            self.module.load_state_dict(state["module"])
        except RuntimeError as err:
            raise ValueError(f"state: the teacher weights do not fit this model ({err})") from err
        self.decay_start, self.decay_end, self.warmup_frac = decays
