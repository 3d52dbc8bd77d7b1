"""Gaussian naive Bayes: closed forms, an independent formulation, sklearn, invariances, streaming."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from sklearn.naive_bayes import GaussianNB

from paperzoo.dis_vs_gen import (
    GaussianNBHead,
    gaussian_nb_fit,
    gaussian_nb_logits,
    two_class_error,
)

from .conftest import blobs


def _slow_fit(x: torch.Tensor, y: torch.Tensor, k: int, eps: float) -> tuple[torch.Tensor, ...]:
    """Per class and per feature, as written in the paper (float64 loops)."""
    m, n = x.shape
    means = torch.zeros(k, n, dtype=torch.float64)
    var = torch.zeros(n, dtype=torch.float64)
    log_prior = torch.zeros(k, dtype=torch.float64)
    for c in range(k):
        rows = [x[j] for j in range(m) if int(y[j]) == c]
        mk = len(rows)
        log_prior[c] = math.log(mk / m)
        for i in range(n):
            col = [float(r[i]) for r in rows]
            mu = sum(col) / mk
            v = sum((t - mu) ** 2 for t in col) / mk
            means[c, i] = mu
            var[i] += (mk / m) * (v + eps)
    return means, var, log_prior


def _slow_logits(
    x: torch.Tensor, means: torch.Tensor, var: torch.Tensor, lp: torch.Tensor
) -> torch.Tensor:
    out = torch.zeros(x.shape[0], means.shape[0], dtype=torch.float64)
    for r in range(x.shape[0]):
        for c in range(means.shape[0]):
            s = float(lp[c])
            for i in range(x.shape[1]):
                s -= 0.5 * (float(x[r, i]) - float(means[c, i])) ** 2 / float(var[i])
            out[r, c] = s
    return out


def test_hand_computed_two_class_case() -> None:
    x = torch.tensor(
        [[0.0, 1.0], [2.0, 3.0], [4.0, 2.0], [1.0, 0.0], [3.0, 0.0], [5.0, 3.0]],
        dtype=torch.float64,
    )
    y = torch.tensor([0, 0, 0, 1, 1, 1])
    means, var, lp = gaussian_nb_fit(x, y, 2, var_smoothing=0.0)
    torch.testing.assert_close(
        means, torch.tensor([[2.0, 2.0], [3.0, 1.0]], dtype=torch.float64), rtol=0, atol=1e-12
    )
    # class 0: var (8/3, 2/3); class 1: var (8/3, 2); pooled = their mean
    torch.testing.assert_close(
        var, torch.tensor([8 / 3, 4 / 3], dtype=torch.float64), rtol=0, atol=1e-12
    )
    torch.testing.assert_close(
        lp, torch.full((2,), math.log(0.5), dtype=torch.float64), rtol=0, atol=1e-12
    )
    q = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    s0 = math.log(0.5) - 0.5 * (1 / (8 / 3) + 0 / (4 / 3))
    s1 = math.log(0.5) - 0.5 * (4 / (8 / 3) + 1 / (4 / 3))
    torch.testing.assert_close(
        gaussian_nb_logits(q, means, var, lp),
        torch.tensor([[s0, s1]], dtype=torch.float64),
        rtol=0,
        atol=1e-12,
    )


def test_vectorised_fit_and_logits_match_the_per_example_loop() -> None:
    x, y = blobs(m=23, n=4, k=3)
    means, var, lp = gaussian_nb_fit(x, y, 3, var_smoothing=1e-3)
    rm, rv, rl = _slow_fit(x, y, 3, 1e-3)
    for a, b in ((means, rm), (var, rv), (lp, rl)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    q, _ = blobs(m=7, n=4, k=3, seed=1)
    torch.testing.assert_close(
        gaussian_nb_logits(q, means, var, lp), _slow_logits(q, rm, rv, rl), rtol=1e-12, atol=1e-10
    )


def test_posterior_is_bayes_rule_with_scipy_densities() -> None:
    x, y = blobs(m=40, n=3, k=3)
    head = GaussianNBHead(3, 3).fit(x, y)
    means, var, lp = head.estimates()
    q, _ = blobs(m=9, n=3, k=3, seed=2)
    joint = np.stack(
        [
            multivariate_normal(means[c].numpy(), np.diag(var.numpy())).logpdf(q.numpy())
            + float(lp[c])
            for c in range(3)
        ],
        axis=1,
    )
    post = np.exp(joint - joint.max(1, keepdims=True))
    post /= post.sum(1, keepdims=True)
    np.testing.assert_allclose(head.predict_proba(q).numpy(), post, rtol=0, atol=1e-10)


def test_linear_head_differs_by_a_per_row_constant() -> None:
    x, y = blobs(m=50, n=6, k=4)
    head = GaussianNBHead(6, 4).fit(x, y)
    q, _ = blobs(m=11, n=6, k=4, seed=3)
    diff = head.as_linear()(q) - head(q)
    torch.testing.assert_close(diff, diff[:, :1].expand_as(diff), rtol=0, atol=1e-9)
    _, var, _ = head.estimates()
    torch.testing.assert_close(diff[:, 0], 0.5 * (q.square() / var).sum(1), rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("smoothing", ["absolute", "relative"])
def test_per_class_mode_equals_sklearn_gaussian_nb(smoothing: str) -> None:
    x, y = blobs(m=90, n=5, k=3)
    eps = 1e-2 if smoothing == "absolute" else 1e-9
    head = GaussianNBHead(5, 3, var_smoothing=eps, smoothing=smoothing, covariance="per_class")  # type: ignore[arg-type]
    head.fit(x, y)
    # sklearn's epsilon is relative: give it the same absolute epsilon in "absolute" mode
    sk_eps = eps / float(np.var(x.numpy(), axis=0).max()) if smoothing == "absolute" else eps
    sk = GaussianNB(var_smoothing=sk_eps).fit(x.numpy(), y.numpy())
    q, _ = blobs(m=20, n=5, k=3, seed=4)
    np.testing.assert_allclose(
        head.predict_proba(q).numpy(), sk.predict_proba(q.numpy()), atol=1e-12
    )
    assert torch.equal(head.predict(q), torch.from_numpy(sk.predict(q.numpy())))


def test_pooled_mode_equals_sklearn_when_within_class_variances_are_identical() -> None:
    g = torch.Generator().manual_seed(0)
    base = torch.randn(30, 4, generator=g, dtype=torch.float64)
    base = base - base.mean(0)  # each class: the same centred cloud, shifted
    shifts = 3.0 * torch.randn(3, 4, generator=g, dtype=torch.float64)
    x = torch.cat([base + shifts[c] for c in range(3)])
    y = torch.arange(3).repeat_interleave(30)
    q = torch.randn(25, 4, generator=g, dtype=torch.float64) * 3
    for smoothing in ("absolute", "relative"):
        head = GaussianNBHead(4, 3, var_smoothing=1e-9, smoothing=smoothing).fit(x, y)  # type: ignore[arg-type]
        sk_eps = 1e-9 if smoothing == "relative" else 1e-9 / float(np.var(x.numpy(), axis=0).max())
        sk = GaussianNB(var_smoothing=sk_eps).fit(x.numpy(), y.numpy())
        np.testing.assert_allclose(
            head.predict_proba(q).numpy(), sk.predict_proba(q.numpy()), atol=1e-12
        )


def test_absolute_and_relative_smoothing_differ_by_the_max_variance_factor() -> None:
    x, y = blobs(m=40, n=3, k=2)
    _, v_abs, _ = gaussian_nb_fit(x, y, 2, 0.1, smoothing="absolute")
    _, v_rel, _ = gaussian_nb_fit(x, y, 2, 0.1, smoothing="relative")
    _, v0, _ = gaussian_nb_fit(x, y, 2, 0.0)
    torch.testing.assert_close(v_abs - v0, torch.full_like(v0, 0.1))
    torch.testing.assert_close(
        v_rel - v0, torch.full_like(v0, 0.1 * float(x.var(0, correction=0).max()))
    )


def test_per_feature_affine_maps_leave_nb_unchanged_but_not_lr() -> None:
    from paperzoo.dis_vs_gen import LogisticHead

    x, y = blobs(m=60, n=4, k=3)
    a = torch.tensor([2.0, -0.5, 10.0, 0.1], dtype=torch.float64)
    c = torch.tensor([1.0, -3.0, 0.5, 7.0], dtype=torch.float64)
    q, _ = blobs(m=30, n=4, k=3, seed=5)
    nb = GaussianNBHead(4, 3, var_smoothing=0.0).fit(x, y)
    nb2 = GaussianNBHead(4, 3, var_smoothing=0.0).fit(a * x + c, y)
    torch.testing.assert_close(
        nb2.predict_proba(a * q + c), nb.predict_proba(q), rtol=0, atol=1e-10
    )
    lr = LogisticHead(4, 3, C=0.1).fit(x, y)
    lr2 = LogisticHead(4, 3, C=0.1).fit(a * x + c, y)
    with torch.no_grad():
        gap = (lr2(a * q + c).softmax(1) - lr(q).softmax(1)).abs().max()
    assert float(gap) > 1e-3


def test_duplicating_every_sample_leaves_nb_unchanged() -> None:
    x, y = blobs(m=30, n=4, k=3)
    q, _ = blobs(m=10, n=4, k=3, seed=6)
    one = GaussianNBHead(4, 3).fit(x, y)
    two = GaussianNBHead(4, 3).fit(torch.cat([x, x]), torch.cat([y, y]))
    torch.testing.assert_close(two(q), one(q), rtol=0, atol=1e-12)


def test_permuting_class_ids_permutes_logits() -> None:
    x, y = blobs(m=30, n=4, k=3)
    q, _ = blobs(m=10, n=4, k=3, seed=7)
    perm = torch.tensor([2, 0, 1])  # old class c becomes perm[c]
    a = GaussianNBHead(4, 3).fit(x, y)(q)
    b = GaussianNBHead(4, 3).fit(x, perm[y])(q)
    torch.testing.assert_close(b[:, perm], a, rtol=0, atol=1e-12)


@pytest.mark.parametrize("covariance", ["pooled", "per_class"])
@pytest.mark.parametrize("smoothing", ["absolute", "relative"])
def test_partial_fit_on_three_chunks_equals_one_fit(covariance: str, smoothing: str) -> None:
    x, y = blobs(m=61, n=5, k=3)
    x = x + 100.0  # large means: the merge must not lose the variance
    kw = {"covariance": covariance, "smoothing": smoothing, "var_smoothing": 1e-6}
    one = GaussianNBHead(5, 3, **kw).fit(x, y)  # type: ignore[arg-type]
    streamed = GaussianNBHead(5, 3, **kw)  # type: ignore[arg-type]
    for part in (slice(0, 7), slice(7, 40), slice(40, 61)):
        streamed.partial_fit(x[part], y[part])
    for a, b in zip(streamed.estimates(), one.estimates(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_chunk_without_some_classes_merges_correctly() -> None:
    x, y = blobs(m=30, n=3, k=3)
    order = torch.argsort(y, stable=True)  # chunks hold one or two classes
    xs, ys = x[order], y[order]
    streamed = GaussianNBHead(3, 3)
    for part in (slice(0, 5), slice(5, 17), slice(17, 30)):
        streamed.partial_fit(xs[part], ys[part])
    for a, b in zip(streamed.estimates(), GaussianNBHead(3, 3).fit(x, y).estimates(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_fitted_classifier_approaches_the_bayes_error() -> None:
    g = torch.Generator().manual_seed(0)
    n = 6
    mu = torch.stack([torch.zeros(n), torch.full((n,), 0.4)]).double()
    sd = torch.linspace(0.5, 2.0, n, dtype=torch.float64)
    y = torch.arange(2).repeat_interleave(50_000)
    x = mu[y] + sd * torch.randn(y.shape[0], n, generator=g, dtype=torch.float64)
    lin = GaussianNBHead(n, 2).fit(x, y).as_linear()
    w = (lin.weight[1] - lin.weight[0]).detach()
    b = float((lin.bias[1] - lin.bias[0]).detach())
    err = two_class_error(w, b, mu, torch.diag(sd.square()))
    delta = float(((mu[1] - mu[0]) / sd).norm())
    bayes = 0.5 * math.erfc(delta / 2 / math.sqrt(2))
    assert bayes <= err <= bayes + 0.005


def test_one_shot_with_zero_variance_is_finite() -> None:
    x = torch.tensor([[0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)  # feature 1 is constant
    y = torch.tensor([0, 1])
    head = GaussianNBHead(2, 2).fit(x, y)
    out = head(torch.tensor([[0.2, 1.0], [0.9, 1.0]], dtype=torch.float64))
    assert bool(torch.isfinite(out).all())
    assert head.predict(x).tolist() == [0, 1]


def test_uniform_prior_drops_the_class_frequencies() -> None:
    x, y = blobs(m=40, n=3, k=2)
    x, y = x[:25], y[:25]  # unbalanced: 13 vs 12
    _, _, lp = gaussian_nb_fit(x, y, 2, prior="uniform")
    torch.testing.assert_close(lp, torch.full((2,), -math.log(2), dtype=torch.float64))


def test_missing_class_is_an_error_or_a_minus_inf_logit() -> None:
    x, y = blobs(m=20, n=3, k=2)
    with pytest.raises(ValueError, match="class"):
        GaussianNBHead(3, 3).fit(x, y)
    head = GaussianNBHead(3, 3, allow_missing_classes=True).fit(x, y)
    out = head(x)
    assert bool(torch.isinf(out[:, 2]).all()) and bool(torch.isfinite(out[:, :2]).all())


def test_per_class_head_has_no_linear_form() -> None:
    x, y = blobs()
    with pytest.raises(ValueError, match="pooled"):
        GaussianNBHead(5, 3, covariance="per_class").fit(x, y).as_linear()


def test_float32_statistics_follow_the_module_dtype() -> None:
    x, y = blobs(dtype=torch.float32)
    head = GaussianNBHead(5, 3).float().fit(x, y)
    assert head.means.dtype == torch.float32 and head(x).dtype == torch.float32
    ref = GaussianNBHead(5, 3).fit(x.double(), y)
    torch.testing.assert_close(head(x).double(), ref(x.double()), rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- bad input (spec section 9)


def test_bad_inputs_get_clear_errors() -> None:
    x, y = blobs()
    head = GaussianNBHead(5, 3)
    with pytest.raises(RuntimeError, match="fit"):
        head(x)
    with pytest.raises(ValueError, match="x: expected a 2-D"):
        head.fit(x[0], y)
    with pytest.raises(ValueError, match="x: expected 5 features"):
        head.fit(x[:, :4], y)
    with pytest.raises(TypeError, match="y: expected an integer"):
        head.fit(x, y.double())
    with pytest.raises(ValueError, match=r"y: expected labels in \[0, 3\)"):
        head.fit(x, y + 1)
    bad = x.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="x: expected finite"):
        head.fit(bad, y)
    with pytest.raises(ValueError, match="at least 2 training rows"):
        GaussianNBHead(5, 2, allow_missing_classes=True).fit(x[:1], y[:1])
    with pytest.raises(ValueError, match="var_smoothing"):
        GaussianNBHead(5, 3, var_smoothing=-1.0)
    with pytest.raises(ValueError, match="n_classes: expected an integer >= 2"):
        GaussianNBHead(5, 1)
    with pytest.raises(ValueError, match="smoothing"):
        GaussianNBHead(5, 3, smoothing="max")  # type: ignore[arg-type]
    head.fit(x, y)
    with pytest.raises(ValueError, match="x: expected 5 features"):
        head(x[:, :2])


def test_relative_smoothing_warns_on_a_huge_scale_spread() -> None:
    x, y = blobs(m=40, n=3, k=2)
    x = x * torch.tensor([1e-4, 1.0, 1e4], dtype=torch.float64)
    with pytest.warns(UserWarning, match="1e6"):
        gaussian_nb_fit(x, y, 2, smoothing="relative")
