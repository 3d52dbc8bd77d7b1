"""Paper-specific properties of the grid, the bumps, the combinations and L2MM."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from paperzoo.af_kan import FUNCS, af_basis, grid, l2mm, relu_kan_basis, relu_kan_scale


@pytest.mark.parametrize(("G", "K"), [(3, 3), (5, 3), (1, 0), (4, 2)])
def test_grid_endpoints_and_widths_match_the_paper(G: int, K: int) -> None:
    start, end = grid(G, K, dtype=torch.float64)
    assert start.shape == end.shape == (G + K,)
    assert start[0].item() == pytest.approx(-K / G)
    assert end[-1].item() == pytest.approx((G + K) / G)
    torch.testing.assert_close(end - start, torch.full_like(start, (K + 1) / G))
    torch.testing.assert_close(start[1:] - start[:-1], torch.full((G + K - 1,), 1 / G).double())


@pytest.mark.parametrize(("G", "K"), [(3, 3), (5, 3), (4, 1)])
def test_exactly_k_plus_one_relu_kan_bumps_are_live_on_unit_interval(G: int, K: int) -> None:
    start, end = grid(G, K, dtype=torch.float64)
    # points strictly inside the G cells of [0, 1), away from the knots
    x = (torch.arange(G, dtype=torch.float64) + torch.tensor([0.13, 0.5, 0.91])[:, None]) / G
    phi = relu_kan_basis(x.reshape(-1, 1), start, end, relu_kan_scale(G, K))
    assert ((phi > 0).sum(dim=-1) == K + 1).all()


def test_relu_kan_bump_peaks_at_one_vanishes_outside_and_is_symmetric() -> None:
    G, K = 3, 3
    start, end = grid(G, K, dtype=torch.float64)
    r = relu_kan_scale(G, K)
    mid = (start + end) / 2
    for j in range(G + K):
        s, e = start[j : j + 1], end[j : j + 1]
        at_mid = relu_kan_basis(mid[j].reshape(1, 1), s, e, r)
        assert at_mid.item() == pytest.approx(1.0)
        outside = torch.stack([s - 0.01, e + 0.01, s - 1.0, e, s]).reshape(-1, 1)
        assert (relu_kan_basis(outside, s, e, r) == 0).all()
        offs = torch.tensor([0.05, 0.2, 0.4], dtype=torch.float64)
        left = relu_kan_basis((mid[j] - offs).reshape(-1, 1), s, e, r)
        right = relu_kan_basis((mid[j] + offs).reshape(-1, 1), s, e, r)
        torch.testing.assert_close(left, right)
        # hand value: x = s + w/4 for width w -> [r (w/4)(3w/4)]^2 = (3/4)^2 with r = 4/w^2
        w = (K + 1) / G
        assert relu_kan_basis((s + w / 4).reshape(1, 1), s, e, r).item() == pytest.approx(0.5625)


def test_relu_kan_basis_matches_scalar_reference_loop() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 5, generator=g, dtype=torch.float64) * 3 - 1
    start = torch.rand(5, 6, generator=g, dtype=torch.float64) - 0.5
    end = start + 0.7
    phi = relu_kan_basis(x, start, end, 2.5)
    for b in range(4):
        for i in range(5):
            for j in range(6):
                val = (2.5 * max(x[b, i] - start[i, j], 0.0) * max(end[i, j] - x[b, i], 0.0)) ** 2
                assert phi[b, i, j].item() == pytest.approx(float(val), abs=1e-12)


def test_af_basis_with_relu_quad1_is_relu_kan_basis_over_r_squared() -> None:
    G, K = 3, 3
    start, end = grid(G, K, dtype=torch.float64)
    x = torch.linspace(-1.5, 2.5, 97, dtype=torch.float64).reshape(-1, 1)
    r = relu_kan_scale(G, K)
    torch.testing.assert_close(
        af_basis(x, start, end, activation="relu", func="quad1"),
        relu_kan_basis(x, start, end, r) / r**2,
    )


@pytest.mark.parametrize(
    ("func", "value"),
    [
        ("quad1", 36.0),
        ("quad2", 19.0),
        ("sum", 5.0),
        ("prod", 6.0),
        ("sum_prod", 11.0),
        ("cubic1", 65.0),
        ("cubic2", 216.0),
    ],
)
def test_function_combinations_at_u2_v3_match_hand_values(func: str, value: float) -> None:
    u, v = torch.tensor(2.0), torch.tensor(3.0)
    assert FUNCS[func](u, v).item() == value


@pytest.mark.parametrize("activation", ["silu", "gelu", "tanh", "elu", "softplus"])
@pytest.mark.parametrize("func", sorted(FUNCS))
def test_af_basis_matches_scalar_reference_loop(activation: str, func: str) -> None:
    acts = {
        "silu": F.silu,
        "gelu": F.gelu,
        "tanh": torch.tanh,
        "elu": F.elu,
        "softplus": F.softplus,
    }
    combos = {
        "quad1": lambda u, v: (u * v) ** 2,
        "quad2": lambda u, v: u * v + u**2 + v**2,
        "sum": lambda u, v: u + v,
        "prod": lambda u, v: u * v,
        "sum_prod": lambda u, v: u + v + u * v,
        "cubic1": lambda u, v: (u + v) * (u**2 + v**2),
        "cubic2": lambda u, v: (u * v) ** 3,
    }
    start, end = grid(3, 2, dtype=torch.float64)
    x = torch.tensor([[-0.7, 0.1, 0.55], [1.2, -0.05, 0.3]], dtype=torch.float64)
    out = af_basis(x, start, end, activation=activation, func=func)
    act = acts[activation]
    for b in range(2):
        for i in range(3):
            for j in range(5):
                u = act(x[b, i] - start[j])
                v = act(end[j] - x[b, i])
                assert out[b, i, j].item() == pytest.approx(combos[func](u, v).item(), rel=1e-12)


def _official_l2mm(t: torch.Tensor) -> torch.Tensor:
    t = F.normalize(t, p=2, dim=None)
    return (t - t.min()) / (t.max() - t.min())


def test_batch_l2mm_equals_official_two_step_form_and_plain_min_max() -> None:
    g = torch.Generator().manual_seed(1)
    t = torch.randn(8, 5, 6, generator=g, dtype=torch.float64) * 3 + 1
    out = l2mm(t, "batch")
    torch.testing.assert_close(out, _official_l2mm(t))
    torch.testing.assert_close(out, (t - t.min()) / (t.max() - t.min()))
    assert out.min().item() == 0.0
    assert out.max().item() == pytest.approx(1.0, abs=1e-15)


def test_sample_l2mm_rescales_each_row_to_unit_range() -> None:
    g = torch.Generator().manual_seed(2)
    t = torch.randn(4, 5, 6, generator=g, dtype=torch.float64)
    out = l2mm(t, "sample")
    for b in range(4):
        torch.testing.assert_close(out[b], _official_l2mm(t[b]))
        assert out[b].min().item() == 0.0
        assert out[b].max().item() == pytest.approx(1.0)


def test_batch_l2mm_depends_on_other_rows_and_sample_l2mm_does_not() -> None:
    g = torch.Generator().manual_seed(3)
    t = torch.rand(4, 5, 6, generator=g)
    t2 = t.clone()
    t2[1:] = t2[1:] * 10 + 5  # change every row but the first
    assert not torch.allclose(l2mm(t, "batch")[0], l2mm(t2, "batch")[0])
    torch.testing.assert_close(l2mm(t, "sample")[0], l2mm(t2, "sample")[0])


@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_l2mm_of_constant_tensor_is_finite(mode: str) -> None:
    out = l2mm(torch.full((3, 4, 5), 0.25), mode)
    assert torch.isfinite(out).all()
    assert (out == 0).all()


def test_l2mm_gradient_matches_official_form_when_extremes_are_unique() -> None:
    g = torch.Generator().manual_seed(4)
    t = torch.randn(3, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    (ours,) = torch.autograd.grad((l2mm(t, "batch") * w).sum(), t)
    (ref,) = torch.autograd.grad((_official_l2mm(t) * w).sum(), t)
    torch.testing.assert_close(ours, ref)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_l2mm_of_constant_tensor_is_finite_in_every_float_dtype(
    mode: str, dtype: torch.dtype
) -> None:
    # eps = 1e-8 rounds to 0 in float16; the floor must not turn the guard back into 0/0
    out = l2mm(torch.full((3, 4, 5), 0.25, dtype=dtype), mode)
    assert out.dtype == dtype
    assert (out == 0).all()


def test_l2mm_of_integer_features_divides_in_floating_point() -> None:
    out = l2mm(torch.tensor([[[0, 2], [4, 8]]]), "batch")
    torch.testing.assert_close(out, torch.tensor([[[0.0, 0.25], [0.5, 1.0]]]))
