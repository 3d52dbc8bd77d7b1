"""The Q-level formulas: analytic values, least squares, monotonicity, Theorem 3.9."""

from __future__ import annotations

import itertools

import pytest
import torch

from paperzoo.modhifi import (
    compensation,
    csm_from_contributions,
    reconstruction_fidelity,
    saliency,
    singleton_fidelity,
    subset_fidelity,
)

D = torch.float64


def test_analytic_correlated_pair_values() -> None:
    q = torch.tensor([[1.0, 0.5], [0.5, 1.0]], dtype=D)
    torch.testing.assert_close(saliency(q), torch.tensor([1.5, 1.5], dtype=D))
    alpha = saliency(q) / torch.diagonal(q)
    torch.testing.assert_close(alpha, torch.tensor([1.5, 1.5], dtype=D))
    torch.testing.assert_close(singleton_fidelity(q), torch.tensor([0.75, 0.75], dtype=D))
    first = torch.tensor([True, False])
    torch.testing.assert_close(subset_fidelity(q, first), torch.tensor(0.75, dtype=D))
    torch.testing.assert_close(compensation(q, first, ridge=0.0), torch.tensor([1.5, 0.0], dtype=D))
    residual = q.sum() * (1 - subset_fidelity(q, first))
    torch.testing.assert_close(residual, torch.tensor(0.75, dtype=D))
    torch.testing.assert_close(
        subset_fidelity(q, torch.tensor([True, True])), torch.tensor(1.0, dtype=D)
    )
    torch.testing.assert_close(
        subset_fidelity(q, torch.tensor([False, False])), torch.tensor(0.0, dtype=D)
    )


def test_ridge_damps_only_the_correction() -> None:
    q = torch.tensor([[1.0, 0.5], [0.5, 1.0]], dtype=D)
    d = compensation(q, torch.tensor([True, False]), ridge=1e-4)
    assert d[0].item() == pytest.approx(1 + 0.5 / 1.0001, abs=1e-12)
    assert d[0].item() == pytest.approx(1.499950, abs=1e-6)
    assert torch.equal(
        compensation(q, torch.tensor([True, True]), ridge=1e-4), torch.ones(2, dtype=D)
    )


def test_diagonal_q_is_additive_with_unit_delta() -> None:
    q = torch.diag(torch.tensor([1.0, 3.0], dtype=D))
    s = singleton_fidelity(q)
    torch.testing.assert_close(s, torch.tensor([0.25, 0.75], dtype=D))
    assert s.sum().item() == pytest.approx(1.0)
    torch.testing.assert_close(
        compensation(q, torch.tensor([True, False]), ridge=0.0), torch.tensor([1.0, 0.0], dtype=D)
    )


def _random_contributions(s: int = 40, n: int = 5, p: int = 7, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(s, 1, p, generator=g, dtype=D)
    return base + 0.8 * torch.randn(s, n, p, generator=g, dtype=D)  # correlated components


def test_compensation_equals_least_squares_on_explicit_contributions() -> None:
    a = _random_contributions()
    q = csm_from_contributions(a)
    y = a.sum(1)  # (S, P)
    for keep_idx in ([0], [1, 3], [0, 2, 4], [0, 1, 2, 3]):
        keep = torch.zeros(5, dtype=torch.bool)
        keep[keep_idx] = True
        design = a[:, keep_idx, :].permute(0, 2, 1).reshape(-1, len(keep_idx))
        sol = torch.linalg.lstsq(design, y.reshape(-1, 1)).solution.flatten()
        delta = compensation(q, keep, ridge=0.0)
        torch.testing.assert_close(delta[keep_idx], sol, rtol=1e-9, atol=1e-10)
        assert torch.all(delta[~keep] == 0)
        resid = (y - torch.einsum("sip,i->sp", a, delta)).square().sum() / a.shape[0]
        fs = subset_fidelity(q, keep)
        torch.testing.assert_close(
            fs, 1 - resid / (y.square().sum() / a.shape[0]), rtol=1e-10, atol=1e-12
        )


def test_csm_is_the_mean_gram_matrix_and_centring_removes_the_mean_map() -> None:
    a = _random_contributions()
    q = csm_from_contributions(a)
    ref = torch.zeros(5, 5, dtype=D)
    for s in range(a.shape[0]):
        for i in range(5):
            for j in range(5):
                ref[i, j] += (a[s, i] * a[s, j]).sum() / a.shape[0]
    torch.testing.assert_close(q, ref)
    m = a.mean(0)
    torch.testing.assert_close(csm_from_contributions(a, center=True), q - m @ m.T)


def test_fidelity_is_monotone_bounded_and_beats_unit_delta() -> None:
    q = csm_from_contributions(_random_contributions(n=6, seed=3))
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        keep = torch.rand(6, generator=g) < 0.5
        extra = keep | (torch.rand(6, generator=g) < 0.3)
        fs, fs_more = subset_fidelity(q, keep), subset_fidelity(q, extra)
        assert -1e-12 <= fs.item() <= 1 + 1e-12
        assert fs_more.item() >= fs.item() - 1e-12
        assert fs.item() >= reconstruction_fidelity(q, keep.to(D)).item() - 1e-12


def test_batched_compensation_matches_per_channel_calls() -> None:
    qs = torch.stack([csm_from_contributions(_random_contributions(seed=k)) for k in range(4)])
    keep = torch.rand(4, 5, generator=torch.Generator().manual_seed(1)) < 0.6
    batched = compensation(qs, keep)
    for c in range(4):
        torch.testing.assert_close(batched[c], compensation(qs[c], keep[c]))


def _best_subset(q: torch.Tensor, k: int) -> set[int]:
    n = q.shape[0]
    best, arg = -1.0, set[int]()
    for sub in itertools.combinations(range(n), k):
        keep = torch.zeros(n, dtype=torch.bool)
        keep[list(sub)] = True
        v = subset_fidelity(q, keep).item()
        if v > best + 1e-12:
            best, arg = v, set(sub)
    return arg


def test_theorem_3_9_top_k_singletons_are_optimal_for_diagonal_q() -> None:
    g = torch.Generator().manual_seed(0)
    q = torch.diag(torch.rand(8, generator=g, dtype=D) + 0.1)
    for k in (1, 3, 5):
        top = set(singleton_fidelity(q).topk(k).indices.tolist())
        assert top == _best_subset(q, k)


def test_correlated_q_breaks_top_k_singletons() -> None:
    # components 0 and 1 are near-duplicates with the highest singleton scores; component 2 is
    # independent: the best pair is {0, 2}, but the top-2 singletons are {0, 1}
    q = torch.tensor([[1.0, 0.99, 0.0], [0.99, 1.0, 0.0], [0.0, 0.0, 0.9]], dtype=D)
    top = set(singleton_fidelity(q).topk(2).indices.tolist())
    best = _best_subset(q, 2)
    assert top == {0, 1}
    assert best != top


def test_bad_inputs_raise_clear_errors() -> None:
    q = torch.eye(3, dtype=D)
    with pytest.raises(ValueError, match="ridge"):
        compensation(q, torch.ones(3, dtype=torch.bool), ridge=-1.0)
    singular = torch.ones(3, 3, dtype=D)
    with pytest.raises(ValueError, match="singular"):
        compensation(singular, torch.tensor([True, True, False]), ridge=0.0)
    compensation(singular, torch.tensor([True, True, False]), ridge=1e-4)  # the ridge rescues it
    with pytest.raises(TypeError, match="keep"):
        compensation(q, torch.ones(3))
    with pytest.raises(ValueError, match="Q"):
        saliency(torch.ones(2, 3, dtype=D))
    with pytest.raises(TypeError, match="Q"):
        saliency(torch.ones(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="keep"):
        compensation(q, torch.ones(4, dtype=torch.bool))


def test_zero_output_channel_has_fidelity_zero_with_a_warning() -> None:
    q = torch.zeros(2, 2, dtype=D)
    with pytest.warns(RuntimeWarning, match="undefined"):
        assert torch.equal(singleton_fidelity(q), torch.zeros(2, dtype=D))
