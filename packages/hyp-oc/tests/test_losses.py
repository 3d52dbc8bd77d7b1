"""Hyp-PC and Hyp-CE: hand example, pair-preserving permutations, identical halves, per-pair
reference loop, the official atan variant, the Euclidean twin, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from paperzoo.hyp_oc import HypCELoss, HypPCLoss, hyp_ce_loss, hyp_pc_loss, poincare_dist

D64 = torch.float64


def _z(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(n, 3, generator=g, dtype=D64)
    return u / u.norm(dim=-1, keepdim=True) * torch.rand(n, 1, generator=g, dtype=D64) * 2.5


def test_hyp_pc_of_four_points_is_the_pair_distances_over_the_batch() -> None:
    c = 0.1
    z = torch.tensor([[0.0, 0.0], [0.5, 0.5], [1.0, 0.0], [0.0, -1.0]], dtype=D64)
    d1 = poincare_dist(z[0], z[2], c)
    d2 = poincare_dist(z[1], z[3], c)
    assert float(hyp_pc_loss(z, c)) == pytest.approx(float(d1 + d2) / 4, abs=1e-14)
    # d(0, (1, 0)) at c = 0.1 is the spec's hand value
    assert float(d1) == pytest.approx(2.070977, abs=1e-6)


@pytest.mark.parametrize("distance", ["artanh", "official_atan", "euclidean"])
def test_hyp_pc_rows_equal_a_per_pair_reference_loop(distance: str) -> None:
    c = 0.1
    z = _z(10, 1)
    sc = math.sqrt(c)
    ref = []
    for i in range(5):
        x, y = z[i], z[i + 5]
        if distance == "euclidean":
            d = (x - y).norm()
        else:
            m = poincare_dist(x, y, c) * sc / 2  # artanh(sc |(-x) + y|)
            arg = torch.tanh(m)
            d = 2 / sc * (torch.atanh(arg) if distance == "artanh" else torch.atan(arg))
        ref.append(d / 2)
    want = torch.stack(ref).repeat(2)
    got = hyp_pc_loss(z, c, distance=distance, reduction="none")  # type: ignore[arg-type]
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    mean = hyp_pc_loss(z, c, distance=distance)  # type: ignore[arg-type]
    assert float(mean) == pytest.approx(float(sum(r * 2 for r in ref)) / 10, abs=1e-12)


def test_official_atan_variant_gives_the_spec_hand_value() -> None:
    z = torch.tensor([[0.0, 0.0], [1.0, 0.0]], dtype=D64)
    assert 2 * float(hyp_pc_loss(z, 0.1, distance="official_atan")) == pytest.approx(
        1.937068, abs=1e-6
    )


def test_permuting_pairs_together_changes_nothing_and_identical_halves_give_zero() -> None:
    z = _z(8, 2)
    perm = torch.tensor([2, 0, 3, 1])
    z2 = torch.cat([z[:4][perm], z[4:][perm]])
    torch.testing.assert_close(hyp_pc_loss(z2, 0.1), hyp_pc_loss(z, 0.1), rtol=1e-14, atol=0)
    same = torch.cat([z[:4], z[:4]])
    assert float(hyp_pc_loss(same, 0.1)) < 1e-12
    # breaking the pairs changes the loss
    z3 = torch.cat([z[:4][perm], z[4:]])
    assert abs(float(hyp_pc_loss(z3, 0.1) - hyp_pc_loss(z, 0.1))) > 1e-6


def test_adjacent_pairing_pairs_neighbours() -> None:
    z = _z(4, 3)
    want = (poincare_dist(z[0], z[1], 0.1) + poincare_dist(z[2], z[3], 0.1)) / 4
    got = hyp_pc_loss(z, 0.1, pairing="adjacent")
    torch.testing.assert_close(got, want, rtol=1e-13, atol=0)


def test_gradcheck_hyp_pc() -> None:
    z = (_z(6, 4) * 0.8).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: hyp_pc_loss(t, 0.1), (z,))


def test_hyp_pc_bad_batches_raise() -> None:
    with pytest.raises(ValueError, match="even batch size"):
        hyp_pc_loss(_z(5), 0.1)
    out = hyp_pc_loss(_z(5), 0.1, drop_last=True, reduction="none")
    assert out.shape == (4,)
    with pytest.raises(ValueError, match="at least 2"):
        hyp_pc_loss(_z(1), 0.1, drop_last=True)
    with pytest.raises(ValueError, match="inside the Poincaré ball"):
        hyp_pc_loss(torch.tensor([[0.0, 0.0], [5.0, 0.0]]), 0.1)
    with pytest.raises(ValueError, match="distance"):
        hyp_pc_loss(_z(2), 0.1, distance="cosh")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="c: expected"):
        HypPCLoss(c=0.0)


def test_hyp_ce_is_cross_entropy_and_checks_targets() -> None:
    logits = torch.randn(6, 2, dtype=D64)
    y = torch.tensor([0, 1, 0, 1, 1, 0])
    ref = -torch.log_softmax(logits, -1)[torch.arange(6), y]
    torch.testing.assert_close(hyp_ce_loss(logits, y, reduction="none"), ref)
    torch.testing.assert_close(HypCELoss()(logits, y), ref.mean())
    with pytest.raises(ValueError, match=r"target: expected labels in \[0, 2\)"):
        hyp_ce_loss(logits, torch.tensor([0, 1, 2, 0, 0, 0]))
    with pytest.raises(ValueError, match="target: expected 6 labels"):
        hyp_ce_loss(logits, y[:5])
    with pytest.raises(ValueError, match="2 columns"):
        hyp_ce_loss(torch.randn(6, 3), y)
