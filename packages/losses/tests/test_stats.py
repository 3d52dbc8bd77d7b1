"""Paired t-test, sign test and ranks against hand computations and printed t tables."""

from __future__ import annotations

import math

import pytest

from paperzoo.losses import average_ranks, paired_t_test, sign_test, student_t_two_sided_p


@pytest.mark.parametrize(
    ("t", "df"),
    # two-sided 5% critical values of Student's t, as printed in every t table
    [(12.706, 1), (4.303, 2), (3.182, 3), (2.776, 4), (2.571, 5), (2.228, 10)],
)
def test_p_value_at_the_tabulated_5_percent_critical_values(t: float, df: int) -> None:
    assert student_t_two_sided_p(t, df) == pytest.approx(0.05, abs=2e-4)


def test_p_value_closed_forms_for_one_and_two_degrees_of_freedom() -> None:
    # df = 1 is the Cauchy law: P(|T| >= t) = 1 - 2 atan(t) / pi
    assert student_t_two_sided_p(1.0, 1) == pytest.approx(0.5, rel=1e-12)
    # df = 2: P(|T| >= t) = 1 - t / sqrt(2 + t^2)
    assert student_t_two_sided_p(2.0, 2) == pytest.approx(1 - 2 / math.sqrt(6), rel=1e-12)
    assert student_t_two_sided_p(0.0, 7) == 1.0
    assert student_t_two_sided_p(math.inf, 3) == 0.0


def test_paired_t_test_by_hand() -> None:
    # differences 1, 2, 3: mean 2, sd 1, t = 2 / (1 / sqrt 3) = 2 sqrt 3, df = 2
    res = paired_t_test([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])
    t = 2 * math.sqrt(3)
    assert res.n == 3 and res.mean_diff == pytest.approx(2.0)
    assert res.t == pytest.approx(t)
    assert res.p_t == pytest.approx(1 - t / math.sqrt(2 + t * t))
    assert (res.wins, res.losses) == (3, 0)
    assert res.p_sign == pytest.approx(0.25)


def test_paired_t_test_is_antisymmetric() -> None:
    a, b = [0.9, 0.8, 0.85, 0.7], [0.8, 0.82, 0.8, 0.6]
    ab, ba = paired_t_test(a, b), paired_t_test(b, a)
    assert ab.t == pytest.approx(-ba.t) and ab.p_t == pytest.approx(ba.p_t)


def test_identical_and_constant_differences() -> None:
    same = paired_t_test([0.5, 0.6], [0.5, 0.6])
    assert (same.t, same.p_t, same.p_sign) == (0.0, 1.0, 1.0)
    shifted = paired_t_test([1.5, 2.5, 3.5], [1.0, 2.0, 3.0])
    assert shifted.t == math.inf and shifted.p_t == 0.0
    one = paired_t_test([0.6], [0.5])
    assert math.isnan(one.t) and math.isnan(one.p_t)


def test_sign_test_by_hand() -> None:
    # 5 wins, 1 loss: 2 * (C(6,0) + C(6,1)) / 64 = 14 / 64
    assert sign_test(5, 1) == pytest.approx(14 / 64)
    assert sign_test(0, 0) == 1.0
    assert sign_test(2, 2) == 1.0


def test_mismatched_lengths_are_rejected() -> None:
    with pytest.raises(ValueError, match="equal length"):
        paired_t_test([1.0, 2.0], [1.0])


def test_average_ranks_share_ties_and_put_nan_last() -> None:
    r = average_ranks({"a": 0.9, "b": 0.8, "c": 0.9, "d": float("nan")})
    assert r == {"a": 1.5, "c": 1.5, "b": 3.0, "d": 4.0}
    assert average_ranks({"x": 1.0, "y": 2.0}, higher_is_better=False) == {"x": 1.0, "y": 2.0}
