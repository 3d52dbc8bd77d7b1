"""Denoising blocks of NoProp: (x, z[, t]) → logits ``(B, K)`` (or ``(B, e)`` for flow matching).

The architecture follows the paper's figure for the DT block (spec section 3): an image branch
(conv → BN → ReLU → max-pool → dropout per stage, then FC), a label branch (FC → BN → ReLU),
concatenation, then FC → FC → FC K. Continuous-time blocks add a sinusoidal time branch and, per
the paper's CT architecture figure, drop batch-norm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

__all__ = ["ConvDenoiseBlock", "MLPDenoiseBlock", "SinusoidalTimeEmbedding"]

Norm = Literal["batch", "none"]


class SinusoidalTimeEmbedding(nn.Module):
    """Sinusoidal time features: t ∈ [0, 1], ``(B,)`` → ``(B, dim)`` = [sin(s·t·f), cos(s·t·f)].

    The transformer/DDPM embedding of the scaled time s·t with ``dim / 2`` geometric
    frequencies f_i = 10000^(−i/(dim/2 − 1)), i = 0..dim/2 − 1 (the CT/FM blocks' time branch;
    the paper names a sinusoidal embedding without its constants, so s = 1000 maps [0, 1] to
    the usual DDPM step range).

    Args:
        dim: output size, an even integer ≥ 2.
        scale: s, default 1000.0.
    """

    freqs: Tensor

    def __init__(self, dim: int, scale: float = 1000.0) -> None:
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"time_dim must be an even integer >= 2, got {dim}")
        self.dim = dim
        self.scale = scale
        half = dim // 2
        self.register_buffer(
            "freqs", torch.exp(-math.log(10000.0) * torch.arange(half) / max(half - 1, 1))
        )

    def forward(self, t: Tensor) -> Tensor:
        """``(B,)`` times → ``(B, dim)`` features (in t's dtype)."""
        arg = (self.scale * t).unsqueeze(-1) * self.freqs.to(t.dtype)
        return torch.cat([arg.sin(), arg.cos()], dim=-1)


def _norm1d(width: int, norm: Norm) -> nn.Module:
    return nn.BatchNorm1d(width) if norm == "batch" else nn.Identity()


class _DenoiseBlockBase(nn.Module):
    """Shared input checks and the label/time branches and the fused head."""

    validate: bool

    def _init_common(
        self,
        embed_dim: int,
        num_classes: int,
        width: int,
        time_dim: int | None,
        norm: Norm | None,
    ) -> None:
        if embed_dim < 1 or num_classes < 1 or width < 2:
            raise ValueError(
                f"embed_dim, num_classes must be >= 1 and width >= 2, got {embed_dim}, "
                f"{num_classes}, {width}"
            )
        self.embed_dim = embed_dim
        self.num_classes = num_classes
        self.time_dim = time_dim
        resolved: Norm = norm if norm is not None else ("batch" if time_dim is None else "none")
        if resolved not in ("batch", "none"):
            raise ValueError(f"norm must be 'batch' or 'none', got {norm!r}")
        self.norm = resolved
        self.validate = True
        self.label_branch = nn.Sequential(
            nn.Linear(embed_dim, width), _norm1d(width, resolved), nn.ReLU()
        )
        n_branches = 2
        self.time_branch: nn.Module | None = None
        if time_dim is not None:
            self.time_branch = nn.Sequential(
                SinusoidalTimeEmbedding(time_dim), nn.Linear(time_dim, width), nn.ReLU()
            )
            n_branches = 3
        self.fuse = nn.Sequential(
            nn.Linear(n_branches * width, width),
            _norm1d(width, resolved),
            nn.ReLU(),
            nn.Linear(width, width // 2),
            _norm1d(width // 2, resolved),
            nn.ReLU(),
            nn.Linear(width // 2, num_classes),
        )

    def reset_parameters(self) -> None:
        """Re-initialise every sub-layer with PyTorch's default init."""
        for m in self.modules():
            reset = getattr(m, "reset_parameters", None)
            if m is not self and callable(reset):
                reset()

    def _check(self, x: Tensor, z: Tensor, t: Tensor | None, x_shape: str) -> None:
        if not isinstance(x, Tensor) or not x.dtype.is_floating_point:
            raise TypeError(f"x must be a floating Tensor, got {getattr(x, 'dtype', type(x))}")
        if not isinstance(z, Tensor) or not z.dtype.is_floating_point:
            raise TypeError(f"z must be a floating Tensor, got {getattr(z, 'dtype', type(z))}")
        if x.shape[0] == 0:
            raise ValueError("x: empty batch (B = 0)")
        if z.dim() != 2 or z.shape[1] != self.embed_dim:
            raise ValueError(
                f"z must have shape (B, embed_dim={self.embed_dim}), got {tuple(z.shape)}"
            )
        if z.shape[0] != x.shape[0]:
            raise ValueError(f"x and z batch sizes differ: {x.shape[0]} vs {z.shape[0]}")
        if self.time_branch is not None:
            if t is None:
                raise ValueError("this block is time-conditioned (time_dim set): pass t")
            if t.shape != (x.shape[0],):
                raise ValueError(f"t must have shape ({x.shape[0]},), got {tuple(t.shape)}")
        elif t is not None:
            raise ValueError("t given but the block has no time branch (time_dim=None)")
        if not bool(torch.isfinite(x).all() & torch.isfinite(z).all()):  # one host sync
            raise ValueError("x and z must be finite (NaN/Inf found)")

    def _fuse(self, feat: Tensor, z: Tensor, t: Tensor | None) -> Tensor:
        parts = [feat, self.label_branch(z)]
        if self.time_branch is not None:
            assert t is not None
            parts.append(self.time_branch(t.to(feat.dtype)))
        out: Tensor = self.fuse(torch.cat(parts, dim=-1))
        return out


class MLPDenoiseBlock(_DenoiseBlockBase):
    """MLP denoising block: x ``(B, in_dim)``, z ``(B, e)``[, t ``(B,)``] → ``(B, num_classes)``.

    x branch FC ``hidden`` (BN, ReLU); label branch FC ``hidden`` (BN, ReLU); optional time branch
    (sinusoidal ``time_dim`` → FC ``hidden``, ReLU); concat → FC hidden → FC hidden/2 → FC K.

    Args:
        in_dim: input features D.
        embed_dim: label-embedding dimension e.
        num_classes: output width (K logits for the softmax-embedding head; e for NoProp-FM).
        hidden: width, default 256 (paper's FC 256).
        time_dim: sinusoidal time-embedding size for CT/FM blocks; None (default) for DT.
        norm: ``'batch'`` or ``'none'``; default BN for DT and none when ``time_dim`` is set
            (paper's CT figure has no batch-norm).
    """

    def __init__(
        self,
        in_dim: int,
        embed_dim: int,
        num_classes: int,
        hidden: int = 256,
        time_dim: int | None = None,
        norm: Norm | None = None,
    ) -> None:
        super().__init__()
        if in_dim < 1:
            raise ValueError(f"in_dim must be >= 1, got {in_dim}")
        self.in_dim = in_dim
        self._init_common(embed_dim, num_classes, hidden, time_dim, norm)
        self.x_branch = nn.Sequential(
            nn.Linear(in_dim, hidden), _norm1d(hidden, self.norm), nn.ReLU()
        )

    def forward(self, x: Tensor, z: Tensor, t: Tensor | None = None) -> Tensor:
        """x ``(B, in_dim)``, z ``(B, e)``[, t ``(B,)``] → ``(B, num_classes)``."""
        if self.validate:
            self._check(x, z, t, "(B, in_dim)")
            if x.dim() != 2 or x.shape[1] != self.in_dim:
                raise ValueError(
                    f"x must have shape (B, in_dim={self.in_dim}), got {tuple(x.shape)}"
                )
        return self._fuse(self.x_branch(x), z, t)


class ConvDenoiseBlock(_DenoiseBlockBase):
    """Convolutional denoising block (paper's DT block figure, spec section 3).

    Image branch: per width w in ``widths``: conv3×3(w) → BN → ReLU → max-pool 2 → dropout; then
    flatten (or adaptive average pool to ``pool_to``×``pool_to``) → FC ``fc`` (BN, ReLU). Label
    branch FC ``fc`` (BN, ReLU); optional time branch; concat → FC fc → FC fc/2 → FC K.

    x: ``(B, in_ch, img_size, img_size)`` or flattened ``(B, in_ch·img_size²)``; z: ``(B, e)``;
    t: ``(B,)`` when ``time_dim`` is set. Output ``(B, num_classes)``.

    Args:
        in_ch: image channels.
        img_size: image side (square images).
        embed_dim: e.
        num_classes: output width (K, or e for NoProp-FM).
        widths: conv channels per stage, default (32, 64, 128) (paper).
        time_dim: time-embedding size for CT/FM; None for DT.
        fc: width of the FC layers, default 256 (paper).
        dropout: dropout after each conv stage, default 0.2 (recalled; set 0 to disable).
        pool_to: None (default, paper: flatten) or an adaptive-average-pool output side, to keep
            small blocks small (the reproduction uses 2).
        norm: ``'batch'`` | ``'none'``; default BN for DT, none when ``time_dim`` is set.
    """

    def __init__(
        self,
        in_ch: int,
        img_size: int,
        embed_dim: int,
        num_classes: int,
        widths: Sequence[int] = (32, 64, 128),
        time_dim: int | None = None,
        fc: int = 256,
        dropout: float = 0.2,
        pool_to: int | None = None,
        norm: Norm | None = None,
    ) -> None:
        super().__init__()
        if in_ch < 1 or img_size < 1 or len(widths) < 1:
            raise ValueError(
                f"in_ch, img_size must be >= 1 and widths non-empty, got {in_ch}, {img_size}, "
                f"{tuple(widths)}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.in_ch = in_ch
        self.img_size = img_size
        self._init_common(embed_dim, num_classes, fc, time_dim, norm)
        layers: list[nn.Module] = []
        ch, side = in_ch, img_size
        for w in widths:
            layers += [
                nn.Conv2d(ch, w, 3, padding=1),
                nn.BatchNorm2d(w) if self.norm == "batch" else nn.Identity(),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Dropout(dropout),
            ]
            ch, side = w, side // 2
        if side < 1:
            raise ValueError(f"img_size={img_size} too small for {len(widths)} pooling stages")
        if pool_to is not None:
            layers.append(nn.AdaptiveAvgPool2d(pool_to))
            side = pool_to
        layers.append(nn.Flatten())
        self.conv = nn.Sequential(*layers)
        self.x_branch = nn.Sequential(
            nn.Linear(ch * side * side, fc), _norm1d(fc, self.norm), nn.ReLU()
        )

    def forward(self, x: Tensor, z: Tensor, t: Tensor | None = None) -> Tensor:
        """x ``(B, C, H, W)`` or ``(B, C·H·W)``, z ``(B, e)``[, t ``(B,)``] → ``(B, num_classes)``."""
        flat = self.in_ch * self.img_size * self.img_size
        if self.validate:
            self._check(x, z, t, "(B, C, H, W)")
            ok4 = x.dim() == 4 and tuple(x.shape[1:]) == (self.in_ch, self.img_size, self.img_size)
            ok2 = x.dim() == 2 and x.shape[1] == flat
            if not (ok4 or ok2):
                raise ValueError(
                    f"x must have shape (B, {self.in_ch}, {self.img_size}, {self.img_size}) or "
                    f"(B, {flat}), got {tuple(x.shape)}"
                )
        if x.dim() == 2:
            x = x.reshape(x.shape[0], self.in_ch, self.img_size, self.img_size)
        return self._fuse(self.x_branch(self.conv(x)), z, t)
