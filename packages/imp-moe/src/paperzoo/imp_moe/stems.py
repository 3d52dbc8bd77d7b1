"""Minimal modality stems (spec 3.1): the only modality-specific parameters besides the heads.

Each stem maps its input to tokens ``(B, N, d)``: a linear projection of non-overlapping patches
(or a token embedding), plus learned positional embeddings, then LayerNorm.

Positional embeddings are factorised per axis (``e_t[i] + e_h[j] + e_w[k]``) up to a maximum
grid, so one stem serves every input resolution an AGD task uses. Deviation: the layout of IMP's
learned positional embeddings is not verified against the official code; the factorised form is
our choice for multi-resolution inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from paperzoo.core.checks import (
    check_finite,
    check_float_tensor,
    check_labels,
    check_nonempty,
    check_positive_int,
    check_unit_interval,
)

__all__ = ["DropToken", "PatchEmbed1D", "PatchEmbed2D", "PatchEmbed3D", "TokenEmbed"]


def _pad_or_check(x: Tensor, patch: Sequence[int], pad: bool, name: str) -> Tensor:
    """``x (B, C, *S)``: its spatial sizes must be multiples of ``patch`` (or are zero-padded at
    the end with ``pad``)."""
    sizes = tuple(x.shape[2:])
    rest = [(-s) % p for s, p in zip(sizes, patch, strict=True)]
    if not any(rest):
        return x
    if not pad:
        raise ValueError(
            f"{name}: expected sizes divisible by the patch {tuple(patch)}, got {sizes} "
            "(pass pad=True to zero-pad at the end)"
        )
    spec: list[int] = []
    for r in reversed(rest):
        spec += [0, r]
    return nn.functional.pad(x, spec)


class _AxisPositions(nn.Module):
    """Learned positional embeddings per axis, summed over a grid, then LayerNorm."""

    def __init__(self, d_model: int, max_grid: Sequence[int]) -> None:
        super().__init__()
        self.max_grid = tuple(check_positive_int("max_grid", g) for g in max_grid)
        self.axes = nn.ParameterList(nn.Parameter(torch.empty(g, d_model)) for g in self.max_grid)
        self.norm = nn.LayerNorm(d_model)

    def reset_parameters(self) -> None:
        for p in self.axes:
            nn.init.normal_(p, std=0.02)
        self.norm.reset_parameters()

    def forward(self, tokens: Tensor, grid: Sequence[int], name: str) -> Tensor:
        if any(g > m for g, m in zip(grid, self.max_grid, strict=True)):
            raise ValueError(f"{name}: expected a patch grid within {self.max_grid}, got {grid}")
        pos = tokens.new_zeros(*grid, tokens.shape[-1])
        for i, (g, p) in enumerate(zip(grid, self.axes, strict=True)):
            shape = [1] * len(grid) + [tokens.shape[-1]]
            shape[i] = g
            pos = pos + p[:g].to(tokens.dtype).view(shape)
        out: Tensor = self.norm(tokens + pos.reshape(1, -1, tokens.shape[-1]))
        return out


class _PatchStem(nn.Module):
    """Shared machinery: patch projection (no bias) + per-axis positions + LayerNorm."""

    def __init__(
        self,
        patch: Sequence[int],
        in_ch: int,
        d_model: int,
        max_grid: Sequence[int],
        pad: bool,
        validate: bool,
    ) -> None:
        super().__init__()
        self.patch = tuple(check_positive_int("patch", p) for p in patch)
        self.in_ch = check_positive_int("in_ch", in_ch)
        self.d_model = check_positive_int("d_model", d_model)
        n = 1
        for p in self.patch:
            n *= p
        self.proj = nn.Linear(n * in_ch, d_model, bias=False)
        self.pos = _AxisPositions(d_model, max_grid)
        self.pad = pad
        self.validate = validate
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform projection, N(0, 0.02^2) positions, unit LayerNorm."""
        nn.init.xavier_uniform_(self.proj.weight)
        self.pos.reset_parameters()

    def _embed(self, x: Tensor, name: str) -> Tensor:
        """``x (B, C, *S)`` -> ``(B, N, d)``."""
        if x.shape[1] != self.in_ch:
            raise ValueError(
                f"{name}: expected {self.in_ch} channels in dim 1, got shape {tuple(x.shape)}"
            )
        check_finite(name, x, validate=self.validate)
        x = _pad_or_check(x, self.patch, self.pad, name)
        grid = [s // p for s, p in zip(x.shape[2:], self.patch, strict=True)]
        # (B, C, g1*p1, g2*p2, ...) -> (B, g1, g2, ..., p1*p2*...*C)
        b, c = x.shape[:2]
        view: list[int] = [b, c]
        for g, p in zip(grid, self.patch, strict=True):
            view += [g, p]
        k = len(grid)
        perm = [0, *(2 + 2 * i for i in range(k)), *(3 + 2 * i for i in range(k)), 1]
        patches = x.reshape(view).permute(perm).reshape(b, _prod(grid), -1)
        out: Tensor = self.pos(self.proj(patches), grid, name)
        return out


def _prod(xs: Sequence[int]) -> int:
    out = 1
    for v in xs:
        out *= v
    return out


class PatchEmbed3D(_PatchStem):
    """Vision stem: linear projection of 3D patches ``(t, h, w)`` (IMP: ``(4, 16, 16)``).

    Shapes: video ``(B, C, T, H, W)`` or an image ``(B, C, H, W)``, which is fed as a clip of
    ``t`` identical frames (so one projection serves images and video) -> ``(B, N, d)`` with
    ``N = (T/t)(H/h)(W/w)``. ``max_grid``: the largest patch grid (positions per axis).
    """

    def __init__(
        self,
        patch: tuple[int, int, int] = (4, 16, 16),
        in_ch: int = 3,
        d_model: int = 768,
        max_grid: tuple[int, int, int] = (8, 14, 14),
        pad: bool = False,
        validate: bool = True,
    ) -> None:
        super().__init__(patch, in_ch, d_model, max_grid, pad, validate)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, T, H, W)`` or ``(B, C, H, W)`` -> ``(B, N, d)``."""
        check_float_tensor("x", x, nonempty=True)
        if x.dim() == 4:
            x = x.unsqueeze(2).expand(-1, -1, self.patch[0], -1, -1)
        if x.dim() != 5:
            raise ValueError(f"x: expected (B, C, T, H, W) or (B, C, H, W), got {tuple(x.shape)}")
        return self._embed(x, "x")


class PatchEmbed2D(_PatchStem):
    """Spectrogram (or image) stem: linear projection of 2D patches (IMP spectrogram ``(16, 16)``
    over (time, 128 mel)).

    Shapes: ``(B, C, H, W)`` -> ``(B, (H/h)(W/w), d)``.
    """

    def __init__(
        self,
        patch: tuple[int, int] = (16, 16),
        in_ch: int = 1,
        d_model: int = 768,
        max_grid: tuple[int, int] = (64, 8),
        pad: bool = False,
        validate: bool = True,
    ) -> None:
        super().__init__(patch, in_ch, d_model, max_grid, pad, validate)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` -> ``(B, N, d)``."""
        check_float_tensor("x", x, ndim=4, nonempty=True)
        return self._embed(x, "x")


class PatchEmbed1D(_PatchStem):
    """Waveform (or any 1-D signal) stem: linear projection of 1D patches (IMP: 256 samples).

    Shapes: ``(B, L)`` or ``(B, C, L)`` -> ``(B, L/p, d)``.
    """

    def __init__(
        self,
        patch: int = 256,
        in_ch: int = 1,
        d_model: int = 768,
        max_len: int = 1024,
        pad: bool = False,
        validate: bool = True,
    ) -> None:
        super().__init__((patch,), in_ch, d_model, (max_len,), pad, validate)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, L)`` or ``(B, C, L)`` -> ``(B, N, d)``."""
        check_float_tensor("x", x, nonempty=True)
        if x.dim() == 2:
            x = x.unsqueeze(1)
        if x.dim() != 3:
            raise ValueError(f"x: expected (B, L) or (B, C, L), got {tuple(x.shape)}")
        return self._embed(x, "x")


class TokenEmbed(nn.Module):
    """Text stem: token embedding + learned positions + LayerNorm.

    Shapes: ids ``(B, N)`` int64 in ``[0, vocab)`` -> ``(B, N, d)``.
    """

    def __init__(self, vocab: int, d_model: int, max_len: int = 512, validate: bool = True) -> None:
        super().__init__()
        self.vocab = check_positive_int("vocab", vocab)
        self.d_model = check_positive_int("d_model", d_model)
        self.embed = nn.Embedding(vocab, d_model)
        self.pos = _AxisPositions(d_model, (max_len,))
        self.validate = validate
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """N(0, 0.02^2) embeddings and positions."""
        nn.init.normal_(self.embed.weight, std=0.02)
        self.pos.reset_parameters()

    def forward(self, ids: Tensor) -> Tensor:
        """``(B, N)`` token ids -> ``(B, N, d)``."""
        if not isinstance(ids, Tensor) or ids.is_floating_point() or ids.dim() != 2:
            got = tuple(ids.shape) if isinstance(ids, Tensor) else type(ids).__name__
            raise TypeError(f"ids: expected a 2-D integer tensor (B, N), got {got}")
        check_nonempty("ids", ids)
        check_labels("ids", ids.reshape(-1), num_classes=self.vocab, validate=self.validate)
        out: Tensor = self.pos(self.embed(ids), (ids.shape[1],), "ids")
        return out


class DropToken(nn.Module):
    """DropToken (VATT): in training keep a random subset of ``round((1 - rate) N)`` tokens (at
    least one) per example, in their original order; in eval keep all.

    Shapes: ``(B, N, d) -> (B, K, d)``. Deviation: the rounding of the kept count (Python
    ``round``, half to even) is unverified against the official code.
    """

    def __init__(self, rate: float, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.rate = check_unit_interval("rate", rate)
        if self.rate >= 1.0:
            raise ValueError(f"rate: expected a value in [0, 1), got {rate!r}")
        self.generator = generator

    def reset_parameters(self) -> None:
        """DropToken has no parameters."""

    def num_kept(self, n: int) -> int:
        """Tokens kept of ``n`` in training."""
        return max(1, round((1.0 - self.rate) * n))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, N, d) -> (B, K, d)``."""
        check_float_tensor("x", x, ndim=3, nonempty=True)
        check_finite("x", x)
        if not self.training or self.rate == 0.0:
            return x
        b, n, d = x.shape
        k = self.num_kept(n)
        noise = torch.rand(b, n, generator=self.generator, device="cpu").to(x.device)
        keep = noise.argsort(dim=1)[:, :k].sort(dim=1).values
        return x.gather(1, keep.unsqueeze(-1).expand(b, k, d))
