"""ToPoincare and HyperbolicMLR: clipping bound, Riemannian gradient, per-class reference loop,
c -> 0 limit, gradchecks, official-eps parity, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from paperzoo.hyp_oc import (
    HyperbolicMLR,
    ToPoincare,
    clip_norm,
    expmap0,
    hyperbolic_mlr_logits,
    mobius_add,
    poincare_dist,
    riemannian_gradient,
)

D64 = torch.float64


def test_to_poincare_output_stays_within_the_clipped_radius() -> None:
    c, r = 0.1, 2.0
    layer = ToPoincare(c, r, learn_base_point=True, dim=6).double()  # base point at 0 (init)
    x = torch.randn(500, 6, dtype=D64) * 20
    z = layer(x)
    bound = math.tanh(math.sqrt(c) * r) / math.sqrt(c)
    assert float(z.detach().norm(dim=-1).max()) <= bound + 1e-12
    assert float(layer.last_max_norm) == pytest.approx(float(z.norm(dim=-1).max()))  # type: ignore[arg-type]


def test_to_poincare_with_base_point_is_expmap_at_it_of_the_clipped_input() -> None:
    c = 0.1
    layer = ToPoincare(c, 2.0, dim=3, riemannian_grad=False).double()
    with torch.no_grad():
        layer.base_point.copy_(torch.tensor([0.3, -0.2, 0.1]))  # type: ignore[union-attr]
    x = torch.tensor([[0.5, 0.5, 0.0], [3.0, 0.0, 4.0]], dtype=D64)
    p0 = expmap0(layer.base_point.detach(), c)  # type: ignore[union-attr]
    xc = x * torch.clamp(2.0 / (x.norm(dim=-1, keepdim=True) + 1e-5), max=1.0)
    lam = 2 / (1 - c * p0.pow(2).sum())
    n = xc.norm(dim=-1, keepdim=True)
    ref = mobius_add(
        p0.expand_as(xc), torch.tanh(math.sqrt(c) * lam * n / 2) * xc / (math.sqrt(c) * n), c
    )
    torch.testing.assert_close(layer(x), ref, rtol=0, atol=1e-13)


def test_riemannian_gradient_scales_the_euclidean_gradient_by_inverse_lambda_squared() -> None:
    c = 0.1
    x = torch.randn(8, 4, dtype=D64)
    w = torch.randn(8, 4, dtype=D64)
    plain = ToPoincare(c, 2.0, learn_base_point=False, riemannian_grad=False)
    riem = ToPoincare(c, 2.0, learn_base_point=False, riemannian_grad=True)
    xa = x.clone().requires_grad_(True)
    za = plain(xa)
    (za * w).sum().backward()
    xb = x.clone().requires_grad_(True)
    zb = riem(xb)
    torch.testing.assert_close(za, zb, rtol=0, atol=0)  # same forward
    # the gradient reaching z is w * (1 - c|z|^2)^2 / 4: check it on z directly
    zz = za.detach().clone().requires_grad_(True)
    (riemannian_gradient(zz, c) * w).sum().backward()
    scale = (1 - c * za.detach().pow(2).sum(-1, keepdim=True)).pow(2) / 4
    torch.testing.assert_close(zz.grad, w * scale, rtol=0, atol=1e-15)
    (zb * w).sum().backward()
    assert xa.grad is not None and xb.grad is not None
    assert not torch.allclose(xa.grad, xb.grad)


def _mlr_loop(z: torch.Tensor, p: torch.Tensor, a: torch.Tensor, c: float) -> torch.Tensor:
    """Slow reference: one point and one class at a time, the paper's formula."""
    sc = math.sqrt(c)
    out = torch.empty(z.shape[0], p.shape[0], dtype=D64)
    for n in range(z.shape[0]):
        for k in range(p.shape[0]):
            m = mobius_add(-p[k], z[n], c)
            lam = 2 / (1 - c * p[k].pow(2).sum())
            an = a[k].norm()
            arg = 2 * sc * (m * a[k]).sum() / ((1 - c * m.pow(2).sum()) * an)
            out[n, k] = lam * an / sc * torch.asinh(arg)
    return out


@pytest.mark.parametrize("c", [0.1, 1.0])
def test_mlr_logits_equal_the_per_point_per_class_loop(c: float) -> None:
    mlr = HyperbolicMLR(5, 3, c).double()
    z = expmap0(torch.randn(9, 5, dtype=D64), c)
    p, a = mlr.gyroplanes()
    torch.testing.assert_close(mlr(z), _mlr_loop(z, p, a, c), rtol=1e-12, atol=1e-12)


def test_mlr_transports_the_normal_by_the_conformal_factor() -> None:
    c = 0.1
    mlr = HyperbolicMLR(4, 2, c).double()
    p, a = mlr.gyroplanes()
    torch.testing.assert_close(p, expmap0(mlr.p_vals.detach(), c))
    torch.testing.assert_close(a, mlr.a_vals.detach() * (1 - c * p.pow(2).sum(-1, keepdim=True)))


def test_mlr_logit_tends_to_four_inner_product_as_curvature_vanishes() -> None:
    c = 1e-8
    g = torch.Generator().manual_seed(0)
    z = torch.randn(20, 4, generator=g, dtype=D64)
    z = z / z.norm(dim=-1, keepdim=True) * 1.8 * torch.rand(20, 1, generator=g, dtype=D64)
    p = torch.randn(3, 4, generator=g, dtype=D64) * 0.4
    a = torch.randn(3, 4, generator=g, dtype=D64)
    ref = 4 * ((z.unsqueeze(1) - p.unsqueeze(0)) * a.unsqueeze(0)).sum(-1)
    torch.testing.assert_close(hyperbolic_mlr_logits(z, p, a, c), ref, rtol=0, atol=1e-6)


def test_mlr_logit_is_zero_on_the_gyroplane_and_signed_by_side() -> None:
    c = 0.1
    p = torch.tensor([[0.5, 0.0]], dtype=D64)
    a = torch.tensor([[1.0, 0.0]], dtype=D64)
    on = torch.tensor([[0.5, 0.0]], dtype=D64)
    assert abs(float(hyperbolic_mlr_logits(on, p, a, c))) < 1e-14
    plus = hyperbolic_mlr_logits(torch.tensor([[1.0, 0.0]], dtype=D64), p, a, c)
    minus = hyperbolic_mlr_logits(torch.tensor([[0.0, 0.0]], dtype=D64), p, a, c)
    assert float(plus) > 0 > float(minus)
    # for a point on the normal line through p, |logit| = lambda_p |a| d(z, p)
    lam = 2 / (1 - c * 0.25)
    d = poincare_dist(p[0], torch.tensor([1.0, 0.0], dtype=D64), c)
    assert float(plus) == pytest.approx(lam * float(d), rel=1e-12)


def test_official_mobius_eps_shifts_mlr_logits_only_slightly() -> None:
    """Inside the clipped region (|z| <= 1.77 at c = 0.1) the official +1e-5 shifts the MLR
    logits by about 1e-3 (spec: measured 9e-4), never by nothing."""
    c = 0.1
    g = torch.Generator().manual_seed(0)
    z = expmap0(clip_norm(torch.randn(200, 4, generator=g, dtype=D64) * 2, 2.0), c)
    p = expmap0(torch.randn(2, 4, generator=g, dtype=D64) * 0.5, c)
    a = torch.randn(2, 4, generator=g, dtype=D64)
    exact = hyperbolic_mlr_logits(z, p, a, c)
    off = hyperbolic_mlr_logits(z, p, a, c, mobius_eps=1e-5)
    diff = float((exact - off).abs().max())
    assert 1e-6 < diff < 2e-3


def test_gradcheck_of_ops_mlr_and_layer() -> None:
    c = 0.1
    g = torch.Generator().manual_seed(1)
    x = (torch.randn(3, 4, generator=g, dtype=D64) * 0.5).requires_grad_(True)
    y = (torch.randn(3, 4, generator=g, dtype=D64) * 0.5).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: mobius_add(a, b, c), (x, y))
    assert torch.autograd.gradcheck(lambda a: expmap0(a, c), (x,))
    assert torch.autograd.gradcheck(lambda a, b: poincare_dist(a, b, c), (x, y))
    mlr = HyperbolicMLR(4, 3, c).double()
    assert torch.autograd.gradcheck(lambda a: mlr(a), (x,))
    p = mlr.p_vals.detach().clone().requires_grad_(True)
    a = mlr.a_vals.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda pp, aa: hyperbolic_mlr_logits(x.detach(), expmap0(pp, c), aa, c), (p, a)
    )


def test_layer_bad_input_raises() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        HyperbolicMLR(4, 1)
    with pytest.raises(ValueError, match="clip_r"):
        ToPoincare(0.1, clip_r=0.0, dim=3)
    with pytest.raises(ValueError, match="c: expected"):
        ToPoincare(-1.0, dim=3)
    with pytest.raises(ValueError, match="dim"):
        ToPoincare(0.1, learn_base_point=True, dim=None)
    with pytest.raises(ValueError, match="inside the Poincaré ball"):
        HyperbolicMLR(2, 2, c=1.0)(torch.tensor([[2.0, 0.0]]))
    with pytest.raises(ValueError, match="features"):
        HyperbolicMLR(3, 2)(torch.zeros(2, 4))
