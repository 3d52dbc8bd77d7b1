"""AMCL Barlow Twins: the per-entry float64 reference, the standard loss, the batch-size rule."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from torch import Tensor, nn

from paperzoo.amcl import (
    AMCLBarlowTwinsLoss,
    ConstantTemperature,
    PairTemperature,
    amcl_barlow_twins_loss,
    omega,
)
from paperzoo.core.checks import Reduction
from paperzoo.core.testing import LossContractTests


def _std(z: Tensor) -> Tensor:
    return (z - z.mean(0)) / (z.std(0) + 1e-9)


def _reference(z1: Tensor, z2: Tensor, t: PairTemperature, lambd: float, beta: float) -> Tensor:
    """One head's loss, entry by entry, the temperature MLP written out on column pairs."""
    a, b = _std(z1), _std(z2)
    n, d = a.shape
    w1 = torch.cat([t.w_a[0], t.w_b[0]], dim=0)

    def tau(u: Tensor, v: Tensor) -> Tensor:
        hid = torch.relu(torch.cat([u, v]) @ w1 + t.b_1[0, 0])
        return t.tau_min + (t.tau_max - t.tau_min) * torch.sigmoid(
            hid @ t.w_2[0, :, 0] + t.b_2[0, 0, 0]
        )

    total = torch.zeros((), dtype=z1.dtype)
    for l in range(d):
        for m in range(d):
            c = (a[:, l] * b[:, m]).sum() / n
            tt = tau(a[:, l], b[:, m])
            if l == m:
                total = total + (1 - c / tt) ** 2 + beta * omega(tt, float(d))
            else:
                total = total + lambd * c**2 / tt - beta * omega(tt, float(d))
    return total


def test_vectorised_equals_the_per_entry_reference() -> None:
    g = torch.Generator().manual_seed(0)
    z1, z2 = (
        torch.randn(2, 6, 4, generator=g, dtype=torch.float64),
        torch.randn(2, 6, 4, generator=g, dtype=torch.float64),
    )
    torch.manual_seed(0)
    t = PairTemperature(6, hidden=8, num_heads=2, shared=True).double()
    out = amcl_barlow_twins_loss(z1, z2, t, lambd=0.3, beta=0.2, reduction="none")
    ref = torch.stack([_reference(z1[c], z2[c], t, 0.3, 0.2) for c in range(2)])
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)


def test_constant_unit_temperature_without_regulariser_is_barlow_twins() -> None:
    g = torch.Generator().manual_seed(1)
    z1, z2 = (
        torch.randn(8, 5, generator=g, dtype=torch.float64),
        torch.randn(8, 5, generator=g, dtype=torch.float64),
    )
    ours = amcl_barlow_twins_loss(z1, z2, ConstantTemperature(1.0), beta=0.0)
    c = _std(z1).T @ _std(z2) / 8
    ref = ((1 - c.diagonal()) ** 2).sum() + 5e-3 * (c**2).sum() - 5e-3 * (c.diagonal() ** 2).sum()
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    # lightly's BarlowTwinsLoss standardises with the biased variance (batch_norm, eps 1e-5), the
    # v2 release with the unbiased std: not compared directly


def test_batch_size_other_than_the_temperature_width_is_an_error() -> None:
    with pytest.raises(ValueError, match="expected batch size 6"):
        amcl_barlow_twins_loss(torch.randn(4, 3), torch.randn(4, 3), PairTemperature(6))


class TestAMCLBarlowTwinsContract(LossContractTests):
    batch_size: ClassVar[int] = 4  # the temperature network's input width is the batch size
    per_example: ClassVar[bool] = False  # a batch-level loss (cross-correlation of the batch)
    batch_independent: ClassVar[bool] = False

    def _t(self) -> PairTemperature:
        torch.manual_seed(0)
        return PairTemperature(4, hidden=8)

    def make_loss(self, reduction: Reduction) -> nn.Module:
        return AMCLBarlowTwinsLoss(self._t(), reduction=reduction)

    def call_functional(self, inputs: tuple[Tensor, ...], reduction: Reduction) -> Tensor:
        return amcl_barlow_twins_loss(inputs[0], inputs[1], self._t(), reduction=reduction)

    def make_inputs(
        self,
        batch: int,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        generator: torch.Generator,
    ) -> tuple[Tensor, ...]:
        z1 = torch.randn(batch, 5, generator=generator, dtype=torch.float64)
        z2 = z1 + 0.5 * torch.randn(batch, 5, generator=generator, dtype=torch.float64)
        return z1.to(device, dtype), z2.to(device, dtype)

    def test_batch_of_one(self) -> None:
        # overrides the contract: batch statistics need B >= 2 (and the net's width is 4)
        with pytest.raises(ValueError):
            self._call(self._inputs(batch=1))
