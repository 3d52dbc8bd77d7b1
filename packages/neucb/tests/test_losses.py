"""Oracle losses: the contract suite plus the KL loss's defining properties."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from paperzoo.core.testing import LossContractTests
from paperzoo.neucb.functional import kl_loss, squared_loss
from paperzoo.neucb.losses import KLLoss, SquaredLoss


def _inputs(batch, dtype, device, generator):
    logits = (3 * torch.randn(batch, generator=generator, dtype=torch.float64)).to(device, dtype)
    target = torch.rand(batch, generator=generator, dtype=torch.float64).to(device, dtype)
    return logits, target


class TestKLLossContract(LossContractTests):
    num_classes = None

    def make_loss(self, reduction):
        return KLLoss(reduction)

    def call_functional(self, inputs, reduction):
        return kl_loss(*inputs, reduction=reduction)

    def make_inputs(self, batch, *, dtype, device, generator):
        return _inputs(batch, dtype, device, generator)


class TestSquaredLossContract(LossContractTests):
    num_classes = None

    def make_loss(self, reduction):
        return SquaredLoss(reduction)

    def call_functional(self, inputs, reduction):
        return squared_loss(*inputs, reduction=reduction)

    def make_inputs(self, batch, *, dtype, device, generator):
        return _inputs(batch, dtype, device, generator)


def _kl_reference(logit: float, y: float) -> float:
    import math

    p = 1 / (1 + math.exp(-logit))
    total = 0.0
    if y > 0:
        total += y * math.log(y / p)
    if y < 1:
        total += (1 - y) * math.log((1 - y) / (1 - p))
    return total


def test_kl_matches_the_kl_divergence_formula():
    gen = torch.Generator().manual_seed(0)
    logits, target = _inputs(50, torch.float64, "cpu", gen)
    target[:5] = 0.0
    target[5:10] = 1.0
    got = kl_loss(logits, target, reduction="none")
    want = torch.tensor(
        [_kl_reference(a, b) for a, b in zip(logits.tolist(), target.tolist(), strict=False)],
        dtype=torch.float64,
    )
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_kl_is_bce_minus_binary_entropy():
    gen = torch.Generator().manual_seed(1)
    logits, target = _inputs(40, torch.float64, "cpu", gen)
    entropy = -(target * target.log() + (1 - target) * (1 - target).log())
    want = F.binary_cross_entropy_with_logits(logits, target, reduction="none") - entropy
    torch.testing.assert_close(kl_loss(logits, target, "none"), want)


def test_kl_is_zero_where_the_prediction_equals_the_target():
    target = torch.tensor([0.1, 0.5, 0.93], dtype=torch.float64)
    logits = torch.log(target / (1 - target))
    torch.testing.assert_close(
        kl_loss(logits, target, "none"),
        torch.zeros(3, dtype=torch.float64),
        atol=1e-14,
        rtol=0,
    )


def test_kl_is_finite_at_extreme_logits_and_binary_targets():
    logits = torch.tensor([100.0, -100.0, 100.0, -100.0], requires_grad=True)
    target = torch.tensor([0.0, 0.0, 1.0, 1.0])
    out = kl_loss(logits, target, "none")
    out.sum().backward()
    assert bool(torch.isfinite(out).all()) and bool(torch.isfinite(logits.grad).all())
    vals = out.detach().tolist()
    assert vals[1] == pytest.approx(0.0, abs=1e-6) and vals[2] == pytest.approx(0.0, abs=1e-6)
    assert vals[0] == pytest.approx(100.0, rel=1e-4)


def test_kl_targets_outside_unit_interval_raise():
    with pytest.raises(ValueError, match=r"target must lie in \[0, 1\]"):
        kl_loss(torch.zeros(2), torch.tensor([0.5, 1.5]))


def test_squared_loss_is_half_the_squared_error():
    pred = torch.tensor([0.2, 1.0], dtype=torch.float64)
    target = torch.tensor([0.0, 0.5], dtype=torch.float64)
    torch.testing.assert_close(
        squared_loss(pred, target, "sum"), torch.tensor(0.5 * (0.04 + 0.25), dtype=torch.float64)
    )
