"""Width (channel-number) search: masked convolutions whose output width is a softmax mixture of candidates.

For a searchable conv with ``max_out`` channels and candidate widths c_1 < … < c_K, α_l ∈ R^K and

    out = Σ_k softmax(α_l)_k · (BN(conv(x)) ⊙ m_k),   m_k = 1 on the first c_k channels, 0 elsewhere,

computed as one mask ``softmax(α_l) @ M`` (M the ``(K, max_out)`` 0/1 matrix), so every candidate shares the
same weights. The final width is ``c_{argmax α_l}``; the derived network is retrained from scratch.

Deviation/choice: the paper's exact width parameterisation could not be re-read; masking the channels of a
shared convolution (weight sharing) is our choice, and the mask is applied *after* the BN so that masked
channels are exactly zero (BN's bias would otherwise leak through).
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from paperzoo.rarts.ops import (
    batch_norm_nd,
    check_dims,
    check_stride,
    conv_nd,
    reset_all_parameters,
)

__all__ = ["MaskedConv", "WidthResNet", "WidthSearchResNet", "check_widths"]


def check_widths(widths: Sequence[int], max_out: int | None) -> tuple[int, ...]:
    """Return ``widths`` as a tuple if they are ints, positive, strictly increasing and ≤ ``max_out``
    (``None``: no upper bound)."""
    if isinstance(widths, (str, bytes)) or not all(
        isinstance(c, numbers.Integral) and not isinstance(c, bool) for c in widths
    ):
        raise TypeError(f"widths must be a sequence of ints, got {widths!r}")
    w = tuple(int(c) for c in widths)
    if not w:
        raise ValueError("widths must hold at least one candidate width")
    if any(b <= a for a, b in itertools.pairwise(w)):
        raise ValueError(f"widths must be strictly increasing, got {w}")
    if w[0] < 1 or (max_out is not None and w[-1] > max_out):
        raise ValueError(f"widths must lie in [1, max_out={max_out}], got {w}")
    return w


class MaskedConv(nn.Module):
    """Conv → BN → soft channel mask with a searchable width.

    Args: in_ch, max_out: channels. widths: candidate output widths (strictly increasing, ≤ ``max_out``).
    kernel_size: odd kernel (padding ``k//2``). dims: 1 or 2. stride: 1 or 2.
    ``forward(x (N, in_ch, *S))`` → ``(N, max_out, *S/stride)``. α: ``alpha`` of shape ``(K,)``,
    initialised ``1e-3·N(0, 1)``.
    """

    def __init__(
        self,
        in_ch: int,
        max_out: int,
        widths: Sequence[int],
        kernel_size: int = 3,
        dims: int = 1,
        stride: int = 1,
    ) -> None:
        super().__init__()
        self.dims = check_dims(dims)
        self.in_ch, self.max_out = in_ch, max_out
        self.widths = check_widths(widths, max_out)
        self.conv = conv_nd(dims)(
            in_ch,
            max_out,
            kernel_size,
            stride=check_stride(stride),
            padding=kernel_size // 2,
            bias=False,
        )
        self.bn = batch_norm_nd(dims, max_out, True)
        masks = (torch.arange(max_out)[None, :] < torch.tensor(self.widths)[:, None]).float()
        self.register_buffer("masks", masks)
        self.alpha = nn.Parameter(1e-3 * torch.randn(len(self.widths)))

    def reset_parameters(self) -> None:
        """Re-initialise conv, BN and α."""
        reset_all_parameters(self)
        with torch.no_grad():
            self.alpha.normal_(0.0, 1e-3)

    def channel_mask(self) -> Tensor:
        """``softmax(α) @ M`` of shape ``(max_out,)``: the expected keep-weight of each channel."""
        masks = self.masks
        assert isinstance(masks, Tensor)
        return F.softmax(self.alpha, dim=0) @ masks.to(self.alpha.dtype)

    def chosen_width(self) -> int:
        """c_{argmax α}; ties go to the smaller width. ``ValueError`` if α holds NaN/Inf."""
        alpha = self.alpha.detach()
        if not bool(torch.isfinite(alpha).all()):
            raise ValueError(f"alpha holds NaN/Inf ({alpha.tolist()}); cannot choose a width")
        return self.widths[int(alpha.argmax())]

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != self.dims + 2 or x.shape[1] != self.in_ch:
            raise ValueError(
                f"x must have shape (N, {self.in_ch}, *spatial) with {self.dims} spatial dim(s), "
                f"got {tuple(x.shape)}"
            )
        if x.shape[0] == 0:
            raise ValueError("x is an empty batch (N=0)")
        out = self.bn(self.conv(x))
        mask = self.channel_mask().to(out.dtype)
        masked: Tensor = out * mask.view(1, -1, *([1] * self.dims))
        return masked


class _Block(nn.Module):
    """Basic residual block; the first conv's width is searched (``widths``) or fixed (``width``)."""

    def __init__(
        self,
        C_in: int,
        C_out: int,
        stride: int,
        dims: int,
        widths: Sequence[int] | None = None,
        width: int | None = None,
    ) -> None:
        super().__init__()
        conv, self.dims = conv_nd(dims), dims
        if widths is not None:
            self.conv1: nn.Module = MaskedConv(C_in, C_out, widths, 3, dims, stride)
            inner = C_out
        else:
            inner = C_out if width is None else width
            self.conv1 = nn.Sequential(
                conv(C_in, inner, 3, stride=stride, padding=1, bias=False),
                batch_norm_nd(dims, inner, True),
            )
        self.conv2 = nn.Sequential(
            conv(inner, C_out, 3, padding=1, bias=False), batch_norm_nd(dims, C_out, True)
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or C_in != C_out:
            self.shortcut = nn.Sequential(
                conv(C_in, C_out, 1, stride=stride, bias=False), batch_norm_nd(dims, C_out, True)
            )

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.conv1(x))
        return F.relu(self.conv2(h) + self.shortcut(x))


class _ResNetBase(nn.Module):
    def __init__(self, in_channels: int, stem: int, dims: int) -> None:
        super().__init__()
        self.dims, self.in_channels = check_dims(dims), in_channels
        self.stem = nn.Sequential(
            conv_nd(dims)(in_channels, stem, 3, padding=1, bias=False),
            batch_norm_nd(dims, stem, True),
            nn.ReLU(),
        )
        self.blocks = nn.ModuleList()

    def reset_parameters(self) -> None:
        """Re-initialise every weight (and α where present)."""
        reset_all_parameters(self)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != self.dims + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"x must have shape (N, {self.in_channels}, *spatial) with {self.dims} spatial dim(s), "
                f"got {tuple(x.shape)}"
            )
        if x.shape[0] == 0:
            raise ValueError("x is an empty batch (N=0)")
        h = self.stem(x)
        for block in self.blocks:
            h = block(h)
        classifier = self.classifier
        assert isinstance(classifier, nn.Linear)
        logits: Tensor = classifier(h.mean(dim=tuple(range(2, h.dim()))))
        return logits


class WidthSearchResNet(_ResNetBase):
    """ResNet-style supernet (1-D by default) whose blocks' inner widths are searched.

    Args:
        widths_per_stage: per stage the candidate inner widths; the stage's channel count is the largest one
            (e.g. ``((4, 8, 12, 16), (8, 16, 24, 32))``). Stage s > 0 starts with a stride-2 block.
        num_classes, in_channels, dims: as usual. blocks_per_stage: residual blocks per stage (ResNet-20: 3).

    ``forward(x (N, in_channels, *S))`` → logits. ``arch_parameters()`` = one α ``(K,)`` per block.
    """

    def __init__(
        self,
        widths_per_stage: Sequence[Sequence[int]],
        num_classes: int = 10,
        in_channels: int = 1,
        blocks_per_stage: int = 1,
        dims: int = 1,
    ) -> None:
        if not widths_per_stage:
            raise ValueError("widths_per_stage must name at least one stage")
        if blocks_per_stage < 1:
            raise ValueError(f"blocks_per_stage must be >= 1, got {blocks_per_stage}")
        stages = [check_widths(ws, None) for ws in widths_per_stage]
        channels = [max(ws) for ws in stages]
        super().__init__(in_channels, channels[0], dims)
        self.widths_per_stage, self.blocks_per_stage = stages, blocks_per_stage
        self.stage_channels, self.num_classes = channels, num_classes
        C_prev = channels[0]
        for s, (ws, C) in enumerate(zip(stages, channels, strict=True)):
            for b in range(blocks_per_stage):
                stride = 2 if s > 0 and b == 0 else 1
                self.blocks.append(_Block(C_prev, C, stride, dims, widths=ws))
                C_prev = C
        self.classifier = nn.Linear(C_prev, num_classes)

    def masked_convs(self) -> list[MaskedConv]:
        """The searchable convolutions, in order."""
        return [m for m in self.modules() if isinstance(m, MaskedConv)]

    def arch_parameters(self) -> list[nn.Parameter]:
        """One α ``(K_l,)`` per searchable conv."""
        return [m.alpha for m in self.masked_convs()]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter except α."""
        arch = {id(a) for a in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def chosen_widths(self) -> list[int]:
        """The derived inner width of every block (c_{argmax α_l})."""
        return [m.chosen_width() for m in self.masked_convs()]

    def derive(self) -> WidthResNet:
        """A fresh :class:`WidthResNet` with the chosen widths (for retraining from scratch)."""
        return WidthResNet(
            self.chosen_widths(),
            self.stage_channels,
            self.num_classes,
            self.in_channels,
            self.blocks_per_stage,
            self.dims,
        )


class WidthResNet(_ResNetBase):
    """The fixed-width network of :class:`WidthSearchResNet` (``block_widths``: one inner width per block)."""

    def __init__(
        self,
        block_widths: Sequence[int],
        stage_channels: Sequence[int],
        num_classes: int = 10,
        in_channels: int = 1,
        blocks_per_stage: int = 1,
        dims: int = 1,
    ) -> None:
        if len(block_widths) != len(stage_channels) * blocks_per_stage:
            raise ValueError(
                f"block_widths needs {len(stage_channels) * blocks_per_stage} entries, got {len(block_widths)}"
            )
        super().__init__(in_channels, stage_channels[0], dims)
        C_prev, k = stage_channels[0], 0
        for s, C in enumerate(stage_channels):
            for b in range(blocks_per_stage):
                stride = 2 if s > 0 and b == 0 else 1
                if not 1 <= block_widths[k] <= C:
                    raise ValueError(
                        f"block_widths[{k}] must lie in [1, {C}], got {block_widths[k]}"
                    )
                self.blocks.append(_Block(C_prev, C, stride, dims, width=block_widths[k]))
                C_prev, k = C, k + 1
        self.classifier = nn.Linear(C_prev, num_classes)
