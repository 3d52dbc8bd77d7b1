"""The settings of the leaderboard: label noise and class imbalance applied to a core split.

A setting is a name (``clean``, ``uniform40``, ``pairflip30``, ``classdep``, ``imbalance100``, ...)
applied to the training *and* validation labels (a user's validation split is as noisy or as
imbalanced as their training data); the test split is never touched, so test metrics are measured
on clean, class-balanced-as-collected labels. Noise comes from the core's helpers
(:func:`~paperzoo.core.data.uniform_label_noise`, :func:`~paperzoo.core.data.pair_flip_transition`,
:func:`~paperzoo.core.data.class_dependent_label_noise`); :func:`long_tail_keep` is the imbalance
subsampler (it belongs in the core; it lives here until the core has one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import Tensor

from paperzoo.core.checks import UserError, check_labels, check_positive
from paperzoo.core.data import (
    Split,
    class_dependent_label_noise,
    pair_flip_transition,
    uniform_label_noise,
)

__all__ = [
    "SETTING_PATTERN",
    "Noisy",
    "apply_setting",
    "class_dependent_transition",
    "long_tail_keep",
    "parse_setting",
]

#: ``clean`` | ``uniform<pct>`` | ``pairflip<pct>`` | ``classdep`` | ``imbalance<ratio>``
SETTING_PATTERN = re.compile(r"^(clean|classdep|uniform(\d+)|pairflip(\d+)|imbalance(\d+))$")


def parse_setting(name: str) -> tuple[str, float]:
    """``"uniform40"`` -> ``("uniform", 0.4)``; ``"imbalance100"`` -> ``("imbalance", 100.0)``.

    Raises:
        UserError: a name that is not one of the forms of :data:`SETTING_PATTERN`, or a rate
            outside [0, 100) percent, or an imbalance ratio below 1.
    """
    m = SETTING_PATTERN.match(name)
    if m is None:
        raise UserError(
            f"setting: expected clean, classdep, uniform<pct>, pairflip<pct> or "
            f"imbalance<ratio>, got {name!r}"
        )
    if name in ("clean", "classdep"):
        return name, 0.0
    kind = re.sub(r"\d+$", "", name)
    value = float(name[len(kind) :])
    if kind == "imbalance":
        if value < 1:
            raise UserError(f"setting: expected an imbalance ratio >= 1, got {name!r}")
        return kind, value
    if value >= 100:
        raise UserError(f"setting: expected a noise rate below 100 percent, got {name!r}")
    return kind, value / 100.0


def class_dependent_transition(num_classes: int, max_rate: float = 0.4) -> Tensor:
    """Row-stochastic ``(K, K)`` matrix where class ``k`` flips with rate ``max_rate * k / (K-1)``.

    The flipped mass is spread uniformly over the other ``K - 1`` classes, so class 0 stays clean
    and the last class is the noisiest (a class-dependent, not pair-structured, noise).
    """
    if num_classes < 2:
        raise ValueError(f"num_classes: expected >= 2, got {num_classes}")
    if not 0.0 <= max_rate < 1.0:
        raise ValueError(f"max_rate: expected a value in [0, 1), got {max_rate}")
    rates = torch.linspace(0.0, max_rate, num_classes, dtype=torch.float64)
    off = (rates / (num_classes - 1)).unsqueeze(1).expand(num_classes, num_classes)
    t = off.clone()
    t.diagonal().copy_(1.0 - rates)
    return t


def long_tail_keep(
    y: Tensor, num_classes: int, ratio: float, *, generator: torch.Generator | None = None
) -> Tensor:
    """Indices of a long-tailed subsample: class ``k`` keeps ``n_0 * ratio^(-k/(K-1))`` rows.

    ``n_0`` is the count of class 0 (the head; every class keeps at most what it has and at least
    one row), the exponential profile of the long-tailed CIFAR protocol (Cui et al., 2019); with two
    classes it is a ``ratio``:1 binary imbalance. Rows are chosen at random within each class.

    Args:
        y: ``(N,)`` labels.
        num_classes: ``K >= 2``.
        ratio: head-to-tail count ratio, ``>= 1``.
        generator: a CPU generator for the draw.

    Returns:
        ``(M,)`` int64 indices into ``y``, sorted.
    """
    check_labels("y", y, num_classes=num_classes)
    check_positive("ratio", ratio)
    if ratio < 1:
        raise ValueError(f"ratio: expected >= 1, got {ratio}")
    if num_classes < 2:
        raise ValueError(f"num_classes: expected >= 2, got {num_classes}")
    y_cpu = y.cpu()
    counts = torch.bincount(y_cpu, minlength=num_classes)
    k = torch.arange(num_classes, dtype=torch.float64)
    want = (counts[0].double() * ratio ** (-k / (num_classes - 1))).floor().long()
    keep_n = torch.minimum(want.clamp_min(1), counts)
    # a random rank within each class: rows whose rank is below their class's quota are kept
    order = torch.randperm(y_cpu.numel(), generator=generator)
    shuffled = y_cpu[order]
    by_class = torch.argsort(shuffled, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(by_class)
    rank[by_class] = torch.arange(y_cpu.numel()) - starts[shuffled[by_class]]
    kept = order[rank < keep_n[shuffled]]
    return kept.sort().values


@dataclass(frozen=True)
class Noisy:
    """A split under one setting.

    Attributes:
        split: the core split with the setting's training and validation labels (test untouched).
        y_train_clean: ``(N_train,)`` the true training labels (for the noisy-train gap).
        y_val_clean: ``(N_val,)`` the true validation labels (measurement only, never selection).
        imbalanced: whether the setting subsamples classes (G-mean is reported then).
    """

    split: Split
    y_train_clean: Tensor
    y_val_clean: Tensor
    imbalanced: bool


def apply_setting(split: Split, setting: str, *, seed: int) -> Noisy:
    """Apply ``setting`` to the training and validation parts of ``split`` (seeded).

    Uniform noise flips to one of the *other* classes (``include_true=False``), so ``uniform40``
    changes 40% of the labels; ``pairflip30`` sends 30% of class ``k`` to ``k + 1``; ``classdep``
    uses :func:`class_dependent_transition` (rates 0 to 40%); ``imbalance<r>`` keeps a
    :func:`long_tail_keep` subsample of training and validation.
    """
    kind, value = parse_setting(setting)
    k = split.num_classes
    g = torch.Generator().manual_seed(10_007 * seed + 17)
    xtr, ytr, xva, yva = split.x_train, split.y_train, split.x_val, split.y_val
    if kind == "imbalance":
        tr = long_tail_keep(ytr, k, value, generator=g)
        va = long_tail_keep(yva, k, value, generator=g)
        xtr, ytr, xva, yva = xtr[tr], ytr[tr], xva[va], yva[va]
        noisy_tr, noisy_va = ytr, yva
    elif kind == "uniform":
        noisy_tr = uniform_label_noise(ytr, k, value, generator=g)[0]
        noisy_va = uniform_label_noise(yva, k, value, generator=g)[0]
    elif kind in ("pairflip", "classdep"):
        t = pair_flip_transition(k, value) if kind == "pairflip" else class_dependent_transition(k)
        noisy_tr = class_dependent_label_noise(ytr, t, generator=g)[0]
        noisy_va = class_dependent_label_noise(yva, t, generator=g)[0]
    else:
        noisy_tr, noisy_va = ytr, yva
    out = Split(
        x_train=xtr,
        y_train=noisy_tr,
        x_val=xva,
        y_val=noisy_va,
        x_test=split.x_test,
        y_test=split.y_test,
        num_classes=k,
        task=split.task,
        name=split.name,
        input_shape=split.input_shape,
    )
    return Noisy(out, ytr, yva, kind == "imbalance")
