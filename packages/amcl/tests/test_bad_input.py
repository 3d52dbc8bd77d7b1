"""Each bad input of spec section 9 gets a clear error naming the argument."""

from __future__ import annotations

import pytest
import torch

from paperzoo.amcl import (
    AMCLConfig,
    AMCLMoCoLoss,
    AMCLNTXentLoss,
    ConstantTemperature,
    PairTemperature,
    amcl_moco_loss,
    amcl_ntxent_loss,
    omega,
)

T = ConstantTemperature(0.5)


def test_view_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="z1, z2: expected the same shape"):
        amcl_ntxent_loss(torch.randn(2, 4, 8), torch.randn(2, 4, 7), T)


def test_views_that_are_not_2d_or_3d() -> None:
    with pytest.raises(ValueError, match=r"z1: expected \(C, B, d'\) or \(B, d'\)"):
        amcl_ntxent_loss(torch.randn(8), torch.randn(8), T)


def test_head_count_mismatch_with_the_temperature_module() -> None:
    with pytest.raises(ValueError, match="expected 3 heads"):
        amcl_ntxent_loss(
            torch.randn(2, 4, 8), torch.randn(2, 4, 8), PairTemperature(8, num_heads=3)
        )


def test_batch_of_one_has_no_negatives() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        amcl_ntxent_loss(torch.randn(1, 8), torch.randn(1, 8), T)


@pytest.mark.parametrize(("lo", "hi"), [(0.0, 1.0), (-0.1, 1.0), (0.5, 0.5), (0.9, 0.1)])
def test_bad_temperature_bounds(lo: float, hi: float) -> None:
    with pytest.raises(ValueError, match="tau_min"):
        PairTemperature(8, tau_min=lo, tau_max=hi)
    with pytest.raises(ValueError, match="tau_min"):
        AMCLConfig(tau_min=lo, tau_max=hi)


def test_negative_beta() -> None:
    with pytest.raises(ValueError, match="beta"):
        AMCLNTXentLoss(T, beta=-0.1)


def test_nonpositive_kappa() -> None:
    with pytest.raises(ValueError, match="omega_kappa"):
        amcl_ntxent_loss(torch.randn(4, 8), torch.randn(4, 8), T, omega_kappa=0.0)
    with pytest.raises(ValueError, match="kappa"):
        omega(torch.tensor([0.5]), -1.0)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nonfinite_features(value: float) -> None:
    z = torch.randn(4, 8)
    z[1, 2] = value
    with pytest.raises(ValueError, match="z2: expected finite values"):
        amcl_ntxent_loss(torch.randn(4, 8), z, T)


def test_zero_norm_features_warn_and_stay_finite() -> None:
    z = torch.randn(4, 8)
    z[0] = 0.0
    with pytest.warns(UserWarning, match="z1: zero-norm"):
        out = amcl_ntxent_loss(z, torch.randn(4, 8), T)
    assert bool(torch.isfinite(out))


def test_moco_queue_dimension_mismatch() -> None:
    with pytest.raises(ValueError, match="queue: expected"):
        amcl_moco_loss(torch.randn(4, 8), torch.randn(4, 8), torch.randn(10, 7), T)
    loss = AMCLMoCoLoss(T, dim=8, num_heads=1, queue_size=10)
    with pytest.raises(ValueError, match="k: expected"):
        loss.enqueue(torch.randn(1, 4, 7))


def test_unknown_negatives_mode() -> None:
    with pytest.raises(ValueError, match="negatives"):
        AMCLNTXentLoss(T, negatives="mean")  # type: ignore[arg-type]


def test_wrong_temperature_object() -> None:
    with pytest.raises(TypeError, match="temperature"):
        amcl_ntxent_loss(torch.randn(4, 8), torch.randn(4, 8), 0.5)  # type: ignore[arg-type]


def test_integer_features() -> None:
    with pytest.raises(TypeError, match="z1"):
        amcl_ntxent_loss(torch.ones(4, 8, dtype=torch.long), torch.randn(4, 8), T)


def test_temperature_head_index_out_of_range() -> None:
    with pytest.raises(ValueError, match="head"):
        PairTemperature(8, num_heads=2, shared=False)(torch.randn(3, 8), torch.randn(3, 8), head=2)
