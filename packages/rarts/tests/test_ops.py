"""Candidate operations and the mixed edge: shapes, one-hot selection, the weighted sum, bad arguments."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from paperzoo.rarts.ops import (
    DARTS_PRIMITIVES,
    MNIST1D_PRIMITIVES,
    OPS,
    MixedOp,
    make_op,
)
from paperzoo.rarts.space import (
    SearchNetwork,
)


def _input(dims: int, n: int = 4, c: int = 4, size: int = 8) -> Tensor:
    g = torch.Generator().manual_seed(0)
    shape = (n, c, size) if dims == 1 else (n, c, size, size)
    return torch.randn(shape, generator=g)


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("name", sorted(OPS))
def test_every_registered_op_keeps_channels_and_divides_spatial_size_by_stride(
    name: str, stride: int, dims: int
) -> None:
    op = make_op(name, 4, stride, affine=False, dims=dims)
    out = op(_input(dims))
    assert out.shape == (4, 4, *([8 // stride] * dims))


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("stride", [1, 2])
def test_one_hot_weights_select_exactly_one_op(dims: int, stride: int) -> None:
    torch.manual_seed(0)
    mixed = MixedOp(4, stride, DARTS_PRIMITIVES, dims)
    x = _input(dims)
    for k, name in enumerate(DARTS_PRIMITIVES):
        w = torch.zeros(len(DARTS_PRIMITIVES))
        w[k] = 1.0
        out = mixed(x, w)
        if name == "none":
            assert float(out.detach().abs().max()) == 0.0
        else:
            torch.testing.assert_close(out, mixed._ops[k](x), rtol=0, atol=0)


def test_mixed_op_is_the_weighted_sum_of_all_ops_reference_loop() -> None:
    torch.manual_seed(0)
    mixed = MixedOp(4, 1, MNIST1D_PRIMITIVES, 1)
    x = _input(1)
    w = torch.softmax(torch.randn(len(MNIST1D_PRIMITIVES)), 0)
    expected = torch.zeros_like(x)
    for k in range(len(MNIST1D_PRIMITIVES)):  # includes `none`, whose output is zero
        expected = expected + w[k] * mixed._ops[k](x)
    torch.testing.assert_close(mixed(x, w), expected, rtol=1e-6, atol=1e-6)


def test_unknown_primitive_raises() -> None:
    with pytest.raises(ValueError, match="unknown primitive 'conv_9x9'"):
        SearchNetwork(4, 3, 1, primitives=("none", "conv_9x9"))
    with pytest.raises(ValueError, match="unknown primitive"):
        make_op("conv_9x9", 4, 1)


@pytest.mark.parametrize("stride", [0, 3])
def test_stride_outside_one_two_raises(stride: int) -> None:
    with pytest.raises(ValueError, match="stride must be 1 or 2"):
        MixedOp(4, stride)
