"""Logistic regression: the objective against a loop, gradcheck, scikit-learn's solutions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression

from paperzoo.core.data import load_dataset
from paperzoo.dis_vs_gen import LogisticHead, logistic_objective

from .conftest import blobs


def _slow_objective_rows(
    w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor, c: float
) -> list[float]:
    m = x.shape[0]
    pen = sum(float(v) ** 2 for v in w.flatten()) / 2
    rows = []
    for j in range(m):
        z = [float(w[k] @ x[j] + b[k]) for k in range(w.shape[0])]
        top = max(z)
        lse = top + math.log(sum(math.exp(v - top) for v in z))
        rows.append(c * (lse - z[int(y[j])]) + pen / m)
    return rows


def test_objective_rows_match_the_per_example_loop() -> None:
    x, y = blobs(m=9, n=4, k=3)
    g = torch.Generator().manual_seed(1)
    w = torch.randn(3, 4, generator=g, dtype=torch.float64)
    b = torch.randn(3, generator=g, dtype=torch.float64)
    rows = logistic_objective(w, b, x, y, C=0.7, reduction="none")
    ref = torch.tensor(_slow_objective_rows(w, b, x, y, 0.7), dtype=torch.float64)
    torch.testing.assert_close(rows, ref, rtol=1e-12, atol=1e-12)
    total = 0.7 * F.cross_entropy(x @ w.T + b, y, reduction="sum") + 0.5 * w.square().sum()
    torch.testing.assert_close(logistic_objective(w, b, x, y, 0.7), total)
    torch.testing.assert_close(logistic_objective(w, b, x, y, 0.7, "mean"), total / 9)


def test_objective_gradcheck_in_float64() -> None:
    x, y = blobs(m=6, n=3, k=3)
    g = torch.Generator().manual_seed(2)
    w = torch.randn(3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)
    xr = x.clone().requires_grad_(True)
    for red in ("none", "mean", "sum"):
        assert torch.autograd.gradcheck(
            lambda w_, b_, x_, r=red: logistic_objective(w_, b_, x_, y, 1.3, r),
            (w, b, xr),  # type: ignore[misc]
        )


def _standardised(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    d = load_dataset(name, val_fraction=0.0, test_fraction=0.0)
    return d.x_train.double(), d.y_train


@pytest.mark.parametrize(("name", "c"), [("iris", 1.0), ("wine", 0.5)])
def test_coefficients_match_sklearn_multinomial(name: str, c: float) -> None:
    x, y = _standardised(name)
    k = int(y.max()) + 1
    head = LogisticHead(x.shape[1], k, C=c, tol=1e-10, max_iter=5000).fit(x, y)
    assert head.converged_
    sk = LogisticRegression(C=c, tol=1e-10, max_iter=100_000).fit(x.numpy(), y.numpy())
    np.testing.assert_allclose(head.weight.detach().numpy(), sk.coef_, atol=1e-4, rtol=0)
    bias = head.bias.detach().numpy()
    np.testing.assert_allclose(bias - bias.mean(), sk.intercept_ - sk.intercept_.mean(), atol=1e-4)


def test_two_row_head_with_c_equals_sklearn_binary_with_2c() -> None:
    x, y = _standardised("breast_cancer")
    x = x[:, :6]
    head = LogisticHead(6, 2, C=0.25, tol=1e-10, max_iter=5000).fit(x, y)
    sk = LogisticRegression(C=0.5, tol=1e-10, max_iter=100_000).fit(x.numpy(), y.numpy())
    w = head.weight.detach()
    np.testing.assert_allclose((w[1] - w[0]).numpy(), sk.coef_[0], atol=1e-4)
    torch.testing.assert_close(w[1], -w[0], rtol=0, atol=1e-6)
    b = head.bias.detach()
    assert abs(float(b[1] - b[0]) - float(sk.intercept_[0])) < 1e-4


def test_warm_start_from_the_optimum_stops_at_once() -> None:
    x, y = blobs(m=60, n=4, k=3)
    head = LogisticHead(4, 3, tol=1e-8).fit(x, y)
    before = head.weight.detach().clone()
    head.fit(x, y, warm_start=True)
    assert head.n_iter_ <= 2
    torch.testing.assert_close(head.weight.detach(), before, rtol=0, atol=1e-6)


def test_fitted_weights_minimise_the_objective() -> None:
    x, y = blobs(m=60, n=4, k=3)
    head = LogisticHead(4, 3, C=2.0, tol=1e-10).fit(x, y)
    w, b = head.weight.detach(), head.bias.detach()
    best = float(logistic_objective(w, b, x, y, 2.0))
    g = torch.Generator().manual_seed(3)
    for _ in range(5):
        dw = 1e-3 * torch.randn(w.shape, generator=g, dtype=torch.float64)
        assert float(logistic_objective(w + dw, b, x, y, 2.0)) > best


def test_bad_inputs_get_clear_errors() -> None:
    x, y = blobs(m=20, n=4, k=3)
    with pytest.raises(ValueError, match="C: expected"):
        LogisticHead(4, 3, C=0.0)
    with pytest.raises(ValueError, match="n_classes"):
        LogisticHead(4, 1)
    head = LogisticHead(4, 3)
    with pytest.raises(ValueError, match="x: expected 4 features"):
        head.fit(x[:, :3], y)
    with pytest.raises(ValueError, match="x: expected a 2-D"):
        head(x[0])
    with pytest.raises(TypeError, match="y: expected an integer"):
        head.fit(x, y.float())
    with pytest.raises(ValueError, match=r"y: expected labels in \[0, 3\)"):
        head.fit(x, y + 1)
    with pytest.raises(ValueError, match="at least 2 training rows"):
        head.fit(x[:1], y[:1])
    bad = x.clone()
    bad[1, 1] = float("inf")
    with pytest.raises(ValueError, match="x: expected finite"):
        head.fit(bad, y)
    w, b = torch.zeros(3, 4, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    with pytest.raises(ValueError, match="C: expected"):
        logistic_objective(w, b, x, y, C=-1.0)
    with pytest.raises(ValueError, match="b: expected shape"):
        logistic_objective(w, b[:2], x, y)
    with pytest.raises(ValueError, match="reduction"):
        logistic_objective(w, b, x, y, reduction="avg")  # type: ignore[arg-type]
