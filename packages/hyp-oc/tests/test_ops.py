"""Poincaré-ball operations: hand values, identities, c -> 0 limits, a NumPy float64 reference,
vectorised distance matrix against a loop, clipping and projection, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import Tensor

from paperzoo.hyp_oc import (
    clip_norm,
    expmap,
    expmap0,
    lambda_x,
    logmap0,
    mobius_add,
    poincare_dist,
    poincare_dist_matrix,
    project,
)

D64 = torch.float64


def _t(*v: float) -> Tensor:
    return torch.tensor(v, dtype=D64)


def _ball_points(n: int, d: int, c: float, max_frac: float, seed: int) -> Tensor:
    """``n`` random points with norm uniform in [0, max_frac / sqrt(c))."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(n, d, generator=g, dtype=D64)
    u = u / u.norm(dim=-1, keepdim=True)
    r = torch.rand(n, 1, generator=g, dtype=D64) * max_frac / math.sqrt(c)
    return u * r


# ---------------------------------------------------------------------------- 1. hand values
@pytest.mark.parametrize(
    ("eps", "sum_xy", "d_xy", "d_0x", "d_01"),
    [
        (0.0, (0.588235, 0.352941), 1.680700, 1.098612, 2.070977),
        (1e-5, (0.588230, 0.352938), 1.680675, 1.098599, 2.070954),
    ],
)
def test_hand_values_exact_and_official_eps(
    eps: float, sum_xy: tuple[float, float], d_xy: float, d_0x: float, d_01: float
) -> None:
    x, y, o = _t(0.5, 0.0), _t(0.0, 0.5), _t(0.0, 0.0)
    torch.testing.assert_close(
        mobius_add(x, y, 1.0, mobius_eps=eps), _t(*sum_xy), rtol=0, atol=1e-6
    )
    assert poincare_dist(x, y, 1.0, mobius_eps=eps).item() == pytest.approx(d_xy, abs=1e-6)
    assert poincare_dist(o, x, 1.0, mobius_eps=eps).item() == pytest.approx(d_0x, abs=1e-6)
    assert poincare_dist(o, _t(1.0, 0.0), 0.1, mobius_eps=eps).item() == pytest.approx(
        d_01, abs=1e-6
    )


def test_distance_from_origin_is_two_log_three_over_two_at_c1() -> None:
    assert poincare_dist(_t(0, 0), _t(0.5, 0), 1.0).item() == pytest.approx(math.log(3), abs=1e-12)


def test_expmap0_of_clip_radius_has_the_documented_norm() -> None:
    n = expmap0(_t(2.0, 0.0), 0.1).norm().item()
    assert n == pytest.approx(1.770056, abs=1e-6)
    assert n == pytest.approx(math.tanh(2 * math.sqrt(0.1)) / math.sqrt(0.1), abs=1e-12)


# ---------------------------------------------------------------------------- 2. identities
C_VALUES = [0.1, 1.0, 2.5]


@pytest.mark.parametrize("c", C_VALUES)
def test_origin_is_the_mobius_identity_and_minus_x_the_inverse(c: float) -> None:
    x = _ball_points(20, 5, c, 0.9, 0)
    torch.testing.assert_close(mobius_add(x, torch.zeros_like(x), c), x, rtol=0, atol=1e-14)
    torch.testing.assert_close(mobius_add(torch.zeros_like(x), x, c), x, rtol=0, atol=1e-14)
    torch.testing.assert_close(mobius_add(-x, x, c), torch.zeros_like(x), rtol=0, atol=1e-14)


@pytest.mark.parametrize("c", C_VALUES)
def test_logmap0_inverts_expmap0(c: float) -> None:
    g = torch.Generator().manual_seed(1)
    u = torch.randn(30, 6, generator=g, dtype=D64)
    u = clip_norm(u, 3.0 / math.sqrt(c))  # tanh(3) = 0.995: inside the artanh clamp 1 - 1e-5
    torch.testing.assert_close(logmap0(expmap0(u, c), c), u, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("c", C_VALUES)
def test_expmap_of_zero_is_the_base_point_and_at_origin_equals_expmap0(c: float) -> None:
    x = _ball_points(10, 4, c, 0.9, 2)
    torch.testing.assert_close(expmap(x, torch.zeros_like(x), c), x, rtol=0, atol=1e-14)
    u = torch.randn(10, 4, generator=torch.Generator().manual_seed(3), dtype=D64)
    torch.testing.assert_close(expmap(torch.zeros_like(u), u, c), expmap0(u, c), rtol=0, atol=1e-14)


@pytest.mark.parametrize("c", C_VALUES)
def test_distance_is_symmetric_zero_on_the_diagonal_and_obeys_the_triangle_inequality(
    c: float,
) -> None:
    x, y, z = (_ball_points(200, 3, c, 0.95, s) for s in (4, 5, 6))
    dxy, dyx = poincare_dist(x, y, c), poincare_dist(y, x, c)
    torch.testing.assert_close(dxy, dyx, rtol=1e-12, atol=1e-12)
    assert float(poincare_dist(x, x, c).abs().max()) < 1e-12
    assert bool((dxy <= poincare_dist(x, z, c) + poincare_dist(z, y, c) + 1e-10).all())


@pytest.mark.parametrize("c", C_VALUES)
def test_distance_equals_the_arcosh_closed_form(c: float) -> None:
    x, y = _ball_points(100, 4, c, 0.95, 7), _ball_points(100, 4, c, 0.95, 8)
    arg = 1 + 2 * c * (x - y).pow(2).sum(-1) / (
        (1 - c * x.pow(2).sum(-1)) * (1 - c * y.pow(2).sum(-1))
    )
    ref = torch.acosh(arg) / math.sqrt(c)
    torch.testing.assert_close(poincare_dist(x, y, c), ref, rtol=1e-10, atol=1e-10)


def test_lambda_x_is_two_over_one_minus_c_norm_squared() -> None:
    x = _ball_points(5, 3, 0.1, 0.9, 9)
    ref = 2 / (1 - 0.1 * x.pow(2).sum(-1))
    torch.testing.assert_close(lambda_x(x, 0.1), ref, rtol=0, atol=1e-14)
    assert lambda_x(x, 0.1, keepdim=True).shape == (5, 1)


# ---------------------------------------------------------------------------- 3. c -> 0 limits
def test_ops_tend_to_euclidean_as_curvature_vanishes() -> None:
    c = 1e-8
    g = torch.Generator().manual_seed(10)
    x = torch.randn(50, 4, generator=g, dtype=D64)
    x = x / x.norm(dim=-1, keepdim=True) * 1.8 * torch.rand(50, 1, generator=g, dtype=D64)
    y = torch.randn(50, 4, generator=g, dtype=D64)
    y = y / y.norm(dim=-1, keepdim=True) * 1.8 * torch.rand(50, 1, generator=g, dtype=D64)
    torch.testing.assert_close(mobius_add(x, y, c), x + y, rtol=0, atol=1e-6)
    torch.testing.assert_close(expmap0(x, c), x, rtol=0, atol=1e-6)
    torch.testing.assert_close(poincare_dist(x, y, c), 2 * (x - y).norm(dim=-1), rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------- 4. NumPy reference
def _np_mobius(x: np.ndarray, y: np.ndarray, c: float, eps: float) -> np.ndarray:
    xy, x2, y2 = (
        (x * y).sum(-1, keepdims=True),
        (x * x).sum(-1, keepdims=True),
        (y * y).sum(-1, keepdims=True),
    )
    num = (1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y
    return num / (1 + 2 * c * xy + c * c * x2 * y2 + eps)


@pytest.mark.parametrize("eps", [0.0, 1e-5])
def test_ops_match_an_independent_numpy_float64_implementation(eps: float) -> None:
    c = 0.1
    x, y = _ball_points(64, 8, c, 0.9, 11), _ball_points(64, 8, c, 0.9, 12)
    xn, yn = x.numpy(), y.numpy()
    m = _np_mobius(xn, yn, c, eps)
    np.testing.assert_allclose(mobius_add(x, y, c, mobius_eps=eps).numpy(), m, rtol=0, atol=1e-13)
    sc = math.sqrt(c)
    d = 2 / sc * np.arctanh(sc * np.linalg.norm(_np_mobius(-xn, yn, c, eps), axis=-1))
    np.testing.assert_allclose(
        poincare_dist(x, y, c, mobius_eps=eps).numpy(), d, rtol=0, atol=1e-12
    )
    u = xn * 3
    nu = np.linalg.norm(u, axis=-1, keepdims=True)
    np.testing.assert_allclose(
        expmap0(torch.from_numpy(u), c).numpy(), np.tanh(sc * nu) * u / (sc * nu), atol=1e-13
    )
    ny = np.linalg.norm(yn, axis=-1, keepdims=True)
    np.testing.assert_allclose(
        logmap0(y, c).numpy(), np.arctanh(sc * ny) * yn / (sc * ny), rtol=0, atol=1e-13
    )
    lam = 2 / (1 - c * (xn * xn).sum(-1, keepdims=True))
    sec = np.tanh(sc * lam * nu / 2) * u / (sc * nu)
    np.testing.assert_allclose(
        expmap(x, torch.from_numpy(u), c, mobius_eps=eps).numpy(),
        _np_mobius(xn, sec, c, eps),
        rtol=0,
        atol=1e-13,
    )


@pytest.mark.parametrize("eps", [0.0, 1e-5])
def test_distance_matrix_equals_the_pairwise_loop(eps: float) -> None:
    c = 0.1
    x, y = _ball_points(13, 6, c, 0.95, 13), _ball_points(7, 6, c, 0.95, 14)
    dm = poincare_dist_matrix(x, y, c, mobius_eps=eps)
    assert dm.shape == (13, 7)
    ref = torch.stack(
        [
            torch.stack([poincare_dist(x[i], y[j], c, mobius_eps=eps) for j in range(7)])
            for i in range(13)
        ]
    )
    torch.testing.assert_close(dm, ref, rtol=1e-10, atol=1e-10)
    assert float(poincare_dist_matrix(x, x, c).diagonal().abs().max()) < 1e-6


# ---------------------------------------------------------------------------- 5. clip / project
def test_clip_norm_bounds_the_norm_and_leaves_short_vectors_alone() -> None:
    g = torch.Generator().manual_seed(15)
    x = torch.randn(100, 5, generator=g, dtype=D64) * 3
    out = clip_norm(x, 2.0)
    assert bool((out.norm(dim=-1) <= 2.0).all())
    short = x / x.norm(dim=-1, keepdim=True) * 1.5
    torch.testing.assert_close(clip_norm(short, 2.0), short, rtol=0, atol=0)
    # direction is kept
    torch.testing.assert_close(
        out / out.norm(dim=-1, keepdim=True), x / x.norm(dim=-1, keepdim=True)
    )


def test_project_rescales_only_points_beyond_the_margin() -> None:
    c = 0.1
    x = torch.tensor([[10.0, 0.0], [0.5, 0.5]], dtype=D64)
    p = project(x, c)
    assert p[0].norm().item() == pytest.approx((1 - 1e-3) / math.sqrt(c), abs=1e-12)
    torch.testing.assert_close(p[1], x[1], rtol=0, atol=0)


def test_half_precision_is_computed_in_float32_and_returned_in_its_dtype() -> None:
    x = torch.tensor([[1.0, 0.5]], dtype=torch.float16)
    out = poincare_dist(x, -x, 0.1)
    assert out.dtype == torch.float16
    ref = poincare_dist(x.double(), -x.double(), 0.1)
    assert abs(out.double().item() - ref.item()) < 5e-3


# ---------------------------------------------------------------------------- 9. bad input
@pytest.mark.parametrize("c", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_curvature_is_rejected(c: float) -> None:
    with pytest.raises(ValueError, match="c: expected"):
        mobius_add(_t(0.1, 0.0), _t(0.0, 0.1), c)
    with pytest.raises(ValueError, match="c: expected"):
        expmap0(_t(0.1, 0.0), c)


def test_points_outside_the_ball_raise_with_check_and_are_projected_without() -> None:
    c = 1.0
    out = _t(1.5, 0.0)
    with pytest.raises(ValueError, match="inside the Poincaré ball"):
        poincare_dist(out, _t(0.0, 0.0), c)
    with pytest.raises(ValueError, match="inside the Poincaré ball"):
        mobius_add(_t(0.0, 0.0), out, c)
    with pytest.raises(ValueError, match="inside the Poincaré ball"):
        logmap0(out, c)
    d = poincare_dist(out, _t(0.0, 0.0), c, check=False)
    assert bool(torch.isfinite(d))
    ref = poincare_dist(project(out, c), _t(0.0, 0.0), c)
    torch.testing.assert_close(d, ref)


def test_nonfinite_points_raise() -> None:
    with pytest.raises(ValueError, match="finite"):
        poincare_dist(_t(float("nan"), 0.0), _t(0.0, 0.0), 1.0)


def test_feature_dim_mismatch_and_bad_types_raise() -> None:
    with pytest.raises(ValueError, match="feature dimension"):
        mobius_add(_t(0.1, 0.0), _t(0.1, 0.0, 0.0), 1.0)
    with pytest.raises(TypeError, match="floating-point"):
        expmap0(torch.tensor([1, 2]), 1.0)
    with pytest.raises(ValueError, match="r: expected"):
        clip_norm(_t(1.0, 0.0), 0.0)
    with pytest.raises(ValueError, match="2-D"):
        poincare_dist_matrix(_t(0.1, 0.0), _t(0.1, 0.0), 1.0)
