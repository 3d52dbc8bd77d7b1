"""Batched tensor augmentations for 1-D signals ``(N, L)`` and small images ``(N, H, W)``.

Five types (the paper stresses many augmentation types): random translation, stretch (scale),
Gaussian noise, cutout (a zeroed window) and amplitude jitter; every draw comes from a
``torch.Generator``, one set of parameters per example, no loop over examples.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from paperzoo.core.checks import check_choice, check_float_tensor

__all__ = ["AUGMENTATIONS", "augment"]

AUGMENTATIONS: tuple[str, ...] = ("translate", "stretch", "noise", "cutout", "amplitude")


def _uniform(n: int, lo: float, hi: float, like: Tensor, g: torch.Generator) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g, device=like.device, dtype=like.dtype)


def augment(
    x: Tensor,
    kinds: Sequence[str],
    generator: torch.Generator,
    *,
    shift: float = 0.15,
    scale: tuple[float, float] = (0.8, 1.2),
    noise: float = 0.1,
    cutout: float = 0.25,
    amplitude: tuple[float, float] = (0.7, 1.3),
) -> Tensor:
    """One random view of each example.

    Args:
        x: signals ``(N, L)`` or images ``(N, H, W)``.
        kinds: a subset of :data:`AUGMENTATIONS`, applied in that order.
        generator: the random source (on ``x``'s device).
        shift: largest translation, a share of the length (each axis).
        scale: stretch factor range (zoom about the centre; zeros outside).
        noise: Gaussian noise standard deviation.
        cutout: side of the zeroed window, a share of the length (each axis).
        amplitude: range of the per-example gain.

    Returns:
        The augmented batch, the shape of ``x``.
    """
    check_float_tensor("x", x, nonempty=True)
    if x.dim() not in (2, 3):
        raise ValueError(f"x: expected (N, L) or (N, H, W), got shape {tuple(x.shape)}")
    for k in kinds:
        check_choice("kinds", k, AUGMENTATIONS)
    img = x.unsqueeze(1) if x.dim() == 3 else x.view(x.shape[0], 1, 1, x.shape[1])  # (N, 1, H, W)
    n, _, h, w = img.shape
    two_d = h > 1
    g = generator
    if "translate" in kinds or "stretch" in kinds:
        theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
        s = (
            _uniform(n, *scale, x, g)
            if "stretch" in kinds
            else torch.ones(n, device=x.device, dtype=x.dtype)
        )
        theta[:, 0, 0] = 1 / s
        theta[:, 1, 1] = 1 / s if two_d else 1.0
        if "translate" in kinds:
            theta[:, 0, 2] = _uniform(n, -2 * shift, 2 * shift, x, g)
            if two_d:
                theta[:, 1, 2] = _uniform(n, -2 * shift, 2 * shift, x, g)
        grid = F.affine_grid(theta, list(img.shape), align_corners=False)
        img = F.grid_sample(img, grid, padding_mode="zeros", align_corners=False)
    if "noise" in kinds:
        img = img + noise * torch.randn(img.shape, generator=g, device=x.device, dtype=x.dtype)
    if "cutout" in kinds:
        win = torch.ones_like(img, dtype=torch.bool)
        for axis, size in ((3, w), (2, h)):
            if size == 1:
                continue
            width = max(1, round(cutout * size))
            start = torch.randint(0, size - width + 1, (n,), generator=g, device=x.device)
            pos = torch.arange(size, device=x.device)
            inside = (pos >= start[:, None]) & (pos < start[:, None] + width)  # (N, size)
            shape = [n, 1, 1, 1]
            shape[axis] = size
            win = win & inside.view(shape)
        img = img * ~win
    if "amplitude" in kinds:
        img = img * _uniform(n, *amplitude, x, g).view(n, 1, 1, 1)
    return img.reshape(x.shape)
