"""Independent formulation: the ops and the MLR logits equal geoopt's ``PoincareBall`` (a test-only
oracle from the ``peers`` dependency group; skipped when geoopt is not installed)."""

from __future__ import annotations

import math

import pytest
import torch

from paperzoo.hyp_oc import (
    expmap,
    expmap0,
    hyperbolic_mlr_logits,
    logmap0,
    mobius_add,
    poincare_dist,
    poincare_dist_matrix,
    project,
)

geoopt = pytest.importorskip("geoopt")

D64 = torch.float64


def _points(n: int, d: int, c: float, seed: int, frac: float = 0.9) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(n, d, generator=g, dtype=D64)
    r = torch.rand(n, 1, generator=g, dtype=D64) * frac / math.sqrt(c)
    return u / u.norm(dim=-1, keepdim=True) * r


@pytest.mark.parametrize("c", [0.1, 1.0])
def test_ball_ops_agree_with_geoopt_to_1e12(c: float) -> None:
    ball = geoopt.PoincareBall(c=torch.tensor(c, dtype=D64))  # a float64 curvature
    x, y = _points(64, 7, c, 0), _points(64, 7, c, 1)
    u = torch.randn(64, 7, generator=torch.Generator().manual_seed(2), dtype=D64)
    tol = {"rtol": 0, "atol": 1e-12}
    torch.testing.assert_close(mobius_add(x, y, c), ball.mobius_add(x, y, project=False), **tol)
    torch.testing.assert_close(expmap0(u, c), ball.expmap0(u, project=False), **tol)
    torch.testing.assert_close(expmap(x, u, c), ball.expmap(x, u, project=False), **tol)
    torch.testing.assert_close(logmap0(y, c), ball.logmap0(y), **tol)
    torch.testing.assert_close(poincare_dist(x, y, c), ball.dist(x, y), **tol)
    torch.testing.assert_close(
        poincare_dist_matrix(x, y, c), ball.dist(x.unsqueeze(1), y.unsqueeze(0)), rtol=0, atol=1e-10
    )
    far = x * 10
    # geoopt keeps a margin of 1e-5 in float64 (ours: official 1e-3 by default)
    torch.testing.assert_close(project(far, c, eps=1e-5), ball.projx(far), rtol=0, atol=1e-12)


def test_mlr_logits_are_lambda_p_norm_a_times_geoopt_signed_dist2plane() -> None:
    c = 0.1
    ball = geoopt.PoincareBall(c=torch.tensor(c, dtype=D64))  # a float64 curvature
    z = _points(40, 5, c, 3)
    p = _points(3, 5, c, 4, frac=0.5)
    a = torch.randn(3, 5, generator=torch.Generator().manual_seed(5), dtype=D64)
    ours = hyperbolic_mlr_logits(z, p, a, c)
    d = ball.dist2plane(z.unsqueeze(1), p.unsqueeze(0), a.unsqueeze(0), signed=True)  # (N, K)
    lam = 2 / (1 - c * p.pow(2).sum(-1))
    torch.testing.assert_close(ours, lam * a.norm(dim=-1) * d, rtol=0, atol=1e-12)
