"""Candidate operations of the DARTS and NATS-Bench (NAS-Bench-201 ``tss``) search spaces, in 1-D and 2-D.

Every operation maps ``(N, C, *spatial)`` to ``(N, C, *spatial / stride)`` where ``spatial`` is ``(L,)`` for
``dims=1`` and ``(H, W)`` for ``dims=2``. The 2-D operations follow ``quark0/darts`` ``cnn/operations.py``
(DARTS) and the NAS-Bench-201 cell operations; the 1-D ones are the same blocks with ``Conv1d``/``Pool1d`` (a
``"3x3"`` name then means a kernel of 3). All operations are registered in :data:`OPS`, so the tests and the
reproduction enumerate every registered name.

This module also holds what every supernet built from these operations shares: the mixed edge
:class:`MixedOp`, the 1-D/2-D layer constructors (:func:`conv_nd`, :func:`batch_norm_nd`) and the argument
checks of a search space (primitives, α shape and finiteness, network input).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from paperzoo.core.checks import check_float_tensor

__all__ = [
    "DARTS_PRIMITIVES",
    "MNIST1D_PRIMITIVES",
    "NATS_PRIMITIVES",
    "OPS",
    "DilConv",
    "FactorizedReduce",
    "MixedOp",
    "ReLUConvBN",
    "SepConv",
    "Zero",
    "batch_norm_nd",
    "check_alpha_shape",
    "check_dims",
    "check_finite_alpha",
    "check_network_input",
    "check_primitives",
    "check_stride",
    "conv_nd",
    "make_op",
    "reset_all_parameters",
]

DARTS_PRIMITIVES: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
"""The 8 operations of the DARTS CNN space (``genotypes.PRIMITIVES`` of ``quark0/darts``), in its order."""

NATS_PRIMITIVES: tuple[str, ...] = (
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
)
"""The 5 operations of the NATS-Bench topology space (= NAS-Bench-201), in its order."""

MNIST1D_PRIMITIVES: tuple[str, ...] = (
    "none",
    "skip_connect",
    "max_pool_3x3",
    "avg_pool_3x3",
    "nor_conv_3x3",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
)
"""The 8 operations of the spec's CPU-scale 1-D space for mnist1d (kernel sizes 3/5 in 1-D)."""


def check_dims(dims: int) -> int:
    """Return ``dims`` if it is 1 or 2, else raise ``ValueError`` naming ``dims``."""
    if isinstance(dims, bool) or not isinstance(dims, int) or dims not in (1, 2):
        raise ValueError(f"dims must be 1 (Conv1d) or 2 (Conv2d), got {dims!r}")
    return dims


def check_stride(stride: int) -> int:
    """Return ``stride`` if it is 1 or 2, else raise ``ValueError`` naming ``stride``."""
    if isinstance(stride, bool) or not isinstance(stride, int) or stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, got {stride!r}")
    return stride


def conv_nd(dims: int) -> type[nn.Conv1d] | type[nn.Conv2d]:
    """``nn.Conv1d`` for ``dims=1``, ``nn.Conv2d`` for ``dims=2`` (the class, to be called with its usual args)."""
    return nn.Conv1d if dims == 1 else nn.Conv2d


def batch_norm_nd(dims: int, channels: int, affine: bool) -> nn.Module:
    """``BatchNorm1d`` / ``BatchNorm2d(channels, affine=affine)`` for ``dims`` 1 / 2 (input ``(N, C, *S)``)."""
    return (
        nn.BatchNorm1d(channels, affine=affine)
        if dims == 1
        else nn.BatchNorm2d(channels, affine=affine)
    )


def _avg_pool(dims: int, stride: int) -> nn.Module:
    if dims == 1:
        return nn.AvgPool1d(3, stride=stride, padding=1, count_include_pad=False)
    return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)


def _max_pool(dims: int, stride: int) -> nn.Module:
    return (nn.MaxPool1d if dims == 1 else nn.MaxPool2d)(3, stride=stride, padding=1)


class ReLUConvBN(nn.Sequential):
    """ReLU → Conv(k, stride, padding) → BN: ``(N, C_in, *S)`` → ``(N, C_out, *S/stride)``.

    DARTS' preprocessing block and NAS-Bench-201's ``nor_conv_kxk``.
    """

    def __init__(
        self,
        C_in: int,
        C_out: int,
        kernel_size: int,
        stride: int,
        padding: int,
        affine: bool = True,
        dims: int = 2,
    ) -> None:
        conv = conv_nd(check_dims(dims))
        super().__init__(
            nn.ReLU(inplace=False),
            conv(C_in, C_out, kernel_size, stride=stride, padding=padding, bias=False),
            batch_norm_nd(dims, C_out, affine),
        )


class DilConv(nn.Sequential):
    """ReLU → depthwise Conv(k, dilation) → pointwise Conv → BN (DARTS ``dil_conv_kxk``)."""

    def __init__(
        self,
        C_in: int,
        C_out: int,
        kernel_size: int,
        stride: int,
        padding: int,
        dilation: int,
        affine: bool = True,
        dims: int = 2,
    ) -> None:
        conv = conv_nd(check_dims(dims))
        super().__init__(
            nn.ReLU(inplace=False),
            conv(
                C_in,
                C_in,
                kernel_size,
                stride=stride,
                padding=padding,
                dilation=dilation,
                groups=C_in,
                bias=False,
            ),
            conv(C_in, C_out, 1, bias=False),
            batch_norm_nd(dims, C_out, affine),
        )


class SepConv(nn.Sequential):
    """Two stacks of ReLU → depthwise Conv → pointwise Conv → BN (DARTS ``sep_conv_kxk``); stride on the first."""

    def __init__(
        self,
        C_in: int,
        C_out: int,
        kernel_size: int,
        stride: int,
        padding: int,
        affine: bool = True,
        dims: int = 2,
    ) -> None:
        # two dilation-1 DilConv stacks, unrolled so the layout (and state_dict keys) is DARTS'
        super().__init__(
            *DilConv(C_in, C_in, kernel_size, stride, padding, 1, affine, dims),
            *DilConv(C_in, C_out, kernel_size, 1, padding, 1, affine, dims),
        )


class Zero(nn.Module):
    """The ``none`` operation: zeros of the output shape (strided for ``stride=2``)."""

    def __init__(self, stride: int, dims: int = 2) -> None:
        super().__init__()
        self.stride = check_stride(stride)
        self.dims = check_dims(dims)

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            return torch.zeros_like(x)
        if self.dims == 1:
            return torch.zeros_like(x[..., :: self.stride])
        return torch.zeros_like(x[..., :: self.stride, :: self.stride])


class FactorizedReduce(nn.Module):
    """ReLU → two stride-2 1×1 convs (the second shifted by one pixel), concatenated → BN.

    ``(N, C_in, *S)`` → ``(N, C_out, *S/2)``; ``C_out`` must be even and every spatial size even.
    """

    def __init__(self, C_in: int, C_out: int, affine: bool = True, dims: int = 2) -> None:
        super().__init__()
        if C_out % 2 != 0:
            raise ValueError(f"FactorizedReduce needs an even C_out, got {C_out}")
        conv = conv_nd(check_dims(dims))
        self.dims = dims
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = conv(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = conv(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = batch_norm_nd(dims, C_out, affine)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(x)
        shifted = x[..., 1:] if self.dims == 1 else x[..., 1:, 1:]
        out: Tensor = self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))
        return out


OpFactory = Callable[[int, int, bool, int], nn.Module]


def _skip(C: int, stride: int, affine: bool, dims: int) -> nn.Module:
    return nn.Identity() if stride == 1 else FactorizedReduce(C, C, affine=affine, dims=dims)


OPS: dict[str, OpFactory] = {
    "none": lambda C, stride, affine, dims: Zero(stride, dims),
    "avg_pool_3x3": lambda C, stride, affine, dims: _avg_pool(dims, stride),
    "max_pool_3x3": lambda C, stride, affine, dims: _max_pool(dims, stride),
    "skip_connect": _skip,
    "sep_conv_3x3": lambda C, stride, affine, dims: SepConv(C, C, 3, stride, 1, affine, dims),
    "sep_conv_5x5": lambda C, stride, affine, dims: SepConv(C, C, 5, stride, 2, affine, dims),
    "dil_conv_3x3": lambda C, stride, affine, dims: DilConv(C, C, 3, stride, 2, 2, affine, dims),
    "dil_conv_5x5": lambda C, stride, affine, dims: DilConv(C, C, 5, stride, 4, 2, affine, dims),
    "nor_conv_1x1": lambda C, stride, affine, dims: ReLUConvBN(C, C, 1, stride, 0, affine, dims),
    "nor_conv_3x3": lambda C, stride, affine, dims: ReLUConvBN(C, C, 3, stride, 1, affine, dims),
}
"""Registry ``name -> factory(C, stride, affine, dims)``; every factory keeps ``C`` channels.

Deviation from the spec's ``Callable[[C, stride, affine], nn.Module]`` (= ``quark0/darts`` ``OPS``): a fourth
argument ``dims`` (1 or 2) selects Conv1d/Pool1d or Conv2d/Pool2d, so one registry serves both spaces."""


def reset_all_parameters(root: nn.Module) -> None:
    """Call ``reset_parameters()`` on every submodule of ``root`` that has one (not on ``root`` itself)."""
    for m in root.modules():
        fn = getattr(m, "reset_parameters", None)
        if m is not root and callable(fn):
            fn()


def make_op(name: str, C: int, stride: int, affine: bool = True, dims: int = 2) -> nn.Module:
    """Build the registered operation ``name`` for ``C`` channels (``ValueError`` on unknown name/stride/dims)."""
    if name not in OPS:
        raise ValueError(f"unknown primitive {name!r}; registered primitives: {sorted(OPS)}")
    return OPS[name](C, check_stride(stride), affine, check_dims(dims))


def check_primitives(primitives: Sequence[str]) -> tuple[str, ...]:
    """``primitives`` as a tuple of distinct names registered in :data:`OPS`; ``TypeError``/``ValueError`` otherwise."""
    if isinstance(primitives, str):
        raise TypeError(
            f"primitives must be a sequence of operation names, got the str {primitives!r} "
            f"(write ({primitives!r},))"
        )
    prims = tuple(primitives)
    if not prims:
        raise ValueError("primitives must name at least one operation, got an empty sequence")
    for name in prims:
        if name not in OPS:
            raise ValueError(f"unknown primitive {name!r} in primitives; registered: {sorted(OPS)}")
    if len(set(prims)) != len(prims):
        raise ValueError(f"primitives must be distinct, got {prims}")
    return prims


def check_alpha_shape(alphas: Tensor, expected: tuple[int, int], name: str) -> None:
    """``ValueError`` naming ``name`` unless ``alphas`` has shape ``expected`` = ``(E, |O|)``."""
    if tuple(alphas.shape) != expected:
        raise ValueError(f"{name} must have shape (E, |O|) = {expected}, got {tuple(alphas.shape)}")


def check_finite_alpha(alphas: Tensor, name: str) -> None:
    """Derivation on NaN/Inf α would silently pick an arbitrary op: refuse it (one host sync; not per step)."""
    bad = ~torch.isfinite(alphas.detach())
    if bool(bad.any()):
        rows = sorted({int(i) for i in bad.nonzero()[:, 0].tolist()})
        raise ValueError(f"{name} holds NaN/Inf (rows {rows}); cannot derive an architecture")


def check_network_input(
    x: Tensor, dims: int, in_channels: int, reductions: int, name: str = "x"
) -> None:
    """A supernet input: float ``(N, in_channels, *S)`` with ``N >= 1`` and every spatial size a multiple of
    ``2**reductions``; ``TypeError``/``ValueError`` naming ``name`` otherwise."""
    check_float_tensor(name, x)
    expected = "(N, C, L)" if dims == 1 else "(N, C, H, W)"
    if x.dim() != dims + 2 or x.shape[1] != in_channels:
        raise ValueError(
            f"{name} must have shape {expected} with C={in_channels}, got {tuple(x.shape)}"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (N=0)")
    factor = 2**reductions
    for size in x.shape[2:]:
        if size < factor or size % factor != 0:
            raise ValueError(
                f"{name} spatial size {tuple(x.shape[2:])} is too small or not divisible for "
                f"{reductions} reduction(s): every spatial size must be a positive multiple of {factor}"
            )


class MixedOp(nn.Module):
    """Mixed edge ō(x) = Σ_o softmax(α)_o · o(x) over ``primitives``.

    Args:
        C: channels (kept). stride: 1 or 2. primitives: operation names from :data:`~paperzoo.rarts.ops.OPS`.
        dims: 1 or 2. pool_bn: append BN(affine=False) after pooling ops (DARTS: yes; NAS-Bench-201: no).
        affine: BN affinity inside the ops (search: False, as DARTS).

    ``forward(x (N, C, *S), weights (|O|,))`` → ``(N, C, *S/stride)``; ``weights`` are the softmax weights.
    The ``none`` operation is not evaluated: its output is exactly zero, so dropping the term is identical
    (value and gradient) and saves a multiply per edge.
    """

    def __init__(
        self,
        C: int,
        stride: int,
        primitives: Sequence[str] = DARTS_PRIMITIVES,
        dims: int = 2,
        *,
        pool_bn: bool = True,
        affine: bool = False,
    ) -> None:
        super().__init__()
        self.primitives = check_primitives(primitives)
        self.stride = check_stride(stride)
        self.dims = check_dims(dims)
        ops = []
        active = []
        for k, name in enumerate(self.primitives):
            op = make_op(name, C, stride, affine=affine, dims=dims)
            if pool_bn and "pool" in name:
                op = nn.Sequential(op, batch_norm_nd(dims, C, False))
            ops.append(op)
            if name != "none":
                active.append(k)
        self._ops = nn.ModuleList(ops)
        self.register_buffer("_active", torch.tensor(active, dtype=torch.long), persistent=False)
        self._active_list = active

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        if weights.shape != (len(self.primitives),):
            raise ValueError(
                f"weights must have shape (|O|,) = ({len(self.primitives)},), got {tuple(weights.shape)}"
            )
        if not self._active_list:
            return self._ops[0](x)  # type: ignore[no-any-return]
        outs = torch.stack([self._ops[k](x) for k in self._active_list])
        active = self._active
        assert isinstance(active, Tensor)
        w = weights.index_select(0, active).to(outs.dtype)
        out: Tensor = torch.tensordot(w, outs, dims=1)
        return out
