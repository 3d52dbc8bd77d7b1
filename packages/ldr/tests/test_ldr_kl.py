"""Paper-specific correctness tests of LDR-KL and its closed-form family (spec section 5)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from paperzoo.ldr import (
    crammer_singer_loss,
    ldr_kl_loss,
    ldr_loss,
    normalize_scores,
    weston_watkins_loss,
    worst_case_distribution,
)

NORMS = ("softplus_mean", "l1", "softplus_l1", "none")


def _rand(batch: int, k: int, seed: int, scale: float = 1.0) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    f = scale * torch.randn(batch, k, generator=g, dtype=torch.float64)
    y = torch.randint(0, k, (batch,), generator=g)
    return f, y


def _reference_ldr_kl(f: Tensor, y: Tensor, lam: float, margin: float, normalize: str) -> Tensor:
    """Slow, obviously-correct loop: per example, per class, straight from the definition."""
    out = []
    for i in range(f.shape[0]):
        row = [float(v) for v in f[i]]
        k = len(row)
        if normalize in ("softplus_mean", "softplus_l1"):
            row = [math.log1p(math.exp(v)) for v in row]
            m = sum(row) / k
            row = [v / (m + 1e-12) for v in row]
        elif normalize == "l1":
            m = sum(abs(v) for v in row) / k
            row = [v / (m + 1e-12) for v in row]
        yi = int(y[i])
        total = 0.0
        for j in range(k):
            z = (margin if j != yi else 0.0) + row[j] - row[yi]
            total += math.exp(z / lam)
        out.append(lam * math.log(total / k))
    return torch.tensor(out, dtype=torch.float64)


def test_analytic_value_equals_cross_entropy_minus_log_k() -> None:
    f = torch.tensor([[1.0, 2.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([0])
    got = ldr_kl_loss(f, y, lam=1.0, margin=0.0, normalize="none")
    expected = math.log((1 + math.e + math.exp(-1)) / 3)
    assert got.item() == pytest.approx(expected, abs=1e-12)
    assert got.item() == pytest.approx(F.cross_entropy(f, y).item() - math.log(3), abs=1e-12)


def test_analytic_value_with_margin_and_temperature() -> None:
    f = torch.tensor([[1.0, 2.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([0])
    got = ldr_kl_loss(f, y, lam=2.0, margin=0.5, normalize="none")
    expected = 2 * math.log((1 + math.exp(1.5 / 2) + math.exp(-0.5 / 2)) / 3)
    assert got.item() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("normalize", NORMS)
@pytest.mark.parametrize(("lam", "margin"), [(10.0, 0.1), (1.0, 0.0), (0.3, 2.0)])
def test_vectorised_ldr_kl_matches_reference_loop(
    lam: float, margin: float, normalize: str
) -> None:
    f, y = _rand(7, 5, 0, scale=2.0)
    got = ldr_kl_loss(f, y, lam, margin, normalize, reduction="none")
    torch.testing.assert_close(got, _reference_ldr_kl(f, y, lam, margin, normalize))


@pytest.mark.parametrize("lam", [0.5, 1.0, 3.0, 25.0])
def test_zero_margin_is_temperature_scaled_cross_entropy(lam: float) -> None:
    f, y = _rand(16, 9, 1, scale=3.0)
    got = ldr_kl_loss(f, y, lam, 0.0, "none", reduction="none")
    expected = lam * (F.cross_entropy(f / lam, y, reduction="none") - math.log(9))
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("normalize", ["none", "softplus_mean"])
def test_small_lambda_tends_to_crammer_singer(normalize: str) -> None:
    f, y = _rand(32, 6, 2, scale=2.0)
    got = ldr_kl_loss(f, y, 1e-4, 0.1, normalize, reduction="none")
    cs = crammer_singer_loss(f, y, 0.1, normalize, reduction="none")
    # 0 <= LDR-KL - CS <= ... and LDR-KL >= CS - lam log K
    torch.testing.assert_close(got, cs, atol=1e-3, rtol=0.0)
    assert bool((got >= cs - 1e-4 * math.log(6) - 1e-12).all())


def test_crammer_singer_matches_its_definition() -> None:
    f, y = _rand(9, 4, 3)
    loss = crammer_singer_loss(f, y, margin=1.0, reduction="none")
    for i in range(9):
        others = [1.0 + float(f[i, k] - f[i, y[i]]) for k in range(4) if k != int(y[i])]
        assert loss[i].item() == pytest.approx(max(0.0, *others), abs=1e-12)


def test_large_lambda_tends_to_mean_of_differences() -> None:
    f, y = _rand(32, 7, 4)
    c = 0.3
    got = ldr_kl_loss(f, y, 1e6, c, "none", reduction="none")
    mean_z = c * 6 / 7 + f.mean(dim=1) - f.gather(1, y[:, None]).squeeze(1)
    torch.testing.assert_close(got, mean_z, atol=1e-5, rtol=0.0)


def test_box_set_without_regulariser_is_weston_watkins() -> None:
    f, y = _rand(11, 5, 5)
    box = ldr_loss(f, y, margin=1.0, region="box", regularizer="none", normalize="none")
    ww = weston_watkins_loss(f, y, margin=1.0, reduction="none")
    expected = []
    for i in range(11):
        yi = int(y[i])
        expected.append(sum(max(0.0, 1.0 + float(f[i, k] - f[i, yi])) for k in range(5) if k != yi))
    torch.testing.assert_close(ww, torch.tensor(expected, dtype=torch.float64))
    assert box.item() == pytest.approx(ww.mean().item(), abs=1e-12)


def test_ldr_loss_dispatches_to_each_closed_form() -> None:
    f, y = _rand(8, 5, 6)
    torch.testing.assert_close(ldr_loss(f, y, 2.0, 0.2), ldr_kl_loss(f, y, 2.0, 0.2))
    torch.testing.assert_close(
        ldr_loss(f, y, margin=0.2, regularizer="none", normalize="l1"),
        crammer_singer_loss(f, y, 0.2, "l1"),
    )
    with pytest.raises(ValueError, match="region='box' with regularizer='kl'"):
        ldr_loss(f, y, region="box", regularizer="kl")


@pytest.mark.parametrize("normalize", ["l1", "none"])
def test_large_lambda_is_symmetric(normalize: str) -> None:
    k, c = 10, 0.1
    f, _ = _rand(20, k, 7)
    total = torch.zeros(20, dtype=torch.float64)
    for label in range(k):
        y = torch.full((20,), label)
        total += ldr_kl_loss(f, y, 1e6, c, normalize, reduction="none")
    torch.testing.assert_close(total, torch.full_like(total, c * (k - 1)), atol=1e-4, rtol=0.0)


def test_symmetry_gap_with_normalisation_is_bounded_and_shrinks_as_lambda_grows() -> None:
    """sum_y l(f, y) - c(K-1) lies in [0, K range^2 / (8 lambda)] (Jensen and Hoeffding's lemma)."""
    k, c = 10, 0.1
    f, _ = _rand(64, k, 8, scale=3.0)
    scores = normalize_scores(f, "softplus_mean")
    spread = scores.amax(dim=1) - scores.amin(dim=1) + c
    worst = []
    for lam in (1.0, 10.0, 100.0, 1000.0):
        total = torch.zeros(64, dtype=torch.float64)
        for y in range(k):
            y_t = torch.full((64,), y)
            total += ldr_kl_loss(f, y_t, lam, c, "softplus_mean", reduction="none")
        gap = total - c * (k - 1)
        assert bool((gap >= -1e-9).all())
        assert bool((gap <= k * spread**2 / (8 * lam) + 1e-9).all())
        worst.append(float(gap.max()))
    assert all(a > b for a, b in itertools.pairwise(worst)), worst
    assert worst[-1] < 0.05


def test_l1_normalised_loss_is_invariant_to_positive_scaling() -> None:
    f, y = _rand(16, 8, 9)
    base = ldr_kl_loss(f, y, 10.0, 0.1, "l1", reduction="none")
    for a in (0.01, 3.0, 250.0):
        torch.testing.assert_close(ldr_kl_loss(f * a, y, 10.0, 0.1, "l1", reduction="none"), base)
    # and not to scaling without normalisation
    scaled = ldr_kl_loss(f * 3.0, y, 10.0, 0.1, "none", reduction="none")
    assert not torch.allclose(scaled, ldr_kl_loss(f, y, 10.0, 0.1, "none", reduction="none"))


def test_softplus_mean_scores_are_positive_with_mean_one() -> None:
    f, _ = _rand(16, 8, 10, scale=5.0)
    s = normalize_scores(f, "softplus_mean")
    assert bool((s > 0).all())
    torch.testing.assert_close(s.mean(dim=1), torch.ones(16, dtype=torch.float64))
    torch.testing.assert_close(normalize_scores(f, "softplus_l1"), s)


@pytest.mark.parametrize("normalize", NORMS)
def test_zero_logits_give_finite_loss_and_gradient(normalize: str) -> None:
    f = torch.zeros(3, 4, dtype=torch.float32, requires_grad=True)
    loss = ldr_kl_loss(f, torch.tensor([0, 1, 3]), normalize=normalize)
    loss.backward()
    assert torch.isfinite(loss)
    assert f.grad is not None and bool(torch.isfinite(f.grad).all())


def test_worst_case_distribution_attains_donsker_varadhan_maximum() -> None:
    f, y = _rand(4, 6, 11, scale=2.0)
    lam, c = 0.7, 0.2
    closed = ldr_kl_loss(f, y, lam, c, "softplus_mean", reduction="none")
    p_star = worst_case_distribution(f, y, lam, c, "softplus_mean")
    scores = normalize_scores(f, "softplus_mean")
    z = c * (1 - F.one_hot(y, 6)) + scores - scores.gather(1, y[:, None])

    def objective(p: Tensor) -> Tensor:
        kl = torch.special.xlogy(p, 6 * p).sum(dim=1)
        return (p * z).sum(dim=1) - lam * kl

    torch.testing.assert_close(objective(p_star), closed)
    # an independent numerical maximisation over p = softmax(w)
    w = torch.zeros(4, 6, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        value = -objective(torch.softmax(w, dim=1)).sum()
        value.backward()
        return value

    opt.step(closure)
    torch.testing.assert_close(
        objective(torch.softmax(w, dim=1)).detach(), closed, atol=1e-7, rtol=0
    )


@pytest.mark.parametrize(("margin", "lam"), [(0.0, 1.0), (0.1, 10.0), (0.5, 1.0)])
def test_risk_minimiser_preserves_the_order_of_class_probabilities(
    margin: float, lam: float
) -> None:
    """All-k consistency implies order preservation: argsort(f*) == argsort(p)."""
    g = torch.Generator().manual_seed(12)
    for _ in range(3):
        p = torch.softmax(2.0 * torch.randn(5, generator=g, dtype=torch.float64), dim=0)
        f = torch.zeros(1, 5, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS(
            [f], max_iter=1000, tolerance_grad=1e-12, tolerance_change=1e-15, history_size=50
        )

        def closure(f: Tensor = f, p: Tensor = p, opt: torch.optim.LBFGS = opt) -> Tensor:
            opt.zero_grad()
            losses = ldr_kl_loss(
                f.expand(5, 5), torch.arange(5), lam, margin, "none", reduction="none"
            )
            risk = (p * losses).sum()
            risk.backward()
            return risk

        opt.step(closure)
        assert torch.equal(torch.argsort(f.detach()[0]), torch.argsort(p))


def test_index_and_one_hot_targets_give_identical_results() -> None:
    f, y = _rand(10, 6, 13)
    one_hot = F.one_hot(y, 6)
    for fn in (ldr_kl_loss, crammer_singer_loss, weston_watkins_loss):
        torch.testing.assert_close(fn(f, y, reduction="none"), fn(f, one_hot, reduction="none"))
    torch.testing.assert_close(
        ldr_kl_loss(f, one_hot.double(), reduction="none"), ldr_kl_loss(f, y, reduction="none")
    )


def test_per_example_lambda_tensor_matches_scalar_lambda_rows() -> None:
    f, y = _rand(6, 5, 14)
    lams = torch.tensor([0.5, 1.0, 2.0, 5.0, 10.0, 20.0], dtype=torch.float64)
    got = ldr_kl_loss(f, y, lams, 0.1, reduction="none")
    for i, lam in enumerate(lams.tolist()):
        row = ldr_kl_loss(f[i : i + 1], y[i : i + 1], lam, 0.1, reduction="none")
        torch.testing.assert_close(got[i : i + 1], row)


@pytest.mark.parametrize("normalize", NORMS)
def test_ldr_kl_gradient_matches_finite_differences(normalize: str) -> None:
    f, y = _rand(4, 5, 15)
    f.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda x: ldr_kl_loss(x, y, 2.0, 0.1, normalize, reduction="none"), (f,)
    )
    lams = torch.tensor([0.5, 1.0, 3.0, 9.0], dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda x: ldr_kl_loss(x, y, lams, 0.1, normalize, reduction="none"), (f,)
    )


def test_hinge_gradients_match_finite_differences_away_from_kinks() -> None:
    # rows chosen so no hinge term or max sits at a tie
    f = torch.tensor(
        [[2.0, 0.3, -1.1, 0.9], [0.1, 1.7, 0.4, -0.6], [-0.5, 0.2, 1.3, 3.1]],
        dtype=torch.float64,
        requires_grad=True,
    )
    y = torch.tensor([0, 2, 3])
    for fn in (crammer_singer_loss, weston_watkins_loss):
        assert torch.autograd.gradcheck(lambda x, fn=fn: fn(x, y, 0.5, reduction="none"), (f,))
