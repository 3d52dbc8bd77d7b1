"""Paper tests for the prototypical episode, Proto-Triplet and ICNN (spec section 5, items 9-11)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from torch import Tensor

from paperzoo.metric_losses import (
    FewShotLoss,
    ICNNLoss,
    ProtoTripletLoss,
    few_shot_loss,
    icnn_loss,
    icnn_score,
    proto_logits,
    proto_triplet_loss,
    prototypes,
)

F64 = torch.float64


def numpy_icnn_score(
    x: np.ndarray,
    y: np.ndarray,
    ref: np.ndarray | None = None,
    ref_y: np.ndarray | None = None,
    k: int = 4,
    ipc: int | None = None,
) -> float:
    """Per-point loop re-implementation of the ICNN score (steps 1-6 of the spec)."""
    self_ref = ref is None
    R = x if ref is None else ref
    yR = y if ref_y is None else ref_y
    m = len(R)
    forced = k + 2 >= m
    if forced:
        k = m - 2
    ipc = k + 1 if ipc is None else ipc
    eps = 1e-7
    rows = []
    for i in range(len(x)):
        d = [math.sqrt(float(((x[i] - R[j]) ** 2).sum()) + 1e-6) for j in range(m)]
        cand = [j for j in range(m) if not (self_ref and j == i)]
        cand.sort(key=lambda j: d[j])
        nb = cand[:ipc]
        D = [d[j] for j in nb]
        same = [yR[j] == y[i] for j in nb]
        diffs = [D[t] for t in range(len(nb)) if not same[t]]
        delta = min(diffs) if diffs else math.inf
        rows.append((D, same, delta))
    # lambda_same
    s_sum, s_rows = 0.0, 0
    for D, same, delta in rows:
        n = [D[t] / (delta + eps) for t in range(min(k, len(D)))]
        scale = max(1.0, max(n))
        n = [v / scale for v in n]
        cnt = sum(same[: len(n)])
        s_sum += sum(n[t] for t in range(len(n)) if same[t]) / (cnt + eps)
        s_rows += cnt > 0
    lam_same = 1 - s_sum / (s_rows + eps)
    # lambda_diff
    dmax = max(
        [D[t] for D, same, _ in rows for t in range(min(k, len(D))) if not same[t]], default=0.0
    )
    d_sum, d_rows, any_diff = 0.0, 0, False
    for D, same, _ in rows:
        kk = min(k, len(D))
        g = [D[t] / (dmax + eps) for t in range(kk) if not same[t]]
        d_sum += sum(g) / (len(g) + eps)
        d_rows += len(g) > 0
        any_diff = any_diff or len(g) > 0
    lam_diff = d_sum / (d_rows + eps) if any_diff else 1.0
    gamma = 1.0 if forced else sum(sum(s[:k]) for _, s, _ in rows) / (k * len(x))
    return ((lam_same + lam_diff) / 2 + gamma) / 2


def _episode(
    n_way: int, k_shot: int, q: int, d: int = 8, seed: int = 0, spread: float = 1.0
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = 3 * torch.randn(n_way, d, generator=g, dtype=F64)
    sl = torch.arange(n_way).repeat_interleave(k_shot)
    ql = torch.arange(n_way).repeat_interleave(q)
    s = centres[sl] + spread * torch.randn(len(sl), d, generator=g, dtype=F64)
    qx = centres[ql] + spread * torch.randn(len(ql), d, generator=g, dtype=F64)
    return s, sl, qx, ql


# --------------------------------------------------------------------------- 9. Proto-Triplet


def test_proto_triplet_hand_values() -> None:
    protos = torch.tensor([[0.0, 0.0], [3.0, 0.0]], dtype=F64)
    q = torch.tensor([[1.0, 0.0], [2.0, 0.0]], dtype=F64)
    y = torch.tensor([0, 0])
    per = proto_triplet_loss(q, y, protos, reduction="none")
    torch.testing.assert_close(per, torch.tensor([0.0, 1.5], dtype=F64), rtol=0, atol=1e-5)
    assert float(ProtoTripletLoss()(q, y, protos)) == pytest.approx(0.75, abs=1e-5)


def test_proto_triplet_with_large_margin_is_mean_gap_plus_margin() -> None:
    s, sl, qx, ql = _episode(5, 3, 4, seed=1)
    protos = prototypes(s, sl, 5)
    d = torch.cdist(qx, protos)
    d_pos = d.gather(1, ql[:, None]).squeeze(1)
    d_neg = d.scatter(1, ql[:, None], math.inf).amin(1)
    loss = proto_triplet_loss(qx, ql, protos, margin=1000.0)
    assert float(loss) == pytest.approx(float((d_pos - d_neg).mean() + 1000.0), abs=1e-4)


# --------------------------------------------------------------------------- 10. ICNN


def test_icnn_score_of_separated_identical_clusters_is_one() -> None:
    x = torch.cat([torch.zeros(5, 3), torch.full((5, 3), 10.0 / math.sqrt(3))]).to(F64)
    y = torch.tensor([0] * 5 + [1] * 5)
    score = icnn_score(x, y, k=4)
    assert float(score) >= 0.9999
    s = x[[0, 1, 5, 6]]
    q = x[[2, 3, 4, 7, 8, 9]]
    full = icnn_loss(s, torch.tensor([0, 0, 1, 1]), q, torch.tensor([0, 0, 0, 1, 1, 1]))
    assert 0.0 <= float(full) < 1e-4


def test_icnn_score_rises_monotonically_as_clusters_tighten() -> None:
    g = torch.Generator().manual_seed(2)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], dtype=F64)
    noise = torch.randn(15, 2, generator=g, dtype=F64)
    y = torch.arange(3).repeat_interleave(5)
    scores = [float(icnn_score(centres[y] + s * noise, y)) for s in [8.0, 4.0, 2.0, 1.0, 0.5, 0.1]]
    assert all(b >= a for a, b in itertools.pairwise(scores))
    assert scores[-1] > 0.99
    assert -math.log(scores[-1]) < 0.01


def test_icnn_score_drops_markedly_with_shuffled_labels() -> None:
    s, sl, _, _ = _episode(4, 8, 1, seed=3, spread=0.5)
    good = float(icnn_score(s, sl))
    perm = torch.randperm(len(sl), generator=torch.Generator().manual_seed(0))
    bad = float(icnn_score(s, sl[perm]))
    assert good > 0.9
    assert bad < good - 0.2


def test_icnn_score_lies_in_unit_interval_on_random_draws() -> None:
    g = torch.Generator().manual_seed(4)
    for _ in range(1000):
        n = int(torch.randint(3, 16, (1,), generator=g))
        x = torch.randn(n, 3, generator=g, dtype=F64) * float(torch.rand(1, generator=g) * 5)
        y = torch.randint(0, 3, (n,), generator=g)
        score = float(icnn_score(x, y, k=int(torch.randint(1, 6, (1,), generator=g))))
        assert 0.0 <= score <= 1.0


def test_icnn_score_is_invariant_to_translation_rotation_scaling_and_permutation() -> None:
    s, sl, _, _ = _episode(3, 6, 1, d=5, seed=5)
    base = icnn_score(s, sl)
    q, _ = torch.linalg.qr(torch.randn(5, 5, generator=torch.Generator().manual_seed(1), dtype=F64))
    torch.testing.assert_close(icnn_score(s + 7.0, sl), base, rtol=0, atol=1e-9)
    torch.testing.assert_close(icnn_score(s @ q, sl), base, rtol=0, atol=1e-9)
    # scaling is exact up to the reference's sqrt(. + 1e-6) floor and 1e-7 epsilons
    torch.testing.assert_close(icnn_score(3.0 * s, sl), base, rtol=0, atol=1e-6)
    perm = torch.randperm(len(sl), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(icnn_score(s[perm], sl[perm]), base, rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_icnn_score_matches_numpy_loop(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    n = 6 + 3 * seed
    x = torch.randn(n, 4, generator=g, dtype=F64)
    y = torch.randint(0, 3, (n,), generator=g)
    ref = torch.randn(7, 4, generator=g, dtype=F64)
    ry = torch.randint(0, 3, (7,), generator=g)
    xn, yn = x.numpy(), y.numpy()
    for k, ipc in [(4, None), (2, 5), (4, 2), (50, None)]:
        got = float(icnn_score(x, y, k=k, ipc=ipc))
        assert got == pytest.approx(numpy_icnn_score(xn, yn, k=k, ipc=ipc), abs=1e-10)
    got = float(icnn_score(x, y, ref, ry, k=3))
    assert got == pytest.approx(numpy_icnn_score(xn, yn, ref.numpy(), ry.numpy(), k=3), abs=1e-10)


def test_drop_first_neighbour_reproduces_the_reference_query_mode() -> None:
    s, sl, qx, ql = _episode(5, 2, 3, seed=6)
    protos = prototypes(s, sl, 5)
    dropped = icnn_score(qx, ql, protos, torch.arange(5), drop_first_neighbour=True)
    # equivalent: score against the prototypes after removing each query's nearest one
    # (k=4 -> 3 with 5 prototypes, 4 neighbours, the first of 5 dropped)
    kept = icnn_score(qx, ql, protos, torch.arange(5))
    assert not torch.allclose(dropped, kept)
    loss = icnn_loss(s, sl, qx, ql, mode="query", query_ref="prototypes", drop_first_neighbour=True)
    torch.testing.assert_close(loss, -torch.log(dropped))


def test_icnn_gradients_flow_through_distances_and_are_finite() -> None:
    s, sl, qx, ql = _episode(3, 2, 2, d=4, seed=7)
    s.requires_grad_(True)
    qx.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: icnn_loss(a, sl, b, ql), (s, qx))


# --------------------------------------------------------------------------- 11. ProtoNet logits


def test_squared_euclidean_logits_equal_a_linear_layer_up_to_a_row_constant() -> None:
    s, sl, qx, _ = _episode(5, 3, 4, seed=8)
    protos = prototypes(s, sl, 5)
    logits = proto_logits(qx, protos)
    linear = qx @ (2 * protos).T - (protos**2).sum(1)
    torch.testing.assert_close(logits.softmax(1), linear.softmax(1), rtol=0, atol=1e-12)
    diff = logits - linear
    torch.testing.assert_close(diff, diff[:, :1].expand_as(diff), rtol=0, atol=1e-9)
    torch.testing.assert_close(proto_logits(qx, protos, temperature=2.0), logits / 2)


def test_prototypes_are_class_means_in_any_order() -> None:
    s, sl, _, _ = _episode(4, 3, 1, seed=9)
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(0))
    p = prototypes(s[perm], sl[perm], 4)
    torch.testing.assert_close(p, s.reshape(4, 3, -1).mean(1))


# --------------------------------------------------------------------------- combiner


def test_few_shot_loss_averages_the_selected_terms_like_the_reference() -> None:
    s, sl, qx, ql = _episode(5, 2, 3, seed=10)
    out = FewShotLoss()(s, sl, qx, ql)
    assert set(out) == {"loss", "ce", "proto_triplet", "icnn"}
    loss = out["loss"]
    protos = prototypes(s, sl, 5)
    ce = torch.nn.functional.cross_entropy(proto_logits(qx, protos), ql)
    pt = proto_triplet_loss(qx, ql, protos)
    ic = icnn_loss(s, sl, qx, ql, mode="full")
    torch.testing.assert_close(loss, (ce + pt + ic) / 3)
    for name, term in (("ce", ce), ("proto_triplet", pt), ("icnn", ic)):
        torch.testing.assert_close(out[name], term.detach())
        assert not out[name].requires_grad
    summed = few_shot_loss(s, sl, qx, ql, average=False)["loss"]
    torch.testing.assert_close(summed, ce + pt + ic)
    ce_only = FewShotLoss(proto_triplet=False, icnn=None)(s, sl, qx, ql)
    torch.testing.assert_close(ce_only["loss"], ce)
    assert set(ce_only) == {"loss", "ce"}
    sup = FewShotLoss(ce=False, proto_triplet=False, icnn="support")(s, sl, qx, ql)["loss"]
    torch.testing.assert_close(sup, -torch.log(icnn_score(s, sl)))


def test_full_mode_uses_shots_plus_queries_neighbours() -> None:
    s, sl, qx, ql = _episode(4, 2, 3, seed=11)
    x, y = torch.cat([s, qx]), torch.cat([sl, ql])
    expected = -torch.log(icnn_score(x, y, k=4, ipc=5))
    torch.testing.assert_close(ICNNLoss()(s, sl, qx, ql), expected)


# --------------------------------------------------------------------------- bad input


def test_fsl_bad_inputs_raise_clear_errors() -> None:
    s, sl, qx, ql = _episode(3, 2, 2, seed=12)
    protos = prototypes(s, sl, 3)
    with pytest.raises(ValueError, match="protos"):
        proto_triplet_loss(qx, ql, protos[:1])
    with pytest.raises(ValueError, match="query_labels"):
        proto_triplet_loss(qx, ql + 3, protos)
    with pytest.raises(ValueError, match="support"):
        prototypes(s[:-1], sl[:-1], 3)
    with pytest.raises(ValueError, match="n_way"):
        prototypes(s, sl, 1)
    with pytest.raises(ValueError, match="reference set"):
        icnn_score(s[:2], sl[:2])
    with pytest.raises(ValueError, match="k: expected an integer >= 1"):
        icnn_score(s, sl, k=0)
    with pytest.raises(ValueError, match="k: expected an integer >= 1"):
        ICNNLoss(k=0)
    with pytest.raises(ValueError, match="mode"):
        ICNNLoss(mode="both")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="query_labels"):
        icnn_loss(s, sl, qx, ql + 5, mode="query")
    with pytest.raises(TypeError, match="query"):
        proto_triplet_loss(qx.long(), ql, protos)
    with pytest.raises(ValueError, match="margin"):
        ProtoTripletLoss(margin=-1.0)
    with pytest.raises(ValueError, match="at least one"):
        FewShotLoss(ce=False, proto_triplet=False, icnn=None)
