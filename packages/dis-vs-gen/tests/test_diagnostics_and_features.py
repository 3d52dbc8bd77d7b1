"""Assumption diagnostics against loops; feature extraction and the tiny pretraining."""

from __future__ import annotations

import torch

from paperzoo.core.data import make_loader
from paperzoo.dis_vs_gen import (
    extract,
    gaussian_nb_fit,
    llr_gap,
    llr_variance,
    pooled_variances,
    pretrain_tiny,
)

from .conftest import blobs


def test_pooled_variance_is_the_prior_weighted_class_variance() -> None:
    x, y = blobs(m=31, n=4, k=3)
    ref = sum(float((y == c).sum()) / 31 * x[y == c].var(0, correction=0) for c in range(3))
    torch.testing.assert_close(pooled_variances(x, y, 3), ref, rtol=1e-12, atol=1e-12)


def test_llr_gap_and_variance_match_a_loop() -> None:
    x, y = blobs(m=24, n=3, k=3)
    means, var, _ = gaussian_nb_fit(x, y, 3)
    gap, vv = llr_gap(x, y, 3), llr_variance(x, y, 3)
    for k in range(3):
        rows = x[y == k]
        for k2 in range(3):
            d = [
                float(
                    -0.5 * ((r - means[k]).square() / var).sum()
                    + 0.5 * ((r - means[k2]).square() / var).sum()
                )
                for r in rows
            ]
            mu = sum(d) / len(d)
            assert abs(float(gap[k, k2]) - mu / 3) < 1e-10
            assert abs(float(vv[k, k2]) - sum((t - mu) ** 2 for t in d) / len(d) / 3) < 1e-10
    assert bool((gap.diagonal() == 0).all()) and bool((gap + torch.eye(3) > 0).all())


def test_extract_returns_features_and_labels_in_order() -> None:
    x, y = blobs(m=10, n=4, k=2, dtype=torch.float32)
    lin = torch.nn.Linear(4, 2)
    f, yy = extract(lin, make_loader(x, y, batch_size=3, shuffle=False))
    torch.testing.assert_close(f, lin(x).detach())
    assert torch.equal(yy, y) and lin.training


def test_pretrain_tiny_learns_the_pretraining_classes() -> None:
    x, y = blobs(m=300, n=8, k=4, dtype=torch.float32)
    enc = pretrain_tiny(x, y, classes=[0, 1, 2], epochs=3, widths=(16, 6), seed=0)
    assert enc(x).shape == (300, 6) and not enc.training
    again = pretrain_tiny(x, y, classes=[0, 1, 2], epochs=3, widths=(16, 6), seed=0)
    torch.testing.assert_close(again(x), enc(x))
