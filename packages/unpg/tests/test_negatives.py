"""In-batch negative similarities and the box-and-whisker filter."""

from __future__ import annotations

import math

import pytest
import torch

from paperzoo.unpg import box_whisker_filter, in_batch_negative_similarities, whisker_mask

VALUES = torch.tensor([-0.9, 0.0, 0.05, 0.1, 0.12, 0.15, 0.2, 0.25, 0.95], dtype=torch.float64)


def test_filter_hand_value_drops_both_outliers() -> None:
    kept, mask = box_whisker_filter(VALUES, whisker=1.5)
    assert mask.tolist() == [False] + [True] * 7 + [False]
    _, stats = whisker_mask(VALUES, whisker=1.5)
    assert float(stats["q1"]) == 0.05 and float(stats["q3"]) == 0.2
    lo, hi = 0.05 - 1.5 * 0.15, 0.2 + 1.5 * 0.15
    assert abs(lo - -0.175) < 1e-12 and abs(hi - 0.425) < 1e-12
    torch.testing.assert_close(kept, VALUES[1:-1])


def test_infinite_whisker_keeps_all_and_zero_keeps_the_box() -> None:
    kept, _ = box_whisker_filter(VALUES, whisker=math.inf)
    torch.testing.assert_close(kept, VALUES)
    kept0, _ = box_whisker_filter(VALUES, whisker=0.0)
    torch.testing.assert_close(kept0, VALUES[(VALUES >= 0.05) & (VALUES <= 0.2)])


def test_filter_is_order_invariant() -> None:
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(1))
    _, mask = box_whisker_filter(VALUES[perm], whisker=1.5)
    assert torch.equal(mask, box_whisker_filter(VALUES, 1.5)[1][perm])


@pytest.mark.parametrize(("a", "b"), [(2.0, 0.5), (0.25, -1.0), (4.0, 0.0)])
def test_filter_keeps_the_same_set_under_an_increasing_affine_map(a: float, b: float) -> None:
    g = torch.Generator().manual_seed(0)
    v = torch.cat([torch.randn(40, generator=g, dtype=torch.float64) * 0.1, VALUES])
    _, m1 = box_whisker_filter(v, 1.5)
    _, m2 = box_whisker_filter(a * v + b, 1.5)
    assert torch.equal(m1, m2) and 0 < int(m1.sum()) < v.numel()


def test_fewer_than_four_negatives_are_all_kept() -> None:
    v = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64)
    assert box_whisker_filter(v, 0.0)[1].all()


def test_linear_quantile_rule_matches_torch_quantile() -> None:
    g = torch.Generator().manual_seed(2)
    v = torch.randn(37, generator=g, dtype=torch.float64)
    _, stats = whisker_mask(v, whisker=1.0, quantile="linear")
    q = torch.quantile(v, torch.tensor([0.25, 0.75], dtype=torch.float64))
    torch.testing.assert_close(torch.stack([stats["q1"], stats["q3"]]), q)
    kept, _ = box_whisker_filter(v, 1.0, quantile="linear")
    iqr = q[1] - q[0]
    torch.testing.assert_close(kept, v[(v >= q[0] - iqr) & (v <= q[1] + iqr)])


def test_masked_quartiles_ignore_invalid_entries() -> None:
    g = torch.Generator().manual_seed(3)
    v = torch.randn(30, generator=g, dtype=torch.float64)
    valid = torch.rand(30, generator=g) < 0.6
    keep, stats = whisker_mask(v, valid, whisker=0.5)
    _, sub = box_whisker_filter(v[valid], 0.5)
    assert torch.equal(keep[valid], sub) and not bool(keep[~valid].any())
    assert int(stats["M"]) == int(valid.sum())


def test_negative_similarities_match_a_double_loop() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(11, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (11,), generator=g)
    got = in_batch_negative_similarities(x, y)
    xn = x / x.norm(dim=1, keepdim=True)
    ref = [float(xn[i] @ xn[j]) for i in range(11) for j in range(i + 1, 11) if y[i] != y[j]]
    n_diff = sum(1 for i in range(11) for j in range(i + 1, 11) if y[i] != y[j])
    assert got.numel() == n_diff
    torch.testing.assert_close(got, torch.tensor(ref, dtype=torch.float64), rtol=0, atol=1e-14)


def test_negative_similarities_are_a_permutation_invariant_multiset() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(9, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (9,), generator=g)
    perm = torch.randperm(9, generator=g)
    a = in_batch_negative_similarities(x, y).sort().values
    b = in_batch_negative_similarities(x[perm], y[perm]).sort().values
    torch.testing.assert_close(a, b, rtol=0, atol=1e-14)


def test_one_identity_batch_has_no_negatives() -> None:
    x = torch.randn(5, 3, dtype=torch.float64)
    assert in_batch_negative_similarities(x, torch.zeros(5, dtype=torch.long)).numel() == 0
    keep, stats = whisker_mask(torch.zeros(0, dtype=torch.float64), whisker=1.5)
    assert keep.numel() == 0 and int(stats["M"]) == 0
