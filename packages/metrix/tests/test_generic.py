"""Generic soft-label forms against slow per-pair loops (float64) and pytorch-metric-learning."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from paperzoo.metric_losses import multi_similarity_loss
from paperzoo.metrix import (
    ProxyAnchorGeneric,
    contrastive_generic,
    multi_similarity_generic,
    positivity,
    proxy_anchor_generic,
)

D64 = torch.float64


def _batch(
    n: int = 16, d: int = 8, classes: int = 4, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=D64), torch.randint(0, classes, (n,), generator=g)


def _soft(a: int, m: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.rand(a, m, generator=g, dtype=D64)
    y[y < 0.3] = 0.0
    y[y > 0.8] = 1.0
    valid = torch.rand(a, m, generator=g) > 0.2
    return y, valid


def _slow_generic(anchor, cand, y, valid, rp, rn, sp, sn, cosine):  # type: ignore[no-untyped-def]
    out = []
    for i in range(anchor.shape[0]):
        a = anchor[i] / anchor[i].norm()
        tp, tn = 0.0, 0.0
        for k in range(cand.shape[0]):
            if not valid[i, k]:
                continue
            c = cand[k] / cand[k].norm()
            s = float(a @ c) if cosine else float((a - c).norm())
            tp += float(y[i, k]) * rp(s)
            tn += (1 - float(y[i, k])) * rn(s)
        out.append(sp(tp) + sn(tn))
    return torch.tensor(out, dtype=D64)


def test_contrastive_per_anchor_equals_slow_loop_with_soft_labels() -> None:
    e, _ = _batch()
    cand = _batch(n=11, seed=3)[0]
    y, valid = _soft(16, 11)
    got = contrastive_generic(reduction="none")(e, cand, y, valid)
    ref = _slow_generic(
        e, cand, y, valid, lambda d: max(d, 0.0), lambda d: max(0.5 - d, 0.0), float, float, False
    )
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-12)


def test_multi_similarity_per_anchor_equals_slow_loop_with_soft_labels() -> None:
    e, _ = _batch()
    cand = _batch(n=11, seed=3)[0]
    y, valid = _soft(16, 11)
    got = multi_similarity_generic(reduction="none")(e, cand, y, valid)
    ref = _slow_generic(
        e,
        cand,
        y,
        valid,
        lambda s: math.exp(-2 * (s - 0.5)),
        lambda s: math.exp(50 * (s - 0.5)),
        lambda t: math.log1p(t) / 2,
        lambda t: math.log1p(t) / 50,
        True,
    )
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-12)


def test_contrastive_avg_nonzero_equals_slow_pair_loop() -> None:
    e, y = _batch()
    got = contrastive_generic().batch_loss(e, y)
    pos, neg = [], []
    for i in range(len(y)):
        for k in range(len(y)):
            if i == k:
                continue
            d = float((F.normalize(e[i], dim=0) - F.normalize(e[k], dim=0)).norm())
            (pos if y[i] == y[k] else neg).append(max(d, 0) if y[i] == y[k] else max(0.5 - d, 0))
    nz = lambda v: sum(v) / max(1, sum(t > 0 for t in v))  # noqa: E731
    assert abs(float(got) - (nz(pos) + nz(neg))) < 1e-10


def test_contrastive_avg_nonzero_differs_from_per_anchor_mean() -> None:
    e, y = _batch()
    pairs = float(contrastive_generic().batch_loss(e, y))
    anchors = float(contrastive_generic(reduction="mean").batch_loss(e, y))
    assert abs(pairs - anchors) > 0.1


def test_contrastive_equals_pml() -> None:
    pml = pytest.importorskip("pytorch_metric_learning.losses")
    e, y = _batch()
    ref = pml.ContrastiveLoss(pos_margin=0.0, neg_margin=0.5)(e, y)
    torch.testing.assert_close(contrastive_generic().batch_loss(e, y), ref, rtol=1e-10, atol=1e-12)


def test_multi_similarity_equals_pml_and_metric_losses() -> None:
    pml = pytest.importorskip("pytorch_metric_learning.losses")
    e, y = _batch()
    ours = multi_similarity_generic().batch_loss(e, y)
    ref = pml.MultiSimilarityLoss(alpha=2.0, beta=50.0, base=0.5)(e, y)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    ml = multi_similarity_loss(e, y, mining=False, skip_incomplete_anchors=False)
    torch.testing.assert_close(ours, ml, rtol=1e-10, atol=1e-12)


def test_proxy_anchor_equals_pml_with_copied_proxies() -> None:
    pml = pytest.importorskip("pytorch_metric_learning.losses")
    e, y = _batch(classes=6)
    ours = ProxyAnchorGeneric(6, 8).double()
    ref = pml.ProxyAnchorLoss(6, 8, margin=0.1, alpha=32).double()
    with torch.no_grad():
        ref.proxies.copy_(ours.proxies)
    torch.testing.assert_close(ours(e, y), ref(e, y), rtol=1e-10, atol=1e-12)


def test_proxy_anchor_soft_equals_slow_loop() -> None:
    e, _ = _batch(n=9)
    proxies = _batch(n=5, seed=4)[0]
    y, _ = _soft(5, 9)
    y[2] = 0.0  # a proxy without positives is left out of the positive average
    got = proxy_anchor_generic(e, proxies, y)
    pos, neg, npos = 0.0, 0.0, 0
    for c in range(5):
        p = F.normalize(proxies[c], dim=0)
        sp = sn = 0.0
        for x in range(9):
            s = float(p @ F.normalize(e[x], dim=0))
            sp += float(y[c, x]) * math.exp(-32 * (s - 0.1))
            sn += (1 - float(y[c, x])) * math.exp(32 * (s + 0.1))
        pos += math.log1p(sp)
        neg += math.log1p(sn)
        npos += int(float(y[c].sum()) > 0)
    assert abs(float(got) - (pos / npos + neg / 5)) < 1e-10 * max(1.0, abs(float(got)))
    none = proxy_anchor_generic(e, proxies, y, reduction="none")
    torch.testing.assert_close(none.mean(), got)


def test_contrastive_terms_are_linear_in_soft_label() -> None:
    loss = contrastive_generic(reduction="none")
    d = torch.tensor([0.2, 0.9, 1.7], dtype=D64)
    ytil = torch.tensor([0.0, 0.3, 0.75], dtype=D64)
    pos, neg = loss.pair_terms(d, ytil)
    torch.testing.assert_close(
        pos + neg, ytil * d.clamp(min=0) + (1 - ytil) * (0.5 - d).clamp(min=0)
    )


def test_hand_value_of_official_contrastive_mixed_term() -> None:
    a = torch.tensor([[1.0, 0.0]], dtype=D64)
    p = torch.tensor([0.0, 1.0], dtype=D64)
    n = torch.tensor([-1.0, 0.0], dtype=D64)
    m = (0.5 * p + 0.5 * n)[None]  # normalised inside to (-1/sqrt2, 1/sqrt2)
    y = torch.tensor([[0.5]], dtype=D64)
    got = contrastive_generic(reduction="sum")(a, m, y)
    assert abs(float(got) - 0.5 * math.sqrt(2 + math.sqrt(2))) < 1e-12
    assert abs(float(got) - 0.923880) < 1e-6


@pytest.mark.parametrize("form", ["contrastive", "ms"])
def test_gradcheck_generic_soft_labels(form: str) -> None:
    loss = (
        contrastive_generic(reduction="sum")
        if form == "contrastive"
        else multi_similarity_generic(reduction="sum")
    )
    e, _ = _batch(n=4, d=3)
    c = _batch(n=5, d=3, seed=2)[0]
    y, valid = _soft(4, 5)
    assert torch.autograd.gradcheck(
        lambda a, b: loss(a, b, y, valid),
        (e.requires_grad_(), c.requires_grad_()),
        eps=1e-6,
        atol=1e-5,
    )


def test_gradcheck_proxy_anchor_soft_labels() -> None:
    e, _ = _batch(n=4, d=3)
    proxies = _batch(n=3, d=3, seed=2)[0]
    y, _ = _soft(3, 4)
    assert torch.autograd.gradcheck(
        lambda a, b: proxy_anchor_generic(a, b, y, alpha=4.0),
        (e.requires_grad_(), proxies.requires_grad_()),
        eps=1e-6,
        atol=1e-5,
    )


def test_positivity_is_label_equality() -> None:
    y = positivity(torch.tensor([0, 1, 0]), torch.tensor([1, 0]), dtype=D64)
    torch.testing.assert_close(y, torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]], dtype=D64))
