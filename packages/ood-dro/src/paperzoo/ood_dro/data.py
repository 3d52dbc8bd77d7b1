"""The paper's data: the two-Gaussian mixture with a shifted unlabeled distribution, and an
offline real-data analog on scikit-learn's digits (corrupted unlabeled images).

Two-Gaussian model (paper Sec. 4): ``y = +-1`` with probability 1/2, ``x | y ~ N(y mu0, sigma0^2 I)``;
unlabeled ``x' ~ (1/2) sum_{u = +-1} N(u mu1, sigma1^2 I)`` with ``mu1 = mu0 + alpha_ratio ||mu0|| v``
for a random unit ``v``: the shift ``||mu1 - mu0|| = alpha_ratio ||mu0||``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from paperzoo.core.checks import check_positive, check_positive_int
from paperzoo.core.data import load_dataset

__all__ = ["DigitsShift", "digits_shift", "gmm_mean", "shifted_unlabeled", "two_gaussians"]


def gmm_mean(d: int, norm: float = 1.0, seed: int = 0) -> Tensor:
    """The class mean ``mu0 = norm * u`` ``(d,)`` float32, ``u`` a uniformly random unit vector
    (from ``seed``; the reference's ``generate_mu``).

    The mixture is isotropic, but Adam is not rotation-equivariant: an axis-aligned mean puts
    the whole signal on one coordinate, whose per-coordinate normalised step then caps how fast
    the unlabeled term can find it (RSS gained nothing over ERM with ``mu0 = e_1`` in our runs).
    """
    check_positive_int("d", d)
    r = check_positive("norm", norm, allow_zero=True)
    v = torch.randn(d, generator=torch.Generator().manual_seed(seed))
    mu: Tensor = r * v / v.norm()
    return mu


def _mean(mu0: Tensor | float, d: int) -> Tensor:
    if isinstance(mu0, Tensor):
        if mu0.shape != (d,):
            raise ValueError(f"mu0: expected shape ({d},), got {tuple(mu0.shape)}")
        return mu0.float()
    return gmm_mean(d, mu0)


def two_gaussians(
    m: int, d: int, mu0: Tensor | float = 1.0, sigma0: float = 1.0, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """``m`` labeled draws from ``P0``: ``y`` uniform on ``{-1, +1}``, ``x = y mu0 + sigma0 eps``.

    Args:
        m: number of points (``>= 1``).
        d: dimension.
        mu0: the class mean ``(d,)``, or its norm (then :func:`gmm_mean` with seed 0).
        sigma0: noise scale ``> 0``.
        seed: the draw's seed.

    Returns:
        ``x`` float32 ``(m, d)`` and ``y`` int64 ``(m,)`` in ``{-1, +1}``.
    """
    check_positive_int("m", m)
    mu = _mean(mu0, check_positive_int("d", d))
    s = check_positive("sigma0", sigma0)
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (m,), generator=g) * 2 - 1
    x = y[:, None].float() * mu + s * torch.randn(m, d, generator=g)
    return x, y


def shifted_unlabeled(
    n: int,
    mu0: Tensor | float,
    alpha_ratio: float = 0.0,
    sigma1: float = 1.0,
    seed: int = 0,
    *,
    d: int | None = None,
) -> tuple[Tensor, Tensor]:
    """``n`` unlabeled draws from the shifted mixture ``P_{1,X}``.

    ``mu1 = mu0 + alpha_ratio ||mu0|| v`` with ``v`` a uniformly random unit vector (from
    ``seed``); ``x' = u mu1 + sigma1 eps`` with ``u`` uniform on ``{-1, +1}`` (not returned).

    Args:
        n: number of points (``>= 0``).
        mu0: the labeled class mean ``(d,)``, or its norm (then pass ``d``; :func:`gmm_mean`).
        alpha_ratio: shift of the mean relative to ``||mu0||`` (``>= 0``).
        sigma1: noise scale ``> 0``.
        seed: the draw's seed.
        d: the dimension when ``mu0`` is a norm.

    Returns:
        ``x'`` float32 ``(n, d)`` and ``mu1`` ``(d,)``.
    """
    check_positive_int("n", n, minimum=0)
    if isinstance(mu0, Tensor):
        mu = _mean(mu0, mu0.shape[0] if mu0.dim() == 1 else -1)
    else:
        if d is None:
            raise ValueError("d: expected the dimension when mu0 is a norm, got None")
        mu = gmm_mean(d, mu0)
    a = check_positive("alpha_ratio", alpha_ratio, allow_zero=True)
    s = check_positive("sigma1", sigma1)
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(mu.shape[0], generator=g)
    mu1 = mu + a * mu.norm() * v / v.norm()
    u = torch.randint(0, 2, (n,), generator=g) * 2 - 1
    return u[:, None].float() * mu1 + s * torch.randn(n, mu.shape[0], generator=g), mu1


@dataclass(frozen=True)
class DigitsShift:
    """The digits analog: few labels, many corrupted unlabeled images, clean val/test.

    ``x_*`` float32 ``(N, 64)`` in about ``[0, 1]``; ``y_*`` int64 in ``[0, num_classes)``.
    """

    x_l: Tensor
    y_l: Tensor
    x_u: Tensor
    x_val: Tensor
    y_val: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int


def _shift_images(x: Tensor, pixels: int, g: torch.Generator) -> Tensor:
    """Each 8x8 image moved by a random ``(dy, dx)`` in ``[-pixels, pixels]^2``, zero-filled."""
    if pixels == 0:
        return x
    imgs = x.view(-1, 1, 8, 8)
    pad = F.pad(imgs, (pixels, pixels, pixels, pixels))
    k = 2 * pixels + 1
    which = torch.randint(0, k * k, (x.shape[0],), generator=g)
    out = torch.empty_like(imgs)
    for c in range(k * k):  # one crop per offset (at most 9), not one per image
        rows = which == c
        dy, dx = divmod(c, k)
        out[rows] = pad[rows, :, dy : dy + 8, dx : dx + 8]
    return out.reshape(x.shape[0], 64)


def digits_shift(
    classes: tuple[int, ...] | None = (3, 8),
    labels_per_class: int = 20,
    noise: float = 0.0,
    shift_pixels: int = 0,
    seed: int = 0,
) -> DigitsShift:
    """scikit-learn's 8x8 digits split into labeled, unlabeled (corrupted), validation and test.

    The core's seeded split (70/15/15) is used; ``labels_per_class`` training images per class
    are labeled, the rest of the training images become unlabeled data shifted by Gaussian pixel
    noise of standard deviation ``noise`` and random shifts of up to ``shift_pixels`` pixels (the
    ``alpha`` knob). Validation and test images are clean.

    Args:
        classes: the digits to keep, relabelled ``0..K-1`` in this order (``None``: all ten).
        labels_per_class: labeled images per class.
        noise: pixel noise standard deviation (``>= 0``).
        shift_pixels: largest shift in pixels (``>= 0``).
        seed: split, labeled choice and corruption seed.
    """
    check_positive_int("labels_per_class", labels_per_class)
    sd = check_positive("noise", noise, allow_zero=True)
    px = check_positive_int("shift_pixels", shift_pixels, minimum=0)
    split = load_dataset("digits", seed=seed, val_fraction=0.15, test_fraction=0.15)
    keep = list(range(10)) if classes is None else list(classes)
    if len(set(keep)) < 2 or any(not 0 <= c < 10 for c in keep):
        raise ValueError(
            f"classes: expected two or more distinct digits in [0, 10), got {classes!r}"
        )
    lut = torch.full((10,), -1, dtype=torch.long)
    lut[torch.tensor(keep)] = torch.arange(len(keep))

    def take(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        m = lut[y] >= 0
        return x[m], lut[y[m]]

    x_tr, y_tr = take(split.x_train, split.y_train)
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(x_tr.shape[0], generator=g)
    labeled = torch.zeros(x_tr.shape[0], dtype=torch.bool)
    for c in range(len(keep)):  # per class (at most 10): its first labels_per_class shuffled rows
        rows = order[y_tr[order] == c]
        if rows.numel() < labels_per_class:
            raise ValueError(
                f"labels_per_class: class {keep[c]} has only {rows.numel()} training images"
            )
        labeled[rows[:labels_per_class]] = True
    x_u = _shift_images(x_tr[~labeled], px, g)
    x_u = x_u + sd * torch.randn(x_u.shape, generator=g)
    x_va, y_va = take(split.x_val, split.y_val)
    x_te, y_te = take(split.x_test, split.y_test)
    return DigitsShift(x_tr[labeled], y_tr[labeled], x_u, x_va, y_va, x_te, y_te, len(keep))
