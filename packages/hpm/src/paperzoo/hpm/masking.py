r"""Random and hard-patch masks and HPM's easy-to-hard schedule.

Masks are boolean ``(N, L)`` tensors, ``True`` = masked (removed from the encoder input, to be
reconstructed). Every row holds exactly ``N_m = L - floor(L (1 - r))`` masked patches (the
reference's ``len_keep = int(L * (1 - mask_ratio))``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from paperzoo.core.checks import check_finite, check_float_tensor, check_unit_interval

__all__ = [
    "check_mask",
    "easy_to_hard_alpha",
    "hard_patch_mask",
    "num_masked",
    "random_mask",
]


def num_masked(num_patches: int, mask_ratio: float) -> int:
    """``N_m = L - floor(L (1 - r))``, the masked-patch count per image (reference convention).

    Raises:
        ValueError: ``mask_ratio`` outside (0, 1) or leaving 0 visible / 0 masked patches.
    """
    if isinstance(num_patches, bool) or not isinstance(num_patches, int) or num_patches < 2:
        raise ValueError(f"num_patches: expected an int >= 2, got {num_patches!r}")
    r = check_unit_interval("mask_ratio", mask_ratio, open_=True)
    n_keep = int(num_patches * (1 - r))
    n_mask = num_patches - n_keep
    if n_keep <= 0 or n_mask <= 0:
        raise ValueError(
            f"mask_ratio: {r} leaves {n_keep} visible and {n_mask} masked of L={num_patches} "
            "patches; both must be positive"
        )
    return n_mask


def easy_to_hard_alpha(
    t: int, total: int, alpha_start: float = 0.0, alpha_end: float = 0.5
) -> float:
    r"""The easy-to-hard schedule ``alpha_t = alpha_0 + (t + 1) / T (alpha_T - alpha_0)``.

    ``alpha_t`` is the fraction of the masked patches that are the predicted-hardest ones.
    The reference uses ``t`` = epoch (0-based), ``T`` = epochs, ``alpha_0 = 0``,
    ``alpha_T = 0.5``; pass a step index and the step count for a per-step schedule.

    Raises:
        ValueError: ``total <= 0``, ``t`` outside ``[0, total)``, alphas outside [0, 1].
    """
    if isinstance(total, bool) or not isinstance(total, int) or total <= 0:
        raise ValueError(f"total: expected a positive int, got {total!r}")
    if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < total:
        raise ValueError(f"t: expected an int in [0, {total}), got {t!r}")
    a0 = check_unit_interval("alpha_start", alpha_start)
    a1 = check_unit_interval("alpha_end", alpha_end)
    return a0 + (t + 1) / total * (a1 - a0)


def _noise(
    shape: tuple[int, int], generator: torch.Generator | None, device: torch.device | None
) -> Tensor:
    """Uniform keys drawn on the generator's device, then moved to ``device``."""
    gen_device = generator.device if generator is not None else device
    keys = torch.rand(shape, generator=generator, device=gen_device)
    return keys if device is None else keys.to(device)


def _mask_from_keys(keys: Tensor, n_mask: int) -> Tensor:
    idx = keys.topk(n_mask, dim=1).indices
    return torch.zeros(keys.shape, dtype=torch.bool, device=keys.device).scatter_(1, idx, True)


def random_mask(
    batch_size: int,
    num_patches: int,
    mask_ratio: float = 0.75,
    generator: torch.Generator | None = None,
    *,
    device: torch.device | str | None = None,
) -> Tensor:
    """MAE's uniform random mask: ``N_m`` patches per row, every subset equally likely.

    Args:
        batch_size: ``N`` (>= 1).
        num_patches: ``L``.
        mask_ratio: ``r`` in (0, 1); default 0.75 (MAE / HPM).
        generator: optional ``torch.Generator`` (same seed -> same mask).
        device: where the mask lives (default: the generator's device, else CPU).

    Returns:
        ``(N, L)`` bool, exactly ``N_m`` True per row.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    n_mask = num_masked(num_patches, mask_ratio)
    dev = torch.device(device) if device is not None else None
    return _mask_from_keys(_noise((batch_size, num_patches), generator, dev), n_mask)


def hard_patch_mask(
    pred_loss: Tensor,
    mask_ratio: float = 0.75,
    hard_fraction: float = 0.5,
    generator: torch.Generator | None = None,
    *,
    validate: bool = True,
) -> Tensor:
    r"""HPM's mask: the predicted-hardest patches plus a uniform random rest.

    With ``n_hard = floor(N_m * hard_fraction)``: if ``n_hard <= 0`` the mask is uniform random;
    otherwise the ``n_hard`` patches with the largest ``pred_loss`` are masked, and the remaining
    ``N_m - n_hard`` masked patches are drawn uniformly from the other ``L - n_hard``.
    Vectorised (top-k on random keys after pinning the hard ones): ``O(N L log L)``, no loop over
    images, unlike the reference's per-image NumPy loop (same distribution). Ties in
    ``pred_loss`` at the ``n_hard`` boundary are broken by ``topk``.

    Args:
        pred_loss: ``(N, L)`` predicted per-patch difficulty (the EMA teacher's ``s^T``).
        mask_ratio: ``r`` in (0, 1), default 0.75.
        hard_fraction: ``alpha_t`` in [0, 1] (see :func:`easy_to_hard_alpha`); default 0.5, the
            schedule's final value.
        generator: optional ``torch.Generator`` for the random part.
        validate: check ``pred_loss`` is finite (one host sync).

    Returns:
        ``(N, L)`` bool on ``pred_loss.device``, exactly ``N_m`` True per row.
    """
    check_float_tensor("pred_loss", pred_loss, 2)
    if pred_loss.shape[0] == 0:
        raise ValueError(f"pred_loss: expected a non-empty batch, got {tuple(pred_loss.shape)}")
    alpha = check_unit_interval("hard_fraction", hard_fraction)
    n, length = pred_loss.shape
    n_mask = num_masked(length, mask_ratio)
    if validate:
        check_finite("pred_loss", pred_loss)
    n_hard = int(n_mask * alpha)
    keys = _noise((n, length), generator, pred_loss.device)
    if n_hard > 0:
        hard = pred_loss.detach().topk(n_hard, dim=1).indices
        keys = keys.scatter(1, hard, 2.0)  # above every uniform key: always selected
    return _mask_from_keys(keys, n_mask)


def check_mask(mask: Tensor, batch_size: int | None = None, num_patches: int | None = None) -> int:
    """Check a mask is bool ``(N, L)`` with the same number of True per row; return that number.

    Raises:
        TypeError: non-bool dtype.
        ValueError: wrong shape, or unequal counts per row.
    """
    if not isinstance(mask, Tensor):
        raise TypeError(f"mask: expected a torch.Tensor, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise TypeError(f"mask: expected dtype torch.bool (True = masked), got {mask.dtype}")
    if mask.dim() != 2:
        raise ValueError(f"mask: expected shape (N, L), got {tuple(mask.shape)}")
    expect = (batch_size, num_patches)
    if any(e is not None and e != s for e, s in zip(expect, mask.shape, strict=True)):
        raise ValueError(f"mask: expected shape {expect}, got {tuple(mask.shape)}")
    counts = mask.sum(dim=1)
    if counts.numel() == 0:
        return 0
    first = int(counts[0])
    if not bool((counts == first).all()):
        raise ValueError(
            "mask: every row must mask the same number of patches, got counts "
            f"{sorted(set(counts.tolist()))}"
        )
    return first


def take_patches(x: Tensor, idx: Tensor) -> Tensor:
    """Patches ``idx (N, K)`` of ``x (N, L, ...)``, shape ``(N, K, ...)`` (a gather, no host sync).

    With ``idx = ids_visible_first(mask)`` the first ``L - M`` rows are the visible patches and the
    rest the masked ones, each in ascending patch order: the order of boolean indexing
    (``x[~mask]``, ``x[mask]``) without its host sync. The model computes that order once per
    forward and takes several tensors with it.
    """
    return x.gather(1, idx.view(*idx.shape, *([1] * (x.dim() - 2))).expand(-1, -1, *x.shape[2:]))


def ids_visible_first(mask: Tensor) -> Tensor:
    """``(N, L)`` patch indices: visible ones ascending, then masked ones ascending."""
    return torch.argsort(mask.to(torch.int32), dim=1, stable=True)
