"""Pair construction against brute-force loops; soft labels; determinism of lam and plans."""

from __future__ import annotations

import torch

from paperzoo.metrix import mix, mix_pairs, mix_pairs_from_indices, sample_lambda, soft_labels


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.tensor([0, 0, 1, 1, 1, 2, 3, 3, 4])
    return torch.nn.functional.normalize(
        torch.randn(len(y), 5, generator=g, dtype=torch.float64), dim=1
    ), y


def _triples(plan) -> set[tuple[int, int, int]]:  # type: ignore[no-untyped-def]
    return set(zip(plan.anchor_idx.tolist(), plan.i_idx.tolist(), plan.j_idx.tolist(), strict=True))


def test_pos_neg_pairs_equal_brute_force() -> None:
    _, y = _batch()
    n = len(y)
    ref = {
        (a, p, q)
        for a in range(n)
        for p in range(n)
        for q in range(n)
        if p != a and y[p] == y[a] and y[q] != y[a]
    }
    assert _triples(mix_pairs(y, kind="pos_neg")) == ref


def test_pos_neg_first_positive_only_uses_the_first_positive() -> None:
    _, y = _batch()
    n = len(y)
    first = {
        a: min(p for p in range(n) if p != a and y[p] == y[a])
        for a in range(n)
        if (y == y[a]).sum() > 1
    }
    ref = {(a, first[a], q) for a in first for q in range(n) if y[q] != y[a]}
    assert _triples(mix_pairs(y, kind="pos_neg", first_positive_only=True)) == ref


def test_anc_neg_pairs_and_official_scoping_equal_brute_force() -> None:
    _, y = _batch()
    n = len(y)
    ref_all = {(a, a, q) for a in range(n) for q in range(n) if y[q] != y[a]}
    assert _triples(mix_pairs(y, kind="anc_neg")) == ref_all
    lonely = {a for a in range(n) if (y == y[a]).sum() == 1}
    ref_np = {t for t in ref_all if t[0] in lonely}
    assert _triples(mix_pairs(y, kind="anc_neg", anc_neg_anchors="no_positive")) == ref_np
    assert lonely and len(ref_np) < len(ref_all)


def test_top_k_keeps_the_k_most_similar_negatives() -> None:
    e, y = _batch()
    sim = e @ e.T
    plan = mix_pairs(y, sim, kind="anc_neg", top_k=2)
    for a in range(len(y)):
        negs = [q for q in range(len(y)) if y[q] != y[a]]
        best = set(sorted(negs, key=lambda q: -float(sim[a, q]))[:2])
        assert set(plan.j_idx[plan.anchor_idx == a].tolist()) == best


def test_mixed_pairs_combine_only_true_negatives() -> None:
    _, y = _batch()
    for kind in ("pos_neg", "anc_neg"):
        plan = mix_pairs(y, kind=kind)  # type: ignore[arg-type]
        assert bool((y[plan.j_idx] != y[plan.anchor_idx]).all())
        assert bool((y[plan.i_idx] == y[plan.anchor_idx]).all())


def test_soft_labels_are_lambda_and_in_unit_interval() -> None:
    _, y = _batch()
    plan = mix_pairs(y, kind="pos_neg")
    s = soft_labels(plan, 0.3, y, dtype=torch.float64)
    torch.testing.assert_close(s, torch.full_like(s, 0.3))
    custom = plan._replace(i_idx=plan.j_idx)  # both negatives: label 0
    assert bool((soft_labels(custom, 0.3, y) == 0).all())


def test_one_class_batch_gives_no_pairs() -> None:
    y = torch.zeros(6, dtype=torch.long)
    assert mix_pairs(y, kind="pos_neg").size == 0
    assert mix_pairs(y, kind="anc_neg").size == 0


def test_mix_endpoints_are_the_inputs() -> None:
    a, b = torch.randn(3, 2, 4), torch.randn(3, 2, 4)
    assert torch.equal(mix(a, b, 1.0), a) and torch.equal(mix(a, b, 0.0), b)


def test_fixed_generator_gives_identical_lambda_and_plan() -> None:
    _, y = _batch()
    lam1 = sample_lambda(2.0, torch.Generator().manual_seed(5))
    lam2 = sample_lambda(2.0, torch.Generator().manual_seed(5))
    assert lam1 == lam2 and 0.0 < lam1 < 1.0
    kinds = {
        mix_pairs(y, kind="random", generator=torch.Generator().manual_seed(s)).kind
        for s in range(20)
    }
    assert kinds == {"pos_neg", "anc_neg"}
    p1 = mix_pairs(y, kind="random", generator=torch.Generator().manual_seed(3))
    p2 = mix_pairs(y, kind="random", generator=torch.Generator().manual_seed(3))
    assert p1.kind == p2.kind and torch.equal(p1.j_idx, p2.j_idx)


def test_lambda_follows_beta_mean_and_variance() -> None:
    g = torch.Generator().manual_seed(0)
    lams = torch.tensor([sample_lambda(2.0, g) for _ in range(4000)])
    assert abs(float(lams.mean()) - 0.5) < 0.02
    assert abs(float(lams.var()) - 0.05) < 0.006  # Beta(2,2) variance 1/20


def test_pml_style_all_pairs_tuple_gives_the_same_plan() -> None:
    _, y = _batch()
    n = len(y)
    same = y[:, None] == y[None, :]
    a1, p = (same & ~torch.eye(n, dtype=torch.bool)).nonzero(as_tuple=True)
    a2, q = (~same).nonzero(as_tuple=True)
    for kind in ("pos_neg", "anc_neg"):
        got = mix_pairs_from_indices((a1, p, a2, q), n, kind)  # type: ignore[arg-type]
        assert _triples(got) == _triples(mix_pairs(y, kind=kind))  # type: ignore[arg-type]


def test_pml_style_mined_subset_restricts_the_plan() -> None:
    _, y = _batch()
    a1, p = torch.tensor([0, 2]), torch.tensor([1, 3])
    a2, q = torch.tensor([0, 0, 2]), torch.tensor([5, 6, 0])
    got = mix_pairs_from_indices((a1, p, a2, q), len(y))
    assert _triples(got) == {(0, 1, 5), (0, 1, 6), (2, 3, 0)}
