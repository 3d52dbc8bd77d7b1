"""Width search: masked convolutions, derived widths, and the layer contract."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from paperzoo.core.testing import LayerContractTests
from paperzoo.rarts.search import RARTS
from paperzoo.rarts.width import MaskedConv, WidthResNet, WidthSearchResNet


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("k", [0, 1, 2])
def test_one_hot_alpha_zeroes_channels_beyond_the_chosen_width(dims: int, k: int) -> None:
    torch.manual_seed(0)
    conv = MaskedConv(3, 8, (2, 5, 8), kernel_size=3, dims=dims)
    with torch.no_grad():
        conv.alpha.zero_()
        conv.alpha[k] = 1e4  # softmax is exactly one-hot
    x = torch.randn(4, 3, *([6] * dims))
    out = conv(x)
    c = conv.widths[k]
    assert float(out.detach()[:, c:].abs().max() if c < 8 else 0.0) == 0.0
    assert float(out.detach()[:, :c].abs().sum()) > 0
    out.square().sum().backward()
    assert conv.conv.weight.grad is not None
    assert float(conv.conv.weight.grad[c:].abs().max() if c < 8 else 0.0) == 0.0
    assert float(conv.conv.weight.grad[:c].abs().sum()) > 0
    assert conv.chosen_width() == c


def test_soft_mask_is_the_softmax_mixture_of_prefix_masks_reference_loop() -> None:
    torch.manual_seed(0)
    conv = MaskedConv(2, 6, (1, 3, 6))
    p = torch.softmax(conv.alpha.detach(), 0)
    expected = torch.zeros(6)
    for k, c in enumerate(conv.widths):
        m = torch.zeros(6)
        m[:c] = 1.0
        expected += p[k] * m
    torch.testing.assert_close(conv.channel_mask().detach(), expected)


@pytest.mark.parametrize("widths", [(4, 2), (2, 2), (0, 4), (4, 9), ()])
def test_bad_candidate_widths_raise(widths: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="widths"):
        MaskedConv(3, 8, widths)


def test_width_search_derives_a_fixed_width_network_and_rarts_trains_it() -> None:
    torch.manual_seed(0)
    net = WidthSearchResNet(((2, 4), (4, 8)), num_classes=3)
    assert len(net.arch_parameters()) == 2
    with torch.no_grad():
        net.arch_parameters()[0].copy_(torch.tensor([1.0, 0.0]))
        net.arch_parameters()[1].copy_(torch.tensor([0.0, 1.0]))
    assert net.chosen_widths() == [2, 8]
    fixed = net.derive()
    assert isinstance(fixed, WidthResNet)
    x = torch.randn(4, 1, 16)
    assert fixed(x).shape == (4, 3)
    assert fixed.blocks[0].conv1[0].out_channels == 2  # type: ignore[index]
    s = RARTS(
        net,
        lambda ps: torch.optim.SGD(ps, lr=0.05),
        torch.optim.Adam(net.arch_parameters(), lr=0.1),
    )
    y = torch.randint(0, 3, (4,))
    out = s.step((x, y), (torch.randn(4, 1, 16), y))
    assert set(out) == {"train_loss", "val_loss", "coupling", "lagrangian"}


class TestMaskedConvContract(LayerContractTests):
    checks_nonfinite = False

    def make_layer(self) -> nn.Module:
        return MaskedConv(3, 6, (2, 4, 6), kernel_size=3, dims=1)

    def make_input(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> Tensor:
        return torch.randn(batch, 3, 8, generator=generator, dtype=dtype).to(device)

    def bad_shape_input(self, x: Tensor) -> Tensor:
        return x[:, :-1]


class TestWidthSearchResNetContract(LayerContractTests):
    checks_nonfinite = False

    def make_layer(self) -> nn.Module:
        return WidthSearchResNet(((2, 4), (4, 8)), num_classes=3)

    def make_input(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> Tensor:
        return torch.randn(batch, 1, 8, generator=generator, dtype=dtype).to(device)

    def bad_shape_input(self, x: Tensor) -> Tensor:
        return x[:, :, None]


def test_width_choice_on_ties_and_non_finite_alpha() -> None:
    m = MaskedConv(2, 8, (2, 4, 8))
    with torch.no_grad():
        m.alpha.zero_()
    assert m.chosen_width() == 2
    with torch.no_grad():
        m.alpha[1] = float("nan")
    with pytest.raises(ValueError, match="alpha holds NaN/Inf"):
        m.chosen_width()


@pytest.mark.parametrize("widths", [(2.5, 4, 8), (2, 4.0, 8), ("2", 4)])
def test_non_integer_candidate_widths_raise(widths: tuple[Any, ...]) -> None:
    with pytest.raises(TypeError, match="widths must be a sequence of ints"):
        MaskedConv(2, 8, widths)
    with pytest.raises(TypeError, match="widths must be a sequence of ints"):
        WidthSearchResNet([widths])


def test_numpy_integer_widths_are_accepted() -> None:
    assert MaskedConv(2, 8, np.array([2, 4, 8])).widths == (2, 4, 8)
