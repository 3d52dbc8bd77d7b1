"""Each loss term against its fixture and a slow per-example float64 loop (spec section 5)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from paperzoo.arabic_emo import (
    HybridLoss,
    class_weights,
    hybrid_loss,
    label_correlation,
    label_correlation_loss,
    multilabel_contrastive_loss,
    weighted_bce_loss,
)

FIXTURE = torch.tensor(  # counts per label [4, 2, 1, 1], N = 8, K = 4
    [
        [1, 1, 0, 0],
        [1, 0, 1, 0],
        [1, 0, 0, 1],
        [1, 1, 0, 0],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
    ],
    dtype=torch.float64,
)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def random_labels(n: int, k: int, seed: int = 0, p: float = 0.3) -> torch.Tensor:
    """``(n, k)`` float64 0/1 labels with every column holding a 1 and a 0."""
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, k, generator=g, dtype=torch.float64) < p).to(torch.float64)
    y[0] = 1.0
    y[-1] = 0.0
    return y


# ----------------------------------------------------------------------------- statistics


def test_balanced_weights_of_the_fixture_are_total_over_k_times_count() -> None:
    torch.testing.assert_close(
        class_weights(FIXTURE), torch.tensor([0.5, 1.0, 2.0, 2.0], dtype=torch.float64)
    )


def test_pos_weight_of_the_fixture_is_negatives_over_positives() -> None:
    torch.testing.assert_close(
        class_weights(FIXTURE, "pos_weight"),
        torch.tensor([1.0, 3.0, 7.0, 7.0], dtype=torch.float64),
    )


def test_a_label_without_positives_raises_unless_min_count() -> None:
    y = FIXTURE.clone()
    y[:, 2] = 0
    with pytest.raises(ValueError, match=r"columns \[2\].*min_count"):
        class_weights(y)
    w = class_weights(y, min_count=0.5)
    assert bool(torch.isfinite(w).all()) and w[2] == 7.5 / (4 * 0.5)


@pytest.mark.parametrize("seed", range(5))
def test_label_correlation_equals_numpy_corrcoef_zeroed_and_clipped(seed: int) -> None:
    y = random_labels(60, 7, seed)
    ref = np.corrcoef(y.numpy(), rowvar=False)
    np.fill_diagonal(ref, 0.0)
    np.testing.assert_allclose(label_correlation(y, clip_negative=False).numpy(), ref, atol=1e-12)
    np.testing.assert_allclose(label_correlation(y).numpy(), np.clip(ref, 0, None), atol=1e-12)


def test_constant_label_columns_have_zero_correlation() -> None:
    y = random_labels(30, 5, 1)
    y[:, 1] = 0.0
    y[:, 3] = 1.0
    c = label_correlation(y, clip_negative=False)
    assert bool((c[1] == 0).all() and (c[:, 1] == 0).all())
    assert bool((c[3] == 0).all() and (c[:, 3] == 0).all())
    assert bool(torch.isfinite(c).all()) and torch.equal(c, c.T)


# ----------------------------------------------------------------------------- weighted BCE


def _wbce_loop(z: Tensor, y: Tensor, w: Tensor, pw: Tensor) -> Tensor:
    rows = []
    for n in range(z.shape[0]):
        total = 0.0
        for k in range(z.shape[1]):
            p = _sigmoid(float(z[n, k]))
            yk = float(y[n, k])
            total += float(w[k]) * (-float(pw[k]) * yk * math.log(p) - (1 - yk) * math.log(1 - p))
        rows.append(total / z.shape[1])
    return torch.tensor(rows, dtype=torch.float64)


@pytest.mark.parametrize("seed", range(3))
def test_weighted_bce_rows_equal_the_per_example_loop(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(9, 4, generator=g, dtype=torch.float64)
    y = random_labels(9, 4, seed)
    y[2, 1] = 0.3  # a soft target
    w, pw = (
        torch.rand(4, generator=g, dtype=torch.float64) + 0.5,
        class_weights(FIXTURE, "pos_weight"),
    )
    torch.testing.assert_close(weighted_bce_loss(z, y, w, pw, "none"), _wbce_loop(z, y, w, pw))


def test_hybrid_with_unit_weights_and_zero_lambdas_is_plain_bce_with_logits() -> None:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(13, 11, generator=g, dtype=torch.float64)
    y = random_labels(13, 11)
    ones = torch.ones(11, dtype=torch.float64)
    out = HybridLoss(ones, None, lambda_corr=0.0, lambda_con=0.0)(z, y)
    ref = F.binary_cross_entropy_with_logits(z, y)
    torch.testing.assert_close(out.total, ref, rtol=1e-15, atol=1e-15)
    assert out.corr == 0 and out.con == 0


def test_pos_weight_raises_the_optimal_probability_of_a_rare_label_balanced_does_not() -> None:
    # one label, 1 positive in 8: the minimiser of the mean loss over a constant logit
    y = torch.tensor([[1.0]] + [[0.0]] * 7, dtype=torch.float64)
    grid = torch.linspace(-5, 5, 2001, dtype=torch.float64)

    def best(**kw: Tensor) -> float:
        losses = torch.stack(
            [weighted_bce_loss(torch.full((8, 1), float(t)), y, **kw) for t in grid]
        )
        return float(torch.sigmoid(grid[losses.argmin()]))

    plain = best()
    assert abs(plain - 1 / 8) < 2e-3
    assert abs(best(weight=class_weights(y)) - plain) < 1e-12
    assert abs(best(pos_weight=class_weights(y, "pos_weight")) - 0.5) < 2e-3


# ----------------------------------------------------------------------------- label correlation


def _laplacian_loop(z: Tensor, c: Tensor) -> Tensor:
    k = z.shape[1]
    rows = []
    for n in range(z.shape[0]):
        p = [_sigmoid(float(v)) for v in z[n]]
        rows.append(
            sum(float(c[j, i]) * (p[j] - p[i]) ** 2 for j in range(k) for i in range(k)) / k**2
        )
    return torch.tensor(rows, dtype=torch.float64)


def test_correlation_term_analytic_value() -> None:
    c = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    p = torch.tensor([[0.2, 0.8]], dtype=torch.float64)
    out = label_correlation_loss(torch.logit(p), c)
    torch.testing.assert_close(out, torch.tensor(0.18, dtype=torch.float64))


def test_correlation_term_is_zero_when_correlated_labels_share_probabilities() -> None:
    c = torch.tensor([[0, 0.7, 0], [0.7, 0, 0], [0, 0, 0]], dtype=torch.float64)
    z = torch.tensor([[0.3, 0.3, -2.0], [-1.0, -1.0, 4.0]], dtype=torch.float64)
    assert 0.0 <= float(label_correlation_loss(z, c)) < 1e-15


@pytest.mark.parametrize("seed", range(3))
def test_laplacian_form_equals_the_double_sum_loop(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(7, 6, generator=g, dtype=torch.float64)
    c = label_correlation(random_labels(40, 6, seed))
    torch.testing.assert_close(
        label_correlation_loss(z, c, reduction="none"), _laplacian_loop(z, c)
    )


def test_align_form_equals_the_frobenius_loop() -> None:
    g = torch.Generator().manual_seed(3)
    z = torch.randn(10, 4, generator=g, dtype=torch.float64)
    c = label_correlation(random_labels(40, 4, 3), clip_negative=False)
    p = torch.sigmoid(z).numpy()
    k = p.shape[1]
    total = 0.0
    for j in range(k):
        for i in range(k):
            if i == j:
                continue
            a, b = p[:, j] - p[:, j].mean(), p[:, i] - p[:, i].mean()
            corr = (a * b).mean() / math.sqrt(((a * a).mean() + 1e-8) * ((b * b).mean() + 1e-8))
            total += (corr - float(c[j, i])) ** 2
    out = label_correlation_loss(z, c, "align")
    torch.testing.assert_close(out, torch.tensor(total / k**2, dtype=torch.float64))


# ----------------------------------------------------------------------------- contrastive


def _unit_pair(distance: float) -> Tensor:
    """Two unit vectors at Euclidean ``distance``."""
    theta = 2 * math.asin(distance / 2)
    return torch.tensor([[1.0, 0.0], [math.cos(theta), math.sin(theta)]], dtype=torch.float64)


def test_pair_sharing_a_label_costs_its_squared_distance() -> None:
    y = torch.tensor([[1, 1, 0], [0, 1, 0]], dtype=torch.float64)
    torch.testing.assert_close(
        multilabel_contrastive_loss(_unit_pair(0.5), y), torch.tensor(0.25, dtype=torch.float64)
    )


def test_disjoint_pair_inside_the_margin_costs_the_squared_gap() -> None:
    y = torch.tensor([[1, 0, 0], [0, 1, 1]], dtype=torch.float64)
    out = multilabel_contrastive_loss(_unit_pair(0.3), y, margin=1.0)
    torch.testing.assert_close(out, torch.tensor(0.49, dtype=torch.float64), atol=1e-10, rtol=0)


def test_disjoint_pair_beyond_the_margin_costs_nothing() -> None:
    y = torch.tensor([[1, 0, 0], [0, 1, 1]], dtype=torch.float64)
    assert float(multilabel_contrastive_loss(_unit_pair(1.2), y, margin=1.0)) == 0.0


def _pairwise_loop(h: Tensor, y: Tensor, margin: float) -> Tensor:
    h = F.normalize(h, dim=1)
    n = h.shape[0]
    rows = []
    for a in range(n):
        acc = 0.0
        for b in range(n):
            if a == b:
                continue
            d = float(torch.linalg.vector_norm(h[a] - h[b]))
            share = float(y[a] @ y[b]) > 0
            acc += d * d if share else max(0.0, margin - d) ** 2
        rows.append(acc / (n - 1))
    return torch.tensor(rows, dtype=torch.float64)


def _supcon_loop(h: Tensor, y: Tensor, t: float) -> Tensor:
    h = F.normalize(h, dim=1)
    n = h.shape[0]
    rows = []
    for a in range(n):
        denom = sum(math.exp(float(h[a] @ h[c]) / t) for c in range(n) if c != a)
        num, wsum = 0.0, 0.0
        for b in range(n):
            if b == a:
                continue
            inter, union = float((y[a] * y[b]).sum()), float(((y[a] + y[b]) > 0).sum())
            w = inter / union if union > 0 else 0.0
            num += w * (float(h[a] @ h[b]) / t - math.log(denom))
            wsum += w
        rows.append(-num / wsum if wsum > 0 else 0.0)
    return torch.tensor(rows, dtype=torch.float64)


@pytest.mark.parametrize("seed", range(3))
def test_pairwise_rows_equal_the_pair_loop(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(8, 5, generator=g, dtype=torch.float64)
    y = random_labels(8, 4, seed)
    out = multilabel_contrastive_loss(h, y, margin=1.2, reduction="none")
    torch.testing.assert_close(out, _pairwise_loop(h, y, 1.2), atol=1e-10, rtol=1e-10)
    # the mean of the rows is the mean over the N(N-1)/2 pairs a < b
    torch.testing.assert_close(multilabel_contrastive_loss(h, y, margin=1.2), out.mean())


@pytest.mark.parametrize("seed", range(3))
def test_supcon_rows_equal_the_jaccard_weighted_loop(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(8, 5, generator=g, dtype=torch.float64)
    y = random_labels(8, 4, seed)
    y[3] = 0.0  # an anchor without positives contributes 0
    out = multilabel_contrastive_loss(h, y, "supcon", temperature=0.2, reduction="none")
    torch.testing.assert_close(out, _supcon_loop(h, y, 0.2))


@pytest.mark.parametrize("mode", ["pairwise", "supcon"])
def test_contrastive_is_invariant_to_batch_permutation(mode: str) -> None:
    g = torch.Generator().manual_seed(0)
    h = torch.randn(10, 6, generator=g, dtype=torch.float64)
    y = random_labels(10, 5)
    perm = torch.randperm(10, generator=g)
    a = multilabel_contrastive_loss(h, y, mode, reduction="none")  # type: ignore[arg-type]
    b = multilabel_contrastive_loss(h[perm], y[perm], mode, reduction="none")  # type: ignore[arg-type]
    torch.testing.assert_close(a[perm], b)


def test_batch_of_one_gives_zero_with_a_warning() -> None:
    h = torch.randn(1, 4, dtype=torch.float64, requires_grad=True)
    with pytest.warns(UserWarning, match="batch of one"):
        out = multilabel_contrastive_loss(h, torch.ones(1, 3))
    assert float(out.detach()) == 0.0
    out.backward()
    assert h.grad is not None and float(h.grad.abs().sum()) == 0.0


def test_identical_embeddings_of_a_disjoint_pair_have_finite_zero_gradient() -> None:
    h = torch.tensor([[0.6, 0.8], [0.6, 0.8]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[1, 0], [0, 1]], dtype=torch.float64)
    out = multilabel_contrastive_loss(h, y)
    out.backward()
    assert abs(float(out) - 1.0) < 1e-5
    assert h.grad is not None and bool(torch.isfinite(h.grad).all())
    assert float(h.grad.abs().max()) < 1e-5


# ----------------------------------------------------------------------------- gradients


def test_every_term_and_the_hybrid_pass_gradcheck_in_float64() -> None:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    h = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = random_labels(5, 4)
    c = label_correlation(random_labels(30, 4, 2))
    w, pw = class_weights(FIXTURE), class_weights(FIXTURE, "pos_weight")
    checks = {
        "wbce": lambda a, b: weighted_bce_loss(a, y, w, pw),
        "laplacian": lambda a, b: label_correlation_loss(a, c),
        "align": lambda a, b: label_correlation_loss(a, c, "align"),
        "pairwise": lambda a, b: multilabel_contrastive_loss(b, y),
        "supcon": lambda a, b: multilabel_contrastive_loss(b, y, "supcon"),
        "hybrid": lambda a, b: (
            hybrid_loss(
                a, y, b, weight=w, pos_weight=pw, correlation=c, lambda_corr=0.5, lambda_con=0.5
            ).total
        ),
        "hybrid-align-supcon": lambda a, b: (
            hybrid_loss(a, y, b, correlation=c, corr_mode="align", con_mode="supcon").total
        ),
    }
    for name, f in checks.items():
        assert torch.autograd.gradcheck(lambda a, b, f=f: f(a, b) + 0 * b.sum(), (z, h)), name


def test_hybrid_total_is_the_lambda_weighted_sum_of_its_terms() -> None:
    g = torch.Generator().manual_seed(1)
    z = torch.randn(6, 4, generator=g, dtype=torch.float64)
    h = torch.randn(6, 3, generator=g, dtype=torch.float64)
    y = random_labels(6, 4)
    c = label_correlation(random_labels(30, 4, 2))
    out = hybrid_loss(z, y, h, correlation=c, lambda_corr=0.7, lambda_con=0.2, reduction="none")
    torch.testing.assert_close(out.total, out.wbce + 0.7 * out.corr + 0.2 * out.con)
    torch.testing.assert_close(out.wbce, weighted_bce_loss(z, y, reduction="none"))
    torch.testing.assert_close(out.corr, label_correlation_loss(z, c, reduction="none"))
    torch.testing.assert_close(out.con, multilabel_contrastive_loss(h, y, reduction="none"))
    assert set(out.as_dict()) == {"loss", "wbce", "corr", "con"}


# ----------------------------------------------------------------------------- bad input (section 9)


def _z(n: int = 4, k: int = 3) -> Tensor:
    return torch.zeros(n, k, dtype=torch.float64)


def test_bad_loss_inputs_get_clear_errors() -> None:
    y = random_labels(4, 3)
    c = label_correlation(random_labels(20, 3))
    with pytest.raises(ValueError, match="targets: expected shape"):
        weighted_bce_loss(_z(), y[:, :2])
    with pytest.raises(ValueError, match="logits: expected a 2-D"):
        weighted_bce_loss(torch.zeros(4), y)
    with pytest.raises(ValueError, match=r"targets: expected values in \[0, 1\]"):
        weighted_bce_loss(_z(), y * 2)
    soft = y.clone()
    soft[0, 0] = 0.5
    weighted_bce_loss(_z(), soft)  # soft targets are fine for the WBCE term
    with pytest.raises(ValueError, match=r"targets: expected values in \{0, 1\}"):
        hybrid_loss(_z(), soft, correlation=c, lambda_con=0.0)
    with pytest.raises(ValueError, match=r"targets: expected values in \{0, 1\}"):
        multilabel_contrastive_loss(_z(), soft)
    with pytest.raises(ValueError, match=r"weight: expected shape \(3,\)"):
        weighted_bce_loss(_z(), y, torch.ones(4, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"correlation: expected a \(3, 3\) matrix"):
        label_correlation_loss(_z(), torch.zeros(4, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="correlation: expected a square"):
        label_correlation_loss(_z(), torch.zeros(3, 4, dtype=torch.float64))
    asym = c.clone()
    asym[0, 1] += 0.3
    with pytest.raises(ValueError, match="correlation: expected a symmetric"):
        label_correlation_loss(_z(), asym)
    with pytest.raises(ValueError, match="logits: expected finite"):
        weighted_bce_loss(_z().fill_(float("nan")), y)
    with pytest.raises(ValueError, match="embeddings: expected finite"):
        hybrid_loss(_z(), y, _z().fill_(float("inf")), correlation=c)
    with pytest.raises(ValueError, match="embeddings: expected finite"):
        hybrid_loss(_z(), y, _z().fill_(float("inf")), lambda_corr=0.0, lambda_con=0.0)
    with pytest.raises(ValueError, match="non-empty batch"):
        hybrid_loss(_z(0), y[:0], _z(0), correlation=c)
    with pytest.raises(ValueError, match="embeddings: expected an"):
        hybrid_loss(_z(), y, None, correlation=c)
    with pytest.raises(ValueError, match="correlation: expected a"):
        HybridLoss(None, None)
    with pytest.raises(ValueError, match="lambda_con"):
        HybridLoss(None, c, lambda_con=-1.0)
    with pytest.raises(TypeError, match="logits"):
        weighted_bce_loss(_z().long(), y)
    with pytest.raises(ValueError, match="mode"):
        label_correlation_loss(_z(), c, "cosine")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="margin"):
        multilabel_contrastive_loss(_z(), y, margin=0.0)


def test_validate_false_skips_the_syncing_checks_only() -> None:
    y = random_labels(4, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = weighted_bce_loss(_z(), y, validate=False)
    assert bool(torch.isfinite(out))
    with pytest.raises(ValueError, match="targets: expected shape"):
        weighted_bce_loss(_z(), y[:, :2], validate=False)
