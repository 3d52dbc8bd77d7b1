"""The selection rules: closed forms, limits, invariances and a slow reference loop."""

from __future__ import annotations

import pytest
import torch

from paperzoo.neucb.functional import check_distribution, fastcb_probs, igw_probs


def _reference(pred: list[float], gamma: float, rule: str) -> list[float]:
    """Obviously-correct loop over the arms (lowest index wins ties)."""
    k = len(pred)
    b = min(range(k), key=lambda a: (pred[a], a))
    probs = [0.0] * k
    for a in range(k):
        if a == b:
            continue
        gap = pred[a] - pred[b]
        if rule == "igw":
            probs[a] = 1.0 / (k + gamma * gap)
        else:
            denom = k * pred[b] + gamma * gap
            probs[a] = pred[b] / denom if denom > 0 else 1.0 / k
    probs[b] = 1.0 - sum(probs)
    return probs


def _random_preds(n: int, k: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, k, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize(("rule", "fn"), [("igw", igw_probs), ("fastcb", fastcb_probs)])
@pytest.mark.parametrize("gamma", [0.0, 3.0, 100.0])
def test_vectorised_rule_matches_reference_loop(rule, fn, gamma):
    preds = _random_preds(20, 5)
    preds[0, 3] = preds[0, 1] = preds[0].min()  # a tie
    got = fn(preds, gamma)
    want = torch.tensor([_reference(p.tolist(), gamma, rule) for p in preds], dtype=torch.float64)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("fn", [igw_probs, fastcb_probs])
def test_probs_are_a_distribution_with_mass_on_argmin(fn):
    preds = _random_preds(200, 7, seed=1)
    probs = fn(preds, 50.0)
    assert bool((probs >= 0).all())
    torch.testing.assert_close(
        probs.sum(-1), torch.ones(200, dtype=torch.float64), rtol=0, atol=1e-12
    )
    assert torch.equal(probs.argmax(-1), preds.argmin(-1))


def test_igw_two_arms_closed_form():
    probs = igw_probs(torch.tensor([0.2, 0.7], dtype=torch.float64), 10.0)
    other = 1.0 / (2.0 + 10.0 * 0.5)
    torch.testing.assert_close(probs, torch.tensor([1 - other, other], dtype=torch.float64))


def test_fastcb_two_arms_closed_form():
    probs = fastcb_probs(torch.tensor([0.9, 0.3], dtype=torch.float64), 4.0)
    other = 0.3 / (2 * 0.3 + 4.0 * 0.6)
    torch.testing.assert_close(probs, torch.tensor([other, 1 - other], dtype=torch.float64))


@pytest.mark.parametrize("fn", [igw_probs, fastcb_probs])
def test_gamma_zero_is_uniform(fn):
    probs = fn(_random_preds(10, 4, seed=2) + 0.1, 0.0)
    torch.testing.assert_close(probs, torch.full_like(probs, 0.25), rtol=0, atol=1e-15)


@pytest.mark.parametrize("fn", [igw_probs, fastcb_probs])
def test_large_gamma_is_greedy(fn):
    preds = _random_preds(10, 4, seed=3) + 0.1
    greedy = torch.nn.functional.one_hot(preds.argmin(-1), 4).double()
    torch.testing.assert_close(fn(preds, 1e12), greedy, rtol=0, atol=1e-9)
    torch.testing.assert_close(fn(preds, float("inf")), greedy, rtol=0, atol=0)


def test_igw_is_shift_invariant():
    preds = _random_preds(30, 6, seed=4)
    torch.testing.assert_close(igw_probs(preds + 3.5, 20.0), igw_probs(preds, 20.0))


def test_igw_satisfies_foster_rakhlin_gap_bound():
    # sum_a p_a Delta_a <= (K - 1) / gamma
    for gamma in (1.0, 10.0, 1000.0):
        preds = _random_preds(500, 8, seed=int(gamma))
        probs = igw_probs(preds, gamma)
        gap = preds - preds.min(-1, keepdim=True).values
        assert bool(((probs * gap).sum(-1) <= 7.0 / gamma + 1e-12).all())


def test_fastcb_is_scale_invariant():
    preds = _random_preds(30, 5, seed=5) + 0.05
    torch.testing.assert_close(fastcb_probs(preds * 7.0, 9.0), fastcb_probs(preds, 9.0))


def test_fastcb_is_not_shift_invariant():
    preds = torch.tensor([0.1, 0.4, 0.8], dtype=torch.float64)
    shifted = fastcb_probs(preds + 0.1, 10.0)
    assert (shifted - fastcb_probs(preds, 10.0)).abs().max() > 1e-3


def test_tied_non_argmin_arm_gets_one_over_k_in_both_rules():
    preds = torch.tensor([0.0, 0.0, 0.5], dtype=torch.float64)
    want = torch.tensor([2 / 3, 1 / 3, 0.0], dtype=torch.float64)
    torch.testing.assert_close(fastcb_probs(preds, 10.0), want)
    igw = igw_probs(preds, 10.0)
    assert igw[1] == pytest.approx(1 / 3) and igw[0] > igw[1]


def test_fastcb_zero_best_loss_is_greedy():
    probs = fastcb_probs(torch.tensor([0.3, 0.0, 0.6], dtype=torch.float64), 5.0)
    torch.testing.assert_close(probs, torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))


@pytest.mark.parametrize("fn", [igw_probs, fastcb_probs])
def test_negative_gamma_raises(fn):
    with pytest.raises(ValueError, match="gamma"):
        fn(torch.rand(3), -1.0)


@pytest.mark.parametrize("fn", [igw_probs, fastcb_probs])
def test_one_arm_or_nan_predictions_raise(fn):
    with pytest.raises(ValueError, match="K >= 2"):
        fn(torch.rand(1), 1.0)
    with pytest.raises(ValueError, match="NaN"):
        fn(torch.tensor([0.1, float("nan")]), 1.0)


def test_fastcb_negative_predictions_raise():
    with pytest.raises(ValueError, match="pred_loss"):
        fastcb_probs(torch.tensor([-0.1, 0.5]), 1.0)


def test_check_distribution_rejects_non_distributions():
    check_distribution(torch.tensor([0.25, 0.75]))
    with pytest.raises(ValueError, match="sums to"):
        check_distribution(torch.tensor([0.5, 0.6]))
    with pytest.raises(ValueError, match="negative"):
        check_distribution(torch.tensor([-0.5, 1.5]))
    with pytest.raises(ValueError, match="NaN"):
        check_distribution(torch.tensor([float("nan"), 1.0]))
