"""Patchify / unpatchify and the per-patch reconstruction loss of MAE (HPM's loss target)."""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import Tensor

from paperzoo.core.checks import check_finite, check_float_tensor, check_nonempty

__all__ = ["patchify", "per_patch_mse", "unpatchify"]


def _check_patch_size(patch_size: int) -> int:
    if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size <= 0:
        raise ValueError(f"patch_size: expected a positive int, got {patch_size!r}")
    return patch_size


def patchify(imgs: Tensor, patch_size: int) -> Tensor:
    """Split images into flattened non-overlapping patches.

    Args:
        imgs: ``(N, C, H, W)`` images; ``H`` and ``W`` must be multiples of ``patch_size``.
        patch_size: the patch side ``p``.

    Returns:
        ``(N, L, D)`` with ``L = (H/p)(W/p)`` patches in row-major grid order and
        ``D = p*p*C`` values per patch in ``(p_row, p_col, channel)`` order, i.e. the reference's
        ``nchpwq -> nhwpqc`` layout (channel fastest), so targets match the official code.

    Raises:
        ValueError: wrong rank, or ``H``/``W`` not divisible by ``patch_size``.
    """
    p = _check_patch_size(patch_size)
    if not isinstance(imgs, Tensor):
        raise TypeError(f"imgs: expected a torch.Tensor, got {type(imgs).__name__}")
    if imgs.dim() != 4:
        raise ValueError(f"imgs: expected shape (N, C, H, W), got {tuple(imgs.shape)}")
    h, w = imgs.shape[-2:]
    if h % p or w % p:
        raise ValueError(
            f"imgs: height and width must be divisible by patch_size={p}, got H={h}, W={w}"
        )
    return rearrange(imgs, "n c (h p) (w q) -> n (h w) (p q c)", p=p, q=p)


def unpatchify(
    x: Tensor, patch_size: int, channels: int, grid: tuple[int, int] | None = None
) -> Tensor:
    """Inverse of :func:`patchify`.

    Args:
        x: ``(N, L, D)`` patches with ``D = p*p*channels``.
        patch_size: the patch side ``p``.
        channels: ``C``.
        grid: ``(H/p, W/p)``; default a square grid ``sqrt(L) x sqrt(L)``.

    Returns:
        ``(N, C, H, W)`` images.

    Raises:
        ValueError: ``D != p*p*C``, or ``L`` not a square when ``grid`` is omitted, or ``L``
            not equal to the product of ``grid``; ``channels`` or ``grid`` not positive ints.
    """
    p = _check_patch_size(patch_size)
    if isinstance(channels, bool) or not isinstance(channels, int) or channels <= 0:
        raise ValueError(f"channels: expected a positive int, got {channels!r}")
    if grid is not None and (
        len(grid) != 2 or any(isinstance(g, bool) or not isinstance(g, int) or g <= 0 for g in grid)
    ):
        raise ValueError(f"grid: expected two positive ints (H/p, W/p), got {grid!r}")
    if not isinstance(x, Tensor):
        raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 3:
        raise ValueError(f"x: expected shape (N, L, D), got {tuple(x.shape)}")
    if x.shape[-1] != p * p * channels:
        raise ValueError(
            f"x: expected D = patch_size**2 * channels = {p * p * channels}, got {x.shape[-1]}"
        )
    n_patches = x.shape[1]
    if grid is None:
        side = math.isqrt(n_patches)
        if side * side != n_patches:
            raise ValueError(f"x: L={n_patches} patches is not a square grid; pass grid=(h, w)")
        grid = (side, side)
    if grid[0] * grid[1] != n_patches:
        raise ValueError(f"grid: {grid} holds {grid[0] * grid[1]} patches, x has L={n_patches}")
    return rearrange(
        x, "n (h w) (p q c) -> n c (h p) (w q)", h=grid[0], w=grid[1], p=p, q=p, c=channels
    )


def per_patch_mse(
    pred: Tensor,
    target: Tensor,
    norm_pix: bool = False,
    eps: float = 1e-6,
    *,
    validate: bool = True,
) -> Tensor:
    """Per-patch reconstruction loss ``l_i = mean_d (pred_id - t_id)^2`` (HPM's loss target).

    Only the patches passed in count: MAE (and HPM) feed the *masked* patches here, so visible
    patches never enter the reconstruction loss.

    Args:
        pred: ``(N, M, D)`` predicted patches.
        target: ``(N, M, D)`` raw target patches (from :func:`patchify`).
        norm_pix: normalise each target patch, ``(t - mean(t)) / sqrt(var_unbiased(t) + eps)``
            (MAE's ``norm_pix_loss``; default ``False`` as in the official ViT-B script).
        eps: the variance epsilon, ``1e-6`` as in the reference.
        validate: check shapes and finiteness (one host sync); turn off in hot loops.

    Returns:
        ``(N, M)`` per-patch mean squared errors.

    Raises:
        ValueError: shape mismatch, empty batch, non-finite input, ``norm_pix`` with ``D < 2``.
    """
    check_float_tensor("pred", pred, 3)
    check_float_tensor("target", target, 3)
    if pred.shape != target.shape:
        raise ValueError(
            f"pred, target: expected the same shape, got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}"
        )
    if validate:
        check_nonempty("pred", pred)
        check_finite("pred", pred)
        check_finite("target", target)
    if norm_pix:
        if target.shape[-1] < 2:
            raise ValueError(
                "target: norm_pix needs at least 2 values per patch (unbiased variance), got "
                f"D={target.shape[-1]}"
            )
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True, unbiased=True)
        target = (target - mean) / torch.sqrt(var + eps)
    return (pred - target).pow(2).mean(dim=-1)
