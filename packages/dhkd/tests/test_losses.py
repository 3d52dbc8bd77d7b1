"""BinaryKL, BinaryKL-Norm and KD: analytic values, the closed form, limits, invariances, gradients."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from paperzoo.dhkd import binary_kl, binary_kl_norm, kd_loss, log_cosh

D = torch.float64


def t(rows: list[list[float]]) -> Tensor:
    return torch.tensor(rows, dtype=D)


def _bern_kl(p: float, q: float) -> float:
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


def _sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def slow_binary_kl(zs: Tensor, zt: Tensor, temp: float) -> list[float]:
    """Per example: T^2 sum_k KL(Bern(sigma(zt/T)) || Bern(sigma(zs/T))), one element at a time."""
    out = []
    for n in range(zs.shape[0]):
        s = 0.0
        for k in range(zs.shape[1]):
            s += _bern_kl(_sig(float(zt[n, k]) / temp), _sig(float(zs[n, k]) / temp))
        out.append(temp * temp * s)
    return out


def slow_binary_kl_norm(zs: Tensor, zt: Tensor, temp: float) -> list[float]:
    """Per example: T^2 sum_k KL(Bern(1/2) || Bern(sigma((zs - zt)/T)))."""
    out = []
    for n in range(zs.shape[0]):
        s = 0.0
        for k in range(zs.shape[1]):
            s += _bern_kl(0.5, _sig((float(zs[n, k]) - float(zt[n, k])) / temp))
        out.append(temp * temp * s)
    return out


def slow_kd(zs: Tensor, zt: Tensor, temp: float) -> list[float]:
    out = []
    for n in range(zs.shape[0]):
        es = [math.exp(float(v) / temp) for v in zs[n]]
        et = [math.exp(float(v) / temp) for v in zt[n]]
        ps = [e / sum(es) for e in es]
        pt = [e / sum(et) for e in et]
        out.append(temp * temp * sum(a * math.log(a / b) for a, b in zip(pt, ps, strict=True)))
    return out


def reference_binary_kl_norm(zs: Tensor, zt: Tensor, temp: float, eps: float = 1e-8) -> Tensor:
    """The official code's literal form (sigmoid, eps clamp, KL to Bernoulli(1/2)), batchmean."""
    d = torch.sigmoid((zs - zt) / temp).clamp(eps, 1 - eps)
    loss = 0.5 * (math.log(0.5) - torch.log(d)) + 0.5 * (math.log(0.5) - torch.log(1 - d))
    return temp**2 * loss.sum() / zs.shape[0]


def _pair(n: int = 7, k: int = 5, scale: float = 3.0, seed: int = 0) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (
        scale * torch.randn(n, k, generator=g, dtype=D),
        scale * torch.randn(n, k, generator=g, dtype=D),
    )


def test_analytic_values_of_the_spec() -> None:
    zs, zt = t([[1.0, 0.0]]), t([[0.0, 0.0]])
    for fn in (binary_kl_norm, binary_kl):  # a teacher at 0 is Bernoulli(1/2): both agree
        assert fn(zs, zt, 1.0).item() == pytest.approx(0.12011450695827745, rel=1e-12)
        assert fn(zs, zt, 2.0).item() == pytest.approx(0.12371921448064555, rel=1e-12)
    zs, zt = t([[2.0, -1.0]]), t([[0.5, 0.5]])
    assert binary_kl(zs, zt, 2.0).item() == pytest.approx(0.5418393277625698, rel=1e-12)
    assert binary_kl_norm(zs, zt, 2.0).item() == pytest.approx(0.5497906044396373, rel=1e-12)
    assert kd_loss(zs, zt, 4.0).item() == pytest.approx(1.099581208879275, rel=1e-12)


@pytest.mark.parametrize("temp", [0.5, 1.0, 2.0, 4.0])
def test_each_row_equals_the_slow_elementwise_loop(temp: float) -> None:
    zs, zt = _pair()
    for fn, slow in (
        (binary_kl, slow_binary_kl),
        (binary_kl_norm, slow_binary_kl_norm),
        (kd_loss, slow_kd),
    ):
        rows = fn(zs, zt, temp, reduction="none")
        # the slow loop forms 1 - p in float64: ~1e-9 relative error where |z|/T ~ 20
        torch.testing.assert_close(rows, t([slow(zs, zt, temp)])[0], rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("temp", [1.0, 2.0, 4.0])
def test_closed_form_equals_the_reference_literal_formula(temp: float) -> None:
    """Within 1e-6 for |zs - zt|/T <= 15 (float64), where the reference's eps clamp is inactive."""
    g = torch.Generator().manual_seed(1)
    zs = (torch.rand(64, 10, generator=g, dtype=D) - 0.5) * 15 * temp
    zt = (torch.rand(64, 10, generator=g, dtype=D) - 0.5) * 15 * temp
    assert ((zs - zt).abs() / temp).max() <= 15
    torch.testing.assert_close(
        binary_kl_norm(zs, zt, temp), reference_binary_kl_norm(zs, zt, temp), rtol=0, atol=1e-6
    )


def test_finite_where_the_float32_reference_overflows() -> None:
    zs = torch.tensor([[40.0, -40.0, 0.0]])  # (zs - zt)/T = 20, -20, 0 at T = 2
    zt = torch.zeros(1, 3)
    ref = reference_binary_kl_norm(zs, zt, 2.0)
    assert torch.isinf(ref)  # the reference in float32: sigmoid(20) rounds to 1 -> log(0)
    ours = binary_kl_norm(zs.requires_grad_(), zt, 2.0)
    ours.backward()
    exact = 4 * 2 * (10 - math.log(2) + math.log1p(math.exp(-20)))  # T^2 * 2 log cosh(10)
    assert ours.item() == pytest.approx(exact, rel=1e-6)
    assert zs.grad is not None and torch.isfinite(zs.grad).all()
    assert zs.grad[0, 1].item() == pytest.approx(-1.0, rel=1e-6)  # T/2 tanh(-10) ~ -1


def test_norm_is_binary_kl_of_the_difference_against_zero() -> None:
    zs, zt = _pair()
    for temp in (1.0, 2.0):
        torch.testing.assert_close(
            binary_kl_norm(zs, zt, temp, reduction="none"),
            binary_kl(zs - zt, torch.zeros_like(zt), temp, reduction="none"),
            rtol=1e-12,
            atol=1e-12,
        )


def test_norm_is_symmetric_in_student_and_teacher() -> None:
    a, b = _pair()
    torch.testing.assert_close(binary_kl_norm(a, b), binary_kl_norm(b, a), rtol=1e-14, atol=0)


def test_losses_are_nonnegative_and_zero_only_at_equal_logits() -> None:
    zs, zt = _pair(n=50)
    for fn in (binary_kl, binary_kl_norm):
        rows = fn(zs, zt, 2.0, reduction="none")
        assert (rows > 0).all()
        assert fn(zs, zs.clone(), 2.0).abs().item() < 1e-14
    assert kd_loss(zs, zt).item() > 0
    assert kd_loss(zs, zs.clone()).abs().item() < 1e-14


def test_kd_ignores_a_per_row_shift_while_binary_kl_norm_sees_it() -> None:
    zs, zt = _pair()
    c = torch.randn(zs.shape[0], 1, dtype=D)
    torch.testing.assert_close(
        kd_loss(zs + c, zt, reduction="none"),
        kd_loss(zs, zt, reduction="none"),
        rtol=1e-10,
        atol=1e-12,
    )
    assert not torch.allclose(binary_kl_norm(zs + c, zt), binary_kl_norm(zs, zt))
    # the logit-level loss is invariant to shifting student and teacher together
    torch.testing.assert_close(
        binary_kl_norm(zs + c, zt + c, reduction="none"),
        binary_kl_norm(zs, zt, reduction="none"),
        rtol=1e-12,
        atol=1e-12,
    )


def test_large_temperature_limit_is_the_squared_logit_gap_over_8n() -> None:
    zs, zt = _pair()
    want = ((zs - zt) ** 2).sum() / (8 * zs.shape[0])
    for fn in (binary_kl, binary_kl_norm):
        got = fn(zs, zt, 1e3)
        assert abs(got.item() / want.item() - 1) < 1e-3


def test_norm_grows_linearly_with_slope_half_t_per_element() -> None:
    temp = 2.0
    gaps = torch.tensor([[200.0], [400.0]], dtype=D)
    vals = binary_kl_norm(gaps, torch.zeros_like(gaps), temp, reduction="none")
    assert (vals[1] - vals[0]).item() / 200.0 == pytest.approx(temp / 2, rel=1e-12)


@pytest.mark.parametrize("temp", [1.0, 2.0, 4.0])
def test_norm_gradient_is_half_t_over_n_times_tanh(temp: float) -> None:
    zs, zt = _pair()
    zs.requires_grad_(True)
    binary_kl_norm(zs, zt, temp).backward()
    want = temp / (2 * zs.shape[0]) * torch.tanh((zs.detach() - zt) / (2 * temp))
    assert zs.grad is not None
    torch.testing.assert_close(zs.grad, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("fn", [binary_kl, binary_kl_norm, kd_loss])
def test_gradcheck_both_arguments_float64(fn: object) -> None:
    zs, zt = _pair(n=3, k=4, scale=2.0)
    zs.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: fn(a, zt, 2.0), (zs,))  # type: ignore[operator]


@pytest.mark.parametrize("fn", [binary_kl, binary_kl_norm, kd_loss])
def test_teacher_gets_no_gradient(fn: object) -> None:
    zs, zt = _pair()
    zs.requires_grad_(True)
    zt.requires_grad_(True)
    fn(zs, zt).backward()  # type: ignore[operator]
    assert zt.grad is None and zs.grad is not None


def test_sum_is_n_times_mean_and_none_sums_to_sum() -> None:
    zs, zt = _pair(n=9)
    for fn in (binary_kl, binary_kl_norm, kd_loss):
        mean, total = fn(zs, zt, reduction="mean"), fn(zs, zt, reduction="sum")  # type: ignore[operator]
        torch.testing.assert_close(total, 9 * mean, rtol=1e-12, atol=0)
        torch.testing.assert_close(fn(zs, zt, reduction="none").sum(), total, rtol=1e-12, atol=0)  # type: ignore[operator]


def test_spatial_logits_equal_positions_flattened_into_the_batch() -> None:
    g = torch.Generator().manual_seed(3)
    zs = torch.randn(2, 5, 3, 4, generator=g, dtype=D)
    zt = torch.randn(2, 5, 3, 4, generator=g, dtype=D)
    flat_s = zs.movedim(1, -1).reshape(-1, 5)
    flat_t = zt.movedim(1, -1).reshape(-1, 5)
    for fn in (binary_kl, binary_kl_norm, kd_loss):
        none = fn(zs, zt, reduction="none")  # type: ignore[operator]
        assert none.shape == (2, 3, 4)
        torch.testing.assert_close(none.reshape(-1), fn(flat_s, flat_t, reduction="none"))  # type: ignore[operator]
        torch.testing.assert_close(fn(zs, zt), fn(flat_s, flat_t))  # type: ignore[operator]


def test_log_cosh_is_stable_and_exact() -> None:
    v = torch.tensor([-1000.0, -3.0, 0.0, 0.5, 100.0], dtype=D)
    torch.testing.assert_close(log_cosh(v[1:4]), torch.log(torch.cosh(v[1:4])))
    assert log_cosh(v[[0, -1]]).tolist() == pytest.approx([1000 - math.log(2), 100 - math.log(2)])
    assert torch.isfinite(log_cosh(torch.tensor([3e38]))).all()


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("fn", [binary_kl, binary_kl_norm, kd_loss])
def test_bad_input_raises_naming_the_argument(fn: object) -> None:
    f = fn  # type: ignore[assignment]
    zs, zt = _pair()
    with pytest.raises(ValueError, match="teacher_logits"):
        f(zs, zt[:, :-1])  # type: ignore[operator]
    with pytest.raises(ValueError, match="student_logits"):
        f(zs[0], zt[0])  # type: ignore[operator]
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="temperature"):
            f(zs, zt, bad)  # type: ignore[operator]
    with pytest.raises(TypeError, match="temperature"):
        f(zs, zt, "2")  # type: ignore[operator]
    nan = zt.clone()
    nan[0, 0] = float("nan")
    with pytest.raises(ValueError, match="teacher_logits"):
        f(zs, nan)  # type: ignore[operator]
    inf = zs.clone()
    inf[1, 1] = float("inf")
    with pytest.raises(ValueError, match="student_logits"):
        f(inf, zt)  # type: ignore[operator]
    with pytest.raises(ValueError, match="non-empty"):
        f(zs[:0], zt[:0])  # type: ignore[operator]
    assert f(zs[:0], zt[:0], reduction="sum").item() == 0.0  # type: ignore[operator]
    with pytest.raises(ValueError, match="reduction"):
        f(zs, zt, reduction="batchmean")  # type: ignore[operator]
    with pytest.raises(TypeError, match="student_logits"):
        f(zs.long(), zt)  # type: ignore[operator]
