"""Adapters: identity at init, trainable-parameter formulas, freezing, training moves them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from paperzoo.core.models import mlp
from paperzoo.snnk import (
    AdaptedModule,
    HoulsbyAdapter,
    LoRALinear,
    SNNKAdapter,
    add_lora,
    add_snnk_adapters,
    trainable_parameters,
)


@pytest.mark.parametrize("kind", ["cos", "sin", "relu"])
@pytest.mark.parametrize("bottleneck", [None, 16])
@pytest.mark.parametrize("init", ["mam", "bert"])
def test_adapter_at_init_returns_its_input_exactly(
    kind: str, bottleneck: int | None, init: str
) -> None:
    ad = SNNKAdapter(32, 8, bottleneck=bottleneck, kind=kind, init=init, layer_norm=True, seed=0)  # type: ignore[arg-type]
    h = torch.randn(3, 5, 32)
    assert torch.equal(ad(h), h)
    assert torch.equal(HoulsbyAdapter(32, 4)(h), h)
    base = nn.Linear(32, 7)
    torch.testing.assert_close(LoRALinear(base, 4)(h), base(h), rtol=0, atol=0)


@pytest.mark.parametrize(("d", "m", "r"), [(256, 8, 16), (256, 16, 16), (64, 32, 4)])
def test_trainable_parameter_formulas(d: int, m: int, r: int) -> None:
    assert trainable_parameters(SNNKAdapter(d, m, bottleneck=r)) == m * r + d * r + d
    assert trainable_parameters(SNNKAdapter(d, m)) == m * d + d
    assert trainable_parameters(SNNKAdapter(d, m, layer_norm=True)) == m * d + d + 2 * d
    assert trainable_parameters(HoulsbyAdapter(d, r)) == 2 * d * r + d + r
    assert trainable_parameters(LoRALinear(nn.Linear(d, 3 * d), r)) == r * (d + 3 * d)


def test_spec_ratios_at_d256() -> None:
    """Houlsby r = 16 has 8,464 parameters per adapter; no bottleneck m = 8 / 16: 3.7x / 1.9x
    fewer; bottleneck r = 16: 1.89x / 1.84x fewer; m = 32 ties (8,448)."""
    houlsby = trainable_parameters(HoulsbyAdapter(256, 16))
    assert houlsby == 8464
    ratios = {m: houlsby / trainable_parameters(SNNKAdapter(256, m)) for m in (8, 16, 32)}
    assert round(ratios[8], 1) == 3.7 and round(ratios[16], 1) == 1.9
    assert trainable_parameters(SNNKAdapter(256, 32)) == 8448
    for m, want in ((8, 1.89), (16, 1.84)):
        assert round(houlsby / trainable_parameters(SNNKAdapter(256, m, bottleneck=16)), 2) == want


def test_add_snnk_adapters_freezes_the_backbone_and_trains_only_adapters() -> None:
    torch.manual_seed(0)
    net = mlp([10, 32, 32, 4])
    before = {k: v.clone() for k, v in net.state_dict().items()}
    made = add_snnk_adapters(net, ["1", "3"], num_features=8, d_model=32, bottleneck=4)
    assert set(made) == {"1", "3"} and isinstance(net[1], AdaptedModule)
    assert trainable_parameters(net) == 2 * (8 * 4 + 32 * 4 + 32)
    x, y = torch.randn(64, 10), torch.randint(0, 4, (64,))
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(5):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    assert torch.equal(net[0].weight, before["0.weight"]) and torch.equal(
        net[4].bias, before["4.bias"]
    )
    assert float(made["1"].up.weight.detach().abs().sum()) > 0  # type: ignore[union-attr]


def test_add_snnk_adapters_infers_the_width_of_a_linear() -> None:
    net = mlp([6, 12, 3])
    made = add_snnk_adapters(net, ["0"], num_features=4)
    assert made["0"].d_model == 12


def test_add_lora_wraps_linears() -> None:
    net = mlp([6, 12, 12, 3])
    made = add_lora(net, ["0", "2"], rank=2)
    assert trainable_parameters(net) == 2 * (6 + 12) + 2 * (12 + 12)
    assert isinstance(net[0], LoRALinear) and set(made) == {"0", "2"}
