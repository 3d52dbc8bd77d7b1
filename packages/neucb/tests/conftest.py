"""Shared helpers for the neucb tests."""

from __future__ import annotations

import torch

from paperzoo.neucb.env import ClassificationBandit


def separable_bandit(
    n_rounds: int = 3000, seed: int = 0, margin: float = 0.1
) -> ClassificationBandit:
    """K = 4, d = 5 unit-norm points labelled by argmax W x with a top-2 margin >= ``margin``."""
    gen = torch.Generator().manual_seed(seed)
    weights = torch.randn(4, 5, generator=gen)
    xs = torch.randn(6000, 5, generator=gen)
    xs = xs / xs.norm(dim=1, keepdim=True)
    scores = xs @ weights.T
    top2 = scores.topk(2, dim=1).values
    keep = (top2[:, 0] - top2[:, 1]) >= margin
    X, y = xs[keep][:2000], scores[keep][:2000].argmax(1)
    return ClassificationBandit(X, y, n_rounds, seed=seed, n_arms=4)


def small_env(n_rounds: int = 200, seed: int = 0) -> ClassificationBandit:
    """A 3-arm bandit over 60 Gaussian points in 4-D (labels cycle 0, 1, 2)."""
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(60, 4, generator=gen)
    y = torch.arange(60) % 3
    return ClassificationBandit(X, y, n_rounds, seed=seed)
