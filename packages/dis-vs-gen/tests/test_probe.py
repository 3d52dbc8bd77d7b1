"""Probes: MinMax scaling as scikit-learn's, the subsets, m_eps read-off, bad sizes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.preprocessing import MinMaxScaler

from paperzoo.dis_vs_gen import ProbeCurve, minmax_scale, probe_curve, samples_to_reach
from paperzoo.dis_vs_gen.probe import _subset

from .conftest import blobs


def test_minmax_scale_matches_sklearn_including_constant_columns() -> None:
    x, _ = blobs(m=20, n=4, k=2)
    x[:, 2] = 3.0
    q, _ = blobs(m=5, n=4, k=2, seed=1)
    sx, sq = minmax_scale(x, q)
    sk = MinMaxScaler().fit(x.numpy())
    np.testing.assert_allclose(sx.numpy(), sk.transform(x.numpy()), atol=1e-12)
    np.testing.assert_allclose(sq.numpy(), sk.transform(q.numpy()), atol=1e-12)


def test_per_class_subsets_are_balanced_and_distinct() -> None:
    y = torch.arange(50) % 5
    idx = _subset(y, 3, 5, True, torch.Generator().manual_seed(0))
    assert torch.bincount(y[idx], minlength=5).tolist() == [3] * 5
    assert idx.unique().numel() == 15


def test_total_size_subsets_hold_every_class() -> None:
    y = torch.tensor([0] * 45 + [1] * 3 + [2] * 2)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        assert _subset(y, 6, 3, False, g).numel() == 6
        assert set(y[_subset(y, 6, 3, False, g)].tolist()) == {0, 1, 2}


def test_probe_curve_shapes_and_learning() -> None:
    x, y = blobs(m=300, n=6, k=3)
    xt, yt = blobs(m=300, n=6, k=3, seed=0)
    c = probe_curve(x[:200], y[:200], xt[200:], yt[200:], [1, 5, 50], repeats=2, per_class=True)
    assert c.m == [1, 5, 50] and c.errors["nb"].shape == (2, 3) and c.errors["lr"].shape == (2, 3)
    assert c.mean("nb")[-1] <= c.mean("nb")[0] and c.mean("lr")[-1] < 0.1


def test_same_seed_gives_the_same_curve() -> None:
    x, y = blobs(m=120, n=4, k=3)
    a = probe_curve(x[:90], y[:90], x[90:], y[90:], [6, 30], repeats=2, heads=("nb",), seed=4)
    b = probe_curve(x[:90], y[:90], x[90:], y[90:], [6, 30], repeats=2, heads=("nb",), seed=4)
    assert torch.equal(a.errors["nb"], b.errors["nb"])


def test_samples_to_reach_reads_the_grid_and_interpolates() -> None:
    errs = torch.tensor([[0.5, 0.3, 0.12, 0.1, 0.1]], dtype=torch.float64)
    c = ProbeCurve(
        [10, 20, 40, 80, 160], {"nb": errs, "lr": errs + torch.tensor([0.0, 0, 0, 0, 0.3])}
    )
    out = samples_to_reach(c, tol=0.01)
    assert out["nb"] == 80.0
    assert out["lr"] == 20.0  # asymptote 0.4 (target 0.41): the first size at or under it
    smooth = samples_to_reach(c, tol=0.01, interpolate=True)["nb"]
    frac = (0.12 - 0.11) / (0.12 - 0.1)
    assert math.isclose(smooth, math.exp(math.log(40) + frac * math.log(2)))
    assert samples_to_reach(c, tol=0.0, reference=0.0)["nb"] == math.inf


def test_bad_probe_sizes_get_clear_errors() -> None:
    x, y = blobs(m=30, n=3, k=3)
    with pytest.raises(ValueError, match="m_grid"):
        probe_curve(x, y, x, y, [11], per_class=True)
    with pytest.raises(ValueError, match="m_grid"):
        probe_curve(x, y, x, y, [31])
    with pytest.raises(ValueError, match="heads"):
        probe_curve(x, y, x, y, [6], heads=("svm",))
    with pytest.raises(ValueError, match="x_te: expected 3 features"):
        probe_curve(x, y, x[:, :2], y, [6])
