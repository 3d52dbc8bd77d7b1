"""Paper properties of the spherical losses (spec section 5), each able to fail."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from paperzoo.zloss import (
    DENSE_SPHERICAL_LOSSES,
    SPHERICAL_LOSSES,
    ZLoss,
    log_spherical_softmax_loss,
    log_taylor_softmax_loss,
    spherical_mse_loss,
    spherical_stats,
    z_loss,
    z_loss_from_stats,
)

f64 = torch.float64


def _reference_losses(logits: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Slow, obviously-correct per-example loops over the definitions (K targets summed)."""
    out: dict[str, list[float]] = {name: [] for name in DENSE_SPHERICAL_LOSSES}
    tgt = target if target.dim() == 2 else target[:, None]
    for row, ts in zip(logits.tolist(), tgt.tolist(), strict=True):
        d = len(row)
        mu = sum(row) / d
        sigma = math.sqrt(sum((o - mu) ** 2 for o in row) / d + 1e-12)
        taylor = sum(1 + o + o * o / 2 for o in row)
        sph = sum(o * o + 0.01 for o in row)
        z = sum(math.log1p(math.exp(-(row[c] - mu) / sigma)) for c in ts)
        onehot = [0.0] * d
        for c in ts:
            onehot[c] += 1.0  # a duplicated target counts twice
        mse = sum((o - y) ** 2 for o, y in zip(row, onehot, strict=True))
        mse += len(ts) - sum(y * y for y in onehot)  # the documented q - 2 Σ_k o_{c_k} + K
        out["z-loss"].append(z)
        out["spherical-mse"].append(mse)
        out["log-taylor-softmax"].append(
            sum(-math.log((1 + row[c] + row[c] ** 2 / 2) / taylor) for c in ts)
        )
        out["log-spherical-softmax"].append(sum(-math.log((row[c] ** 2 + 0.01) / sph) for c in ts))
    return {k: torch.tensor(v, dtype=f64) for k, v in out.items()}


def test_z_loss_analytic_value_of_the_spec() -> None:
    o = torch.tensor([[1.0, 2.0, 3.0, 6.0]], dtype=f64)
    z = 3.0 / math.sqrt(3.5)  # mu = 3, sigma = sqrt(3.5)
    expected = math.log1p(math.exp(-z))
    got = z_loss(o, torch.tensor([3]), a=1.0, b=0.0, eps=0.0)
    assert abs(got.item() - expected) < 1e-12
    got_eps = z_loss(o, torch.tensor([3]))  # the default eps=1e-12 moves it by < 1e-12
    assert abs(got_eps.item() - expected) < 1e-12


@pytest.mark.parametrize("alpha", [0.1, 3.0, 1e3])
@pytest.mark.parametrize("beta", [-50.0, 7.0])
def test_z_loss_is_shift_and_scale_invariant(alpha: float, beta: float) -> None:
    g = torch.Generator().manual_seed(0)
    o = torch.randn(8, 20, generator=g, dtype=f64)
    t = torch.randint(0, 20, (8,), generator=g)
    base = z_loss(o, t, a=1.5, b=1.0, reduction="none")
    moved = z_loss(alpha * o + beta, t, a=1.5, b=1.0, reduction="none")
    torch.testing.assert_close(moved, base, rtol=0, atol=1e-9)
    moved_stats = z_loss_from_stats(*spherical_stats(alpha * o + beta, t), 20, 1.5, 1.0)
    torch.testing.assert_close(moved_stats, base.mean(), rtol=0, atol=1e-9)


def test_z_loss_gradient_sums_to_zero_and_is_orthogonal_to_outputs() -> None:
    """Euler: shift invariance gives Σ_k ∂L/∂o_k = 0, scale invariance Σ_k o_k ∂L/∂o_k = 0."""
    g = torch.Generator().manual_seed(1)
    o = torch.randn(5, 30, generator=g, dtype=f64, requires_grad=True)
    t = torch.randint(0, 30, (5,), generator=g)
    z_loss(o, t, a=2.0, b=0.5, reduction="sum").backward()
    assert o.grad is not None
    assert o.grad.abs().max() > 1e-3  # not trivially zero
    torch.testing.assert_close(o.grad.sum(1), torch.zeros(5, dtype=f64), rtol=0, atol=1e-10)
    torch.testing.assert_close((o.grad * o).sum(1), torch.zeros(5, dtype=f64), rtol=0, atol=1e-9)


def test_z_loss_is_not_symmetric_under_negation() -> None:
    g = torch.Generator().manual_seed(2)
    o = torch.randn(6, 10, generator=g, dtype=f64)
    t = torch.randint(0, 10, (6,), generator=g)
    diff = (z_loss(o, t, reduction="none") - z_loss(-o, t, reduction="none")).abs()
    assert diff.max() > 1e-3


@pytest.mark.parametrize(("a", "b"), [(1.0, 0.0), (0.5, 2.0), (3.0, 1.0)])
def test_z_loss_bound_is_reached_at_the_one_hot_output(a: float, b: float) -> None:
    d = 12
    bound = F.softplus(torch.tensor(a * (b - math.sqrt(d - 1)), dtype=f64)) / a
    onehot = torch.zeros(1, d, dtype=f64)
    onehot[0, 4] = 1.0
    at_onehot = z_loss(onehot * 5.0 - 2.0, torch.tensor([4]), a=a, b=b, eps=0.0)
    torch.testing.assert_close(at_onehot, bound, rtol=0, atol=1e-12)
    g = torch.Generator().manual_seed(3)
    o = torch.randn(500, d, generator=g, dtype=f64) * 4
    t = torch.randint(0, d, (500,), generator=g)
    assert bool((z_loss(o, t, a=a, b=b, reduction="none") >= bound - 1e-12).all())


def test_large_softness_approaches_the_hinge() -> None:
    g = torch.Generator().manual_seed(4)
    o = torch.randn(50, 16, generator=g, dtype=f64)
    t = torch.randint(0, 16, (50,), generator=g)
    b = 1.0
    mu, sd = o.mean(1), o.std(1, unbiased=False)
    zc = (o.gather(1, t[:, None]).squeeze(1) - mu) / sd
    hinge = (b - zc).clamp_min(0)
    got = z_loss(o, t, a=1e4, b=b, reduction="none")
    torch.testing.assert_close(got, hinge, rtol=0, atol=1e-4)  # softplus(ax)/a - relu(x) <= log2/a


@pytest.mark.parametrize("k", [1, 3])
def test_dense_and_stats_forms_match_the_reference_loops(k: int) -> None:
    g = torch.Generator().manual_seed(5)
    o = torch.randn(7, 9, generator=g, dtype=f64) * 2 + 0.3
    t = torch.randint(0, 9, (7, k), generator=g)
    t[0, -1] = t[0, 0]  # a duplicated target
    target = t[:, 0] if k == 1 else t
    ref = _reference_losses(o, target)
    stats = spherical_stats(o, target)
    for name, dense in DENSE_SPHERICAL_LOSSES.items():
        torch.testing.assert_close(
            dense(o, target, reduction="none"), ref[name], rtol=1e-12, atol=1e-12
        )
        from_stats = SPHERICAL_LOSSES[name](*stats, 9, reduction="none")
        torch.testing.assert_close(from_stats, ref[name], rtol=1e-10, atol=1e-10)


def test_spherical_stats_match_a_loop() -> None:
    g = torch.Generator().manual_seed(6)
    o = torch.randn(4, 6, generator=g, dtype=f64)
    t = torch.randint(0, 6, (4, 2), generator=g)
    a, q, s = spherical_stats(o, t)
    for i in range(4):
        assert a[i].tolist() == [o[i, c].item() for c in t[i].tolist()]
        assert abs(q[i].item() - sum(v * v for v in o[i].tolist())) < 1e-12
        assert abs(s[i].item() - sum(o[i].tolist())) < 1e-12


@pytest.mark.parametrize("name", sorted(SPHERICAL_LOSSES))
def test_gradcheck_of_dense_and_stats_forms(name: str) -> None:
    g = torch.Generator().manual_seed(7)
    o = torch.randn(3, 5, generator=g, dtype=f64, requires_grad=True)
    t = torch.randint(0, 5, (3, 2), generator=g)
    dense = DENSE_SPHERICAL_LOSSES[name]
    assert torch.autograd.gradcheck(lambda x: dense(x, t, reduction="sum"), (o,))
    a, q, s = (x.detach().requires_grad_(True) for x in spherical_stats(o.detach(), t))
    stats_fn = SPHERICAL_LOSSES[name]
    assert torch.autograd.gradcheck(
        lambda a_, q_, s_: stats_fn(a_, q_, s_, 5, reduction="sum"), (a, q, s)
    )


def test_all_equal_logits_give_finite_loss_and_gradient() -> None:
    for stats_form in (False, True):
        o = torch.full((3, 8), 2.5, dtype=torch.float32, requires_grad=True)
        t = torch.tensor([0, 3, 7])
        loss = z_loss_from_stats(*spherical_stats(o, t), 8) if stats_form else z_loss(o, t)
        loss.backward()
        assert torch.isfinite(loss) and o.grad is not None
        assert bool(torch.isfinite(o.grad).all())


def test_stats_form_survives_a_large_common_shift_in_float32() -> None:
    """q/D - mu² cancels when |mu| >> sigma; the float64 subtraction keeps sigma accurate."""
    g = torch.Generator().manual_seed(8)
    o = torch.randn(4, 1000, generator=g, dtype=f64) + 300.0
    t = torch.randint(0, 1000, (4,), generator=g)
    ref = z_loss(o, t, reduction="none")
    a, q, s = spherical_stats(o, t)
    got = z_loss_from_stats(a.float(), q.float(), s.float(), 1000, reduction="none")
    assert bool(torch.isfinite(got).all())
    torch.testing.assert_close(got.double(), ref, rtol=0.05, atol=0.05)


def test_module_equals_functional_with_hyper_parameters() -> None:
    g = torch.Generator().manual_seed(9)
    o = torch.randn(4, 7, generator=g)
    t = torch.randint(0, 7, (4,), generator=g)
    torch.testing.assert_close(ZLoss(2.0, 1.5)(o, t), z_loss(o, t, 2.0, 1.5), rtol=0, atol=0)
    torch.testing.assert_close(
        log_spherical_softmax_loss(o, t, eps=0.5),
        log_spherical_softmax_loss(o, t, 0.5),
        rtol=0,
        atol=0,
    )
    assert spherical_mse_loss(o, t).item() != log_taylor_softmax_loss(o, t).item()


# ----------------------------------------------------------------------------- bad input


def _ok() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(4, 6), torch.tensor([0, 1, 2, 5])


def test_logits_not_2d_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"logits: expected a 2-D tensor"):
        z_loss(torch.randn(4, 6, 2), torch.zeros(4, dtype=torch.long))


def test_target_of_wrong_shape_is_rejected() -> None:
    o, _ = _ok()
    with pytest.raises(
        ValueError, match=r"target: expected 4 labels|target: expected shape \(4,\) or \(4, K\)"
    ):
        z_loss(o, torch.zeros(3, dtype=torch.long))
    with pytest.raises(
        ValueError, match=r"target: expected 4 labels|target: expected shape \(4,\) or \(4, K\)"
    ):
        z_loss(o, torch.zeros(4, 1, 1, dtype=torch.long))


def test_target_out_of_range_is_rejected() -> None:
    o, _ = _ok()
    with pytest.raises(
        ValueError, match=r"target: expected labels in \[0, 6\), got range \[0, 6\]"
    ):
        z_loss(o, torch.tensor([0, 1, 6, 2]))
    with pytest.raises(
        ValueError, match=r"target: expected labels in \[0, 6\), got range \[-1, 2\]"
    ):
        z_loss(o, torch.tensor([0, -1, 2, 2]))


def test_non_integer_target_is_rejected() -> None:
    o, _ = _ok()
    with pytest.raises(TypeError, match="target: expected an integer dtype"):
        z_loss(o, torch.zeros(4))


def test_fewer_than_two_classes_is_rejected() -> None:
    with pytest.raises(ValueError, match="num_classes: expected an integer >= 2, got 1"):
        z_loss(torch.randn(3, 1), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="num_classes: expected an integer >= 2, got 1"):
        z_loss_from_stats(torch.randn(3), torch.rand(3), torch.randn(3), 1)


@pytest.mark.parametrize("a", [0.0, -1.0, float("inf"), float("nan")])
def test_non_positive_softness_is_rejected(a: float) -> None:
    o, t = _ok()
    with pytest.raises(ValueError, match="a: expected a finite value > 0"):
        z_loss(o, t, a=a)
    with pytest.raises(ValueError, match="a: expected a finite value > 0"):
        ZLoss(a=a)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nonfinite_logits_are_rejected(value: float) -> None:
    o, t = _ok()
    o[1, 2] = value
    with pytest.raises(ValueError, match="logits: expected finite values, got NaN or inf"):
        z_loss(o, t)


def test_empty_batch_is_rejected_for_every_reduction() -> None:
    for reduction in ("mean", "sum", "none"):
        with pytest.raises(ValueError, match="empty batch"):
            z_loss(torch.randn(0, 5), torch.zeros(0, dtype=torch.long), reduction=reduction)


def test_stats_of_wrong_shape_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"sq_sum: expected shape \(3,\), got \(4,\)"):
        z_loss_from_stats(torch.randn(3, 1), torch.rand(4), torch.randn(3), 10)


def test_unknown_reduction_is_rejected() -> None:
    o, t = _ok()
    with pytest.raises(ValueError, match="reduction: expected one of"):
        z_loss(o, t, reduction="avg")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["target_logits", "sq_sum", "sum"])
def test_nonfinite_statistics_are_rejected(name: str) -> None:
    stats = {"target_logits": torch.randn(3, 2), "sq_sum": torch.rand(3) + 5, "sum": torch.randn(3)}
    stats[name][1] = float("nan")
    for fn in SPHERICAL_LOSSES.values():
        with pytest.raises(ValueError, match=f"{name}: expected finite values, got NaN or inf"):
            fn(stats["target_logits"], stats["sq_sum"], stats["sum"], 10)
