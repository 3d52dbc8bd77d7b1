"""Label-noise generators of the paper's protocol (noise on training labels only).

The paper's uniform noise replaces a label by a uniformly drawn class that may equal the true one
(flip rate eta (K-1)/K): ``paperzoo.core.data.uniform_label_noise(..., include_true=True)``, which
:func:`uniform_label_noise` calls. The pair flip with an optional custom mapping stays here.
"""

from __future__ import annotations

import torch
from torch import Tensor

from paperzoo.core.checks import check_labels, check_positive_int, check_unit_interval
from paperzoo.core.data import uniform_label_noise as _core_uniform_label_noise

__all__ = ["class_dependent_label_noise", "uniform_label_noise"]


def _check(y: object, num_classes: int, eta: float) -> Tensor:
    """(N,) long labels after the core checks of ``y``, ``num_classes`` >= 2 and ``eta`` in [0, 1]."""
    check_positive_int("num_classes", num_classes, minimum=2)
    check_unit_interval("eta", eta)
    return check_labels("y", y, num_classes=num_classes).long()


def uniform_label_noise(
    y: Tensor, num_classes: int, eta: float, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """With probability eta replace each label by a uniformly drawn class (possibly the same one).

    Returns ``(noisy_y (N,), is_noisy (N,) bool)`` where ``is_noisy`` marks labels that changed.
    Draws on the CPU (pass a CPU ``generator``) and returns tensors on ``y``'s device.
    """
    y = _check(y, num_classes, eta)
    return _core_uniform_label_noise(y, num_classes, eta, generator=generator, include_true=True)


def class_dependent_label_noise(
    y: Tensor,
    num_classes: int,
    eta: float,
    generator: torch.Generator | None = None,
    mapping: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """With probability eta map label y to ``mapping[y]`` (default ``(y + 1) % K``, a pair flip).

    ``mapping`` is a (K,) integer tensor. Returns ``(noisy_y, is_noisy)`` as
    :func:`uniform_label_noise`.
    """
    y = _check(y, num_classes, eta)
    if mapping is None:
        mapping = (torch.arange(num_classes) + 1) % num_classes
    mapping = check_labels("mapping", mapping, n=num_classes, num_classes=num_classes)
    y_cpu = y.cpu()
    flip = torch.rand(y.shape[0], generator=generator) < eta
    noisy = torch.where(flip, mapping.long().cpu()[y_cpu], y_cpu).to(y.device)
    return noisy, noisy != y
