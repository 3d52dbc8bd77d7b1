"""The contestants: every classification loss of the workspace that applies to plain labelled data.

Each :class:`Contestant` names its package, builds the loss for a task (``build(params, task)``)
and lists its hyper-parameter grid (``grid`` at ``--quick``, ``full_grid`` at ``--full``); the
experiment gives every contestant the same selection on validation over at most that many points.

All losses see the same model: an MLP with ``K`` outputs (``K = 2`` for binary tasks). Binary
margin losses (AnyLoss, EnsLoss, hinge) take one score; they get the logit difference
``s = o_1 - o_0`` (the private adapter ``_TwoLogitMargin``), so ``argmax`` and ``sign(s)`` predict the same class and
``softmax(o)_1 = sigmoid(s)`` is the probability the calibration error is measured on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.anyloss import AnyLoss, OneVsRestAnyLoss
from paperzoo.compsum import GeneralizedCrossEntropyLoss, MAELoss
from paperzoo.ensloss import EnsLoss, HingeLoss
from paperzoo.ldr import ALDRKLLoss, LDRKLLoss
from paperzoo.losses.baselines import FocalLoss
from paperzoo.zloss import ZLoss

__all__ = ["CONTESTANTS", "Contestant", "Task", "contestants_for"]


@dataclass(frozen=True)
class Task:
    """What a loss is built for: ``num_classes`` (2 = binary) and the training-set size."""

    num_classes: int
    num_train: int


class _TwoLogitMargin(nn.Module):
    """Feed a binary loss of one score the margin ``o[:, 1] - o[:, 0]`` of ``(N, 2)`` logits."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """``(N, 2)`` logits, ``(N,)`` 0/1 labels -> the inner loss of ``(N,)`` margins."""
        return self.inner(logits[:, 1] - logits[:, 0], target.to(logits.dtype))  # type: ignore[no-any-return]


class _LabelSmoothingCE(nn.Module):
    """Cross-entropy with label smoothing ``epsilon`` (``torch.nn.functional.cross_entropy``)."""

    def __init__(self, epsilon: float) -> None:
        super().__init__()
        self.epsilon = float(epsilon)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """``(N, C)``, ``(N,)`` -> scalar."""
        return F.cross_entropy(logits, target, label_smoothing=self.epsilon)


class _WithIndex(nn.Module):
    """ALDR-KL needs each example's dataset index; the experiment's step passes it through."""

    def __init__(self, inner: ALDRKLLoss) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, logits: Tensor, target: Tensor, index: Tensor | None = None) -> Tensor:
        """``(N, C)``, ``(N,)``, ``(N,)`` indices -> scalar."""
        return self.inner(logits, target, index)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Contestant:
    """A loss in the race.

    Attributes:
        name: the leaderboard name.
        package: the distribution that holds it (``torch`` for the two torch baselines).
        build: ``build(params, task) -> nn.Module`` called as ``loss(logits, target)`` (or with
            ``index`` when ``needs_index``).
        grid: hyper-parameter axes at ``--quick`` (``{}``: none).
        full_grid: the axes at ``--full``.
        binary_only / multiclass_only: where it applies.
        needs_index: the loss keeps per-example state (ALDR-KL's lambda table).
    """

    name: str
    package: str
    build: Callable[[Mapping[str, Any], Task], nn.Module]
    grid: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    full_grid: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    binary_only: bool = False
    needs_index: bool = False


def _ce(p: Mapping[str, Any], t: Task) -> nn.Module:
    return nn.CrossEntropyLoss()


def _aldr(p: Mapping[str, Any], t: Task) -> nn.Module:
    return _WithIndex(ALDRKLLoss(t.num_train, lam0=float(p["lam0"]), validate=False))


def _anyloss(p: Mapping[str, Any], t: Task) -> nn.Module:
    if t.num_classes == 2:
        return _TwoLogitMargin(AnyLoss(str(p["metric"]), validate=False))  # type: ignore[arg-type]
    return OneVsRestAnyLoss(str(p["metric"]), t.num_classes, validate=False)  # type: ignore[arg-type]


def _ensloss(p: Mapping[str, Any], t: Task) -> nn.Module:
    return _TwoLogitMargin(EnsLoss(lam=float(p["lam"]), validate=False))


CONTESTANTS: tuple[Contestant, ...] = (
    Contestant("cross_entropy", "torch", _ce),
    Contestant(
        "focal",
        "paperzoo-losses",
        lambda p, t: FocalLoss(float(p["gamma"]), validate=False),
        {"gamma": (1.0, 2.0)},
        {"gamma": (0.5, 1.0, 2.0, 5.0)},
    ),
    Contestant(
        "label_smoothing",
        "torch",
        lambda p, t: _LabelSmoothingCE(float(p["epsilon"])),
        {"epsilon": (0.1, 0.3)},
        {"epsilon": (0.05, 0.1, 0.2, 0.3)},
    ),
    Contestant(
        "z_loss",
        "paperzoo-zloss",
        lambda p, t: ZLoss(a=float(p["a"]), b=float(p["b"]), validate=False),
        {"a": (1.0,), "b": (1.0, 2.0)},
        {"a": (0.5, 1.0, 2.0), "b": (0.0, 1.0, 2.0)},
    ),
    Contestant(
        "ldr_kl",
        "paperzoo-ldr",
        lambda p, t: LDRKLLoss(lam=float(p["lam"]), validate=False),
        {"lam": (1.0, 10.0)},
        {"lam": (0.1, 1.0, 10.0)},
    ),
    Contestant(
        "aldr_kl",
        "paperzoo-ldr",
        _aldr,
        {"lam0": (1.0, 10.0)},
        {"lam0": (0.1, 1.0, 10.0)},
        needs_index=True,
    ),
    Contestant(
        "gce",
        "paperzoo-compsum",
        lambda p, t: GeneralizedCrossEntropyLoss(float(p["q"]), validate=False),
        {"q": (0.4, 0.7)},
        {"q": (0.1, 0.4, 0.7, 0.9)},
    ),
    Contestant("mae", "paperzoo-compsum", lambda p, t: MAELoss(validate=False)),
    Contestant(
        "anyloss",
        "paperzoo-anyloss",
        _anyloss,
        {"metric": ("f1", "gmean")},
        {"metric": ("f1", "gmean", "accuracy", "balanced_accuracy")},
    ),
    Contestant(
        "ensloss",
        "paperzoo-ensloss",
        _ensloss,
        {"lam": (0.0, 1.0)},
        {"lam": (-1.0, 0.0, 1.0, 2.0)},
        binary_only=True,
    ),
    Contestant(
        "hinge",
        "paperzoo-ensloss",
        lambda p, t: _TwoLogitMargin(HingeLoss(validate=False)),
        binary_only=True,
    ),
)


def contestants_for(num_classes: int, names: tuple[str, ...] = ()) -> list[Contestant]:
    """The contestants that apply to ``num_classes`` (binary-only losses only when it is 2),
    restricted to ``names`` when given."""
    out = [c for c in CONTESTANTS if num_classes == 2 or not c.binary_only]
    return [c for c in out if not names or c.name in names]


def _check_registry() -> None:
    names = [c.name for c in CONTESTANTS]
    if len(set(names)) != len(names):
        raise RuntimeError(f"CONTESTANTS: duplicate names in {names}")


_check_registry()
