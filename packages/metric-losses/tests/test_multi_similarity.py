"""Paper tests for MS loss, its miner and GPW (spec section 5, items 1-8)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from paperzoo.metric_losses import (
    MSConfig,
    MultiSimilarityLoss,
    MultiSimilarityMiner,
    gpw_weights,
    ms_pair_weights,
    multi_similarity_loss,
    multi_similarity_loss_from_similarity,
    multi_similarity_masks,
    pair_masks,
    similarity_matrix,
)

F64 = torch.float64


def _batch(seed: int, b: int = 24, d: int = 8, classes: int = 5) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    e = torch.randn(b, d, generator=g, dtype=F64)
    y = torch.randint(0, classes, (b,), generator=g)
    return e, y


def official_loop(
    e: Tensor,
    y: Tensor,
    alpha: float = 2.0,
    beta: float = 50.0,
    base: float = 0.5,
    eps: float = 0.1,
    skip_incomplete: bool = True,
    mining: bool = True,
) -> Tensor:
    """Clean-room per-anchor loop with the official semantics (self pair by index, empty -> 0)."""
    f = torch.nn.functional.normalize(e, dim=1)
    s = f @ f.T
    b = e.shape[0]
    total = torch.zeros((), dtype=e.dtype)
    for i in range(b):
        pos = [s[i, k] for k in range(b) if k != i and y[k] == y[i]]
        neg = [s[i, k] for k in range(b) if y[k] != y[i]]
        if mining:
            min_p = min(pos) if pos else math.inf
            max_n = max(neg) if neg else -math.inf
            p_sel = [v for v in pos if v - eps < max_n]
            n_sel = [v for v in neg if v + eps > min_p]
        else:
            p_sel, n_sel = pos, neg
        if skip_incomplete and (not p_sel or not n_sel):
            continue
        lp = sum((torch.exp(-alpha * (v - base)) for v in p_sel), torch.zeros((), dtype=e.dtype))
        ln = sum((torch.exp(beta * (v - base)) for v in n_sel), torch.zeros((), dtype=e.dtype))
        total = total + torch.log1p(lp) / alpha + torch.log1p(ln) / beta
    return total / b


# --------------------------------------------------------------------------- 1. hand value


@pytest.mark.parametrize("skip", [True, False])
def test_hand_computed_value_of_four_point_batch(skip: bool) -> None:
    e = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0]], dtype=F64)
    y = torch.tensor([0, 0, 1, 1])
    l1 = 0.5 * math.log1p(math.exp(-0.6)) + 0.02 * math.log1p(math.exp(23.0))
    assert l1 == pytest.approx(0.678744, abs=1e-6)
    loss = multi_similarity_loss(e, y, skip_incomplete_anchors=skip)
    assert float(loss) == pytest.approx(2 * l1 / 4, abs=1e-12)
    assert float(loss) == pytest.approx(0.339372, abs=1e-6)
    pairs = MultiSimilarityMiner()(e, y)
    got = sorted(zip(pairs.a1.tolist(), pairs.p.tolist(), strict=True))
    assert got == [(1, 0), (2, 3)]
    assert sorted(zip(pairs.a2.tolist(), pairs.n.tolist(), strict=True)) == [(1, 2), (2, 1)]


# --------------------------------------------------------------------------- 2. GPW weights


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_autograd_gradient_equals_closed_form_pair_weights(seed: int) -> None:
    e, y = _batch(seed, b=16, d=6, classes=4)
    sim = similarity_matrix(e).requires_grad_(True)
    loss = multi_similarity_loss_from_similarity(sim, y)
    (grad,) = torch.autograd.grad(loss, sim)
    pos, neg = multi_similarity_masks(sim.detach(), y)
    w_pos, w_neg = ms_pair_weights(sim.detach(), pos, neg)
    valid = (pos.any(1) & neg.any(1)).to(F64).unsqueeze(1)
    expected = (w_neg - w_pos) * valid / e.shape[0]
    torch.testing.assert_close(grad, expected, rtol=0, atol=1e-12)
    # and the autograd of a plain (non-custom-backward) formulation agrees
    s2 = sim.detach().clone().requires_grad_(True)
    zp = (-2.0 * (s2 - 0.5)).masked_fill(~pos, -math.inf)
    zn = (50.0 * (s2 - 0.5)).masked_fill(~neg, -math.inf)
    zero = torch.zeros(16, 1, dtype=F64)
    plain = (
        torch.logsumexp(torch.cat([zero, zp], 1), 1) / 2
        + torch.logsumexp(torch.cat([zero, zn], 1), 1) / 50
    )
    (g2,) = torch.autograd.grad((plain * valid.squeeze(1)).mean(), s2)
    torch.testing.assert_close(grad, g2, rtol=0, atol=1e-12)


def test_pair_weights_match_the_papers_literal_formula() -> None:
    e, y = _batch(3, b=12, d=4, classes=3)
    s = similarity_matrix(e)
    pos, neg = multi_similarity_masks(s, y)
    a, b_, lam = 2.0, 50.0, 0.5
    w_pos, w_neg = ms_pair_weights(s, pos, neg, a, b_, lam)
    for i in range(12):
        P = [j for j in range(12) if pos[i, j]]
        N = [j for j in range(12) if neg[i, j]]
        for k in range(12):
            wp = 0.0
            if k in P:
                wp = 1 / (
                    math.exp(a * (s[i, k] - lam))
                    + sum(math.exp(a * (s[i, k] - s[i, j])) for j in P)
                )
            wn = 0.0
            if k in N:
                wn = 1 / (
                    math.exp(b_ * (lam - s[i, k]))
                    + sum(math.exp(b_ * (s[i, j] - s[i, k])) for j in N)
                )
            assert float(w_pos[i, k]) == pytest.approx(wp, rel=1e-10, abs=1e-300)
            assert float(w_neg[i, k]) == pytest.approx(wn, rel=1e-10, abs=1e-300)


def test_gpw_weights_of_ms_loss_equal_ms_pair_weights() -> None:
    e, y = _batch(4, b=16, d=6, classes=4)
    s = similarity_matrix(e)
    pos, neg = multi_similarity_masks(s, y)
    # under mining an anchor's P_i is empty iff its N_i is, so skipped anchors have no weights
    assert bool(((pos.any(1) ^ neg.any(1)) == 0).all())
    w_pos, w_neg = gpw_weights(
        lambda m: multi_similarity_loss_from_similarity(m, y, reduction="sum"), s, y
    )
    e_pos, e_neg = ms_pair_weights(s, pos, neg)
    torch.testing.assert_close(w_pos, e_pos, rtol=0, atol=1e-12)
    torch.testing.assert_close(w_neg, e_neg, rtol=0, atol=1e-12)


def test_gpw_of_contrastive_loss_gives_binary_weights() -> None:
    # contrastive sum_pos (1 - S) + sum_neg relu(S - m): weight 1 on positives and active negatives
    e, y = _batch(5, b=10, d=4, classes=3)
    s = similarity_matrix(e)
    pos, neg = pair_masks(y)

    def contrastive(m: Tensor) -> Tensor:
        return ((1 - m) * pos).sum() + ((m - 0.2).clamp_min(0) * neg).sum()

    w_pos, w_neg = gpw_weights(contrastive, s, y)
    torch.testing.assert_close(w_pos, pos.to(F64))
    torch.testing.assert_close(w_neg, (neg & (s > 0.2)).to(F64))


# --------------------------------------------------------------------------- 3. gradcheck


def test_gradcheck_wrt_embeddings_away_from_mining_thresholds() -> None:
    e, y = _batch(6, b=10, d=5, classes=3)
    s = similarity_matrix(e)
    pos, neg = pair_masks(y)
    min_p = torch.where(pos, s, math.inf).amin(1, keepdim=True)
    max_n = torch.where(neg, s, -math.inf).amax(1, keepdim=True)
    gap_n = (s + 0.1 - min_p)[neg].abs().min()
    gap_p = (s - 0.1 - max_n)[pos].abs().min()
    assert min(float(gap_n), float(gap_p)) > 1e-3
    e.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: multi_similarity_loss(x, y), (e,))
    ref = torch.randn(7, 5, dtype=F64, requires_grad=True)
    ry = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    assert torch.autograd.gradcheck(
        lambda x, r: multi_similarity_loss(x, y, r, ry, mining=False), (e, ref)
    )


# --------------------------------------------------------------------------- 4. limits


def test_one_pair_each_without_mining_is_binomial_deviance() -> None:
    # anchors 0/1 share class 0, anchors 2/3 share class 1 -> one positive, two negatives; use ref
    g = torch.Generator().manual_seed(7)
    e = torch.randn(6, 3, generator=g, dtype=F64)
    ref = torch.randn(2, 3, generator=g, dtype=F64)
    y = torch.tensor([0, 1, 0, 1, 0, 1])
    ry = torch.tensor([0, 1])
    losses = multi_similarity_loss(e, y, ref, ry, mining=False, reduction="none")
    s = similarity_matrix(e, ref)
    sp = s.gather(1, y.unsqueeze(1)).squeeze(1)
    sn = s.gather(1, (1 - y).unsqueeze(1)).squeeze(1)
    sp_ = torch.nn.functional.softplus
    expected = sp_(-2 * (sp - 0.5)) / 2 + sp_(50 * (sn - 0.5)) / 50
    torch.testing.assert_close(losses, expected, rtol=0, atol=1e-12)


def test_large_beta_negative_term_tends_to_hinge_on_hardest_negative() -> None:
    e, y = _batch(8, b=12, d=4, classes=3)
    s = similarity_matrix(e)
    _, neg = pair_masks(y)
    # large alpha too: positive term -> max(0, lambda - min S_p) ; isolate the negative term
    big = 1e4
    losses = multi_similarity_loss(
        e, y, mining=False, alpha=big, beta=big, skip_incomplete_anchors=False, reduction="none"
    )
    pos, _ = pair_masks(y)
    pos_term = (0.5 - torch.where(pos, s, math.inf).amin(1)).clamp_min(0)
    neg_term = (torch.where(neg, s, -math.inf).amax(1) - 0.5).clamp_min(0)
    torch.testing.assert_close(losses, pos_term + neg_term, rtol=0, atol=1e-3)


# --------------------------------------------------------------------------- 5. invariances


def test_loss_is_invariant_to_batch_permutation_label_bijection_and_rescaling() -> None:
    e, y = _batch(9, b=20, d=6, classes=4)
    base = multi_similarity_loss(e, y)
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(multi_similarity_loss(e[perm], y[perm]), base, rtol=0, atol=1e-12)
    relabel = torch.tensor([7, 3, 11, 0])[y]
    torch.testing.assert_close(multi_similarity_loss(e, relabel), base, rtol=0, atol=1e-12)
    scales = torch.rand(20, 1, dtype=F64) * 10 + 0.1
    torch.testing.assert_close(multi_similarity_loss(e * scales, y), base, rtol=0, atol=1e-12)


def test_appending_an_unminable_singleton_leaves_the_summed_loss_unchanged() -> None:
    # all embeddings in the positive orthant (S > 0); the singleton is orthogonal-ish to all of them
    g = torch.Generator().manual_seed(10)
    e = torch.rand(12, 4, generator=g, dtype=F64) + 0.5
    e = torch.cat([e, torch.zeros(12, 1, dtype=F64)], 1)
    y = torch.randint(0, 3, (12,), generator=g)
    single = torch.tensor([[0.0, 0, 0, 0, 1.0]], dtype=F64)  # S = 0 to every anchor
    s = similarity_matrix(e, None)
    pos, _ = pair_masks(y)
    assert float(torch.where(pos, s, math.inf).amin()) - 0.1 > 0  # below every threshold
    before = multi_similarity_loss(e, y, reduction="sum")
    after = multi_similarity_loss(
        torch.cat([e, single]), torch.cat([y, torch.tensor([99])]), reduction="sum"
    )
    torch.testing.assert_close(after, before, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- 6. formulations


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("skip", [True, False])
@pytest.mark.parametrize("mining", [True, False])
def test_vectorised_loss_equals_per_anchor_loop(seed: int, skip: bool, mining: bool) -> None:
    e, y = _batch(seed, b=8 + 7 * seed, d=5, classes=2 + seed)
    y[0] = 100  # an anchor without positives
    got = multi_similarity_loss(e, y, mining=mining, skip_incomplete_anchors=skip)
    ref = official_loop(e, y, mining=mining, skip_incomplete=skip)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-10)


def test_skip_incomplete_anchors_changes_only_unmined_singleton_anchors() -> None:
    e, y = _batch(11, b=10, d=4, classes=3)
    y[0] = 50  # singleton: no positives, has negatives
    on = multi_similarity_loss(e, y, mining=False, reduction="none")
    off = multi_similarity_loss(e, y, mining=False, skip_incomplete_anchors=False, reduction="none")
    assert float(on[0]) == 0.0
    assert float(off[0]) > 0.0  # keeps its negative term under PML semantics
    torch.testing.assert_close(on[1:], off[1:], rtol=0, atol=0)
    mined_on = multi_similarity_loss(e, y, reduction="none")
    mined_off = multi_similarity_loss(e, y, skip_incomplete_anchors=False, reduction="none")
    torch.testing.assert_close(mined_on, mined_off, rtol=0, atol=0)


def _pml() -> tuple[object, object]:
    pml = pytest.importorskip("pytorch_metric_learning")
    from pytorch_metric_learning import losses, miners

    del pml
    return losses, miners


def _pairs_set(a: Tensor, b: Tensor) -> set[tuple[int, int]]:
    return set(zip(a.tolist(), b.tolist(), strict=True))


@pytest.mark.parametrize("seed", range(8))
def test_matches_pytorch_metric_learning_loss_and_miner(seed: int) -> None:
    losses, miners = _pml()
    e, y = _batch(seed, b=8 + 16 * seed, d=16, classes=3 + seed)
    y[0] = 1000  # an anchor without positives
    e.requires_grad_(True)
    mined = miners.MultiSimilarityMiner(0.1)(e, y)  # type: ignore[attr-defined]
    assert not all(len(x) <= 1 for x in mined)  # PML returns 0 for such batches (quirk)
    ours_pairs = MultiSimilarityMiner(0.1)(e, y)
    assert _pairs_set(mined[0], mined[1]) == _pairs_set(ours_pairs.a1, ours_pairs.p)
    assert _pairs_set(mined[2], mined[3]) == _pairs_set(ours_pairs.a2, ours_pairs.n)
    pml_loss = losses.MultiSimilarityLoss()(e, y, mined)  # type: ignore[attr-defined]
    ours = multi_similarity_loss(e, y, skip_incomplete_anchors=False)
    (g_pml,) = torch.autograd.grad(pml_loss, e)
    (g_ours,) = torch.autograd.grad(ours, e)
    torch.testing.assert_close(ours, pml_loss, rtol=0, atol=1e-12)
    torch.testing.assert_close(g_ours, g_pml, rtol=0, atol=1e-12)


def test_matches_pytorch_metric_learning_with_reference_embeddings_and_given_pairs() -> None:
    losses, miners = _pml()
    e, y = _batch(20, b=24, d=8, classes=4)
    ref, ry = _batch(21, b=40, d=8, classes=5)
    e.requires_grad_(True)
    mined = miners.MultiSimilarityMiner(0.1)(e, y, ref, ry)  # type: ignore[attr-defined]
    ours_pairs = MultiSimilarityMiner(0.1)(e, y, ref, ry)
    assert _pairs_set(mined[0], mined[1]) == _pairs_set(ours_pairs.a1, ours_pairs.p)
    assert _pairs_set(mined[2], mined[3]) == _pairs_set(ours_pairs.a2, ours_pairs.n)
    pml_loss = losses.MultiSimilarityLoss()(e, y, mined, ref, ry)  # type: ignore[attr-defined]
    ours = multi_similarity_loss(e, y, ref, ry, skip_incomplete_anchors=False)
    torch.testing.assert_close(ours, pml_loss, rtol=0, atol=1e-12)
    # explicit pairs override mining and reproduce the same value
    given = multi_similarity_loss(e, y, ref, ry, pairs=tuple(mined), skip_incomplete_anchors=False)
    torch.testing.assert_close(given, pml_loss, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- 7. miner invariants


@pytest.mark.parametrize("seed", range(4))
def test_mined_pairs_have_correct_labels_and_no_self_pairs(seed: int) -> None:
    e, y = _batch(seed, b=30, d=4, classes=4)
    p = MultiSimilarityMiner(0.3)(e, y)
    assert bool((y[p.a1] == y[p.p]).all())
    assert bool((y[p.a2] != y[p.n]).all())
    assert bool((p.a1 != p.p).all())


def test_increasing_epsilon_never_removes_a_pair() -> None:
    e, y = _batch(12, b=30, d=4, classes=4)
    prev_p: set[tuple[int, int]] = set()
    prev_n: set[tuple[int, int]] = set()
    for eps in [0.0, 0.05, 0.1, 0.2, 0.5, 1.0, 3.0]:
        p = MultiSimilarityMiner(eps)(e, y)
        cur_p, cur_n = _pairs_set(p.a1, p.p), _pairs_set(p.a2, p.n)
        assert prev_p <= cur_p
        assert prev_n <= cur_n
        prev_p, prev_n = cur_p, cur_n
    pos, neg = pair_masks(y)
    assert len(prev_p) == int(pos.sum())  # eps = 3 > max similarity gap: everything mined
    assert len(prev_n) == int(neg.sum())


# --------------------------------------------------------------------------- 8. degenerate batches


@pytest.mark.parametrize("labels", [torch.arange(10), torch.zeros(10, dtype=torch.long)])
def test_all_distinct_or_all_same_labels_give_zero_loss_and_zero_grad(labels: Tensor) -> None:
    e = torch.randn(10, 4, dtype=F64, requires_grad=True)
    with pytest.warns(RuntimeWarning, match="the batch has no"):
        loss = multi_similarity_loss(e, labels)
    (g,) = torch.autograd.grad(loss, e)
    assert float(loss.detach()) == 0.0
    assert torch.isfinite(g).all()
    assert float(g.abs().max()) == 0.0


def test_half_precision_input_is_finite_and_close_to_float32() -> None:
    e, y = _batch(13, b=32, d=8, classes=4)
    e16 = e.to(torch.float16).requires_grad_(True)
    loss16 = multi_similarity_loss(e16, y)
    loss16.backward()
    assert loss16.dtype == torch.float16
    assert torch.isfinite(loss16)
    assert e16.grad is not None
    assert torch.isfinite(e16.grad).all()
    loss32 = multi_similarity_loss(e16.detach().float(), y)
    assert float(loss16.detach()) == pytest.approx(float(loss32), rel=2e-3)


def test_large_beta_does_not_overflow_in_float32() -> None:
    e, y = _batch(14, b=16, d=4, classes=2)
    loss = multi_similarity_loss(e.float(), y, beta=500.0, alpha=100.0)
    assert torch.isfinite(loss)


# --------------------------------------------------------------------------- module / presets


def test_presets_hold_the_paper_official_and_pml_values() -> None:
    assert MSConfig() == MSConfig.pml() == MSConfig(2.0, 50.0, 0.5, 0.1)
    assert MSConfig.paper().base == 1.0
    assert MSConfig.official_cub().beta == 40.0
    loss = MultiSimilarityLoss.from_config(MSConfig.official_cub(), reduction="sum")
    assert (loss.alpha, loss.beta, loss.base, loss.epsilon, loss.reduction) == (
        2.0,
        40.0,
        0.5,
        0.1,
        "sum",
    )


def test_module_equals_functional_and_dot_similarity_uses_raw_products() -> None:
    e, y = _batch(15)
    mod = MultiSimilarityLoss(beta=40.0, reduction="none")
    torch.testing.assert_close(mod(e, y), multi_similarity_loss(e, y, beta=40.0, reduction="none"))
    f = torch.nn.functional.normalize(e, dim=1)
    torch.testing.assert_close(
        multi_similarity_loss(f, y, similarity="dot"), multi_similarity_loss(e, y)
    )
    assert not torch.allclose(
        multi_similarity_loss(2 * f, y, similarity="dot"), multi_similarity_loss(e, y)
    )


# --------------------------------------------------------------------------- degenerate batches, order


def _small_batch() -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(3)
    return torch.randn(12, 8, generator=g), torch.arange(4).repeat_interleave(3)


def test_miner_returns_the_pairs_the_loss_uses_on_degenerate_batches() -> None:
    e, _ = _small_batch()
    for labels in (torch.zeros(12, dtype=torch.long), torch.arange(12)):
        pairs = MultiSimilarityMiner()(e, labels)
        assert all(t.numel() == 0 and t.dtype == torch.long for t in pairs)
        with pytest.warns(RuntimeWarning, match="no positive and no negative pair among the given"):
            given = MultiSimilarityLoss()(e, labels, pairs=pairs)
        assert float(given) == 0.0


def test_second_order_gradient_raises_instead_of_being_silently_wrong() -> None:
    # the closed-form backward treats the pair weights as constants; a Hessian-vector product
    # through it used to differ from finite differences by more than the HVP itself
    e, y = _small_batch()
    e = e.double().requires_grad_(True)
    loss = MultiSimilarityLoss(mining=False)(e, y)
    with pytest.raises(RuntimeError, match="create_graph=True"):
        torch.autograd.grad(loss, e, create_graph=True)
    (g,) = torch.autograd.grad(loss, e)  # first order still works
    assert torch.isfinite(g).all()
